"""`make run` on a machine with nothing: no Redis, no PostgreSQL, no Runway key, no .env."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from django.conf import settings

from harness.processes import free_port

pytestmark = pytest.mark.stack

BASE_DIR = Path(settings.BASE_DIR)


def processes_with(marker: str) -> list[int]:
    """Pids of live processes whose environment carries the marker: everything run_local started."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if marker.encode() in (entry / "environ").read_bytes() and (entry / "stat").read_text().split()[2] != "Z":
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def read_until(process: subprocess.Popen[str], pattern: str, seconds: float, seen: list[str]) -> re.Match[str]:
    deadline = time.monotonic() + seconds
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line:
            seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match
        elif process.poll() is not None:
            break
        else:
            time.sleep(0.05)
    pytest.fail(f"no line matching {pattern!r}; output:\n{''.join(seen)[-4000:]}")


def test_make_run_on_a_bare_machine_serves_a_generation_and_stops_everything(tmp_path):
    marker = f"RUN_LOCAL_TEST_{uuid.uuid4().hex}"
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("RUNWAY_", "DATABASE_", "CELERY_"))},
        "DJANGO_SETTINGS_MODULE": "runway_project.settings",
        "DEBUG": "True",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0",  # nothing listens there
        "CELERY_BROKER_DIR": str(tmp_path / "broker"),
        "MEDIA_ROOT": str(tmp_path / "media"),
        "RUNWAY_API_KEY": "",
        "RUNWAY_POLL_INTERVAL": "5",
        marker: "1",
    }
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput"], cwd=BASE_DIR, env=env, check=True, capture_output=True
    )
    command = [
        sys.executable,
        "manage.py",
        "run_local",
        "--port",
        str(port),
        "--simulator-port",
        "0",
        "--task-seconds",
        "2",
    ]
    process = subprocess.Popen(
        command, cwd=BASE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    seen: list[str] = []
    try:
        assert "embedded" in read_until(process, r"^Broker: (.*)", 30, seen).group(1)
        read_until(process, r"^Runway: the simulator at http://127\.0\.0\.1:\d+", 10, seen)
        login = read_until(process, r"Open (http://\S+) and log in as 'admin' with password '([^']+)'", 60, seen)
        address, password = login.group(1), login.group(2)
        assert address == f"http://127.0.0.1:{port}/"

        browser = requests.Session()
        browser.get(address + "accounts/login/", timeout=5)
        page = browser.post(
            address + "accounts/login/",
            {"username": "admin", "password": password, "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            timeout=5,
        )
        assert page.url == address + "videos/"
        assert "Videos come from the Runway simulator" in page.text
        created = browser.post(
            address + "videos/",
            {"prompt": "A serene mountain landscape at sunset", "csrfmiddlewaretoken": browser.cookies["csrftoken"]},
            headers={"Accept": "application/json"},
            timeout=5,
        )
        assert created.status_code == 201
        status_url = f"{address}videos/{created.json()['id']}/status/"
        deadline = time.monotonic() + 45
        while (status := browser.get(status_url, timeout=5).json())["is_final"] is False:
            assert time.monotonic() < deadline, f"still {status['status']}; output:\n{''.join(seen)[-3000:]}"
            time.sleep(0.5)
        assert status["status"] == "succeeded", (status["message"], "".join(seen)[-3000:])
        video = browser.get(address.rstrip("/") + status["output_url"], timeout=5)
        assert video.status_code == 200
        assert video.headers["Content-Type"] == "video/mp4"
        assert processes_with(marker), "the test should see the processes it started"
    finally:
        process.send_signal(signal.SIGINT)  # what Ctrl-C sends
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            pytest.fail("run_local did not stop on Ctrl-C")
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == [], "every process run_local started has stopped"


def test_run_local_refuses_to_run_without_debug(tmp_path):
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "runway_project.settings", "DEBUG": "False", "SECRET_KEY": "x" * 50}
    result = subprocess.run(
        [sys.executable, "manage.py", "run_local"], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "needs DEBUG=True" in result.stderr
