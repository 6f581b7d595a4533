"""``auditlog doctor``'s checks one by one, each judged from facts as its probe would read
them (the fakes at the seam), and the exit code from their statuses. No service runs here:
the runner and the output are in tests/unit/test_doctor_runner.py, the same checks against
the real broker and engine in tests/stack/test_doctor.py."""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest

from auditlog.doctor.checks_clickhouse import ClickHouseFacts, check_clickhouse
from auditlog.doctor.checks_destinations import check_destinations
from auditlog.doctor.checks_kafka import (
    Cluster,
    PartitionReplicas,
    TopicFacts,
    check_brokers,
    check_topics,
)
from auditlog.doctor.checks_keys import check_keys
from auditlog.doctor.checks_lag import ConsumerGroup, GroupOffsets, PartitionOffsets, check_lag
from auditlog.doctor.checks_settings import check_settings
from auditlog.doctor.model import CheckResult, LagThresholds, Problem, Status, exit_code, result
from auditlog.settings import AuditlogSettings
from consumers.migrations.schema_check import SchemaCheck
from integrity.keystore import KeyStore
from runtime.kafka_connection import KafkaConnection
from runtime.topic_admin import TopicState
from runtime.topic_spec import TopicSpec, compacted_topic_spec
from sinks.destinations.model import Destination, SecretValue, WebhookTarget
from sinks.progress import LaneProgress

KAFKA = KafkaConnection("k1:9092")
#: Every check, in the order the doctor prints them.
CHECKS = [
    "settings",
    "brokers",
    "topics",
    "clickhouse",
    "writer lag",
    "sinks lag",
    "integrity lag",
    "destinations",
    "integrity keys",
]
NOW = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
EVENTS = TopicSpec(
    "audit.events",
    partitions=3,
    replication_factor=None,
    config={"cleanup.policy": "delete", "retention.ms": "604800000", "min.insync.replicas": "2"},
)
CONTROL = compacted_topic_spec(
    "audit.destinations", replication_factor=None, min_insync_replicas=None
)


def settings(tmp_path: Path, **values: object) -> AuditlogSettings:
    return AuditlogSettings(integrity_keys_dir=tmp_path / "keys", **values)  # type: ignore[arg-type]


def live(
    spec: TopicSpec,
    *,
    partitions: int | None = None,
    rf: int = 3,
    configs: dict[str, str] | None = None,
) -> TopicFacts:
    count = spec.partitions if partitions is None else partitions
    state = TopicState(spec.name, count, rf, {**spec.config, **(configs or {})}, frozenset())
    return TopicFacts(state, tuple(PartitionReplicas(p, 1, rf, rf) for p in range(count)))


def problems(check: CheckResult) -> list[tuple[Status, str, str]]:
    return [(p.status, p.what, p.fix) for p in check.problems]


# -- model ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("statuses", "strict", "code"),
    [
        ((), False, 0),
        ((Status.OK,), True, 0),
        ((Status.OK, Status.WARN), False, 0),
        ((Status.OK, Status.WARN), True, 3),
        ((Status.WARN, Status.FAIL), False, 1),
        ((Status.WARN, Status.FAIL), True, 1),
        ((Status.OK, Status.SKIP), False, 0),
    ],
)
def test_exit_code_is_the_worst_status(statuses: Sequence[Status], strict: bool, code: int) -> None:
    results = [
        result(f"c{i}", "s", [Problem(s, "w", "f")] if s else []) for i, s in enumerate(statuses)
    ]
    results += [CheckResult("skipped", "s", skipped=True)] if Status.SKIP in statuses else []
    assert exit_code(results, strict=strict) == code


@pytest.mark.parametrize(
    ("lag", "status"),
    [(0, Status.OK), (9, Status.OK), (10, Status.WARN), (99, Status.WARN), (100, Status.FAIL)],
)
def test_lag_thresholds(lag: int, status: Status) -> None:
    assert LagThresholds(10, 100).status(lag) is status


@pytest.mark.parametrize(("warn", "fail"), [(0, 10), (10, 9)])
def test_lag_thresholds_refuse_nonsense(warn: int, fail: int) -> None:
    with pytest.raises(ValueError, match="lag thresholds"):
        LagThresholds(warn, fail)


# -- settings ------------------------------------------------------------------------------


def test_settings_as_deployed_are_ok(tmp_path: Path) -> None:
    check = check_settings(settings(tmp_path))
    assert check.status is Status.OK
    assert check.details["topics"][0] == "audit.events"


def test_settings_that_make_no_valid_topic_fail(tmp_path: Path) -> None:
    check = check_settings(
        settings(tmp_path, topic_replication_factor=1, topic_min_insync_replicas=2)
    )
    assert check.status is Status.FAIL
    assert "min.insync.replicas 2 exceeds the replication factor 1" in check.problems[0].what


def test_a_malformed_secrets_key_fails_and_development_switches_warn(tmp_path: Path) -> None:
    check = check_settings(
        settings(
            tmp_path, secrets_key="not-a-key", sink_allow_local=True, viewer_dev_secret="d" * 40
        )
    )
    found = problems(check)
    assert [status for status, _what, _fix in found] == [Status.FAIL, Status.WARN, Status.WARN]
    assert found[0][1].startswith("AUDITLOG_SECRETS_KEY")
    assert "`auditlog destinations keygen`" in found[0][2]
    assert "AUDITLOG_SINK_ALLOW_LOCAL" in found[1][1]
    assert "AUDITLOG_VIEWER_DEV_SECRET" in found[2][1]


# -- brokers and topics --------------------------------------------------------------------


def test_brokers_that_answer_are_counted() -> None:
    check = check_brokers(KAFKA, Cluster(("1 k1:9092", "2 k2:9092"), 1, "c-1"), [EVENTS])
    assert check.status is Status.OK
    assert check.summary.startswith("2 brokers answered at k1:9092 (controller 1")
    assert check.details["cluster_id"] == "c-1"


def test_no_broker_answering_fails_with_the_way_to_start_one() -> None:
    check = check_brokers(KAFKA, Cluster(unreachable="no broker answered within 5 s"), [EVENTS])
    assert check.status is Status.FAIL
    assert "AUDITLOG_KAFKA_BOOTSTRAP" in check.problems[0].fix


def test_refused_credentials_fail() -> None:
    check = check_brokers(KAFKA, Cluster(refused="Kafka at k1 refused: SASL; check X"), [])
    assert problems(check) == [
        (
            Status.FAIL,
            "Kafka at k1 refused: SASL; check X",
            "correct the AUDITLOG_KAFKA_* settings named",
        )
    ]


def test_a_replication_factor_above_the_broker_count_fails() -> None:
    spec = TopicSpec("t", 1, replication_factor=3, config={})
    check = check_brokers(KAFKA, Cluster(("1 k1:9092",), 1), [spec])
    assert check.status is Status.FAIL
    assert "replication factor 3, the cluster has 1 broker(s)" in check.problems[0].what


def test_topics_as_specified_are_ok() -> None:
    check = check_topics(
        KAFKA,
        [EVENTS, CONTROL],
        {EVENTS.name: live(EVENTS), CONTROL.name: live(CONTROL)},
        events_topic=EVENTS.name,
    )
    assert check.status is Status.OK, check.problems
    assert check.summary == "2 of 2 topics exist, as specified, every partition led and in sync"


def test_a_missing_topic_fails_with_topics_ensure() -> None:
    check = check_topics(
        KAFKA,
        [EVENTS, CONTROL],
        {EVENTS.name: live(EVENTS), CONTROL.name: TopicFacts(None)},
        events_topic=EVENTS.name,
    )
    assert problems(check) == [
        (
            Status.FAIL,
            "audit.destinations: does not exist",
            "create it with `auditlog topics ensure`",
        )
    ]


def test_structural_drift_fails_and_config_drift_warns() -> None:
    facts = live(
        EVENTS, partitions=2, configs={"retention.ms": "86400000", "min.insync.replicas": "1"}
    )
    control = live(CONTROL, configs={"cleanup.policy": "delete"})
    check = check_topics(
        KAFKA,
        [EVENTS, CONTROL],
        {EVENTS.name: facts, CONTROL.name: control},
        events_topic=EVENTS.name,
    )
    found = {what.split(":")[1].strip(): (status, fix) for status, what, fix in problems(check)}
    assert found["partitions"][0] is Status.FAIL
    assert "AUDITLOG_TOPIC_PARTITIONS=2" in found["partitions"][1]
    assert found["retention.ms"][0] is Status.WARN
    assert found["retention.ms"][1].startswith("kafka-configs.sh --bootstrap-server k1:9092")
    assert found["min.insync.replicas"][0] is Status.FAIL
    assert found["cleanup.policy"][0] is Status.FAIL
    assert "cleanup.policy=compact" in found["cleanup.policy"][1]


def test_partitions_without_leader_or_enough_replicas_in_sync() -> None:
    facts = live(EVENTS)
    assert facts.state is not None
    facts = TopicFacts(
        facts.state,
        (
            PartitionReplicas(0, -1, 3, 0),
            PartitionReplicas(1, 2, 3, 1),
            PartitionReplicas(2, 2, 3, 2),
        ),
    )
    check = check_topics(KAFKA, [EVENTS], {EVENTS.name: facts}, events_topic=EVENTS.name)
    found = problems(check)
    assert [status for status, _w, _f in found] == [Status.FAIL, Status.FAIL, Status.WARN]
    assert "partitions 0 have no leader" in found[0][1]
    assert "partitions 1 have fewer in-sync replicas than min.insync.replicas 2" in found[1][1]
    assert "partitions 2 are under-replicated" in found[2][1]


def test_topics_are_skipped_when_kafka_did_not_answer() -> None:
    assert check_topics(KAFKA, [EVENTS], None, events_topic=EVENTS.name).status is Status.SKIP


# -- ClickHouse ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("facts", "status", "fix"),
    [
        (
            ClickHouseFacts("http://c:8123", unreachable="connection refused"),
            Status.FAIL,
            "AUDITLOG_CLICKHOUSE_URL",
        ),
        (ClickHouseFacts("http://u:***@c:8123", refused=True), Status.FAIL, "user and password"),
        (ClickHouseFacts("http://c:8123", error="Code: 60. boom"), Status.FAIL, "server's log"),
        (
            ClickHouseFacts("http://c:8123", "26.9", SchemaCheck("audit", "missing", 0, 6)),
            Status.FAIL,
            "`auditlog migrate`",
        ),
        (
            ClickHouseFacts("http://c:8123", "26.9", SchemaCheck("audit", "behind", 5, 6)),
            Status.FAIL,
            "`auditlog migrate`",
        ),
        (
            ClickHouseFacts("http://c:8123", "26.9", SchemaCheck("audit", "ahead", 7, 6)),
            Status.FAIL,
            "upgrade this one",
        ),
        (
            ClickHouseFacts("http://c:8123", "26.9", SchemaCheck("audit", "current", 6, 6)),
            Status.OK,
            None,
        ),
    ],
)
def test_clickhouse(facts: ClickHouseFacts, status: Status, fix: str | None) -> None:
    check = check_clickhouse(facts)
    assert check.status is status
    if fix is None:
        assert check.summary.endswith("migration 6 applied, this code knows up to 6")
    else:
        assert fix in check.problems[0].fix


# -- lag -----------------------------------------------------------------------------------

WRITER = ConsumerGroup("writer lag", "clickhouse-writer", "auditlog consume")


def offsets(*rows: tuple[int | None, int, int], members: int | None = 1) -> GroupOffsets:
    return GroupOffsets(
        "clickhouse-writer",
        "audit.events",
        tuple(PartitionOffsets(p, c, s, e) for p, (c, s, e) in enumerate(rows)),
        members,
    )


def test_lag_per_partition_counts_from_the_commit_or_the_oldest_record_kept() -> None:
    group = offsets((90, 0, 100), (None, 20, 50), (5, 30, 40))
    assert [p.lag for p in group.partitions] == [10, 30, 10]
    check = check_lag(WRITER, group, LagThresholds(100, 1000))
    assert check.status is Status.OK
    assert check.summary == (
        "group clickhouse-writer: lag 50 records in 3 partitions (most: partition 1, 30), 1 members"
    )
    assert check.details["partitions"][1] == {
        "partition": 1,
        "committed": None,
        "end": 50,
        "lag": 30,
    }


def test_a_lagging_group_warns_then_fails_and_says_what_to_run() -> None:
    running = check_lag(WRITER, offsets((0, 0, 50)), LagThresholds(10, 100))
    assert running.status is Status.WARN
    assert "more `auditlog consume` processes" in running.problems[0].fix
    stopped = check_lag(WRITER, offsets((0, 0, 500), members=0), LagThresholds(10, 100))
    assert problems(stopped) == [
        (
            Status.FAIL,
            "group clickhouse-writer is 500 records behind (limit 100)",
            "no process of the group is running: start `auditlog consume`",
        )
    ]


def test_a_group_not_in_use_is_ok_until_it_commits() -> None:
    idle = ConsumerGroup("integrity lag", "integrity-log", "auditlog integrity run", in_use=False)
    check = check_lag(idle, offsets((None, 0, 10**7), members=0), LagThresholds())
    assert check.status is Status.OK
    assert check.summary == "group integrity-log: not in use (no offsets, no members)"
    assert (
        check_lag(WRITER, offsets((None, 0, 10**7), members=0), LagThresholds()).status
        is Status.FAIL
    )


# -- destinations --------------------------------------------------------------------------


def destination(state: str = "active", reason: str = "") -> Destination:
    return Destination(
        id="wh-acme",
        tenant_id="acme",
        target=WebhookTarget(
            url="https://siem.acme.io/a",
            signing_secret=SecretValue(ref="env:AUDITLOG_DEST_SECRET_A"),
        ),
        state=state,  # type: ignore[arg-type]
        state_reason=reason,
        created_at=NOW,
        updated_at=NOW,
    )


def lane(partition: int, *, in_sync: bool = True, failures: int = 0) -> LaneProgress:
    return LaneProgress(
        "wh-acme",
        partition,
        done_until=10,
        in_sync=in_sync,
        consecutive_failures=failures,
        last_error_at=NOW if failures else None,
        last_error="connection refused https://u:pw@siem.acme.io" if failures else None,
        lag_records=7 if not in_sync else 0,
    )


@pytest.mark.parametrize(
    ("state", "reason", "lanes", "word", "status", "fix"),
    [
        ("active", "", [lane(0), lane(1)], "ok", Status.OK, None),
        (
            "active",
            "",
            [lane(0, failures=3), lane(1)],
            "failing",
            Status.WARN,
            "destinations test wh-acme",
        ),
        (
            "active",
            "",
            [lane(0, in_sync=False, failures=9), lane(1)],
            "parked",
            Status.FAIL,
            "catch it up",
        ),
        (
            "paused",
            "maintenance",
            [],
            "paused",
            Status.WARN,
            "`auditlog destinations resume wh-acme`",
        ),
        (
            "paused",
            "paused automatically at 2026-11-24: failing",
            [],
            "auto-paused",
            Status.FAIL,
            "`auditlog destinations resume wh-acme`",
        ),
        (
            "pending_verification",
            "",
            [],
            "pending verification",
            Status.WARN,
            "`auditlog destinations verify wh-acme TOKEN`",
        ),
    ],
)
def test_destination_health(
    state: str, reason: str, lanes: list[LaneProgress], word: str, status: Status, fix: str | None
) -> None:
    check = check_destinations([destination(state, reason)], lanes)
    assert check.status is status
    assert check.summary == f"1 destination: 1 {word}"
    if fix is not None:
        assert fix in check.problems[0].fix
        assert "pw" not in check.problems[0].what


def test_a_parked_destination_says_where_it_is_behind_and_why() -> None:
    check = check_destinations([destination()], [lane(1, in_sync=False, failures=9), lane(0)])
    assert check.problems[0].what == (
        "wh-acme (webhook of acme): parked, behind the group on partitions 1 (7 records), "
        "9 failures in a row, last error: connection refused https://u:***@siem.acme.io"
    )


def test_an_unreadable_store_fails_and_no_kafka_skips() -> None:
    assert check_destinations(None, [], unread="topic x does not exist").status is Status.FAIL
    assert check_destinations(None, []).status is Status.SKIP


# -- integrity keys ------------------------------------------------------------------------


def test_keys_not_configured_current_and_none_valid(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    assert check_keys(directory, 0).summary.endswith("the integrity log is not in use")
    now_ms = int(NOW.timestamp() * 1000)
    KeyStore(directory).generate("k-2026", now_ms)
    current = check_keys(directory, now_ms + 1)
    assert current.status is Status.OK
    assert current.details["current"] == ["k-2026"]
    before = check_keys(directory, now_ms - 1)
    assert before.status is Status.FAIL
    assert "`auditlog keys rotate --name NAME`" in before.problems[0].fix


def test_a_private_key_readable_by_others_fails(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    KeyStore(directory).generate("k-2026", 0)
    os.chmod(directory / "k-2026.pem", 0o644)
    check = check_keys(directory, 1)
    assert check.status is Status.FAIL
    assert "chmod 600" in check.problems[0].what
