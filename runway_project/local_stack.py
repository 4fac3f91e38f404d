"""What `make run` (run_local) started, written down so that a command in a second terminal joins it.

run_local gives its worker and web server a broker it chose (Redis, or the embedded one when no
Redis answers) and, without a Runway key, the simulator's address and a key made up for it. A
`manage.py generate_video` run next to it must use the same, or its job goes to a broker nobody
reads, or fails at once for want of a key. While run_local runs, it keeps those settings in
var/local-stack.json (readable by its owner only); settings.py reads them back in any process of
this checkout whose own Runway key is empty. Never a real Runway key: with one, run_local starts
no simulator, and the file holds only the broker and DEBUG.

Only the standard library: settings.py imports this before Django is set up.
"""

import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path

# What a process next to run_local takes from it: run_local's choice of broker and Runway...
CHOSEN = ("CELERY_BROKER_URL", "RUNWAY_API_BASE_URL", "RUNWAY_API_KEY", "RUNWAY_SIMULATED")
# ...and, where its own environment (or .env) does not say, where run_local keeps its data.
SHARED = ("DEBUG", "DATABASE_URL", "MEDIA_ROOT", "CELERY_BROKER_DIR", "CELERY_QUEUE")
JOINED = CHOSEN + SHARED


def stack_write(path: Path, *, pid: int, env: Mapping[str, str]) -> None:
    """Record run_local's process and what its children were given, readable by this user alone.

    A Runway key is written only with RUNWAY_SIMULATED: the simulator's, never a real one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    kept = {name: env[name] for name in JOINED if name in env}
    if kept.get("RUNWAY_SIMULATED") != "True":
        kept.pop("RUNWAY_API_KEY", None)
    record = {"pid": pid, "env": kept}
    partial = path.with_name(path.name + ".new")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as file:
        json.dump(record, file)
    partial.replace(path)


def stack_remove(path: Path, *, pid: int) -> None:
    """Forget the record when run_local stops (only its own: another run_local may have written one)."""
    if stack_read(path).get("pid") == pid:
        path.unlink(missing_ok=True)


def stack_read(path: Path) -> dict[str, object]:
    """The record of a run_local that is running now; empty when there is none (or it died)."""
    try:
        record = json.loads(path.read_text())
        pid = int(record["pid"])
        env = {str(name): str(value) for name, value in dict(record["env"]).items() if name in JOINED}
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    if not pid_alive(pid):
        return {}  # left behind by a run_local that was killed
    return {"pid": pid, "env": env}


def stack_join(path: Path, environ: MutableMapping[str, str]) -> dict[str, object]:
    """Take a running run_local's settings into `environ` when this process has no Runway key of its own.

    The broker and Runway's address and key are run_local's; DEBUG, the database and the rest of
    SHARED that are set here stay as they are. Returns the record joined (empty when none).
    """
    if environ.get("RUNWAY_API_KEY"):
        return {}
    record = stack_read(path)
    if not record:
        return {}
    env = record["env"]
    assert isinstance(env, dict)
    for name, value in env.items():
        if name in SHARED:
            environ.setdefault(name, value)
        else:
            environ[name] = value
    return record


def pid_alive(pid: int) -> bool:
    """Whether a process of that number runs (someone else's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: alive
    return True
