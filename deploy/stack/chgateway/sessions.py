"""HTTP sessions (``session_id``): a session's ``SET`` and ``USE`` statements, replayed.

ClickHouse keeps the effect of ``SET`` and ``USE`` across the requests that name the same
``session_id``. The gateway runs every request on a fresh engine connection, so it records
each successful ``SET``/``USE`` statement of a session and the caller replays them, in
order, before the session's next request. Temporary tables do not outlive their request.

A session expires ``session_timeout`` seconds after its last request ends. Requests of one
session are serialized: a request arriving while another of the same session runs is
refused with SESSION_IS_LOCKED, and ``session_check=1`` on an unknown session with
SESSION_NOT_FOUND, as ClickHouse does.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from deploy.stack.chgateway.protocol import (
    SESSION_IS_LOCKED,
    SESSION_NOT_FOUND,
    ClientError,
    gateway_error,
)

MAX_STATEMENTS = 1000


@dataclass
class Session:
    """One session's recorded state statements (only touched while its lock is held)."""

    statements: list[str] = field(default_factory=list)
    expires_at: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, statement: str) -> None:
        """Remember a ``SET``/``USE`` statement that succeeded in this session."""
        if len(self.statements) >= MAX_STATEMENTS:
            raise ClientError(
                f"clickhouse-gateway: session holds {MAX_STATEMENTS} SET/USE statements; "
                "start a new session"
            )
        self.statements.append(statement)


class Sessions:
    """The live sessions of one gateway. Thread-safe."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def enter(self, session_id: str, *, timeout_s: float, check: bool) -> Iterator[Session]:
        """Hold session ``session_id`` (created unless ``check``) for one request.

        Raises :class:`ClientError` if it is unknown and ``check``, or in use by another
        request. On exit the session expires ``timeout_s`` from now.
        """
        with self._lock:
            self._expire()
            session = self._sessions.get(session_id)
            if session is None:
                if check:
                    raise ClientError(
                        gateway_error(
                            SESSION_NOT_FOUND,
                            "SESSION_NOT_FOUND",
                            f"Session {session_id} not found",
                        ),
                        code=SESSION_NOT_FOUND,
                    )
                session = self._sessions[session_id] = Session()
            if not session.lock.acquire(blocking=False):
                raise ClientError(
                    gateway_error(
                        SESSION_IS_LOCKED,
                        "SESSION_IS_LOCKED",
                        f"Session {session_id} is locked by a concurrent client",
                    ),
                    code=SESSION_IS_LOCKED,
                )
        try:
            yield session
        finally:
            session.expires_at = self._clock() + timeout_s
            session.lock.release()

    def __len__(self) -> int:
        with self._lock:
            self._expire()
            return len(self._sessions)

    def _expire(self) -> None:
        now = self._clock()
        for key, session in list(self._sessions.items()):
            if session.expires_at <= now and not session.lock.locked():
                del self._sessions[key]
