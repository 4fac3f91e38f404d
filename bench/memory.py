"""How much memory and CPU time a benchmark's processes take, and how much memory Redis holds."""

import contextlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import redis

from harness.processes import Process

PYTHON = os.path.realpath(sys.executable)


@dataclass(frozen=True)
class Memory:
    """Bytes resident in RAM: `rss` counts pages shared between processes once per process, `pss` splits them."""

    rss: int
    pss: int
    processes: int
    threads: int = 0  # over its Python processes
    helpers_rss: int = 0  # programs it runs for a moment (ffmpeg for a poster)
    helpers: int = 0


def memory_of(process: Process) -> Memory:
    """The resident memory of a process and its Python descendants, now, and of its other ones (ffmpeg)."""
    pids = [process.pid, *_descendants(process.pid)]
    python = [pid for pid in pids if _executable(pid) == PYTHON]
    helpers = [pid for pid in pids if pid not in python]
    return Memory(
        rss=sum(_rss(pid) for pid in python),
        pss=sum(_pss(pid) for pid in python),
        processes=len(python),
        threads=sum(_status_kib(Path(f"/proc/{pid}/status"), "Threads") for pid in python),
        helpers_rss=sum(_rss(pid) for pid in helpers),
        helpers=len(helpers),
    )


@dataclass(frozen=True)
class CpuTime:
    """Seconds of CPU (user + system, over all threads) a process tree has used so far."""

    own: float  # the process and its Python descendants
    helpers: float  # the programs they ran and waited for (ffmpeg), once those have ended


def cpu_time_of(process: Process) -> CpuTime:
    """The CPU time used so far by a process and its Python descendants, and by the helpers they waited for."""
    own = helpers = 0.0
    for pid in [process.pid, *_descendants(process.pid)]:
        if _executable(pid) == PYTHON:
            fields = _stat_fields(pid)
            if fields:
                # utime, stime, cutime, cstime: the 14th to 17th fields, in clock ticks.
                own += (fields[10] + fields[11]) / _TICKS
                helpers += (fields[12] + fields[13]) / _TICKS
    return CpuTime(own=own, helpers=helpers)


_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[int]:
    """The fields of /proc/<pid>/stat from the 4th (the parent pid) on, as numbers: [] when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return [int(value) for value in text.rsplit(")", 1)[1].split()[1:]]


def redis_used_memory(url: str) -> int:
    """Bytes the Redis server holds for data (INFO memory's used_memory), all databases together."""
    used: int = redis.Redis.from_url(url).info("memory")["used_memory"]
    return used


def _descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The parent pid is the 2nd field after the command name, which may hold spaces.
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _executable(pid: int) -> str:
    try:
        return os.path.realpath(f"/proc/{pid}/exe")
    except OSError:
        return ""


def _rss(pid: int) -> int:
    return _status_kib(Path(f"/proc/{pid}/status"), "VmRSS") * 1024


def _pss(pid: int) -> int:
    return _status_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss") * 1024


def _status_kib(path: Path, field: str) -> int:
    """A field of a /proc status file: kiB for sizes, a plain number for counts."""
    with contextlib.suppress(OSError):
        for line in path.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0
