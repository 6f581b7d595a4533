"""The synthetic activity generator: deterministic, catalog-true, realistic in shape."""

from __future__ import annotations

import collections
import itertools
import json
import re
import statistics
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from producers.generator import (
    DEFAULT_START,
    EMITTED_ACTIONS,
    GeneratorConfig,
    generate,
    is_modification,
    paced,
)
from producers.generator.engine import uuid4_string
from schemas.catalog import Catalog, load_catalog, parse_catalog

TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
EVENT_KEYS = [
    "event_id", "tenant_id", "occurred_at", "action", "category", "actor", "resource",
    "workspace", "request", "outcome", "details", "changes", "source",
]  # fmt: skip

Event = dict[str, Any]


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def events() -> list[Event]:
    """20k events over 50 tenants: big enough for every pattern to show up."""
    return list(generate(GeneratorConfig(events=20_000, tenants=50, seed=7)))


def _dump(config: GeneratorConfig) -> str:
    return "\n".join(json.dumps(e, separators=(",", ":")) for e in generate(config))


# ---- determinism and counts ------------------------------------------------------------


def test_same_config_gives_byte_identical_output() -> None:
    config = GeneratorConfig(events=3000, tenants=20, seed=42)
    assert _dump(config) == _dump(config)


def test_different_seed_or_start_gives_different_output() -> None:
    base = _dump(GeneratorConfig(events=500, tenants=20, seed=1))
    assert base != _dump(GeneratorConfig(events=500, tenants=20, seed=2))
    later = DEFAULT_START + timedelta(days=3)
    assert base != _dump(GeneratorConfig(events=500, tenants=20, seed=1, start=later))


def test_a_prefix_does_not_depend_on_how_many_events_are_asked_for() -> None:
    short = list(generate(GeneratorConfig(events=300, tenants=10, seed=3)))
    long = list(itertools.islice(generate(GeneratorConfig(events=5000, tenants=10, seed=3)), 300))
    assert short == long


@pytest.mark.parametrize("count", [0, 1, 17, 4321])
def test_yields_exactly_the_number_of_events_asked_for(count: int) -> None:
    assert sum(1 for _ in generate(GeneratorConfig(events=count, tenants=5))) == count


def test_is_lazy() -> None:
    stream = generate(GeneratorConfig(events=10**12, tenants=1000))
    assert len(list(itertools.islice(stream, 100))) == 100


# ---- shape and catalog ------------------------------------------------------------------


def test_events_have_the_ndjson_input_shape(events: list[Event]) -> None:
    json.dumps(events)  # serialisable
    for event in events[:3000]:
        assert list(event) == EVENT_KEYS
        assert event["tenant_id"].startswith("acct-")
        assert event["actor"]["type"] in {"user", "api_client", "system"}
        assert set(event["actor"]) == {"type", "id", "name", "email"}
        assert set(event["resource"]) == {"type", "id", "name"}
        assert set(event["request"]) == {"ip", "user_agent", "request_id", "session_id"}
        assert event["workspace"]["environment"] in {None, "dev", "test", "prod"}
        assert event["outcome"]["status"] in {"success", "failure"}
        assert isinstance(event["source"], str)
        assert event["source"]
        for entry in event["changes"]:
            assert set(entry) == {"field", "before", "after"}


def test_actions_categories_and_resource_types_come_from_the_catalog(
    events: list[Event], catalog: Catalog
) -> None:
    for event in events:
        activity = catalog.activity(event["action"])
        assert activity is not None, event["action"]
        assert event["category"] == activity.category
        assert event["resource"]["type"] == activity.resource_type


def test_details_use_the_keys_the_catalog_documents(events: list[Event], catalog: Catalog) -> None:
    for event in events:
        activity = catalog.activity(event["action"])
        assert activity is not None
        assert set(event["details"]) <= set(activity.details), event
        assert all(isinstance(value, str) for value in event["details"].values())


def test_the_whole_catalog_can_be_emitted(catalog: Catalog) -> None:
    assert catalog.actions >= EMITTED_ACTIONS
    assert catalog.actions == EMITTED_ACTIONS  # a new catalog action needs a generator for it


def test_common_activities_show_up(events: list[Event]) -> None:
    seen = collections.Counter(event["action"] for event in events)
    assert len(seen) > 80
    for action in (
        "user.login", "user.logout", "user.login_failed", "recipe.started", "recipe.stopped",
        "recipe.updated", "recipe.auto_stopped", "connection.created", "connection.updated",
        "folder.created", "package.exported", "member.invited", "member.role_changed",
        "api_client.updated", "audit_log.viewed", "audit_log.queried",
    ):  # fmt: skip
        assert seen[action] > 0, action
    assert set(seen) <= EMITTED_ACTIONS


def test_a_catalog_without_an_emitted_action_is_refused(catalog: Catalog) -> None:
    data = catalog.model_dump(mode="json")
    data["activities"] = [a for a in data["activities"] if a["action"] != "recipe.stopped"]
    smaller = parse_catalog(data)
    with pytest.raises(ValueError, match=r"recipe\.stopped"):
        generate(GeneratorConfig(events=1, tenants=1), smaller)


# ---- time ---------------------------------------------------------------------------------


def test_timestamps_are_utc_millis_and_never_decrease_per_tenant(events: list[Event]) -> None:
    last: dict[str, datetime] = {}
    for event in events:
        stamp = event["occurred_at"]
        assert TIMESTAMP.match(stamp), stamp
        moment = datetime.fromisoformat(stamp)
        assert moment >= DEFAULT_START
        tenant = event["tenant_id"]
        assert moment >= last.get(tenant, moment)
        last[tenant] = moment


def test_mean_gap_holds_over_a_week_busier_on_weekday_working_hours() -> None:
    week_ms = 7 * 86_400_000
    config = GeneratorConfig(events=20_000, tenants=20, seed=1, mean_gap_ms=week_ms / 20_000)
    stamps = [datetime.fromisoformat(e["occurred_at"]) for e in generate(config)]
    span_ms = (stamps[-1] - config.start) / timedelta(milliseconds=1)
    assert 0.8 < span_ms / week_ms < 1.25
    by_hour = collections.Counter((s.weekday() < 5, 9 <= s.hour < 17) for s in stamps)
    weekday_office = by_hour[(True, True)] / (5 * 8)
    weekend_night = (by_hour[(False, False)]) / (2 * 16)
    assert weekday_office > 3 * weekend_night


@pytest.mark.parametrize("weekday", [0, 2, 6])
def test_without_diurnal_rhythm_a_long_run_spans_events_times_mean_gap(weekday: int) -> None:
    start = DEFAULT_START + timedelta(days=1 + weekday, hours=weekday * 3)  # 2026-11-02: Monday
    config = GeneratorConfig(
        events=20_000, tenants=20, start=start, mean_gap_ms=1000, diurnal=False
    )
    *_, last = generate(config)
    span_ms = (datetime.fromisoformat(last["occurred_at"]) - start) / timedelta(milliseconds=1)
    assert 0.8 < span_ms / (20_000 * 1000) < 1.25


def test_start_is_honoured_and_must_be_timezone_aware() -> None:
    start = datetime(2030, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    first = next(generate(GeneratorConfig(events=1, tenants=1, start=start)))
    assert first["occurred_at"] == "2030-01-02T03:04:05.678Z"
    with pytest.raises(ValueError, match="timezone"):
        GeneratorConfig(events=1, tenants=1, start=datetime(2030, 1, 1))


@pytest.mark.parametrize(
    "kwargs", [{"events": -1}, {"tenants": 0}, {"mean_gap_ms": 0.0}, {"tenant_skew": -1.0}]
)
def test_config_rejects_out_of_range_values(kwargs: dict[str, Any]) -> None:
    values: dict[str, Any] = {"events": 1, "tenants": 1, **kwargs}
    with pytest.raises(ValueError):
        GeneratorConfig(**values)


# ---- realism --------------------------------------------------------------------------------


def test_tenant_sizes_are_skewed(events: list[Event]) -> None:
    sizes = sorted(collections.Counter(e["tenant_id"] for e in events).values(), reverse=True)
    assert len(sizes) >= 40
    assert sizes[0] >= 8 * statistics.median(sizes)
    assert sum(sizes[:5]) > 0.4 * len(events)  # a few big tenants produce most events


def test_users_belong_to_their_tenant_domain(events: list[Event]) -> None:
    domains: dict[str, set[str]] = collections.defaultdict(set)
    for event in events:
        actor = event["actor"]
        if (
            actor["type"] == "user"
            and actor["id"] != "anonymous"
            and event["action"] != "member.invitation_accepted"
        ):
            domains[event["tenant_id"]].add(actor["email"].partition("@")[2])
    for tenant, seen in domains.items():
        assert len(seen) <= 2, (tenant, seen)  # the tenant's domain (+ an invited contractor's)


def _sessions(events: list[Event]) -> dict[str, list[Event]]:
    sessions: dict[str, list[Event]] = collections.defaultdict(list)
    for event in events:
        if event["request"]["session_id"] is not None:
            sessions[event["request"]["session_id"]].append(event)
    return sessions


def test_sessions_run_login_then_actions_then_logout(events: list[Event]) -> None:
    complete = [
        s
        for s in _sessions(events).values()
        if s[0]["action"] == "user.login" and s[-1]["action"] == "user.logout" and len(s) >= 3
    ]
    assert len(complete) > 100
    for session in complete:
        middle = {e["action"] for e in session[1:-1]}
        assert "user.login" not in middle
        assert "user.logout" not in middle
        assert session[0]["occurred_at"] <= session[1]["occurred_at"] <= session[-1]["occurred_at"]


def test_a_session_keeps_one_actor_ip_user_agent_and_tenant(events: list[Event]) -> None:
    for session in _sessions(events).values():
        origins = {
            (e["tenant_id"], e["actor"]["id"], e["request"]["ip"], e["request"]["user_agent"])
            for e in session
        }
        assert len(origins) == 1
        assert session[0]["action"] == "user.login"


def test_admin_activities_are_done_by_a_few_admins(events: list[Event]) -> None:
    admin_actions = {"member.invited", "member.role_changed", "member.removed", "audit_log.viewed"}
    biggest, _ = collections.Counter(e["tenant_id"] for e in events).most_common(1)[0]
    mine = [e for e in events if e["tenant_id"] == biggest]
    admins = {e["actor"]["id"] for e in mine if e["action"] in admin_actions}
    members = {e["actor"]["id"] for e in mine if e["action"] == "user.login"}
    assert admins
    assert admins <= members
    assert len(admins) <= 0.25 * len(members)


def test_failed_logins_are_failures_with_reasons(events: list[Event]) -> None:
    failed = [e for e in events if e["action"] == "user.login_failed"]
    assert len(failed) > 50
    reasons = collections.Counter(e["details"]["reason"] for e in failed)
    assert {"invalid_credentials", "sso_error", "unknown_user"} <= set(reasons)
    for event in failed:
        assert event["outcome"]["status"] == "failure"
        assert event["outcome"]["reason"]
        assert event["details"]["method"] in {"sso", "password"}
        assert event["request"]["session_id"] is None


def test_every_failure_has_a_reason(events: list[Event]) -> None:
    failures = [e for e in events if e["outcome"]["status"] == "failure"]
    assert {e["action"] for e in failures} >= {"user.login_failed", "recipe.start_failed"}
    assert all(e["outcome"]["reason"] for e in failures)
    assert all(
        e["outcome"]["status"] == "failure" for e in events if e["action"].endswith("failed")
    )


def test_failed_login_bursts_come_from_one_ip_with_no_valid_user(events: list[Event]) -> None:
    by_ip = collections.Counter(
        (e["tenant_id"], e["request"]["ip"])
        for e in events
        if e["action"] == "user.login_failed" and e["details"]["reason"] == "unknown_user"
    )
    assert by_ip
    assert max(by_ip.values()) >= 5
    sprayed = [e for e in events if e["actor"]["id"] == "anonymous"]
    assert all(e["action"] == "user.login_failed" for e in sprayed)


def test_platform_and_api_clients_act_too(events: list[Event]) -> None:
    system = [e for e in events if e["actor"]["type"] == "system"]
    clients = [e for e in events if e["actor"]["type"] == "api_client"]
    assert {"recipe.auto_stopped", "connection.disconnected"} <= {e["action"] for e in system}
    assert all(e["request"]["ip"] is None for e in system)
    assert "audit_log.queried" in {e["action"] for e in clients}
    assert all(e["request"]["session_id"] is None for e in clients)


def test_changes_are_present_exactly_for_modifications(events: list[Event]) -> None:
    modifications = 0
    for event in events:
        if is_modification(event["action"]):
            modifications += 1
            assert event["changes"], event
        else:
            assert event["changes"] == [], event
    assert modifications > 1000


def test_is_modification() -> None:
    for action in ("recipe.updated", "folder.renamed", "recipe.moved", "member.role_changed",
                   "account.ownership_transferred", "audit_log.retention_changed"):  # fmt: skip
        assert is_modification(action), action
    for action in ("member.removed", "recipe.started", "user.password_changed", "user.login"):
        assert not is_modification(action), action


def test_event_and_request_ids_are_unique_uuid4s(events: list[Event]) -> None:
    ids = [e["event_id"] for e in events]
    assert len(set(ids)) == len(ids)
    assert all(uuid.UUID(i).version == 4 and str(uuid.UUID(i)) == i for i in ids[:2000])
    request_ids = [e["request"]["request_id"] for e in events]
    assert None not in request_ids
    assert len(set(request_ids)) == len(request_ids)


@pytest.mark.parametrize("bits", [0, 2**128 - 1, 0x0123456789ABCDEF0123456789ABCDEF])
def test_uuid4_string_matches_the_uuid_module(bits: int) -> None:
    assert uuid4_string(bits) == str(uuid.UUID(int=bits, version=4))


# ---- pacing -----------------------------------------------------------------------------------


class FakeClock:
    """A monotonic clock that only moves when slept on (or told to)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.slept.append(seconds)
        self.now += seconds


def test_paced_yields_at_the_requested_rate() -> None:
    clock = FakeClock()
    times = [clock() for _ in paced(range(101), 50.0, clock=clock, sleep=clock.sleep)]
    assert times[0] == pytest.approx(1000.0)
    assert times[-1] - times[0] == pytest.approx(2.0)  # 100 intervals at 50/s
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(g == pytest.approx(0.02) for g in gaps)


def test_paced_does_not_drift_when_the_consumer_is_slow() -> None:
    clock = FakeClock()
    times = []
    for _ in paced(range(10), 10.0, clock=clock, sleep=clock.sleep):
        times.append(clock())
        clock.now += 0.05  # work that takes half a slot
    assert times[-1] - times[0] == pytest.approx(0.9)


def test_paced_skips_a_long_backlog_instead_of_bursting() -> None:
    clock = FakeClock()
    stream: Iterator[int] = paced(range(20), 10.0, clock=clock, sleep=clock.sleep)
    next(stream)
    clock.now += 5.0  # the consumer stalled for 50 slots
    next(stream)
    resumed = clock()
    times = [clock() for _ in stream]
    assert times[0] == pytest.approx(resumed + 0.1)


def test_paced_rejects_a_non_positive_rate() -> None:
    with pytest.raises(ValueError, match="rate"):
        paced([1], 0.0)
