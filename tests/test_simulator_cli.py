"""The simulator from the command line: ``python -m runway_simulator`` without Django, and
``manage.py runway_simulator`` with the same flags."""

import json
import secrets
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from django.core.management import CommandError

from runway_simulator import SimulatorOptions
from videos.management.commands.runway_simulator import Command, simulator_from_options

BASE_DIR = Path(__file__).resolve().parent.parent
KEY = "key_" + secrets.token_hex(64)
HEADERS = {"Authorization": f"Bearer {KEY}", "X-Runway-Version": "2024-11-06"}
BODY = {"model": "gen4.5", "promptText": "A calm lake at dawn", "ratio": "1280:720", "duration": 5}

# Imports the package, serves, creates a task over HTTP, then says whether Django was ever imported.
WITHOUT_DJANGO = """
import json, sys, urllib.request
from runway_simulator import RunwaySimulator

key, body = sys.argv[1], sys.argv[2]
with RunwaySimulator() as sim:
    request = urllib.request.Request(
        sim.base_url + "/v1/text_to_video",
        data=body.encode(),
        method="POST",
        headers={
            "Authorization": "Bearer " + key,
            "X-Runway-Version": "2024-11-06",
            "Content-Type": "application/json",
        },
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        print(response.status, json.load(response)["id"])
print(sorted(name for name in sys.modules if name.partition(".")[0] == "django"))
assert "django" not in sys.modules
"""


def run_python(*arguments: str) -> subprocess.CompletedProcess[str]:
    """This interpreter in a fresh process, from the repository's root, as a developer would run it."""
    return subprocess.run(
        [sys.executable, *arguments], cwd=BASE_DIR, capture_output=True, text=True, timeout=60, check=False
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_package_serves_without_importing_django() -> None:
    result = run_python("-c", WITHOUT_DJANGO, KEY, json.dumps(BODY))

    assert result.returncode == 0, result.stderr
    status, task_id = result.stdout.splitlines()[0].split()
    assert status == "200" and len(task_id) == 36
    assert result.stdout.splitlines()[1] == "[]"


def test_python_m_runway_simulator_help_lists_the_flags() -> None:
    result = run_python("-m", "runway_simulator", "--help")

    assert result.returncode == 0, result.stderr
    for flag in ("--port", "--task-seconds", "--max-concurrent", "--daily-limit", "--slow-seconds", "--quiet"):
        assert flag in result.stdout


def test_python_m_runway_simulator_refuses_a_bad_flag() -> None:
    result = run_python("-m", "runway_simulator", "--slow-rate=2")

    assert result.returncode == 2
    assert "--slow-rate" in result.stderr


def test_python_m_runway_simulator_serves_until_stopped() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "runway_simulator", f"--port={port}", "--task-seconds=1"],
        cwd=BASE_DIR,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = requests.post(
                    f"http://127.0.0.1:{port}/v1/text_to_video", json=BODY, headers=HEADERS, timeout=5
                )
                break
            except requests.ConnectionError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise
                time.sleep(0.05)
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)

    assert response.status_code == 200
    assert process.returncode == 0, output  # SIGTERM stops it as Ctrl-C does
    assert f"Runway simulator listening on http://127.0.0.1:{port}" in output
    assert '"POST /v1/text_to_video HTTP/1.1" 200' in output  # each request is logged...
    assert KEY not in output  # ...but never its key
    assert output.rstrip().endswith("Stopping.")


# -- manage.py runway_simulator ------------------------------------------------------------------


def parse_command(*argv: str) -> dict[str, Any]:
    return vars(Command().create_parser("manage.py", "runway_simulator").parse_args(list(argv)))


def test_command_flags_configure_the_simulator() -> None:
    options = parse_command(
        "--port=0",
        "--task-seconds=3",
        "--output-ttl=60",
        "--max-concurrent=2",
        "--daily-limit=50",
        "--error-rate=0.1",
        "--slow-rate=0.2",
        "--slow-seconds=4",
        "--fail-rate=0.3",
        "--latency=0.25",
        "--download-latency=1.5",
        "--download-rate=1000000",
        "--credit-balance=500",
    )

    sim = simulator_from_options(options)

    assert sim.options == SimulatorOptions(
        port=0,
        task_seconds=3.0,
        output_ttl=60.0,
        max_concurrent=2,
        daily_limit=50,
        error_rate=0.1,
        slow_rate=0.2,
        slow_seconds=4.0,
        fail_rate=0.3,
        latency=0.25,
        download_latency=1.5,
        download_rate=1_000_000.0,
        credit_balance=500,
        verbose=True,
    )


def test_command_defaults_are_the_options_defaults_on_a_fixed_port() -> None:
    sim = simulator_from_options(parse_command("--verbosity=0"))

    assert sim.options == SimulatorOptions(port=8765)
    assert sim.options.max_concurrent is None
    assert (sim.options.slow_rate, sim.options.error_rate, sim.options.fail_rate) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize(
    "argv",
    [
        ("--slow-rate=2",),
        ("--max-concurrent=0",),
        ("--fail-rate=x",),
        ("--slow-seconds=-1",),
        ("--latency=-0.1",),
        ("--download-rate=0",),
        ("--credit-balance=-1",),
        ("--credit-balance=1.5",),
    ],
)
def test_command_refuses_bad_flags(argv: tuple[str, ...]) -> None:
    with pytest.raises(CommandError):
        parse_command(*argv)


def test_command_reports_an_invalid_option_as_a_command_error() -> None:
    # The flags' types refuse what they can; what SimulatorOptions refuses still ends as a CommandError.
    with pytest.raises(CommandError, match="pending_seconds"):
        simulator_from_options({**parse_command(), "task_seconds": -1.0})
