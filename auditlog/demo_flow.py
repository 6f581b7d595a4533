"""What ``auditlog demo`` runs: the pipeline as far as it exists, end to end.

1. ensure the events and dead-letter topics, and migrate the ClickHouse database;
2. generate realistic activity and publish it through the producer SDK (validation,
   Avro single-object encoding, key = tenant, routing headers);
3. run the ClickHouse writer until it has caught up (raw Avro blocks, exactly once);
4. query ClickHouse as an analyst would, including the seed's question: who stopped a
   recipe, and when;
5. stream two tenants' events to their destinations (an S3 bucket, a signed webhook) with
   a sink worker, and check each holds exactly its tenant's events;
6. start the viewer and ask it the seed's question as an Admin of one account; the answer
   must be the SQL's, and the read itself must land in that account's log.

Each step returns what it observed; the flow raises if any step loses or invents an event.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from confluent_kafka.admin import AdminClient

from auditlog import wiring
from auditlog.demo_integrity import IntegrityReport, append_and_verify
from auditlog.demo_sinks import DemoStreaming, StreamReport, two_biggest_tenants
from auditlog.demo_viewer import ViewerReport, ask, demo_viewer
from auditlog.settings import AuditlogSettings
from consumers.migrations import apply_pending
from producers.generator import GeneratorConfig, generate
from runtime.topic_admin import ensure_topics

_GAP_MS = 200.0


@dataclass
class DemoReport:
    # A new seed per run: the same seed would publish the same event ids again.
    seed: int = field(default_factory=lambda: int(time.time()))
    topics: dict[str, str] = field(default_factory=dict)
    published: int = 0
    publish_seconds: float = 0.0
    tenants: int = 0
    biggest_tenants: list[tuple[str, int]] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    failed_logins: int = 0
    migrations: list[str] = field(default_factory=list)
    writer_seconds: float = 0.0
    writer_rows: int = 0
    writer_batches: int = 0
    clickhouse_rows: int = 0
    recipe_stopped: str = ""
    # The last recipe stop as the SQL found it: tenant, recipe name, when, by whom.
    last_stop: tuple[str, str, datetime, str] | None = None
    streaming: StreamReport = field(default_factory=StreamReport)
    integrity: IntegrityReport = field(default_factory=IntegrityReport)
    viewer: ViewerReport = field(default_factory=ViewerReport)


def ensure(settings: AuditlogSettings, report: DemoReport) -> None:
    admin = AdminClient({**wiring.kafka_connection(settings).properties(), "log_level": 2})
    result = ensure_topics(admin, wiring.topic_specs(settings))
    for name in result.created:
        report.topics[name] = "created"
    for name in result.unchanged:
        report.topics[name] = "drift" if result.drift_of(name) else "ok"


def generated(events: int, tenants: int, report: DemoReport) -> list[dict[str, Any]]:
    """Generated events whose last one happens about now."""
    # The generated span is about events x gap; a margin keeps the last event in the past.
    start = datetime.now(UTC) - timedelta(milliseconds=1.2 * _GAP_MS * events + 60_000)
    config = GeneratorConfig(
        events=events,
        tenants=tenants,
        seed=report.seed,
        start=start,
        mean_gap_ms=_GAP_MS,
        diurnal=False,
    )
    return list(generate(config))


def publish(
    settings: AuditlogSettings, events: list[dict[str, Any]], report: DemoReport
) -> dict[str, set[str]]:
    """Publish through the SDK; returns the event ids by tenant."""
    ids: dict[str, set[str]] = {}
    began = time.monotonic()
    with wiring.audit_producer(settings, client_id="auditlog-demo") as producer:
        for event in events:
            ids.setdefault(str(event["tenant_id"]), set()).add(producer.publish(event))
    report.published = sum(len(found) for found in ids.values())
    report.publish_seconds = time.monotonic() - began
    return ids


def migrate(settings: AuditlogSettings, report: DemoReport) -> None:
    client = wiring.clickhouse_client(settings)
    try:
        applied = apply_pending(client, database=settings.clickhouse_database)
    finally:
        client.close()
    report.migrations = [m.name for m in applied]


def write(settings: AuditlogSettings, report: DemoReport) -> None:
    """Run the ClickHouse writer until it has caught up with the topic."""
    writer, dead_letters = wiring.writer(settings, exit_when_idle_s=2.0)
    began = time.monotonic()
    try:
        stats = writer.run()
    finally:
        dead_letters.close()
    report.writer_seconds = time.monotonic() - began
    report.writer_rows = stats.rows
    report.writer_batches = stats.batches


def query(settings: AuditlogSettings, ids: set[str], report: DemoReport) -> None:
    """What an analyst sees of this run's events: by tenant and category, failed logins,
    and the seed's question: who stopped a recipe, and when."""
    client = wiring.clickhouse_client(settings)
    # The database name is validated by the settings; only bound values vary.
    source = f"FROM {settings.clickhouse_database}.events WHERE event_id IN {{ids:Array(UUID)}}"
    params = {"ids": sorted(ids)}

    def rows(select: str, rest: str = "") -> list[tuple[Any, ...]]:
        return [
            tuple(r)
            for r in client.query(f"{select} {source} {rest}", parameters=params).result_rows
        ]

    try:
        ((total, distinct),) = rows("SELECT count(), uniqExact(event_id)")
        report.clickhouse_rows = int(total)
        if total != len(ids) or distinct != len(ids):
            raise RuntimeError(
                f"ClickHouse holds {total} rows ({distinct} distinct) "
                f"of {len(ids)} published events"
            )
        tenants = rows("SELECT tenant_id, count() AS n", "GROUP BY tenant_id ORDER BY n DESC")
        report.tenants = len(tenants)
        report.biggest_tenants = [(str(t), int(n)) for t, n in tenants[:3]]
        categories = rows("SELECT category, count() AS n", "GROUP BY category ORDER BY n DESC")
        report.categories = {str(c): int(n) for c, n in categories}
        ((failed,),) = rows("SELECT countIf(action = 'user.login_failed')")
        report.failed_logins = int(failed)
        stopped = rows(
            "SELECT occurred_at, actor.email, actor.type, resource.name, tenant_id",
            "AND action = 'recipe.stopped' ORDER BY occurred_at DESC LIMIT 1",
        )
        if stopped:
            at, email, kind, name, tenant = stopped[0]
            when = at.isoformat(timespec="milliseconds")
            report.recipe_stopped = f"{name!r} in {tenant} at {when} by {email or kind}"
            at_utc = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
            report.last_stop = (str(tenant), str(name or ""), at_utc, str(email or kind))
    finally:
        client.close()


def view(
    settings: AuditlogSettings, report: DemoReport, running: ExitStack, log_file: Path
) -> None:
    """Start the viewer (kept running until ``running`` closes) and ask it the seed's
    question as an Admin of the account whose recipe was stopped last."""
    if report.last_stop is None:
        raise RuntimeError("the generated activity stopped no recipe: nothing to ask the viewer")
    viewer, secret = running.enter_context(demo_viewer(settings, log_file))
    report.viewer = ask(
        settings,
        viewer,
        secret=secret,
        last_stop=report.last_stop,
        store_reads=lambda: write(settings, DemoReport()),
    )


def run(
    settings: AuditlogSettings,
    *,
    events: int,
    tenants: int,
    bucket: str,
    s3_environment: Mapping[str, str],
    running: ExitStack,
    viewer_log: Path,
    keys_dir: Path,
) -> DemoReport:
    """The whole flow; ``s3_environment`` holds the S3 keys of ``bucket``'s server under
    the names ``auditlog stack up`` exports (see :class:`DemoStreaming`). The viewer it
    starts runs until ``running`` closes; its logs go to ``viewer_log``; checkpoints are
    signed with the demo's key in ``keys_dir``."""
    report = DemoReport()
    ensure(settings, report)
    migrate(settings, report)
    batch = generated(events, tenants, report)
    streaming = DemoStreaming(settings, bucket, two_biggest_tenants(batch), s3_environment)
    with streaming.destinations():
        ids = publish(settings, batch, report)
        write(settings, report)
        query(settings, set().union(*ids.values()), report)
        streaming.deliver(ids)
    report.streaming = streaming.report
    if report.last_stop is not None:
        report.integrity = append_and_verify(settings, keys_dir, report.last_stop[0])
    view(settings, report, running, viewer_log)
    return report
