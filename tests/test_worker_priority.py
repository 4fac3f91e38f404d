"""A worker yields the CPU to the web server on its machine (WORKER_NICENESS): its threads, and on
Linux its session's autogroup when the session is its own (runway_project/celery.py)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from runway_simulator import RunwaySimulator
from tests.stack import running_worker

AUTOGROUP = Path("/proc/self/autogroup")
needs_autogroups = pytest.mark.skipif(not AUTOGROUP.exists(), reason="this kernel has no autogroups")

# What a worker's start does, in a process of its own (niceness cannot be taken back); it prints the
# thread's niceness and its session's autogroup line.
STARTING = """
import json, os, django
django.setup()
from runway_project.celery import yield_the_cpu_to_the_web_tier
yield_the_cpu_to_the_web_tier()
group = open("/proc/self/autogroup").read().strip() if os.path.exists("/proc/self/autogroup") else ""
print(json.dumps({"niceness": os.getpriority(os.PRIO_PROCESS, 0), "autogroup": group}))
"""


def start_as_a_worker(*, niceness: str, own_session: bool) -> dict:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "runway_project.settings", "DEBUG": "True"}
    env["WORKER_NICENESS"] = niceness
    done = subprocess.run(  # noqa: S603 (our own code)
        [sys.executable, "-c", STARTING],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=own_session,
        check=True,
    )
    return json.loads(done.stdout.splitlines()[-1])


def autogroup_niceness(line: str) -> int:
    return int(line.rsplit(" ", 1)[1])  # "/autogroup-123 nice 10"


@needs_autogroups
def test_in_a_session_of_its_own_it_lowers_its_threads_and_its_session():
    own = os.getpriority(os.PRIO_PROCESS, 0)
    started = start_as_a_worker(niceness="7", own_session=True)
    assert started["niceness"] == min(19, own + 7)
    assert autogroup_niceness(started["autogroup"]) == started["niceness"]


@needs_autogroups
def test_in_a_session_it_shares_it_leaves_the_sessions_others_alone():
    ours = AUTOGROUP.read_text().strip()
    started = start_as_a_worker(niceness="7", own_session=False)
    assert started["niceness"] == min(19, os.getpriority(os.PRIO_PROCESS, 0) + 7)
    assert started["autogroup"] == ours  # this test's session, as it was
    assert AUTOGROUP.read_text().strip() == ours


def test_a_niceness_of_0_changes_nothing():
    own = os.getpriority(os.PRIO_PROCESS, 0)
    started = start_as_a_worker(niceness="0", own_session=True)
    assert started["niceness"] == own
    if started["autogroup"]:
        assert autogroup_niceness(started["autogroup"]) == 0  # a new session's, untouched


@needs_autogroups
@pytest.mark.django_db(transaction=True)
def test_the_readmes_worker_runs_every_thread_at_its_niceness_and_says_so(django_db_blocker, settings):
    with RunwaySimulator() as simulator, running_worker(django_db_blocker, simulator, max_wait=300) as worker:
        worker.wait_until_ready(seconds=30)
        log = worker.log.read_text(errors="replace")
        tasks = Path(f"/proc/{worker.pid}/task")
        threads = [int((task / "stat").read_text().rsplit(")", 1)[1].split()[16]) for task in tasks.iterdir()]
        group = Path(f"/proc/{worker.pid}/autogroup").read_text()
    assert settings.WORKER_NICENESS == 10
    expected = min(19, os.getpriority(os.PRIO_PROCESS, 0) + 10)  # it started at this test's niceness
    assert len(threads) > 10  # its consumer, its pool, its poll threads
    assert set(threads) == {expected}
    assert autogroup_niceness(group.strip()) == expected
    assert f"Running at niceness {expected} and its session's" in log
