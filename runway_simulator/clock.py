"""The simulator's sense of time, given to it so that tests move time instead of sleeping.

Every age, expiry and wait in the simulator goes through one Clock: SystemClock (the default)
is the machine's; ManualClock stands still until a test calls advance().
"""

import math
import threading
import time
from typing import Protocol

# ManualClock's wall time when nothing else is said: 2026-01-01T00:00:00Z.
_START = 1_767_225_600.0


class Clock(Protocol):
    def monotonic(self) -> float:
        """Seconds that only ever go forward, for ages and deadlines."""
        ...

    def time(self) -> float:
        """Seconds since the Unix epoch, for timestamps and for expiry written into URLs."""
        ...

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        """Block until `seconds` have passed on this clock or `interrupt` is set; True if it was set.

        Whoever sets `interrupt` calls wake() afterwards.
        """
        ...

    def wake(self) -> None:
        """Make every wait() look at its interrupt again."""
        ...


class SystemClock:
    """The machine's clocks: time.monotonic() and time.time()."""

    def monotonic(self) -> float:
        return time.monotonic()

    def time(self) -> float:
        return time.time()

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        return interrupt.wait(seconds)

    def wake(self) -> None:
        pass  # wait() returns as soon as its interrupt is set


class ManualClock:
    """A clock that moves only when advance() is called, waking whatever waits on it; thread-safe.

    Its monotonic() starts at 0 and its time() at `start` (seconds since the epoch).
    """

    def __init__(self, *, start: float = _START) -> None:
        self._start = start
        self._elapsed = 0.0
        self._waiting = 0
        self._changed = threading.Condition()

    def monotonic(self) -> float:
        with self._changed:
            return self._elapsed

    def time(self) -> float:
        with self._changed:
            return self._start + self._elapsed

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, and wake every wait() that this brings to its end."""
        if not 0 <= seconds < math.inf:
            raise ValueError(f"A clock moves forward by a finite number of seconds, not {seconds}.")
        with self._changed:
            self._elapsed += seconds
            self._changed.notify_all()

    def wait(self, seconds: float, interrupt: threading.Event) -> bool:
        with self._changed:
            deadline = self._elapsed + seconds
            self._waiting += 1
            self._changed.notify_all()  # for wait_for_waiters()
            try:
                while not interrupt.is_set() and self._elapsed < deadline:
                    self._changed.wait()
            finally:
                self._waiting -= 1
            return interrupt.is_set()

    def wake(self) -> None:
        with self._changed:
            self._changed.notify_all()

    @property
    def waiting(self) -> int:
        """How many threads are in wait() now."""
        with self._changed:
            return self._waiting

    def wait_for_waiters(self, count: int = 1, *, timeout: float = 5.0) -> None:
        """Block until `count` threads are in wait(), so a test advances the clock only once they are.

        Raises TimeoutError after `timeout` real seconds.
        """
        with self._changed:
            if not self._changed.wait_for(lambda: self._waiting >= count, timeout):
                raise TimeoutError(f"{self._waiting} thread(s) waiting on the clock after {timeout} s, not {count}")
