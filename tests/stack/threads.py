"""Running a long-running component (a writer, an appender) in a thread of a stack test,
with what it raised kept for the test to check."""

from __future__ import annotations

import threading
from collections.abc import Callable


def in_thread(run: Callable[[], object], name: str) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``run`` in a thread; the list receives what it raised (empty: it returned)."""
    errors: list[BaseException] = []

    def target() -> None:
        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - surfaced by the test
            errors.append(exc)

    thread = threading.Thread(target=target, name=name)
    thread.start()
    return thread, errors
