"""Operations of the fake Kafka clients, and the hooks a test runs around them.

Every public call of a fake consumer or producer is an :data:`Operation`. Before it runs,
a dead client raises :class:`~tests.fakes.crash.SimulatedCrash` and a closed one
``RuntimeError`` (as the real client does); then the test's ``before`` hooks run, then the
call, then its ``after`` hooks (only if the call returned). A hook may raise, for example
:class:`SimulatedCrash` after killing the client: the call then never happens (before) or
its caller never hears of it (after).
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Concatenate, Literal, ParamSpec, Protocol, TypeVar

Operation = Literal[
    "subscribe",
    "consume",
    "poll",
    "commit",
    "committed",
    "position",
    "get_watermark_offsets",
    "pause",
    "resume",
    "assign",
    "unassign",
    "assignment",
    "seek",
    "list_topics",
    "close",
    "produce",
    "flush",
]
When = Literal["before", "after"]


class Hooked(Protocol):
    """A fake client: it checks itself and runs the hooks around each operation."""

    def _before(self, operation: Operation) -> None: ...

    def _after(self, operation: Operation) -> None: ...


_C = TypeVar("_C", bound=Hooked)
_P = ParamSpec("_P")
_R = TypeVar("_R")


def operation(
    name: Operation,
) -> Callable[[Callable[Concatenate[_C, _P], _R]], Callable[Concatenate[_C, _P], _R]]:
    """Decorate a fake client's method as the operation ``name``."""

    def decorate(method: Callable[Concatenate[_C, _P], _R]) -> Callable[Concatenate[_C, _P], _R]:
        def wrapper(self: _C, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
            self._before(name)
            result = method(self, *args, **kwargs)
            self._after(name)
            return result

        functools.update_wrapper(wrapper, method)
        return wrapper

    return decorate


@dataclass
class Hook:
    operation: Operation
    when: When
    action: Callable[[], object]
    client: object | None  # None: any client
    remaining: int | None  # None: every time


class Hooks:
    """The hooks of one broker. Thread-safe; actions run outside its lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._hooks: list[Hook] = []

    def add(self, hook: Hook) -> Hook:
        with self._lock:
            self._hooks.append(hook)
        return hook

    def remove(self, hook: Hook) -> None:
        with self._lock:
            if hook in self._hooks:
                self._hooks.remove(hook)

    def run(self, when: When, name: Operation, client: object) -> None:
        due: list[Callable[[], object]] = []
        with self._lock:
            for hook in list(self._hooks):
                if hook.when != when or hook.operation != name:
                    continue
                if hook.client is not None and hook.client is not client:
                    continue
                due.append(hook.action)
                if hook.remaining is not None:
                    hook.remaining -= 1
                    if hook.remaining <= 0:
                        self._hooks.remove(hook)
        for action in due:
            action()
