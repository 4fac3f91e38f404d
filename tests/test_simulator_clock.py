"""The simulator's clocks: ManualClock moves only when told, and wakes whatever waits on it."""

import math
import threading
import time
from collections.abc import Callable

import pytest

from runway_simulator import ManualClock, SystemClock


def in_thread(target: Callable[[], object]) -> tuple[threading.Thread, list[object]]:
    """Run `target` in a daemon thread; its result lands in the list."""
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(target()), daemon=True)
    thread.start()
    return thread, results


def test_manual_clock_stands_still_until_advanced() -> None:
    clock = ManualClock(start=1_000_000.0)

    before = (clock.monotonic(), clock.time())
    clock.advance(2.5)

    assert before == (0.0, 1_000_000.0)
    assert (clock.monotonic(), clock.time()) == (2.5, 1_000_002.5)


@pytest.mark.parametrize("seconds", [-1.0, math.inf, math.nan])
def test_manual_clock_only_moves_forward_by_a_finite_amount(seconds: float) -> None:
    clock = ManualClock()

    with pytest.raises(ValueError):
        clock.advance(seconds)

    assert clock.monotonic() == 0.0


def test_manual_clock_wait_ends_when_the_clock_reaches_its_deadline() -> None:
    clock = ManualClock()
    thread, results = in_thread(lambda: clock.wait(10.0, threading.Event()))
    clock.wait_for_waiters(1)

    clock.advance(9.0)
    thread.join(0.1)
    early = list(results)
    clock.advance(1.0)
    thread.join(5.0)

    assert early == []
    assert results == [False]  # not interrupted
    assert clock.waiting == 0


def test_manual_clock_wait_ends_at_once_when_interrupted_and_woken() -> None:
    clock = ManualClock()
    interrupt = threading.Event()
    thread, results = in_thread(lambda: clock.wait(10.0, interrupt))
    clock.wait_for_waiters(1)

    interrupt.set()
    clock.wake()
    thread.join(5.0)

    assert results == [True]
    assert clock.monotonic() == 0.0


def test_manual_clock_wakes_every_waiter() -> None:
    clock = ManualClock()
    waits = [in_thread(lambda seconds=seconds: clock.wait(seconds, threading.Event())) for seconds in (1.0, 2.0, 3.0)]
    clock.wait_for_waiters(3)

    clock.advance(3.0)
    for thread, _ in waits:
        thread.join(5.0)

    assert [results for _, results in waits] == [[False]] * 3


def test_manual_clock_says_when_nobody_comes_to_wait() -> None:
    with pytest.raises(TimeoutError):
        ManualClock().wait_for_waiters(1, timeout=0.01)


def test_manual_clock_is_safe_to_advance_from_many_threads() -> None:
    clock = ManualClock()

    def advance() -> None:
        for _ in range(1000):
            clock.advance(0.5)

    threads = [threading.Thread(target=advance) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert clock.monotonic() == 4000.0


def test_system_clock_is_the_machine_clock() -> None:
    clock = SystemClock()
    interrupted = threading.Event()
    interrupted.set()

    assert abs(clock.time() - time.time()) < 1.0
    assert abs(clock.monotonic() - time.monotonic()) < 1.0
    assert clock.wait(60.0, interrupted) is True
    assert clock.wait(0.0, threading.Event()) is False
