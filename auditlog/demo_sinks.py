"""The streaming part of ``auditlog demo``: two tenants get a destination each (an S3
bucket on the local S3 server, a signed webhook to a receiver inside the demo), a sink
worker runs until it has caught up, and the demo checks that each destination holds
exactly its tenant's events, once.

The webhook receiver verifies every signature as a customer's would (``sinks.signing``).
Local-development mode is on for the demo only (the receiver is on 127.0.0.1, over http).
The S3 destination references the keys by the names ``auditlog stack up`` exports them
under (:data:`deploy.stack.endpoints.S3_ACCESS_KEY_ENV`), looked up in the environment the
demo is given: the local stack's keys, or the process environment with ``--external``.
"""

from __future__ import annotations

import contextlib
import gzip
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from auditlog import sink_wiring, wiring
from auditlog.settings import AuditlogSettings
from deploy.stack.endpoints import S3_ACCESS_KEY_ENV, S3_SECRET_KEY_ENV
from runtime.health import HealthState
from sinks.destinations.model import (
    BatchLimits,
    Destination,
    S3Target,
    SecretValue,
    WebhookTarget,
)
from sinks.destinations.references import DEFAULT_PREFIX, ReferencePolicy
from sinks.destinations.secrets import SecretBox
from sinks.signing import verify

# The demo's own secrets, handed to the worker's SecretBox (never the process environment).
_SIGNING_SECRET = "demo-signing-secret"  # noqa: S105 - a demo value
_BATCH = BatchLimits(max_records=2_000, max_age_s=2.0)
_REF = f"{DEFAULT_PREFIX}DEMO_"


@dataclass
class StreamReport:
    s3_tenant: str = ""
    s3_events: int = 0
    s3_objects: list[str] = field(default_factory=list)
    webhook_tenant: str = ""
    webhook_events: int = 0
    webhook_posts: int = 0
    sink_seconds: float = 0.0


@dataclass
class _Inbox:
    lock: threading.Lock = field(default_factory=threading.Lock)
    event_ids: list[str] = field(default_factory=list)
    posts: int = 0
    refused: list[str] = field(default_factory=list)


@contextlib.contextmanager
def _receiver() -> Iterator[tuple[str, _Inbox]]:
    inbox = _Inbox()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            try:
                verify(body, dict(self.headers.items()), _SIGNING_SECRET.encode())
            except ValueError as exc:
                with inbox.lock:
                    inbox.refused.append(str(exc))
                self.send_response(401)
                self.end_headers()
                return
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            ids = [json.loads(line)["event_id"] for line in body.splitlines() if line]
            with inbox.lock:
                inbox.event_ids.extend(ids)
                inbox.posts += 1
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/audit", inbox
    finally:
        server.shutdown()
        thread.join()
        server.server_close()


def two_biggest_tenants(events: list[dict[str, Any]]) -> tuple[str, str]:
    ranked = Counter(str(e["tenant_id"]) for e in events).most_common(2)
    return ranked[0][0], ranked[1][0]


class DemoStreaming:
    """Destinations are added before the events are published (a destination receives
    events published from its creation on); :meth:`deliver` runs the sink and checks."""

    def __init__(
        self,
        settings: AuditlogSettings,
        bucket: str,
        tenants: tuple[str, str],
        environment: Mapping[str, str],
    ):
        """``environment``: where the S3 keys' references are looked up (it must hold
        ``S3_ACCESS_KEY_ENV`` and ``S3_SECRET_KEY_ENV``)."""
        self._settings = settings.model_copy(update={"sink_allow_local": True})
        self._bucket = bucket
        # Named under the default reference prefix, as an operator's would be.
        self._secrets = SecretBox(
            [],
            {**environment, f"{_REF}SIGNING": _SIGNING_SECRET},
            references=ReferencePolicy(),
        )
        self._s3_key = SecretValue(ref=f"env:{S3_ACCESS_KEY_ENV}")
        self._s3_secret = SecretValue(ref=f"env:{S3_SECRET_KEY_ENV}")
        self.report = StreamReport(s3_tenant=tenants[0], webhook_tenant=tenants[1])
        self._run = uuid.uuid4().hex[:8]

    def _destinations(self, webhook_url: str) -> list[Destination]:
        now = datetime.now(UTC)
        s3 = Destination(
            id=f"demo-s3-{self._run}",
            tenant_id=self.report.s3_tenant,
            name="demo archive",
            target=S3Target(
                bucket=self._bucket,
                endpoint_url=self._settings.s3_endpoint,
                region=self._settings.s3_region,
                access_key_id=self._s3_key,
                secret_access_key=self._s3_secret,
            ),
            batch=_BATCH,
            created_at=now,
            updated_at=now,
        )
        hook = Destination(
            id=f"demo-hook-{self._run}",
            tenant_id=self.report.webhook_tenant,
            name="demo SIEM",
            target=WebhookTarget(
                url=webhook_url, signing_secret=SecretValue(ref=f"env:{_REF}SIGNING")
            ),
            batch=_BATCH,
            created_at=now,
            updated_at=now,
        )
        return [s3, hook]

    @contextlib.contextmanager
    def destinations(self) -> Iterator[DemoStreaming]:
        """Add the two destinations (and start the webhook receiver) for the block."""
        with _receiver() as (url, inbox):
            self._inbox = inbox
            self._added = self._destinations(url)
            store = wiring.destination_store(self._settings)
            try:
                for destination in self._added:
                    store.put(destination)
                yield self
            finally:
                for destination in self._added:
                    store.remove(destination.id)
                store.close()

    def deliver(self, ids_by_tenant: dict[str, set[str]]) -> None:
        """Run a sink worker until it has caught up; raise unless each destination holds
        exactly its tenant's events, once."""
        began = time.monotonic()
        with sink_wiring.sink_worker(
            self._settings,
            HealthState(self._settings.sink_group_id),
            exit_when_idle_s=2.0,
            secrets=self._secrets,
        ) as worker:
            worker.run()
        self.report.sink_seconds = time.monotonic() - began
        s3_ids = self._read_bucket()
        self._check("S3", self.report.s3_tenant, s3_ids, ids_by_tenant)
        with self._inbox.lock:
            hook_ids = list(self._inbox.event_ids)
            self.report.webhook_posts = self._inbox.posts
            refused = list(self._inbox.refused)
        if refused:
            raise RuntimeError(f"the receiver refused {len(refused)} POSTs: {refused[0]}")
        self._check("webhook", self.report.webhook_tenant, hook_ids, ids_by_tenant)
        self.report.s3_events, self.report.webhook_events = len(s3_ids), len(hook_ids)

    def _read_bucket(self) -> list[str]:
        import boto3  # noqa: PLC0415 - boto3 comes with the local extra

        client = boto3.client(
            "s3",
            endpoint_url=self._settings.s3_endpoint,
            region_name=self._settings.s3_region,
            aws_access_key_id=self._secrets.open(self._s3_key).decode(),
            aws_secret_access_key=self._secrets.open(self._s3_secret).decode(),
        )
        prefix = f"auditlog/{self.report.s3_tenant}/{self._added[0].id}/"
        ids: list[str] = []
        for page in client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=prefix
        ):
            for item in page.get("Contents", []):
                body = gzip.decompress(
                    client.get_object(Bucket=self._bucket, Key=item["Key"])["Body"].read()
                )
                ids.extend(json.loads(line)["event_id"] for line in body.splitlines() if line)
                self.report.s3_objects.append(f"s3://{self._bucket}/{item['Key']}")
        return ids

    @staticmethod
    def _check(
        where: str, tenant: str, received: list[str], ids_by_tenant: dict[str, set[str]]
    ) -> None:
        expected = ids_by_tenant.get(tenant, set())
        if Counter(received) != Counter(expected):
            raise RuntimeError(
                f"{where}: {len(received)} events received ({len(set(received))} distinct) "
                f"for {len(expected)} published by {tenant}"
            )
