"""``auditlog demo``: start the local stack if needed, run the pipeline end to end on the
embedded defaults, print what happened, and stop what it started."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
from typing import Any

from auditlog import demo_flow, demo_viewer
from auditlog.commands.stack import layout_from
from auditlog.settings import AuditlogSettings
from deploy.stack import local_stack
from deploy.stack.endpoints import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from deploy.stack.errors import StackError


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the pipeline end to end on the local stack and print what happened",
    )
    parser.add_argument(
        "--external",
        action="store_true",
        help=(
            "use the AUDITLOG_* endpoints instead of starting the local stack, and the S3 "
            f"keys in {S3_ACCESS_KEY_ENV} and {S3_SECRET_KEY_ENV}"
        ),
    )
    parser.add_argument("--events", type=int, default=20_000, help="how many events to send")
    parser.add_argument("--tenants", type=int, default=40, help="how many tenants")
    parser.add_argument(
        "--serve",
        action="store_true",
        help="keep the viewer (and the stack) running after the report, until Ctrl-C",
    )
    parser.set_defaults(run=_demo)


def _say(msg: str) -> None:
    print(msg, flush=True)


def _demo(args: argparse.Namespace, settings: AuditlogSettings) -> int:
    layout = layout_from(settings)
    started_here = False
    key_names = (S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV)
    if args.external:
        if missing := [name for name in key_names if not os.environ.get(name)]:
            raise StackError(
                f"auditlog demo --external reads the S3 keys from {' and '.join(missing)}: "
                'run it where eval "$(auditlog stack up)" ran, or export them'
            )
        s3_environment = {name: os.environ[name] for name in key_names}
    else:
        existing = local_stack.running_endpoints(layout)
        started_here = existing is None
        endpoints = existing or local_stack.up(layout, on_progress=_say)
        _say(f"local stack in {layout.root}")
        settings = settings.model_copy(
            update={
                "kafka_bootstrap": endpoints.kafka_bootstrap,
                "clickhouse_url": endpoints.clickhouse_url,
                "s3_endpoint": endpoints.s3_endpoint,
            }
        )
        s3_environment = {
            S3_ACCESS_KEY_ENV: endpoints.s3_keys.access_key,
            S3_SECRET_KEY_ENV: endpoints.s3_keys.secret_key,
        }
    try:
        with contextlib.ExitStack() as running:
            report = demo_flow.run(
                settings,
                events=args.events,
                tenants=args.tenants,
                bucket=local_stack.DEFAULT_BUCKET,
                s3_environment=s3_environment,
                running=running,
                viewer_log=layout.root / "viewer.log",
                keys_dir=settings.integrity_keys_dir if args.external else layout.root / "keys",
            )
            _print(report, serving=args.serve)
            if args.serve:
                _say("viewer running; Ctrl-C stops it" + (" and the stack" if started_here else ""))
                with contextlib.suppress(KeyboardInterrupt):
                    signal.pause()
    finally:
        if started_here:
            _say("stopping the stack this demo started: " + ", ".join(local_stack.down(layout)))
    _say("demo ok")
    return 0


def _print(report: demo_flow.DemoReport, *, serving: bool) -> None:
    rate = report.published / report.publish_seconds if report.publish_seconds else 0.0
    _say("topics      " + ", ".join(f"{name} {state}" for name, state in report.topics.items()))
    _say(
        f"produced    {report.published} generated events (seed {report.seed}) "
        f"for {report.tenants} tenants "
        f"in {report.publish_seconds:.1f} s ({rate:,.0f} events/s; validated, Avro, "
        "keyed by tenant)"
    )
    _say("migrations  " + (", ".join(report.migrations) or "up to date"))
    _say(
        f"writer      {report.writer_rows} rows in {report.writer_batches} batches "
        f"({report.writer_seconds:.1f} s, caught up; raw Avro blocks, exactly once)"
    )
    _say(f"clickhouse  {report.clickhouse_rows} rows, one per published event id")
    _say("  biggest tenants " + ", ".join(f"{t} {n}" for t, n in report.biggest_tenants))
    _say("  by category     " + ", ".join(f"{c} {n}" for c, n in report.categories.items()))
    _say(f"  failed logins   {report.failed_logins}")
    if report.recipe_stopped:
        _say(f"  last recipe stopped: {report.recipe_stopped}")
    streaming = report.streaming
    _say(
        f"sink        caught up in {streaming.sink_seconds:.1f} s; each destination holds "
        "exactly its tenant's events, once"
    )
    _say(
        f"  {streaming.s3_tenant}: {streaming.s3_events} events in "
        f"{len(streaming.s3_objects)} S3 objects (NDJSON gzip), e.g. "
        f"{streaming.s3_objects[0] if streaming.s3_objects else '-'}"
    )
    _say(
        f"  {streaming.webhook_tenant}: {streaming.webhook_events} events in "
        f"{streaming.webhook_posts} signed webhook POSTs, every signature verified"
    )
    integrity = report.integrity
    _say(
        f"integrity   {integrity.appended} records appended to their accounts' Merkle logs "
        f"in {integrity.seconds:.1f} s, {integrity.checkpoints} checkpoints signed "
        f"({integrity.key})"
    )
    _say(
        f"  {integrity.account}: {integrity.leaves} leaves verified against its signed "
        "checkpoints and stored events "
        f"(AUDITLOG_INTEGRITY_KEYS_DIR={integrity.keys_dir} auditlog verify --account "
        f"{integrity.account})"
    )
    viewer = report.viewer
    _say(
        f"viewer      {viewer.url} (API: {viewer.url}/openapi.json), as an Admin of "
        f"{viewer.account}"
    )
    _say(f"  GET {demo_viewer.SEED_QUESTION}")
    _say(f"  -> {viewer.answer} (the same as the SQL; {viewer.stops_in_range} stops in range)")
    _say(f"  the read itself is in {viewer.account}'s log: {viewer.read_recorded}")
    _say(f"  development token (1 hour): {viewer.token}")
    _say(f'  curl -H "Authorization: Bearer $TOKEN" "{viewer.url}/api/activity_logs?page[size]=5"')
    if serving:
        _say(f"  open the page (this link signs in once, within 5 minutes): {viewer.sign_in_link}")
        _say(f"  another link: {viewer.another_link}")
    else:
        _say("  (the viewer stops with the demo; `auditlog demo --serve` keeps it running)")
