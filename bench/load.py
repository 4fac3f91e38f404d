"""Simulated users over HTTP, in a process of their own so that their work does not slow the one measuring.

Run by the benchmarks as ``python -m bench.load`` with a JSON plan on stdin; prints JSON results:

- ``{"mode": "poll", ...}``: each browser GETs its path every `interval` seconds for `seconds`,
  as the dashboard's script asks about its page's live videos: with If-None-Match from the last
  answer's ETag; a 200 or a 304 ("not modified", counted) is an answer, anything else an error.
- ``{"mode": "post", ...}``: each client posts the Generate form back to back for `seconds`,
  each time with a new one-time token, as the page's script does.

Requests carry ``X-Forwarded-Proto: https``, as they would through the TLS proxy in front of a
production server.
"""

import json
import secrets
import sys
import threading
import time
import uuid
from typing import Any

import requests

TIMEOUT = (5, 30)


def _session(cookie_name: str, cookie: str) -> requests.Session:
    session = requests.Session()
    session.cookies.set(cookie_name, cookie)
    session.headers.update({"Accept": "application/json", "X-Forwarded-Proto": "https"})
    return session


def _poll(
    base_url: str,
    session: requests.Session,
    path: str,
    *,
    interval: float,
    until: float,
    seconds: float,
    offset: float,
) -> dict[str, Any]:
    """GET `path` every `interval` until `until`; each answer's latency, and when it was asked
    (`at`, seconds from the start of the load, which lasts `seconds`)."""
    latencies, errors, at = [], [], []
    not_modified = 0
    etag = ""
    due = time.monotonic() + offset
    while due < until:
        time.sleep(max(0.0, due - time.monotonic()))
        started = time.perf_counter()
        at.append(time.monotonic() - (until - seconds))
        try:
            response = session.get(base_url + path, headers={"If-None-Match": etag} if etag else {}, timeout=TIMEOUT)
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)
            at.pop()
        else:
            latencies.append(time.perf_counter() - started)
            if response.status_code == 200:
                etag = response.headers.get("ETag", "")
            elif response.status_code == 304:
                not_modified += 1
            else:
                errors.append(str(response.status_code))
        due += interval
    return {"latencies": latencies, "errors": errors, "not_modified": not_modified, "at": at}


def _post(base_url: str, session: requests.Session, path: str, *, until: float, prompt: str) -> dict[str, Any]:
    csrf = secrets.token_hex(16)  # Django takes any 32-character token that the cookie repeats
    session.cookies.set("csrftoken", csrf)
    session.headers.update({"X-CSRFToken": csrf, "Origin": base_url.replace("http://", "https://", 1)})
    latencies, errors, created = [], [], []
    while time.monotonic() < until:
        started = time.perf_counter()
        try:
            response = session.post(
                base_url + path, data={"prompt": prompt, "token": str(uuid.uuid4())}, timeout=TIMEOUT
            )
        except requests.RequestException as exc:
            errors.append(type(exc).__name__)
            continue
        latencies.append(time.perf_counter() - started)
        if response.status_code == 201:
            created.append(response.json()["id"])
        else:
            errors.append(str(response.status_code))
    return {"latencies": latencies, "errors": errors, "created": created}


def run(plan: dict[str, Any]) -> dict[str, Any]:
    """Run every simulated user of `plan` at once in threads; return what they measured, merged."""
    until = time.monotonic() + plan["seconds"]
    results: list[dict[str, Any]] = []
    lock = threading.Lock()

    def user(number: int, target: dict[str, str]) -> None:
        session = _session(plan["cookie_name"], target["cookie"])
        if plan["mode"] == "poll":
            # Spread over the interval, as browsers opened at different moments are.
            offset = plan["interval"] * number / len(plan["targets"])
            result = _poll(
                plan["base_url"],
                session,
                target["path"],
                interval=plan["interval"],
                until=until,
                seconds=plan["seconds"],
                offset=offset,
            )
        else:
            result = _post(plan["base_url"], session, target["path"], until=until, prompt=plan["prompt"])
        with lock:
            results.append(result)

    threads = [threading.Thread(target=user, args=(n, t)) for n, t in enumerate(plan["targets"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    merged: dict[str, Any] = {"latencies": [], "errors": [], "created": [], "not_modified": 0, "at": []}
    for result in results:
        for key, values in result.items():
            merged[key] += values  # lists joined, counts added
    return merged


if __name__ == "__main__":
    json.dump(run(json.load(sys.stdin)), sys.stdout)
