"""The writer's insert thread: announces and inserts prepared batches, one at a time, in
the order they were submitted, while the consumer thread reads the next ones.

Submission order is insert order, so batches of one partition land in offset order and the
consumer thread can commit each as its result comes back. A transient ClickHouse failure is
retried here (capped, full-jitter backoff); meanwhile the queue fills and the consumer
thread pauses its partitions. A batch whose partition was revoked, or every batch once the
writer stops, is abandoned uncommitted unless its insert already started: a started insert
finishes (its result still comes back, and is committed if the partition is still owned).
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from consumers.batches import Batch
from consumers.inserter import Inserted, Prepared

_T = TypeVar("_T")


class Inserts(Protocol):
    """What the worker needs of :class:`consumers.inserter.BatchInserter`."""

    def insert(self, prepared: Prepared) -> Inserted: ...


class Announces(Protocol):
    """What the worker needs of :class:`consumers.progress.ProgressLog`."""

    def announce(self, batch: Batch) -> None: ...


@dataclass(frozen=True)
class Done:
    """The end of one submitted batch: ``inserted`` (None when abandoned), or ``error``
    (not transient: the writer must stop)."""

    prepared: Prepared
    inserted: Inserted | None
    seconds: float
    error: BaseException | None = None


class _Abandoned(Exception):
    pass


class InsertWorker:
    """One thread; ``max_in_flight`` batches submitted and not done at most."""

    def __init__(
        self,
        inserter: Inserts,
        progress: Announces,
        *,
        is_transient: Callable[[BaseException], bool],
        on_retry: Callable[[BaseException, float], None],
        retry_initial_s: float,
        retry_max_s: float,
        max_in_flight: int = 2,
    ) -> None:
        self._inserter = inserter
        self._progress = progress
        self._is_transient = is_transient
        self._on_retry = on_retry
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._max_in_flight = max_in_flight
        self._todo: queue.Queue[Prepared | None] = queue.Queue()
        self._done: queue.Queue[Done] = queue.Queue()
        self._state = threading.Condition()
        self._in_flight: dict[int, int] = {}
        self._revoked: set[int] = set()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="auditlog-writer-insert")
        self._thread.daemon = True
        self._thread.start()

    # -- the consumer thread's side ---------------------------------------------------------

    def has_room(self) -> bool:
        with self._state:
            return sum(self._in_flight.values()) < self._max_in_flight

    def in_flight(self) -> int:
        with self._state:
            return sum(self._in_flight.values())

    def submit(self, prepared: Prepared) -> None:
        partition = prepared.batch.partition
        with self._state:
            self._in_flight[partition] = self._in_flight.get(partition, 0) + 1
        self._todo.put(prepared)

    def completed(self) -> list[Done]:
        """Results that came back since the last call, in submission order."""
        results = []
        while True:
            try:
                results.append(self._done.get_nowait())
            except queue.Empty:
                return results

    def assign(self, partitions: Iterable[int]) -> None:
        with self._state:
            self._revoked.difference_update(partitions)

    def revoke(self, partitions: Iterable[int], *, timeout_s: float = 60.0) -> None:
        """Abandon the revoked partitions' waiting batches and wait (up to ``timeout_s``;
        0: do not wait) until none of theirs is being inserted."""
        gone = set(partitions)
        deadline = time.monotonic() + timeout_s
        with self._state:
            self._revoked |= gone
            self._state.notify_all()
            while any(self._in_flight.get(p, 0) for p in gone):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._state.wait(remaining):
                    break

    def request_stop(self) -> None:
        """From now on, abandon what has not started (and retries); do not wait."""
        self._stopping.set()
        with self._state:
            self._state.notify_all()

    def stop(self) -> None:
        """Abandon what has not started; let a started insert finish; end the thread."""
        self.request_stop()
        self._todo.put(None)
        self._thread.join()

    # -- the insert thread --------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            prepared = self._todo.get()
            if prepared is None:
                return
            self._done.put(self._handle(prepared))
            partition = prepared.batch.partition
            with self._state:
                self._in_flight[partition] -= 1
                self._state.notify_all()

    def _handle(self, prepared: Prepared) -> Done:
        partition = prepared.batch.partition
        started = time.monotonic()
        try:
            self._retrying(lambda: self._progress.announce(prepared.batch), partition)
            started = time.monotonic()
            inserted = self._retrying(lambda: self._inserter.insert(prepared), partition)
        except _Abandoned:
            return Done(prepared, None, 0.0)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            return Done(prepared, None, 0.0, exc)
        return Done(prepared, inserted, time.monotonic() - started)

    def _abandoned(self, partition: int) -> bool:
        with self._state:
            return self._stopping.is_set() or partition in self._revoked

    def _retrying(self, action: Callable[[], _T], partition: int) -> _T:
        attempt = 0
        while True:
            if self._abandoned(partition):
                raise _Abandoned
            try:
                return action()
            except Exception as exc:
                if not self._is_transient(exc):
                    raise
                attempt += 1
                delay = random.uniform(  # noqa: S311 - jitter, not cryptography
                    0, min(self._retry_max_s, self._retry_initial_s * 2**attempt)
                )
                self._on_retry(exc, delay)
                deadline = time.monotonic() + delay
                with self._state:
                    while not self._stopping.is_set() and partition not in self._revoked:
                        remaining = deadline - time.monotonic()
                        if remaining <= 0:
                            break
                        self._state.wait(remaining)
