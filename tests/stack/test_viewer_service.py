"""``auditlog serve`` end to end: events published through the SDK, stored by the writer,
read through the HTTP API as an account's Admin would; every read lands in the account's
own log; paging a range returns each event once while events keep arriving.

One viewer process, one writer thread and topics and a database of this module's own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import pytest

from auditlog import wiring
from auditlog.commands.accounts import change_account
from auditlog.settings import AuditlogSettings
from auditlog.viewer_process import ViewerProcess, running_viewer
from deploy.stack.endpoints import StackEndpoints
from producers.generator import GeneratorConfig, generate
from tests.events import valid_event
from tests.stack.viewer_support import drop, viewer_settings
from tests.waiting import wait_until
from viewer.dev_tokens import mint_development_token

pytestmark = [pytest.mark.stack, pytest.mark.slow]

DEV_SECRET = "dev-secret-of-this-test-module-0123456789"
ACCOUNT = "acme-viewer"
OTHER = "globex-viewer"
STOPPED_BY = {"type": "user", "id": "u-known", "name": "Kim Known", "email": "kim@acme.test"}
RECIPE = {"type": "recipe", "id": "r-onboarding", "name": "Onboard new employees"}


@dataclass
class Service:
    settings: AuditlogSettings
    viewer: ViewerProcess
    stopped_at: datetime

    def token(self, account: str = ACCOUNT, user: str = "u-admin", **kw: Any) -> str:
        config = wiring.identity_config(self.settings)
        roles = kw.pop("roles", ["admin"])
        return mint_development_token(
            config, account_id=account, user_id=user, roles=roles, email=f"{user}@test", **kw
        )

    def get(self, path: str, token: str | None = None) -> tuple[int, Any]:
        return self.viewer.get(path, token or self.token())

    def stored(self, sql: str, **params: Any) -> Any:
        client = wiring.clickhouse_client(self.settings)
        try:
            return client.query(sql, parameters=params).result_rows
        finally:
            client.close()


def _publish(settings: AuditlogSettings, events: list[dict[str, Any]]) -> list[str]:
    with wiring.audit_producer(settings, client_id="test-viewer") as producer:
        return [producer.publish(event) for event in events]


def _activity(tenants: list[str], events: int, seed: int) -> list[dict[str, Any]]:
    """Generated activity of the last hours, re-keyed onto ``tenants``."""
    start = datetime.now(UTC) - timedelta(hours=3)
    generated = generate(
        GeneratorConfig(
            events=events, tenants=len(tenants), seed=seed, start=start, mean_gap_ms=500
        )
    )
    names: dict[str, str] = {}
    out = []
    for event in generated:
        tenant = names.setdefault(str(event["tenant_id"]), tenants[len(names) % len(tenants)])
        out.append({**event, "tenant_id": tenant})
    return out


@pytest.fixture(scope="module")
def service(
    stack_endpoints: StackEndpoints, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Service]:
    settings = viewer_settings(stack_endpoints, "viewer", DEV_SECRET)
    writer, dead_letters = wiring.writer(settings, exit_when_idle_s=None)
    thread = threading.Thread(target=writer.run, name="test-viewer-writer", daemon=True)
    thread.start()
    try:
        assert change_account(settings, ACCOUNT, actor="system:test", audit_log_add_on=True) == 0
        assert change_account(settings, OTHER, actor="system:test", audit_log_add_on=True) == 0
        stopped_at = (datetime.now(UTC) - timedelta(minutes=50)).replace(microsecond=123000)
        known_stop = valid_event(
            tenant_id=ACCOUNT,
            occurred_at=stopped_at.isoformat(),
            action="recipe.stopped",
            actor=STOPPED_BY,
            resource=RECIPE,
        )
        ids = _publish(settings, [*_activity([ACCOUNT, OTHER], 1500, seed=11), known_stop])
        service = Service(settings, None, stopped_at)  # type: ignore[arg-type]
        wait_until(
            lambda: (
                service.stored(
                    f"SELECT uniqExact(event_id) FROM {settings.clickhouse_database}.events "
                    "WHERE event_id IN {ids:Array(UUID)}",
                    ids=ids,
                )[0][0]
                == len(ids)
            ),
            120,
            "the writer stored the published events",
        )
        log = tmp_path_factory.mktemp("viewer") / "viewer.log"
        with running_viewer(settings.environment(), log_file=log) as viewer:
            service.viewer = viewer
            yield service
    finally:
        writer.stop()
        thread.join(60)
        dead_letters.close()
        drop(settings)


def test_the_seeds_question_is_one_filtered_request(service: Service) -> None:
    status, answer = service.get(
        "/api/activity_logs?include_event_types[]=recipe.stopped"
        f"&resource_ids[]={RECIPE['id']}&page[size]=1"
    )
    assert status == 200, answer
    (found,) = answer["data"]
    assert found["event_type"] == "recipe.stopped"
    assert found["resource"]["name"] == RECIPE["name"]
    assert found["user"]["email"] == STOPPED_BY["email"]
    assert found["user"]["id"] == STOPPED_BY["id"]
    assert found["timestamp"] == service.stopped_at.isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
    status, one = service.get(f"/api/activity_logs/{found['id']}")
    assert status == 200
    assert one["data"]["details"]["request"]["ip"] == "203.0.113.7"


def test_who_may_read_and_what_others_see(service: Service) -> None:
    status, answer = service.get("/api/activity_logs?page[size]=1", service.token(roles=["member"]))
    assert status == 403
    assert "Admin role or the activity audit privilege" in answer["error"]["message"]
    _, mine = service.get("/api/activity_logs?page[size]=1")
    event_id = mine["data"][0]["id"]
    status, answer = service.get(f"/api/activity_logs/{event_id}", service.token(OTHER))
    assert status == 404
    status, _ = service.get("/api/activity_logs", "not-a-token")
    assert status == 401
    status, answer = service.get(f"/api/activity_logs?account_id={ACCOUNT}", service.token(OTHER))
    assert status == 403


def test_every_read_is_in_the_accounts_own_log_once(service: Service) -> None:
    reader = f"u-reader-{uuid.uuid4().hex[:6]}"
    token = service.token(user=reader)
    paths = [
        "/api/activity_logs?page[size]=3",
        "/api/activity_logs?include_event_types[]=recipe.stopped",
        "/api/activity_logs/00000000-0000-4000-8000-000000000000",
    ]
    for path in paths:
        status, _ = service.get(path, token)
        assert status in (200, 404)
    marker = "/api/activity_logs?q=marker"
    assert service.get(marker, token)[0] == 200
    database = service.settings.clickhouse_database

    def reads() -> list[tuple[Any, ...]]:
        return [
            tuple(row)
            for row in service.stored(
                f"SELECT details['filters'], details['event_count'] FROM {database}.events "
                "WHERE tenant_id = {t:String} AND action = 'audit_log.queried' "
                "AND actor.id = {u:String} ORDER BY occurred_at",
                t=ACCOUNT,
                u=reader,
            )
        ]

    # The marker is the last read: once its event is stored, every earlier one is (one
    # account's events share a partition, which the writer stores in order).
    wait_until(lambda: any(f == "q=marker" for f, _ in reads()), 60, "the reads' events")
    recorded = reads()
    assert len(recorded) == len(paths) + 1
    assert recorded[0] == ("", "3")  # no filter; paging is not a filter
    assert recorded[1][0] == "include_event_types%5B%5D=recipe.stopped"
    assert recorded[-1] == ("q=marker", "0")
    # ... and the API shows them to the account's Admins.
    status, answer = service.get(
        f"/api/activity_logs?include_event_types[]=audit_log.queried&users_ids[]={quote(reader)}"
    )
    assert status == 200
    assert answer["total"] == len(paths) + 1


def test_paging_a_range_returns_each_event_once_while_events_arrive(service: Service) -> None:
    """While the range is paged, events keep arriving inside it (a producer publishing
    events of the range's past, the writer storing them): every event stored before paging
    began comes exactly once, a new one at most once, and nothing else. The range ends
    before any read of this module (whose audit events land in this account at any time)."""
    settings = service.settings
    database = settings.clickhouse_database
    until = service.stopped_at + timedelta(minutes=1)
    inside = service.stopped_at - timedelta(hours=2)  # amid the generated activity

    def stored_in_range() -> set[str]:
        return {
            str(row[0])
            for row in service.stored(
                f"SELECT event_id FROM {database}.events "
                "WHERE tenant_id = {t:String} AND occurred_at < {until:DateTime64(3)}",
                t=ACCOUNT,
                until=until,
            )
        }

    before = stored_in_range()
    keep_publishing = threading.Event()
    keep_publishing.set()
    published: list[str] = []

    def publisher() -> None:
        step = 0
        while keep_publishing.is_set():
            step += 1
            at = (inside + timedelta(seconds=step)).isoformat()
            published.extend(_publish(settings, [valid_event(tenant_id=ACCOUNT, occurred_at=at)]))

    thread = threading.Thread(target=publisher, daemon=True)
    thread.start()
    seen: list[str] = []
    query = f"/api/activity_logs?page[size]=53&to={quote(until.isoformat())}"
    try:
        # Paging starts once new events are being stored in the range.
        wait_until(lambda: len(stored_in_range() - before) >= 3, 60, "events arriving")
        path = query
        while True:
            status, answer = service.get(path)
            assert status == 200, answer
            seen.extend(record["id"] for record in answer["data"])
            if answer["page"]["after"] is None:
                break
            path = f"{query}&page[after]={quote(answer['page']['after'])}"
    finally:
        keep_publishing.clear()
        thread.join(30)
    assert len(seen) == len(set(seen)), "an event came twice"
    assert before <= set(seen), "an event stored before paging began was missed"
    assert set(seen) - before <= set(published), "an event outside the range came"
    assert len(before) > 53 * 3  # several pages
