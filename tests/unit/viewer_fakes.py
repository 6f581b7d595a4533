"""Fakes at the viewer's seams for its HTTP tests: a reader, a Kafka publisher, and the
app assembled around them with a token verifier and account facts of the test's choice."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from producers.delivery import DeliveryResult
from viewer.app import create_app
from viewer.caller import FactsOf, Verifier
from viewer.export_slots import ExportSlots
from viewer.page import PageServices
from viewer.query.params import ExportQuery, ListQuery
from viewer.query.reader import Page
from viewer.rate_limit import RateLimiter
from viewer.routes import Proofs, ViewerServices
from viewer.security_headers import NO_FRAMING
from viewer.viewing_audit import ViewingAudit

RECORD = {"id": "0190d4b2-0000-7000-8000-000000000001", "event_type": "recipe.stopped"}


@dataclass
class FakeStream:
    chunks: list[bytes]
    media_type: str = "application/x-ndjson"
    count: int = 0
    closed: bool = False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.chunks:
            self.count += chunk.count(b"\n")
            yield chunk

    def close(self) -> None:
        self.closed = True


@dataclass
class FakeReader:
    calls: list[tuple[str, Any]] = field(default_factory=list)
    next_cursor: str | None = None
    failure: Exception | None = None
    stream: FakeStream = field(default_factory=lambda: FakeStream([b'{"a":1}\n', b'{"a":2}\n']))

    def page(self, account_id: str, query: ListQuery) -> Page:
        self.calls.append((account_id, query))
        if self.failure is not None:
            raise self.failure
        return Page(data=[RECORD], total=7, next_cursor=self.next_cursor)

    def event(self, account_id: str, event_id: str) -> dict[str, Any] | None:
        self.calls.append((account_id, event_id))
        return RECORD if event_id == RECORD["id"] else None

    def export(self, account_id: str, query: ExportQuery) -> FakeStream:
        self.calls.append((account_id, query))
        return self.stream


@dataclass
class FakePublisher:
    events: list[Mapping[str, Any]] = field(default_factory=list)
    refuse: bool = False

    def publish(self, event: Mapping[str, Any], on_delivery: Any = None) -> str:
        if self.refuse:
            raise TimeoutError("the producer's queue stayed full for 10 s")
        self.events.append(event)
        if on_delivery is not None:
            on_delivery(DeliveryResult("e", str(event["tenant_id"]), "t", 0, 0, None, 0.0))
        return f"event-{len(self.events)}"


@dataclass
class Viewer:
    client: TestClient
    reader: FakeReader
    publisher: FakePublisher
    registry: CollectorRegistry
    services: ViewerServices

    def get(self, path: str, token: str | None = "admin", **kwargs: Any) -> Any:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return self.client.get(path, headers=headers, **kwargs)


def make_viewer(
    verifier: Verifier,
    facts_of: FactsOf,
    *,
    burst: int = 100,
    exports_per_user: int = 2,
    page: PageServices | None = None,
    frame_ancestors: str = NO_FRAMING,
    proofs: Proofs | None = None,
) -> Viewer:
    reader, publisher, registry = FakeReader(), FakePublisher(), CollectorRegistry()
    services = ViewerServices(
        verifier=verifier,
        facts_of=facts_of,
        reader=reader,
        audit=ViewingAudit(publisher, registry=registry),
        limiter=RateLimiter(per_s=0.001, burst=burst),
        exports=ExportSlots(per_user=exports_per_user, total=exports_per_user * 2),
        sessions=None if page is None else page.sessions,
        proofs=proofs,
    )
    app = create_app(
        services,
        health=lambda: {"status": "ok"},
        registry=registry,
        page=page,
        frame_ancestors=frame_ancestors,
    )
    return Viewer(TestClient(app), reader, publisher, registry, services)
