"""Awaiting a condition in a test, instead of sleeping and hoping.

:func:`wait_until` polls a condition until it holds and fails the test with ``message``
when it still does not after ``timeout_s``. The deadline only bounds a hang: a test never
asserts how long something took (that depends on the machine's load), only what happened
and in which order.
"""

from __future__ import annotations

import time
from collections.abc import Callable

POLL_S = 0.05


def wait_until(
    condition: Callable[[], bool], timeout_s: float, message: str, *, poll_s: float = POLL_S
) -> None:
    """Return as soon as ``condition()`` is true; raise AssertionError naming ``message``
    if it is still false after ``timeout_s`` (checked once more at the deadline)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() >= deadline:
            if condition():
                return
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {message}")
        time.sleep(poll_s)
