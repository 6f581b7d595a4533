"""The embedded ClickHouse engine (chdb) behind the gateway.

One process owns one data directory (chdb locks it). An anchor connection keeps the engine
up for the gateway's lifetime; every request gets a fresh engine connection of its own, so
session state (``USE``, ``SET``) never leaks from one request to another, and requests on
different connections run in parallel (chdb documents this as safe; the engine releases
the GIL). ``max_concurrent`` bounds the number of engine calls at a time; further requests
wait for a slot.

Every call runs ``setup`` statements (``USE``, ``SET``) on its fresh connection first.
Engine failures raise :class:`EngineError`; a closing engine refuses new calls with a 503
:class:`ClientError`.
"""

from __future__ import annotations

import contextlib
import importlib
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import ParamSpec, Protocol, TypeVar, cast

from deploy.stack.chgateway.protocol import ClientError, EngineError, Stats

_P = ParamSpec("_P")
_T = TypeVar("_T")


class _Result(Protocol):
    def bytes(self) -> bytes: ...
    def rows_read(self) -> int: ...
    def bytes_read(self) -> int: ...
    def rows_written(self) -> int: ...
    def bytes_written(self) -> int: ...
    def elapsed(self) -> float: ...


class _InsertResult(Protocol):
    rows_written: int
    bytes_written: int
    elapsed: float


class _Inserter(Protocol):
    def append(self, data: bytes) -> None: ...
    def finish(self) -> _InsertResult: ...
    def cancel(self) -> None: ...


class _Connection(Protocol):
    def query(
        self, query: str | bytes, format: str = ..., params: Mapping[str, str] | None = ...
    ) -> _Result: ...
    def send_insert(self, query: str, format: str = ...) -> _Inserter: ...
    def close(self) -> None: ...


class EngineUnavailable(RuntimeError):
    """chdb is not installed, or the data directory cannot be opened."""


@dataclass(frozen=True)
class Outcome:
    """What one engine call answered: the result bytes and the query statistics."""

    body: bytes
    stats: Stats


def _load_connect() -> Callable[[str], _Connection]:
    try:
        module = importlib.import_module("chdb")
    except ImportError as ex:
        raise EngineUnavailable(
            "the chdb engine is not installed; install the local extra: pip install -e '.[local]'"
        ) from ex
    return cast(Callable[[str], _Connection], module.connect)


class Engine:
    """The engine at ``data_dir``, opened on construction (raises EngineUnavailable)."""

    def __init__(self, data_dir: Path, *, max_concurrent: int = 16) -> None:
        self._connect = _load_connect()
        self.data_dir = data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._anchor = self._connect(str(self.data_dir))
        except RuntimeError as ex:
            raise EngineUnavailable(
                f"cannot open the chdb engine at {self.data_dir} "
                f"(is another process using it?): {ex}"
            ) from ex
        row = self._anchor.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = row.decode().strip().split("\t")
        self._slots = threading.BoundedSemaphore(max_concurrent)
        self._state = threading.Condition()
        self._in_flight = 0
        self._closing = False

    def query(
        self,
        sql: str | bytes,
        *,
        fmt: str,
        setup: Sequence[str] = (),
        params: Mapping[str, str] | None = None,
    ) -> Outcome:
        """Run one statement (which may carry inline data) with output format ``fmt``
        (a FORMAT clause in ``sql`` wins)."""
        with self._connection(setup) as conn:
            result = _call(conn.query, sql, fmt, params=dict(params or {}))
            return Outcome(
                result.bytes() or b"",
                Stats(
                    read_rows=result.rows_read(),
                    read_bytes=result.bytes_read(),
                    written_rows=result.rows_written(),
                    written_bytes=result.bytes_written(),
                    elapsed_ns=int(result.elapsed() * 1e9),
                ),
            )

    def insert(
        self, statement: str, fmt: str, data: Iterable[bytes], *, setup: Sequence[str] = ()
    ) -> Outcome:
        """Stream ``data`` (bytes in input format ``fmt``) into ``statement``, an INSERT
        without FORMAT clause, appending pieces as they come. If the engine or ``data``
        raises, the insert is cancelled and the error propagates; as in ClickHouse, blocks
        already formed (every ``max_insert_block_size`` rows) may have been written."""
        with self._connection(setup) as conn:
            started = time.perf_counter_ns()
            inserter = _call(conn.send_insert, statement, fmt)
            try:
                for piece in data:
                    _call(inserter.append, piece)
                result = _call(inserter.finish)
            except BaseException:
                with contextlib.suppress(RuntimeError):
                    inserter.cancel()
                raise
            elapsed_ns = time.perf_counter_ns() - started
            rows, size = result.rows_written, result.bytes_written
            return Outcome(b"", Stats(rows, size, rows, size, elapsed_ns))

    @contextlib.contextmanager
    def _connection(self, setup: Sequence[str]) -> Iterator[_Connection]:
        with self._state:
            if self._closing:
                raise ClientError("clickhouse-gateway: shutting down", status=503)
            self._in_flight += 1
        try:
            with self._slots:
                conn = _call(self._connect, str(self.data_dir))
                try:
                    for statement in setup:
                        _call(conn.query, statement, "TabSeparated")
                    yield conn
                finally:
                    conn.close()
        finally:
            with self._state:
                self._in_flight -= 1
                self._state.notify_all()

    def close(self, *, timeout_s: float = 30.0) -> bool:
        """Refuse new calls, wait up to ``timeout_s`` for running ones, close the engine
        (parts are on disk once an insert returns; closing releases the data directory).
        Returns False if calls were still running at the deadline."""
        with self._state:
            self._closing = True
            idle = self._state.wait_for(lambda: self._in_flight == 0, timeout=timeout_s)
        self._anchor.close()
        return idle


def _call(action: Callable[_P, _T], *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """Run an engine call, turning the engine's RuntimeError into EngineError."""
    try:
        return action(*args, **kwargs)
    except RuntimeError as ex:
        raise EngineError(str(ex)) from ex
