"""The sink worker built for real from the settings: what ``auditlog sink`` (and the demo,
the sink benchmark and the stack tests) runs, with everything it owns."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

from confluent_kafka import Consumer
from prometheus_client import REGISTRY, CollectorRegistry

from auditlog.settings import AuditlogSettings
from auditlog.wiring import (
    audit_producer,
    decoder,
    destination_catalog,
    destination_store,
    kafka_connection,
    s3_policy,
    secret_box,
    utc_now,
)
from runtime.compacted_table import CompactedTable, TableWriter
from runtime.health import HealthState
from sinks.destinations.auto_pause import AutoPauser
from sinks.destinations.secrets import SecretBox
from sinks.membership import Membership, MembershipFollower
from sinks.metrics import sink_metrics
from sinks.progress import ProgressStore
from sinks.reader import PartitionReader
from sinks.senders.factory import S3ClientCache, build_sender
from sinks.senders.http import PinnedHttpClient
from sinks.worker import SinkConfig, SinkWorker


def sink_config(settings: AuditlogSettings, *, exit_when_idle_s: float | None) -> SinkConfig:
    return SinkConfig(
        kafka=kafka_connection(settings),
        topic=settings.events_topic,
        group_id=settings.sink_group_id,
        retry_max_s=settings.sink_retry_max_s,
        park_after_s=settings.sink_park_after_s,
        auto_pause_after_s=settings.sink_auto_pause_after_s,
        exit_when_idle_s=exit_when_idle_s,
        shutdown_timeout_s=settings.sink_request_timeout_s + 5,
    )


@contextlib.contextmanager
def sink_worker(
    settings: AuditlogSettings,
    health: HealthState,
    *,
    exit_when_idle_s: float | None,
    registry: CollectorRegistry = REGISTRY,
    secrets: SecretBox | None = None,
) -> Iterator[SinkWorker]:
    """A sink worker and what it owns (closed on exit): the destination catalog, the
    progress store, the HTTP client, the store and producer used to pause a destination.
    ``secrets``: how destination secrets open (default: :func:`secret_box`)."""
    kafka = kafka_connection(settings)
    with contextlib.ExitStack() as owned:
        catalog = destination_catalog(settings)
        owned.callback(catalog.close)
        progress = ProgressStore(
            CompactedTable(kafka, settings.sink_progress_topic, client_id="auditlog-sink"),
            TableWriter(kafka, settings.sink_progress_topic, client_id="auditlog-sink"),
        )
        owned.callback(progress.close)
        http = PinnedHttpClient(settings.sink_allow_local, settings.sink_request_timeout_s)
        owned.callback(http.close)
        s3_clients = S3ClientCache(s3_policy(settings))
        owned.callback(s3_clients.close)
        secrets = secrets or secret_box(settings)
        store = destination_store(settings)
        owned.callback(store.close)
        producer = audit_producer(settings, client_id="auditlog-sink")
        owned.callback(producer.close)
        membership = Membership(grace_ms=int(settings.sink_partner_grace_s * 1000))
        follower = MembershipFollower(
            CompactedTable(kafka, settings.accounts_topic, client_id="auditlog-sink-accounts"),
            membership,
            poll_s=settings.sink_membership_poll_s,
        )
        follower.start()
        owned.callback(follower.stop)

        def make_reader(partition: int, start: int) -> PartitionReader:
            return PartitionReader.connect(
                kafka,
                settings.events_topic,
                partition,
                start,
                client_id="auditlog-sink-reader",
            )

        config = sink_config(settings, exit_when_idle_s=exit_when_idle_s)
        yield SinkWorker(
            config,
            catalog=catalog,
            progress=progress,
            senders=lambda destination: build_sender(
                destination,
                secrets,
                http=http,
                s3_timeout_s=settings.sink_request_timeout_s,
                s3_policy=s3_clients.policy,
                s3_clients=s3_clients,
            ),
            readers=make_reader,
            decoder=decoder(settings),
            metrics=sink_metrics(registry),
            health=health,
            auto_pause=AutoPauser(store, producer.publish, membership.managed_by),
            consumer=Consumer(config.consumer_properties()),
            executor=ThreadPoolExecutor(config.delivery_threads, "auditlog-sink-delivery"),
            clock=time.monotonic,
            wall_clock=utc_now,
            membership=membership,
        )
