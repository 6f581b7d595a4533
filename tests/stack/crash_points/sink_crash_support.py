"""The sink worker under crash-point tests: a fake broker for Kafka, real destinations.

A :class:`World` is what outlives a worker process: the fake broker (the events topic, the
``stream-sinks`` group), the progress and destinations topics (:class:`SharedTable`: a
compacted topic in memory), a monotonic clock the test moves, the S3 bucket (MinIO, from
the stack fixture) and the webhook receiver (:class:`tests.unit.http_receiver.Receiver`).

A :class:`SinkRun` is one worker process: a real :class:`~sinks.worker.SinkWorker` on a
thread, built with the world's seams and its own :class:`Process` (its group consumer, its
readers' consumers, its progress writer, its senders). The worker's loop runs one turn when
the test grants it (:meth:`SinkRun.turn`: a hook holds its group consumer's ``consume``),
so the test knows exactly what happened between two turns. Deliveries run on an executor
the test chooses: :class:`InlineExecutor` (on the loop's thread, within the turn that sends)
or :class:`HeldExecutor` (in flight until the test releases them).

A crash (:meth:`Process.crash`) marks every client of the process dead first (as SIGKILL
does, nothing of it runs afterwards: no commit, no callback, no progress write or flush, no
send), then raises :class:`~tests.fakes.crash.SimulatedCrash` where it happens: from a
wrapped sender (:class:`Faults`: before a send, or after the request landed), from the
progress writer (before a matching record is queued), from the broker's commit
(``FakeBroker.fail_next_commit``), or at the start of the next turn (:meth:`SinkRun.kill`:
killed between two turns, e.g. while backing off, paused, or with a send in flight).

Deadlines in this module only bound a hang; no test waits on time to pass.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, ParamSpec, TypeVar

from prometheus_client import CollectorRegistry

from deploy.stack import s3
from deploy.stack.endpoints import StackEndpoints
from runtime.compacted_table import Change
from runtime.health import HealthState
from runtime.kafka_connection import KafkaConnection
from schemas.headers import TENANT as TENANT_HEADER
from schemas.validation import EventValidator
from schemas.wire import Decoder, SingleObjectEncoder
from sinks.destinations.model import (
    BatchLimits,
    Destination,
    S3Target,
    SecretValue,
    WebhookTarget,
)
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.destinations.store import DestinationCatalog
from sinks.metrics import sink_metrics
from sinks.progress import LaneProgress, ProgressStore
from sinks.reader import PartitionReader
from sinks.senders.base import Payload, Receipt, Sender
from sinks.senders.factory import build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.senders.s3_confinement import S3Policy
from sinks.signing import IDEMPOTENCY_HEADER
from sinks.worker import SinkConfig, SinkWorker
from tests.events import valid_event
from tests.fakes.crash import SimulatedCrash
from tests.fakes.kafka_broker import FakeBroker
from tests.fakes.kafka_consumer import FakeConsumer
from tests.unit.http_receiver import Receiver

TOPIC = "audit.events"
GROUP = "stream-sinks"
TENANT = "acme"
HANG_S = 60.0  # bounds a hang, never waited for when all goes well
# Records are stamped from the fake broker's epoch (2026-01-01) on: destinations created
# before it receive them.
CREATED_AT = datetime(2025, 12, 1, tzinfo=UTC)
S3_KEY_ENV = "AUDITLOG_DEST_SECRET_CRASH_S3_KEY"
S3_SECRET_ENV = "AUDITLOG_DEST_SECRET_CRASH_S3_SECRET"
WEBHOOK_SECRET_ENV = "AUDITLOG_DEST_SECRET_CRASH_WEBHOOK"
WHEN = Literal["before", "after"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


# -- a process, and how it dies --------------------------------------------------------


class Process:
    """The clients of one worker process. :meth:`crash` kills them all at once."""

    def __init__(self, broker: FakeBroker, name: str) -> None:
        self.name = name
        self.broker = broker
        self.consumer: FakeConsumer = broker.consumer(GROUP, client_id=name)
        self.readers: list[FakeConsumer] = []
        self.dead = False
        self._lock = threading.Lock()

    def reader_consumer(self) -> FakeConsumer:
        consumer = self.broker.consumer(client_id=f"{self.name}-reader")
        with self._lock:
            self.readers.append(consumer)
        return consumer

    def kill(self) -> None:
        with self._lock:
            if self.dead:
                return
            self.dead = True
            readers = list(self.readers)
        self.broker.kill(self.consumer)
        for reader in readers:
            self.broker.kill(reader)

    def crash(self) -> SimulatedCrash:
        """Kill the process; returns the crash to raise where it stopped."""
        self.kill()
        return SimulatedCrash(f"{self.name} killed")

    def check(self) -> None:
        if self.dead:
            raise SimulatedCrash(f"{self.name} is dead")


# -- the compacted topics ----------------------------------------------------------------


class SharedTable:
    """A compacted topic in memory: every durable write, in order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.log: list[Change] = []

    def latest(self) -> dict[bytes, bytes]:
        with self.lock:
            found: dict[bytes, bytes] = {}
            for key, value in self.log:
                if value is None:
                    found.pop(key, None)
                else:
                    found[key] = value
            return found

    def progress(self) -> list[LaneProgress]:
        return [LaneProgress.from_json(value) for value in self.latest().values()]


class TableReader:
    """A process's reader of a :class:`SharedTable` (``TableSource`` with
    ``read_to_end``)."""

    def __init__(self, table: SharedTable, process: Process) -> None:
        self._table = table
        self._process = process
        self._at = 0

    def _new(self) -> list[Change]:
        self._process.check()
        with self._table.lock:
            found = self._table.log[self._at :]
            self._at = len(self._table.log)
        return found

    def load(self, timeout_s: float = 30.0) -> dict[bytes, bytes]:
        self._at = 0
        found: dict[bytes, bytes] = {}
        for key, value in self._new():
            if value is None:
                found.pop(key, None)
            else:
                found[key] = value
        return found

    def changes(self, timeout_s: float = 0.0) -> list[Change]:
        return self._new()

    def read_to_end(
        self, apply: Callable[[bytes, bytes | None], None], *, timeout_s: float = 30.0
    ) -> None:
        for key, value in self._new():
            apply(key, value)

    def close(self) -> None:
        pass


PutHook = Callable[[bytes, bytes | None], None]


class TableWriterFake:
    """A process's writer of a :class:`SharedTable`: :meth:`put` queues, :meth:`flush`
    makes durable; what is still queued when the process dies is lost. The producer of a
    live process delivers in the background too: :class:`SinkRun` flushes after every turn
    of the loop and when the worker stopped. ``before_put`` may crash the process."""

    def __init__(self, table: SharedTable, process: Process) -> None:
        self._table = table
        self._process = process
        self._lock = threading.Lock()
        self._queued: list[Change] = []
        self.before_put: PutHook | None = None

    def put(self, key: bytes, value: bytes | None) -> None:
        self._process.check()
        if self.before_put is not None:
            self.before_put(key, value)
        with self._lock:
            self._queued.append((key, value))

    def flush(self, timeout_s: float = 30.0) -> None:
        self._process.check()
        with self._lock:
            queued, self._queued = self._queued, []
        with self._table.lock:
            self._table.log.extend(queued)

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)


def announcing(batch_first: int) -> Callable[[bytes | None], bool]:
    """A progress value that announces the batch starting at ``batch_first``."""

    def matches(value: bytes | None) -> bool:
        return value is not None and LaneProgress.from_json(value).announced_first == batch_first

    return matches


# -- deliveries --------------------------------------------------------------------------


class InlineExecutor(Executor):
    """Runs a delivery at once, on the loop's thread: it is finished when the turn that sent
    it ends. A :class:`SimulatedCrash` of the delivery stops the loop there."""

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()
        future.set_result(fn(*args, **kwargs))
        return future


class ThreadedExecutor(Executor):
    """Runs each delivery on a thread of its own, so a send the test holds
    (:meth:`Faults.hold_at`) stays in flight while the loop goes on. :meth:`join` waits for
    them (the worker's own ``shutdown`` does not)."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        future: Future[_T] = Future()

        def run() -> None:
            try:
                future.set_result(fn(*args, **kwargs))
            except BaseException as exc:  # noqa: BLE001 - handed to whoever waits
                future.set_exception(exc)

        thread = threading.Thread(target=run, name="held-delivery")
        self._threads.append(thread)
        thread.start()
        return future

    def join(self) -> None:
        for thread in self._threads:
            thread.join(HANG_S)
            assert not thread.is_alive(), "a delivery did not end"


SendMatch = Callable[[Payload], bool]


@dataclass
class Faults:
    """What happens at the senders' crash points: a matching send crashes the process
    ``before`` it goes out, or ``after`` it landed (no answer seen), once; a held send waits
    for :meth:`release` before it goes out (in flight). ``sends`` counts the sends per
    destination."""

    crashes: list[tuple[SendMatch, WHEN]] = field(default_factory=list)
    holds: list[SendMatch] = field(default_factory=list)
    sends: dict[str, int] = field(default_factory=dict)
    held: int = 0
    released: threading.Event = field(default_factory=threading.Event)
    changed: threading.Condition = field(default_factory=threading.Condition)

    def crash_at(self, match: SendMatch, when: WHEN) -> None:
        self.crashes.append((match, when))

    def hold_at(self, match: SendMatch) -> None:
        self.holds.append(match)

    def release(self) -> None:
        self.released.set()

    def wait_held(self, count: int) -> None:
        with self.changed:
            held = self.changed.wait_for(lambda: self.held >= count, HANG_S)
        assert held, f"{count} sends were not held"

    def on_send(self, payload: Payload) -> WHEN | Literal["hold"] | None:
        with self.changed:
            self.sends[payload.destination_id] = self.sends.get(payload.destination_id, 0) + 1
            for n, (match, when) in enumerate(self.crashes):
                if match(payload):
                    del self.crashes[n]
                    return when
            for n, match in enumerate(self.holds):
                if match(payload):
                    del self.holds[n]
                    self.held += 1
                    self.changed.notify_all()
                    return "hold"
        return None


def send_of(destination_id: str, first_offset: int | None = None) -> SendMatch:
    """A send to ``destination_id`` (of the batch starting at ``first_offset``)."""

    def matches(payload: Payload) -> bool:
        return payload.destination_id == destination_id and first_offset in (
            None,
            payload.first_offset,
        )

    return matches


class CrashingSender:
    """A real sender, with the process's crash points around its sends."""

    def __init__(self, inner: Sender, process: Process, faults: Faults) -> None:
        self._inner = inner
        self._process = process
        self._faults = faults

    def send(self, payload: Payload) -> Receipt:
        self._process.check()
        when = self._faults.on_send(payload)
        if when == "before":
            raise self._process.crash()
        if when == "hold":
            assert self._faults.released.wait(HANG_S), "a held send was never released"
        receipt = self._inner.send(payload)
        if when == "after":
            raise self._process.crash()
        return receipt

    def close(self) -> None:
        self._inner.close()


# -- the world and a worker in it ----------------------------------------------------------


class Clock:
    """Monotonic seconds, moved by the test only."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    broker: FakeBroker
    endpoints: StackEndpoints
    bucket: str
    receiver: Receiver
    http: PinnedHttpClient
    secrets: SecretBox
    progress: SharedTable = field(default_factory=SharedTable)
    destinations: SharedTable = field(default_factory=SharedTable)
    clock: Clock = field(default_factory=Clock)
    faults: Faults = field(default_factory=Faults)
    offsets: dict[str, int] = field(default_factory=dict)  # event id -> its offset
    runs: list[SinkRun] = field(default_factory=list)
    config: SinkConfig = field(
        default_factory=lambda: SinkConfig(
            kafka=KafkaConnection("fake-broker:9092"),
            topic=TOPIC,
            group_id=GROUP,
            retry_base_s=1.0,
            retry_max_s=4.0,
            park_after_s=30.0,
            checkpoint_interval_s=1.0,
            shutdown_timeout_s=5.0,
        )
    )

    def wall_clock(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.clock.now)

    # -- events and destinations ---------------------------------------------------------

    def publish(self, count: int, partition: int = 0) -> list[str]:
        """``count`` events of the tenant appended to ``partition``; their ids."""
        encoder, validator = SingleObjectEncoder(), EventValidator()
        ids = []
        for n in range(count):
            event = valid_event(tenant_id=TENANT, details={"n": str(len(self.offsets) + n)})
            valid = validator.validate(event)
            datum = valid.to_avro()
            record = self.broker.append(
                TOPIC,
                partition,
                TENANT.encode(),
                encoder.encode(datum),
                ((TENANT_HEADER, TENANT.encode()),),
            )
            event_id = str(datum["event_id"])
            self.offsets[event_id] = record.offset
            ids.append(event_id)
        return ids

    def put(self, destination: Destination) -> Destination:
        with self.destinations.lock:
            self.destinations.log.append(
                (destination.id.encode(), destination.model_dump_json().encode())
            )
        return destination

    def change(self, destination: Destination, **changes: Any) -> Destination:
        """``destination`` at its next revision, with ``changes``, stored."""
        return self.put(
            destination.model_copy(update={**changes, "revision": destination.revision + 1})
        )

    def webhook(self, max_records: int, path: str = "/hook") -> Destination:
        return self.put(
            Destination(
                id="wh-crash",
                tenant_id=TENANT,
                target=WebhookTarget(
                    url=self.receiver.url(path),
                    signing_secret=SecretValue(ref=f"env:{WEBHOOK_SECRET_ENV}"),
                ),
                batch=BatchLimits(max_records=max_records, max_age_s=5.0),
                compression="none",
                created_at=CREATED_AT,
                updated_at=CREATED_AT,
            )
        )

    def s3(self, max_records: int) -> Destination:
        return self.put(
            Destination(
                id="s3-crash",
                tenant_id=TENANT,
                target=S3Target(
                    bucket=self.bucket,
                    endpoint_url=self.endpoints.s3_endpoint,
                    access_key_id=SecretValue(ref=f"env:{S3_KEY_ENV}"),
                    secret_access_key=SecretValue(ref=f"env:{S3_SECRET_ENV}"),
                ),
                batch=BatchLimits(max_records=max_records, max_age_s=5.0),
                created_at=CREATED_AT,
                updated_at=CREATED_AT,
            )
        )

    def committed(self, partition: int = 0) -> int | None:
        return self.broker.committed_offset(GROUP, TOPIC, partition)

    # -- what the destinations hold ---------------------------------------------------------

    def s3_objects(self) -> dict[str, bytes]:
        """Every object of the bucket: its key and its bytes as stored."""
        client = s3.client(self.endpoints.s3_endpoint, self.endpoints.s3_keys)
        found = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket):
            for item in page.get("Contents", []):
                found[item["Key"]] = client.get_object(Bucket=self.bucket, Key=item["Key"])[
                    "Body"
                ].read()
        return found

    def s3_ranges(self) -> dict[tuple[int, int], str]:
        """Each object's range of offsets (first, last) -> its key."""
        return {
            self.range_of(_event_ids(gzip.decompress(body))): key
            for key, body in self.s3_objects().items()
        }

    def s3_event_ids(self) -> list[str]:
        """The events of every object, object after object."""
        return [i for body in self.s3_objects().values() for i in _event_ids(gzip.decompress(body))]

    def webhook_batches(self, since: int = 0) -> list[Delivered]:
        """The webhook requests received (from the ``since``-th on), in order."""
        return [
            Delivered(r.headers[IDEMPOTENCY_HEADER.lower()], r.body, _event_ids(r.body))
            for r in self.receiver.requests[since:]
        ]

    def range_of(self, event_ids: list[str]) -> tuple[int, int]:
        offsets = [self.offsets[i] for i in event_ids]
        return min(offsets), max(offsets)


@dataclass(frozen=True)
class Delivered:
    key: str
    body: bytes
    event_ids: list[str]


def _event_ids(body: bytes) -> list[str]:
    return [json.loads(line)["event_id"] for line in body.splitlines() if line.strip()]


def assert_exactly_once(batches: list[Delivered], expected: list[str]) -> None:
    """Every expected event delivered, under one key only; a key delivered twice carried
    the identical body both times."""
    by_key: dict[str, Delivered] = {}
    for batch in batches:
        first = by_key.setdefault(batch.key, batch)
        assert batch.body == first.body, f"key {batch.key} delivered with another body"
    seen = [i for batch in by_key.values() for i in batch.event_ids]
    doubled = {i for i in seen if seen.count(i) > 1}
    assert not doubled, f"{len(doubled)} events delivered under two keys"
    missing = set(expected) - set(seen)
    assert not missing, f"{len(missing)} events lost"
    assert len(seen) == len(expected)


def assert_s3_exactly_once(world: World, expected: list[str]) -> None:
    """Every expected event in exactly one object of the bucket."""
    seen = world.s3_event_ids()
    doubled = {i for i in seen if seen.count(i) > 1}
    assert not doubled, f"{len(doubled)} events in two objects"
    missing = set(expected) - set(seen)
    assert not missing, f"{len(missing)} events lost"
    assert len(seen) == len(expected)


@contextlib.contextmanager
def world(endpoints: StackEndpoints, monkeypatch: Any, bucket: str) -> Iterator[World]:
    """A world with the events topic (one partition), an S3 bucket of its own and a webhook
    receiver; everything closed at the end."""
    monkeypatch.setenv(S3_KEY_ENV, endpoints.s3_keys.access_key)
    monkeypatch.setenv(S3_SECRET_ENV, endpoints.s3_keys.secret_key)
    monkeypatch.setenv(WEBHOOK_SECRET_ENV, "crash-point-secret")
    s3.ensure_bucket(endpoints.s3_endpoint, endpoints.s3_keys, bucket)
    broker = FakeBroker()
    broker.create_topic(TOPIC, 1)
    secrets = SecretBox.from_setting(
        None,
        {
            S3_KEY_ENV: endpoints.s3_keys.access_key,
            S3_SECRET_ENV: endpoints.s3_keys.secret_key,
            WEBHOOK_SECRET_ENV: "crash-point-secret",
        },
        references=ReferencePolicy(),
    )
    with Receiver() as receiver, contextlib.closing(PinnedHttpClient(True, 10.0)) as http:
        made = World(broker, endpoints, bucket, receiver, http, secrets)
        try:
            yield made
        finally:  # a test that failed half-way leaves workers and held sends behind
            made.faults.release()
            for run in made.runs:
                run.abandon()


class SinkRun:
    """One worker process on a thread, run turn by turn (see the module docstring)."""

    def __init__(self, world: World, name: str, executor: Executor | None = None) -> None:
        self.world = world
        self.process = Process(world.broker, name)
        self.progress_writer = TableWriterFake(world.progress, self.process)
        self.executor = executor or InlineExecutor()
        self._cond = threading.Condition()
        self._granted = 0
        self._entered = 0
        self._free = False
        self._ended = False
        self.failure: BaseException | None = None
        policy = S3Policy(allow_local=True, allow_worker_credentials=False)

        def sender(destination: Destination) -> Sender:
            built = build_sender(
                destination, world.secrets, http=world.http, s3_timeout_s=10.0, s3_policy=policy
            )
            return CrashingSender(built, self.process, world.faults)

        def reader(partition: int, start: int) -> PartitionReader:
            return PartitionReader(self.process.reader_consumer(), TOPIC, partition, start)

        self.worker = SinkWorker(
            world.config,
            catalog=DestinationCatalog(TableReader(world.destinations, self.process)),
            progress=ProgressStore(TableReader(world.progress, self.process), self.progress_writer),
            senders=sender,
            readers=reader,
            decoder=Decoder(),
            metrics=sink_metrics(CollectorRegistry()),
            health=HealthState(GROUP),
            auto_pause=self._auto_pause,
            consumer=self.process.consumer,
            executor=self.executor,
            clock=world.clock,
            wall_clock=world.wall_clock,
            rng=random.Random(13),
        )
        world.broker.hook("before", "consume", self._gate, client=self.process.consumer, times=None)
        self._thread = threading.Thread(target=self._run, name=f"sink-{name}")
        world.runs.append(self)

    def _auto_pause(self, destination: Destination, error: str, since: datetime) -> None:
        self.world.change(destination, state="paused")

    def _run(self) -> None:
        try:
            self.worker.run()
        except BaseException as exc:  # noqa: BLE001 - the test reads it
            self.failure = exc
        finally:
            with self._cond:
                self._ended = True
                self._cond.notify_all()

    def _gate(self) -> None:
        """Before each consume (on the worker's thread): the turn is over (the progress
        producer delivers what was queued); wait for the test's grant."""
        self.progress_writer.flush()
        with self._cond:
            self._entered += 1
            self._cond.notify_all()
            granted = self._cond.wait_for(
                lambda: self._free or self._granted >= self._entered, HANG_S
            )
        assert granted, "the test never granted this turn"
        self.process.check()  # killed while it waited: the process is gone

    def _wait_for_gate(self) -> None:
        with self._cond:
            arrived = self._cond.wait_for(
                lambda: self._ended or self._entered > self._granted, HANG_S
            )
        assert arrived, "the worker did not finish its turn"

    def start(self) -> SinkRun:
        """Start the worker; returns when it waits for its first turn."""
        self._thread.start()
        self._wait_for_gate()
        return self

    def turn(self, count: int = 1) -> None:
        """Let the loop run ``count`` turns (or up to its crash)."""
        for _ in range(count):
            with self._cond:
                if self._ended:
                    return
                self._granted += 1
                self._cond.notify_all()
            self._wait_for_gate()

    def kill(self) -> None:
        """The process dies between two turns: the next turn does not happen."""
        self.process.kill()
        self.turn()
        self.join()

    def stop(self) -> None:
        """Stop the worker as an operator does (it drains, commits, leaves the group)."""
        self.worker.stop()
        with self._cond:
            self._free = True
            self._cond.notify_all()
        self.join()
        if self.failure is not None:
            raise self.failure
        self.progress_writer.close()  # as the edge closes the progress store

    def abandon(self) -> None:
        """End the worker whatever state it is in (the test is over): killed, its gate
        open."""
        self.process.kill()
        with self._cond:
            self._free = True
            self._cond.notify_all()
        if self._thread.ident is not None:
            self.join()

    def join(self) -> None:
        self._thread.join(HANG_S)
        assert not self._thread.is_alive(), "the worker did not end"

    @property
    def crashed(self) -> bool:
        return not self._thread.is_alive() and isinstance(self.failure, SimulatedCrash)

    def crash_on_progress(self, matches: Callable[[bytes | None], bool]) -> None:
        """Crash the process when it is about to queue a progress record ``matches``."""

        def put(_key: bytes, value: bytes | None) -> None:
            if matches(value):
                raise self.process.crash()

        self.progress_writer.before_put = put
