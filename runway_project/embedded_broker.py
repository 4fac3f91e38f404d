"""The embedded broker of `make run` without Redis: kombu's file transport, made safe for several
processes publishing and consuming at once.

kombu's own (`kombu.transport.filesystem`) creates a message file under its final `.msg` name
and writes it afterwards, and a consumer takes no lock before reading, so a consumer that lists
the folder in between reads an empty file and raises JSONDecodeError; a Celery worker dies of it
("Unrecoverable error: JSONDecodeError", kombu issue 1551). Its exchange table has the same
window: a process that creates it truncates it before writing, while another reads it.
`tests/test_embedded_broker.py` reproduces both within seconds.

Here every file is written under a name nobody reads, then renamed to its real one, which POSIX
makes atomic: a reader sees the whole file or no file. A consumer claims a message by renaming it
into a folder of its own before reading it, so two consumers never both take one, and a file that
vanished between listing and claiming (another consumer took it) is skipped. A file that still
cannot be read as a message is moved aside into `broken/` and logged, never raised, so one bad
file cannot stop a worker.

Celery selects this transport with `broker_transport` (CELERY_BROKER_TRANSPORT, set by the
settings whenever CELERY_BROKER_URL is `filesystem://`); the folders are kombu's transport
options `data_folder_in`, `data_folder_out` and `control_folder`.
"""

import fcntl
import logging
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import Any

from kombu.transport import filesystem, virtual
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

TRANSPORT = "runway_project.embedded_broker:Transport"
CLAIMED = ".claimed"  # in the queue folder: messages a consumer has taken, while it reads them
BROKEN = ".broken"  # in the queue folder: files that could not be read as a message


def write_atomically(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that a reader sees the old file, or none, or all of the new one."""
    # A leading dot: kombu's listing matches names ending ".<queue>.msg" after their first dot,
    # so it never takes this one for a message.
    temporary = path.with_name(f".{path.name}.{os.getpid()}-{uuid.uuid4().hex}.tmp")
    try:
        with temporary.open("wb") as file:
            file.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


class Channel(filesystem.Channel):
    """kombu's file channel with atomic writes, claimed reads and harmless bad files."""

    # The signatures are kombu's file channel's (its stubs, too, ignore the virtual channel's).
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        # Milliseconds zero-padded, so that names sort by age across processes (one system clock).
        name = f"{int(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        path = Path(self.data_folder_out) / name
        try:
            write_atomically(path, dumps(payload).encode())
        except FileNotFoundError:  # the folder was removed (`make clean` while running): make it again
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomically(path, dumps(payload).encode())

    def _get(self, queue: str) -> dict[str, Any]:  # type: ignore[override]
        folder = Path(self.data_folder_in)
        claimed = folder / CLAIMED
        claimed.mkdir(parents=True, exist_ok=True)  # and the queue folder, if it was removed
        for name in sorted(os.listdir(folder)):
            if name.partition(".")[2] != f"{queue}.msg":
                continue
            mine = claimed / f"{name}.{os.getpid()}-{uuid.uuid4().hex}"
            try:
                os.rename(folder / name, mine)
            except FileNotFoundError:
                continue  # another consumer took it between our listing and now
            try:
                payload: dict[str, Any] = loads(mine.read_bytes())
            except (OSError, ValueError):
                self._set_aside(mine, name)
                continue
            mine.unlink()
            return payload
        raise Empty()

    def _set_aside(self, path: Path, name: str) -> None:
        broken = Path(self.data_folder_in) / BROKEN
        broken.mkdir(exist_ok=True)
        os.replace(path, broken / name)
        logger.error("Embedded broker: message file %s could not be read; moved to %s", name, broken)

    # -- the exchange table: which queues each exchange routes to ---------------------------------

    def get_table(self, exchange: str) -> list[filesystem.exchange_queue_t]:  # type: ignore[override]
        try:
            raw = self._exchange_path(exchange).read_bytes()
        except FileNotFoundError:
            return []
        return [filesystem.exchange_queue_t(*row) for row in loads(raw)]

    def _queue_bind(self, exchange: str, routing_key: str, pattern: str | None, queue: str) -> None:
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")

        def bind(table: list[filesystem.exchange_queue_t]) -> list[filesystem.exchange_queue_t]:
            return table if binding in table else [binding, *table]

        self._change_table(exchange, bind)

    def _delete(self, queue: str, exchange: str, routing_key: str, pattern: str, *args: Any, **kwargs: Any) -> None:
        virtual.Channel._delete(self, queue, exchange, routing_key, pattern, *args, **kwargs)
        binding = filesystem.exchange_queue_t(routing_key or "", pattern or "", queue or "")
        self._change_table(exchange, lambda table: [row for row in table if row != binding])

    def _change_table(
        self,
        exchange: str,
        change: Callable[[list[filesystem.exchange_queue_t]], list[filesystem.exchange_queue_t]],
    ) -> None:
        """Read, change and replace an exchange's table, one process at a time; readers take no lock."""
        path = self._exchange_path(exchange)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.with_name(f".{path.name}.lock").open("a") as lock:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX)  # released when the file closes
            table = self.get_table(exchange)
            changed = change(table)
            if changed != table:
                write_atomically(path, dumps(changed).encode())

    def _exchange_path(self, exchange: str) -> Path:
        # kombu's check of the name: it must not lead out of the control folder.
        path: Path = self._exchange_file(exchange)  # type: ignore[attr-defined]
        return path


class Transport(filesystem.Transport):
    """kombu's file transport with the channel above."""

    Channel = Channel
    global_state = virtual.BrokerState()
    driver_name = "filesystem (atomic)"

    @property
    def default_connection_params(self) -> dict[str, Any]:
        # No host to connect to: without this kombu warns "No hostname was supplied" on every connection.
        return {}
