"""The simulator's state file: its tasks (and the secret that signs their output URLs) and its
uploads (what it knew of each file, not the file) kept on disk, so that a simulator started again on
the same file answers for the tasks and the runway:// URIs of the one before, as Runway still knows
a task after any restart of yours.

The file is JSON, replaced whole after every create, delete and upload: written under another name,
then renamed, so a crash leaves the old file or the new one, never half of one. Times are stored
with the clock's monotonic() and time() at saving, and shifted on loading by how far the clock
moved in between, so each task's life goes on as if the simulator had never stopped.
"""

import base64
import json
import os
import uuid
from pathlib import Path
from typing import Any, NamedTuple

from runway_simulator.clock import Clock

VERSION = 1


class StateError(ValueError):
    """The state file cannot be read as a simulator's state."""


class Saved(NamedTuple):
    tasks: dict[str, Any]  # TaskStore.snapshot()
    secret: bytes  # that signs output URLs
    shift: float  # seconds to add to every time in it
    uploads: list[dict[str, Any]]  # UploadStore.snapshot(); [] in files from before uploads


class StateFile:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self, clock: Clock) -> Saved | None:
        """What was saved, and how many seconds to add to every time in it; None when there is no file yet."""
        try:
            state = json.loads(self.path.read_bytes())
            if state.get("version") != VERSION:
                raise StateError(f"{self.path} is not a simulator state file of version {VERSION}.")
            secret = base64.b64decode(state["output_secret"])
            shift = (clock.monotonic() - clock.time()) - (state["monotonic"] - state["time"])
            return Saved(state["tasks"], secret, shift, state.get("uploads", []))
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"Cannot read the simulator's state file {self.path}: {exc}") from exc

    def save(
        self, tasks: dict[str, Any], *, secret: bytes, clock: Clock, uploads: list[dict[str, Any]] | None = None
    ) -> None:
        state = {
            "version": VERSION,
            "monotonic": clock.monotonic(),
            "time": clock.time(),
            "output_secret": base64.b64encode(secret).decode(),
            "tasks": tasks,
            "uploads": uploads or [],
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
        try:
            temporary.write_text(json.dumps(state))
            os.replace(temporary, self.path)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
