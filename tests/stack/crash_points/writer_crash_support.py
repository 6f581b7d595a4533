"""Stopping the ClickHouse writer at one exact step, then letting the next owner finish.

A test publishes events into the fake Kafka broker (:mod:`tests.fakes.kafka_broker`),
starts a writer process (:meth:`CrashHarness.start`: a writer, its group consumer, its
dead-letter producer and its ClickHouse client, all in the test thread, on a clock the
test controls), makes it crash at a seam (:class:`ClickHouseSeam` around the real
ClickHouse client, the fake broker's commit faults and hooks), starts the next owner and
checks the outcome in the real engine: every event stored once, the announced range formed
again, offsets committed up to the end, dead letters once.

The crash (:meth:`CrashHarness.crash`) kills the process in the fake broker first (its
consumer and producer: no commit, no revoke, its queued dead letters lost) and then raises
:class:`~tests.fakes.crash.SimulatedCrash`, which no ``except Exception`` stops.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, cast

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError

from consumers.dead_letter_budget import DeadLetterBudget, DeadLetterLimit
from consumers.dead_letter_publisher import DeadLetterPublisher
from consumers.migrations import apply_pending
from consumers.writer import ClickHouseWriter
from consumers.writer_config import WriterConfig
from producers.generator import GeneratorConfig, generate
from runtime.kafka_connection import KafkaConnection
from schemas import headers as h
from schemas.validation import EventValidator
from schemas.wire import SingleObjectEncoder
from tests.fakes.crash import SimulatedCrash
from tests.fakes.kafka_broker import FakeBroker
from tests.fakes.kafka_consumer import FakeConsumer
from tests.fakes.kafka_log import StoredRecord
from tests.fakes.kafka_producer import FakeProducer
from tests.stack.stored_rows import StoredRows, stop_background_merges, stored_rows

TOPIC = "audit.events"
DEAD_LETTER_TOPIC = "audit.events.dlq"
GROUP = "clickhouse-writer"
PARTITIONS = 2

Kind = Literal["announce", "insert", "announced"]
When = Literal["before", "after"]


class TickingClock:
    """Monotonic seconds that advance by ``step_s`` at every reading: the writer's waits
    (flush interval, backoff, idle exit) pass after a fixed number of its own steps,
    never on wall time, so a run is the same every time."""

    def __init__(self, step_s: float = 0.05) -> None:
        self.step_s = step_s
        self.now = 0.0

    def __call__(self) -> float:
        self.now += self.step_s
        return self.now


@dataclass(frozen=True)
class Call:
    """A call of the writer that ClickHouse completed: ``detail`` is the announced range or
    the insert's deduplication token (``{topic}-{partition}-{first}-{last}``)."""

    kind: Kind | Literal["other"]
    detail: str


@dataclass
class _Fault:
    kind: Kind
    nth: int
    when: When
    action: Callable[[], None]


class ClickHouseSeam:
    """The writer's ClickHouse client: the real one, with the test's faults around the
    writer's three kinds of call (announce, insert, the read of announced ranges)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.calls: list[Call] = []
        self._counts: Counter[str] = Counter()
        self._faults: list[_Fault] = []

    def inject(
        self, kind: Kind, action: Callable[[], None], *, nth: int = 1, when: When = "before"
    ) -> None:
        """Run ``action`` just before (or after: it landed) the ``nth`` call of ``kind``."""
        self._faults.append(_Fault(kind, nth, when, action))

    def fail_transiently(self, kind: Kind, attempts: list[int]) -> None:
        """The calls of ``kind`` numbered ``attempts`` fail as an unreachable server would."""
        for nth in attempts:
            self.inject(kind, _unreachable, nth=nth)

    def tokens(self) -> list[str]:
        return [c.detail for c in self.calls if c.kind == "insert"]

    def announced(self) -> list[str]:
        return [c.detail for c in self.calls if c.kind == "announce"]

    # -- what the writer calls ------------------------------------------------------------

    def command(self, cmd: str, *args: Any, **kwargs: Any) -> Any:
        if "writer_progress" in cmd and cmd.lstrip().upper().startswith("INSERT"):
            p = kwargs["parameters"]
            detail = f"{p['topic']}-{p['partition']}-{p['first']}-{p['last']}"
            return self._call("announce", detail, lambda: self.client.command(cmd, *args, **kwargs))
        return self.client.command(cmd, *args, **kwargs)

    def query(self, query: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if query is not None and "writer_progress" in query:
            return self._call("announced", "", lambda: self.client.query(query, *args, **kwargs))
        return self.client.query(query, *args, **kwargs)

    def raw_insert(self, table: str, *args: Any, **kwargs: Any) -> Any:
        token = str(kwargs.get("settings", {}).get("insert_deduplication_token", ""))
        return self._call("insert", token, lambda: self.client.raw_insert(table, *args, **kwargs))

    def _call(self, kind: Kind, detail: str, run: Callable[[], Any]) -> Any:
        self._counts[kind] += 1
        self._fire(kind, self._counts[kind], "before")
        result = run()
        self.calls.append(Call(kind, detail))
        self._fire(kind, self._counts[kind], "after")
        return result

    def _fire(self, kind: Kind, nth: int, when: When) -> None:
        for fault in self._faults:
            if (fault.kind, fault.nth, fault.when) == (kind, nth, when):
                fault.action()


def _unreachable() -> None:
    raise unreachable()


def unreachable() -> OperationalError:
    """What clickhouse-connect raises when the server cannot be reached (transient)."""
    return OperationalError("injected: Connection refused")


class LongestJitter:
    """The retry jitter at its ceiling: every backoff lasts its full (capped) length."""

    def uniform(self, a: float, b: float) -> float:
        return b


@dataclass
class WriterProcess:
    """One writer process: the writer and what it was given."""

    writer: ClickHouseWriter
    consumer: FakeConsumer
    producer: FakeProducer
    clickhouse: ClickHouseSeam
    clock: TickingClock


@dataclass
class CrashHarness:
    """One test's fake broker (events and dead-letter topics) and ClickHouse database."""

    clickhouse_url: str
    database: str
    broker: FakeBroker = field(default_factory=FakeBroker)
    processes: list[WriterProcess] = field(default_factory=list)

    def client(self) -> Client:
        return clickhouse_connect.get_client(dsn=self.clickhouse_url)

    @property
    def table(self) -> str:
        return f"{self.database}.events"

    # -- Kafka ----------------------------------------------------------------------------

    def publish(self, events: int, *, seed: int, partition: int | None = None) -> set[str]:
        """Events as the producer SDK writes them (keyed and labelled by tenant), delivered
        to the partitions in turn (or all to ``partition``); returns their ids."""
        start = datetime.now(UTC) - timedelta(hours=1)
        config = GeneratorConfig(
            events=events, tenants=12, seed=seed, start=start, mean_gap_ms=5, diurnal=False
        )
        validator, encoder = EventValidator(), SingleObjectEncoder()
        producer = self.broker.producer(client_id="sdk")
        ids = set()
        for n, event in enumerate(generate(config)):
            datum = validator.validate(event).to_avro()
            tenant = str(datum["tenant_id"]).encode()
            value = encoder.encode(datum)
            to = n % PARTITIONS if partition is None else partition  # whatever the tenants
            producer.produce(TOPIC, value, tenant, to, headers=[(h.TENANT, tenant)])
            ids.add(str(datum["event_id"]))
        producer.flush()
        return ids

    def publish_raw(self, value: bytes, *, partition: int, key: bytes = b"acme") -> int:
        """A record as is (poison); returns its offset."""
        return self.broker.append(TOPIC, partition, key, value).offset

    def committed(self) -> dict[int, int | None]:
        return {p: self.broker.committed_offset(GROUP, TOPIC, p) for p in range(PARTITIONS)}

    def ends(self) -> dict[int, int | None]:
        return {p: self.broker.log(TOPIC, p).high for p in range(PARTITIONS)}

    def dead_letters(self) -> list[StoredRecord]:
        return self.broker.records(DEAD_LETTER_TOPIC)

    # -- writers --------------------------------------------------------------------------

    def start(self, **overrides: Any) -> WriterProcess:
        """A writer process of the group (it joins when run)."""
        values: dict[str, Any] = {
            "kafka": KafkaConnection("fake-broker:9092"),
            "topic": TOPIC,
            "group_id": GROUP,
            "table": self.table,
            "progress_table": f"{self.database}.writer_progress",
            "batch_max_records": 8,
            "flush_interval_s": 0.5,
            "retry_initial_s": 0.2,
            "retry_max_s": 1.0,
            "exit_when_idle_s": 3.0,
        }
        values.update(overrides)
        n = len(self.processes) + 1
        consumer = self.broker.consumer(GROUP, client_id=f"writer{n}")
        producer = self.broker.producer(client_id=f"writer{n}-dlq", partitioner="murmur2_random")
        seam = ClickHouseSeam(self.client())
        clock = TickingClock()
        writer = ClickHouseWriter(
            WriterConfig(**values),
            cast(Client, seam),
            dead_letters=DeadLetterPublisher(values["kafka"], DEAD_LETTER_TOPIC, producer=producer),
            budget=DeadLetterBudget(DeadLetterLimit(), TOPIC, DEAD_LETTER_TOPIC),
            clock=clock,
            consumer=consumer,
            rng=LongestJitter(),
        )
        process = WriterProcess(writer, consumer, producer, seam, clock)
        self.processes.append(process)
        return process

    def crash(self, process: WriterProcess) -> SimulatedCrash:
        """Kill ``process`` (its consumer and producer) and return the crash to raise."""
        self.broker.kill(process.producer)
        return self.broker.crash(process.consumer)

    def crash_action(self, process: WriterProcess) -> Callable[[], None]:
        """An action for a seam: ``process`` crashes there."""

        def crash() -> None:
            raise self.crash(process)

        return crash

    # -- ClickHouse -----------------------------------------------------------------------

    def stored(self) -> StoredRows:
        return stored_rows(self.client(), self.table)

    def event_ids(self) -> Counter[str]:
        rows = self.client().query(f"SELECT toString(event_id) FROM {self.table}").result_rows
        return Counter(str(row[0]) for row in rows)

    def assert_each_event_once(self, published: set[str]) -> None:
        """count() == uniqExact(event_id) == published, and each published id once."""
        ids = self.event_ids()
        missing = published - set(ids)
        twice = sorted(event for event, n in ids.items() if n > 1)
        assert not twice, f"{len(twice)} of {len(published)} events stored more than once"
        assert not missing, f"{len(missing)} of {len(published)} events missing"
        assert set(ids) == published, "no foreign event"
        stored = self.stored()
        assert stored == StoredRows(rows=len(published), events=len(published)), stored


def create_harness(clickhouse_url: str) -> CrashHarness:
    harness = CrashHarness(clickhouse_url, f"crash_{uuid.uuid4().hex[:10]}")
    harness.broker.create_topic(TOPIC, PARTITIONS)
    harness.broker.create_topic(DEAD_LETTER_TOPIC, 1)
    client = harness.client()
    apply_pending(client, database=harness.database)
    stop_background_merges(client, harness.table)
    return harness
