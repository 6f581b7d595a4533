"""The insert thread with fakes at its seams: order, retries, abandonment, fatal errors."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from consumers.batches import Batch
from consumers.insert_worker import Done, InsertWorker
from consumers.inserter import Inserted, Prepared


@dataclass(frozen=True)
class _Message:
    at: int

    def offset(self) -> int:
        return self.at

    def value(self) -> bytes:
        return b"v"

    def key(self) -> None:
        return None

    def headers(self) -> None:
        return None

    def timestamp(self) -> tuple[int, int]:
        return (1, 0)


def _prepared(partition: int, first: int) -> Prepared:
    return Prepared(Batch("t", partition, (_Message(first), _Message(first + 1))))


class Transient(Exception):
    pass


@dataclass
class FakeClickHouse:
    """Announces and inserts; fails the first ``failures`` inserts transiently; blocks each
    insert until ``gate`` is set."""

    failures: int = 0
    fatal: bool = False
    gate: threading.Event = field(default_factory=threading.Event)
    announced: list[str] = field(default_factory=list)
    inserted: list[str] = field(default_factory=list)
    started: threading.Event = field(default_factory=threading.Event)

    def announce(self, batch: Batch) -> None:
        self.announced.append(batch.dedup_token)

    def insert(self, prepared: Prepared) -> Inserted:
        self.started.set()
        self.gate.wait(10)
        if self.fatal:
            raise ValueError("refused")
        if self.failures:
            self.failures -= 1
            raise Transient("down")
        self.inserted.append(prepared.batch.dedup_token)
        return Inserted(len(prepared.batch.records), [])


def _worker(fake: FakeClickHouse, retries: list[float]) -> InsertWorker:
    return InsertWorker(
        fake,
        fake,
        is_transient=lambda exc: isinstance(exc, Transient),
        on_retry=lambda _exc, delay: retries.append(delay),
        retry_initial_s=0.001,
        retry_max_s=0.01,
        max_in_flight=3,
    )


def _wait_done(worker: InsertWorker, count: int) -> list[Done]:
    done: list[Done] = []
    deadline = time.monotonic() + 10
    while len(done) < count and time.monotonic() < deadline:
        done.extend(worker.completed())
        time.sleep(0.001)
    return done


def test_batches_land_in_submission_order_and_room_is_bounded() -> None:
    fake = FakeClickHouse()
    worker = _worker(fake, [])
    for partition, first in [(0, 0), (1, 0), (0, 2)]:
        worker.submit(_prepared(partition, first))
    assert not worker.has_room()
    fake.gate.set()
    done = _wait_done(worker, 3)
    worker.stop()
    assert [d.prepared.batch.dedup_token for d in done] == ["t-0-0-1", "t-1-0-1", "t-0-2-3"]
    assert fake.inserted == fake.announced == ["t-0-0-1", "t-1-0-1", "t-0-2-3"]
    assert all(d.inserted is not None for d in done)
    assert worker.has_room()


def test_transient_failures_are_retried_with_backoff() -> None:
    fake = FakeClickHouse(failures=3)
    fake.gate.set()
    retries: list[float] = []
    worker = _worker(fake, retries)
    worker.submit(_prepared(0, 0))
    done = _wait_done(worker, 1)
    worker.stop()
    assert done[0].inserted is not None
    assert len(retries) == 3
    assert fake.inserted == ["t-0-0-1"]


def test_a_fatal_error_is_handed_back() -> None:
    fake = FakeClickHouse(fatal=True)
    fake.gate.set()
    worker = _worker(fake, [])
    worker.submit(_prepared(0, 0))
    done = _wait_done(worker, 1)
    worker.stop()
    assert isinstance(done[0].error, ValueError)


def test_revocation_lets_the_started_insert_land_and_abandons_the_rest() -> None:
    fake = FakeClickHouse()
    worker = _worker(fake, [])
    worker.submit(_prepared(0, 0))
    worker.submit(_prepared(0, 2))
    assert fake.started.wait(10)
    worker.revoke([0], timeout_s=0)  # marked; the first insert is still running
    fake.gate.set()
    worker.revoke([0])  # returns once nothing of partition 0 is in flight
    done = worker.completed()
    worker.stop()
    assert [d.inserted is not None for d in done] == [True, False]
    assert fake.inserted == ["t-0-0-1"]


def test_stop_abandons_what_has_not_started() -> None:
    fake = FakeClickHouse()
    worker = _worker(fake, [])
    worker.submit(_prepared(0, 0))
    worker.submit(_prepared(1, 0))
    assert fake.started.wait(10)
    worker.request_stop()  # the first insert is still running
    fake.gate.set()
    worker.stop()
    done = worker.completed()
    assert [d.inserted is not None for d in done] == [True, False]
