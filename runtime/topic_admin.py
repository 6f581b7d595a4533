"""Making the topics of a list of specs exist, and reading what is there.

:func:`ensure_topics` creates the missing topics and compares the live ones with their spec
(:mod:`runtime.topic_drift`); it never alters a live topic: a topic that differs is reported
as :class:`~runtime.topic_drift.Drift` for an operator to decide on, because changing
retention, compression or the partition count of a running audit log is a decision with
consequences (replay window, disk, per-tenant ordering), not a side effect of a deploy.
:func:`describe_topics` reads what is there, for ``auditlog topics show``.

Every function here blocks on the broker for at most ``timeout_s`` in all, and raises
:class:`TopicsError` when the broker does not answer in that time or refuses a request.
The caller owns the :class:`~confluent_kafka.admin.AdminClient` and must keep a reference to
it until these functions return (they do, through their parameter): a client that is
garbage-collected fails its pending futures.
"""

from __future__ import annotations

import concurrent.futures
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import (
    AdminClient,
    ClusterMetadata,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    TopicMetadata,
)

from runtime.topic_drift import Drift, compare
from runtime.topic_spec import TopicSpec

# librdkafka errors meaning "nobody answered", as opposed to "the broker said no".
_NO_ANSWER = frozenset({KafkaError._TRANSPORT, KafkaError._TIMED_OUT, KafkaError._ALL_BROKERS_DOWN})

_T = TypeVar("_T")


class TopicsError(RuntimeError):
    """The broker did not answer in time, or refused to list, describe or create a topic."""


@dataclass(frozen=True)
class EnsureReport:
    """What :func:`ensure_topics` found and did.

    ``created``: topics created by this call. ``unchanged``: topics that already existed and
    were left exactly as they were, matching their spec or not (``drift`` lists how they
    differ). ``missing``: topics that do not exist and were not created (``create=False``).
    """

    created: list[str]
    unchanged: list[str]
    drift: list[Drift]
    missing: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        """Every topic exists and matches its spec."""
        return not self.drift and not self.missing

    def drift_of(self, topic: str) -> list[Drift]:
        return [d for d in self.drift if d.topic == topic]


@dataclass(frozen=True)
class TopicState:
    """A live topic as the broker describes it.

    ``configs`` holds the effective value of each described config (None when the broker
    does not report one, e.g. a sensitive value); ``overrides`` names those set on the topic
    itself rather than inherited from the broker or Kafka's defaults.
    """

    name: str
    partitions: int
    replication_factor: int
    configs: dict[str, str | None]
    overrides: frozenset[str]


def ensure_topics(
    admin: AdminClient,
    specs: Sequence[TopicSpec],
    *,
    create: bool = True,
    timeout_s: float = 30.0,
) -> EnsureReport:
    """Create the missing topics of ``specs`` (when ``create``) and check the existing ones.

    A live topic is never altered: differences from its spec come back as ``drift``. A topic
    that another process creates between our listing and our create request is treated as
    existing (checked, not created). Created topics are checked as well: a broker policy may
    change what was asked for, and a cluster-default replication factor below
    ``min.insync.replicas`` shows only then. When this returns, each created topic is visible
    in the cluster metadata with a leader for every partition, so producers can use it at once.

    Blocks for at most about ``timeout_s`` in all. Raises :class:`TopicsError` when the
    broker does not answer in that time or refuses a request (e.g. a creation with a config
    it rejects, or a missing authorisation).
    """
    deadline = _Deadline(timeout_s)
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"topic specs name a topic twice: {names}")
    metadata = _list_topics(admin, deadline)
    existing = [spec for spec in specs if spec.name in metadata.topics]
    absent = [spec for spec in specs if spec.name not in metadata.topics]

    created: list[str] = []
    missing: list[str] = []
    if absent and create:
        raced = _create(admin, absent, deadline)
        created = [spec.name for spec in absent if spec.name not in raced]
        existing += [spec for spec in absent if spec.name in raced]
        if created:
            metadata = _wait_visible(admin, [s for s in absent if s.name in created], deadline)
        if raced:
            metadata = _list_topics(admin, deadline)
    elif absent:
        missing = [spec.name for spec in absent]

    drift: list[Drift] = []
    checked = [spec for spec in specs if spec.name in created] + existing
    if checked:
        configs = _describe_configs(admin, [spec.name for spec in checked], deadline)
        for spec in sorted(checked, key=lambda s: names.index(s.name)):
            state = _state(spec.name, metadata, configs[spec.name])
            if state is None:  # deleted between the listing and now
                raise TopicsError(f"topic {spec.name} disappeared while it was being checked")
            drift += compare(spec, state.partitions, state.replication_factor, state.configs)
    order = {name: i for i, name in enumerate(names)}
    return EnsureReport(
        created=created,
        unchanged=sorted((spec.name for spec in existing), key=order.__getitem__),
        drift=drift,
        missing=missing,
    )


def describe_topics(
    admin: AdminClient, names: Sequence[str], *, timeout_s: float = 30.0
) -> dict[str, TopicState | None]:
    """The live state of each named topic, None for a topic that does not exist.

    Reads only; blocks for at most about ``timeout_s``; raises :class:`TopicsError` when the
    broker does not answer in that time or refuses to describe a topic.
    """
    deadline = _Deadline(timeout_s)
    metadata = _list_topics(admin, deadline)
    present = [name for name in names if name in metadata.topics]
    configs = _describe_configs(admin, present, deadline) if present else {}
    return {
        name: _state(name, metadata, configs[name]) if name in configs else None for name in names
    }


# --- broker calls -------------------------------------------------------------------------


class _Deadline:
    """One time budget shared by the calls of an operation."""

    def __init__(self, timeout_s: float) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s = timeout_s
        self._end = time.monotonic() + timeout_s

    def remaining_s(self) -> float:
        # Never 0: librdkafka reads 0 as "do not wait at all" for some calls.
        return max(self._end - time.monotonic(), 0.001)

    def expired(self) -> bool:
        return time.monotonic() >= self._end

    def error(self, doing: str, cause: object) -> TopicsError:
        if isinstance(cause, KafkaError) and cause.code() not in _NO_ANSWER:
            return TopicsError(f"Kafka refused {doing}: {cause.str()}")
        detail = cause.str() if isinstance(cause, KafkaError) else str(cause) or "no answer"
        return TopicsError(f"Kafka did not answer within {self.timeout_s:g} s ({doing}): {detail}")


def _kafka_error(exc: KafkaException) -> KafkaError | None:
    cause = exc.args[0] if exc.args else None
    return cause if isinstance(cause, KafkaError) else None


def _list_topics(admin: AdminClient, deadline: _Deadline) -> ClusterMetadata:
    # Always the full listing: a metadata request naming a topic may auto-create it on a
    # cluster that allows that, and a check must not create anything.
    try:
        return admin.list_topics(timeout=deadline.remaining_s())
    except KafkaException as exc:
        raise deadline.error("listing topics", _kafka_error(exc) or exc) from exc


def _result(future: concurrent.futures.Future[_T], deadline: _Deadline, doing: str) -> _T:
    """The future's result within the deadline; KafkaException and timeouts as TopicsError."""
    try:
        return future.result(timeout=deadline.remaining_s() + 1.0)
    except concurrent.futures.TimeoutError as exc:
        raise deadline.error(doing, exc) from exc
    except KafkaException as exc:
        raise deadline.error(doing, _kafka_error(exc) or exc) from exc


def _create(admin: AdminClient, specs: Sequence[TopicSpec], deadline: _Deadline) -> set[str]:
    """Create ``specs``; returns the names another creator got to first."""
    timeout = deadline.remaining_s()
    futures = admin.create_topics(
        [spec.new_topic() for spec in specs], operation_timeout=timeout, request_timeout=timeout
    )
    raced: set[str] = set()
    for name, future in futures.items():
        try:
            future.result(timeout=deadline.remaining_s() + 1.0)
        except KafkaException as exc:
            cause = _kafka_error(exc)
            if cause is not None and cause.code() == KafkaError.TOPIC_ALREADY_EXISTS:
                raced.add(name)
                continue
            raise deadline.error(f"creating topic {name}", cause or exc) from exc
        except concurrent.futures.TimeoutError as exc:
            raise deadline.error(f"creating topic {name}", exc) from exc
    return raced


def _wait_visible(
    admin: AdminClient, specs: Sequence[TopicSpec], deadline: _Deadline
) -> ClusterMetadata:
    """Poll the metadata until every topic of ``specs`` shows all its partitions with leaders.

    Creation returns once the controller has the topic; the brokers' metadata follows a
    moment later. Bounded by the deadline; raises TopicsError when it runs out.
    """
    pause_s = 0.02
    while True:
        metadata = _list_topics(admin, deadline)
        pending = [s.name for s in specs if not _ready(metadata.topics.get(s.name), s.partitions)]
        if not pending:
            return metadata
        if deadline.expired():
            raise TopicsError(
                f"topics {', '.join(pending)} were created but did not show all partitions "
                f"with a leader within {deadline.timeout_s:g} s"
            )
        time.sleep(min(pause_s, deadline.remaining_s()))
        pause_s = min(pause_s * 2, 0.5)


def _ready(topic: TopicMetadata | None, partitions: int) -> bool:
    return (
        topic is not None
        and topic.error is None
        and len(topic.partitions) == partitions
        and all(p.error is None and p.leader >= 0 for p in topic.partitions.values())
    )


def _describe_configs(
    admin: AdminClient, names: Sequence[str], deadline: _Deadline
) -> dict[str, dict[str, ConfigEntry]]:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in names]
    futures = admin.describe_configs(resources, request_timeout=deadline.remaining_s())
    found: dict[str, dict[str, ConfigEntry]] = {}
    for resource, future in futures.items():
        entries: Any = _result(future, deadline, f"describing the configs of {resource.name}")
        found[resource.name] = dict(entries)
    return found


def _state(
    name: str, metadata: ClusterMetadata, entries: Mapping[str, ConfigEntry]
) -> TopicState | None:
    topic = metadata.topics.get(name)
    if topic is None:
        return None
    partitions = topic.partitions
    first = partitions.get(0) or (next(iter(partitions.values())) if partitions else None)
    return TopicState(
        name=name,
        partitions=len(partitions),
        replication_factor=len(first.replicas) if first is not None else 0,
        configs={key: entry.value for key, entry in entries.items()},
        overrides=frozenset(
            key
            for key, entry in entries.items()
            if _source(entry) == ConfigSource.DYNAMIC_TOPIC_CONFIG.value
        ),
    )


def _source(entry: ConfigEntry) -> int:
    source: Any = entry.source
    return int(source.value) if isinstance(source, ConfigSource) else int(source)
