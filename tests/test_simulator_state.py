"""The simulator's state file: a simulator started again on it answers for the tasks of the one
before, their lives going on by the clock as if it had never stopped."""

import argparse
import secrets
from pathlib import Path
from typing import Any

import pytest
import requests

from runway_simulator import ManualClock, RunwaySimulator
from runway_simulator.options import add_arguments, options_from_arguments
from runway_simulator.state import StateError

KEY = "key_" + secrets.token_hex(64)
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}


def create(sim: RunwaySimulator, prompt: str = "A calm lake at dawn") -> requests.Response:
    body = {"model": "gen4.5", "promptText": prompt, "ratio": "1280:720", "duration": 5}
    return requests.post(sim.base_url + "/v1/text_to_video", json=body, headers=HEADERS, timeout=5)


def task(sim: RunwaySimulator, task_id: str) -> requests.Response:
    return requests.get(f"{sim.base_url}/v1/tasks/{task_id}", headers=HEADERS, timeout=5)


def task_json(sim: RunwaySimulator, task_id: str) -> dict[str, Any]:
    answer = task(sim, task_id)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


def later(clock: ManualClock, seconds: float) -> ManualClock:
    """A fresh clock, as a new process has, whose wall time is `seconds` after `clock`'s."""
    return ManualClock(start=clock.time() + seconds)


def test_a_task_goes_on_by_the_clock_across_a_restart(tmp_path: Path):
    state = str(tmp_path / "simulator.json")
    before = ManualClock()
    with RunwaySimulator(task_seconds=10.0, pending_seconds=1.0, clock=before, state_file=state) as sim:
        task_id = create(sim).json()["id"]
        before.advance(3.0)
        first = task_json(sim, task_id)
    assert first["status"] == "RUNNING"

    after = later(before, 4.0)  # stopped for 4 seconds: the task is 7 s old
    with RunwaySimulator(task_seconds=10.0, pending_seconds=1.0, clock=after, state_file=state) as sim:
        again = task_json(sim, task_id)
        after.advance(3.0)
        done = task_json(sim, task_id)

    assert again == {**first, "progress": round(6 / 9, 2)}
    assert done["status"] == "SUCCEEDED"
    assert done["createdAt"] == first["createdAt"]


def test_an_output_url_and_a_deletion_survive_a_restart(tmp_path: Path):
    state = str(tmp_path / "simulator.json")
    before = ManualClock()
    with RunwaySimulator(task_seconds=1.0, clock=before, state_file=state) as sim:
        kept, deleted = create(sim).json()["id"], create(sim).json()["id"]
        before.advance(1.0)
        url = task_json(sim, kept)["output"][0]
        assert requests.delete(f"{sim.base_url}/v1/tasks/{deleted}", headers=HEADERS, timeout=5).status_code == 204

    with RunwaySimulator(task_seconds=1.0, clock=later(before, 60.0), state_file=state) as sim:
        # The new simulator listens on another port; the URL's path and signature are what count.
        video = requests.get(sim.base_url + url[url.index("/_sim/") :], timeout=5)
        gone = task(sim, deleted)

    assert video.status_code == 200
    assert video.headers["Content-Type"] == "video/mp4"
    assert gone.status_code == 404


def test_the_daily_limit_and_a_queue_for_slots_carry_over(tmp_path: Path):
    state = str(tmp_path / "simulator.json")
    options: dict[str, Any] = {"task_seconds": 5.0, "max_concurrent": 1, "daily_limit": 2, "state_file": state}
    before = ManualClock()
    with RunwaySimulator(clock=before, **options) as sim:
        holder = create(sim, "Forever [sim:never]").json()["id"]
        waiter = create(sim).json()["id"]
        assert task_json(sim, waiter)["status"] == "THROTTLED"

    after = later(before, 30.0)
    with RunwaySimulator(clock=after, **options) as sim:
        refused = create(sim)
        still = task_json(sim, waiter)["status"]
        assert requests.delete(f"{sim.base_url}/v1/tasks/{holder}", headers=HEADERS, timeout=5).status_code == 204
        after.advance(5.0)
        finally_done = task_json(sim, waiter)["status"]

    assert refused.status_code == 429
    assert still == "THROTTLED"
    assert finally_done == "SUCCEEDED"


def balance(sim: RunwaySimulator) -> int:
    credits: int = requests.get(sim.base_url + "/v1/organization", headers=HEADERS, timeout=5).json()["creditBalance"]
    return credits


def test_the_credit_balance_and_what_each_task_costs_carry_over(tmp_path: Path):
    state = str(tmp_path / "simulator.json")
    before = ManualClock()
    with RunwaySimulator(task_seconds=10.0, credit_balance=1000, clock=before, state_file=state) as sim:
        billed, refunded = create(sim).json()["id"], create(sim, "A lake [sim:fail]").json()["id"]
        finished_then_deleted = create(sim).json()["id"]
        before.advance(10.0)
        assert requests.delete(f"{sim.base_url}/v1/tasks/{finished_then_deleted}", headers=HEADERS, timeout=5)
        running = create(sim).json()["id"]
        left = balance(sim)
    assert left == 1000 - 60 - 60 - 60  # the failure is refunded; the deleted task had ended, so it cost

    # The state file's balance goes on: the option only opens a new file.
    after = later(before, 5.0)
    with RunwaySimulator(task_seconds=10.0, credit_balance=50_000, clock=after, state_file=state) as sim:
        again = balance(sim)
        costs = [task_json(sim, task_id)["cost"]["credits"] for task_id in (billed, refunded)]
        estimate = task_json(sim, running)["estimatedCost"]["credits"]
        after.advance(5.0)
        ended = task_json(sim, running)["cost"]["credits"]
        closing = balance(sim)

    assert (again, costs, estimate, ended, closing) == (left, [60, 0], 60, 60, left)


def test_without_a_state_file_a_new_simulator_knows_nothing(tmp_path: Path):
    with RunwaySimulator() as sim:
        task_id = create(sim).json()["id"]
    with RunwaySimulator() as sim:
        assert task(sim, task_id).status_code == 404
    assert list(tmp_path.iterdir()) == []


def test_a_state_file_that_is_not_one_is_refused(tmp_path: Path):
    state = tmp_path / "simulator.json"
    state.write_text("{not json")
    with pytest.raises(StateError, match="Cannot read the simulator's state file"):
        RunwaySimulator(state_file=str(state))


def test_the_state_file_flag_sets_the_option():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    arguments = vars(parser.parse_args(["--state-file", "var/simulator.json"]))
    assert options_from_arguments(arguments, verbose=False).state_file == "var/simulator.json"
    assert options_from_arguments(vars(parser.parse_args([])), verbose=False).state_file is None
