"""The expected topics and the drift comparison: pure logic, no broker."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from auditlog import wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from producers.topic_specs import (
    DEAD_LETTER_MAX_MESSAGE_BYTES,
    EVENTS_MAX_MESSAGE_BYTES,
    topic_specs,
)
from runtime.topic_admin import TopicsError, ensure_topics
from runtime.topic_drift import compare
from runtime.topic_spec import TopicSpec
from tests.unit.http_receiver import closed_port


def _specs(**overrides: object) -> list[TopicSpec]:
    values: dict[str, object] = {
        "events_topic": "audit.events",
        "dead_letter_topic": "audit.events.dlq",
        "partitions": 12,
        "replication_factor": None,
        "min_insync_replicas": None,
        "events_retention_hours": 168,
        "dead_letter_retention_hours": 720,
    }
    values.update(overrides)
    return topic_specs(**values)  # type: ignore[arg-type]


def test_events_topic_configs() -> None:
    events, _ = _specs()
    assert events.name == "audit.events"
    assert events.partitions == 12
    assert events.config == {
        "cleanup.policy": "delete",
        "retention.ms": str(168 * 3_600_000),
        "retention.bytes": "-1",
        "compression.type": "zstd",
        "message.timestamp.type": "CreateTime",
        "max.message.bytes": "1048576",
    }


def test_dead_letter_topic_configs() -> None:
    _, dlq = _specs()
    assert dlq.name == "audit.events.dlq"
    assert dlq.partitions == 3
    assert dlq.config["retention.ms"] == "2592000000"  # 30 days
    assert dlq.config["compression.type"] == "zstd"
    assert dlq.config["cleanup.policy"] == "delete"
    assert int(dlq.config["max.message.bytes"]) == DEAD_LETTER_MAX_MESSAGE_BYTES
    assert DEAD_LETTER_MAX_MESSAGE_BYTES > EVENTS_MAX_MESSAGE_BYTES


@pytest.mark.parametrize(("partitions", "dlq_partitions"), [(1, 1), (2, 2), (3, 3), (48, 3)])
def test_dead_letter_partitions_are_capped_at_three(partitions: int, dlq_partitions: int) -> None:
    _, dlq = _specs(partitions=partitions)
    assert dlq.partitions == dlq_partitions


def test_retention_hours_become_milliseconds() -> None:
    events, dlq = _specs(events_retention_hours=1, dead_letter_retention_hours=24)
    assert events.config["retention.ms"] == "3600000"
    assert dlq.config["retention.ms"] == "86400000"


def test_min_insync_replicas_only_when_given() -> None:
    assert all("min.insync.replicas" not in s.config for s in _specs())
    specs = _specs(replication_factor=3, min_insync_replicas=2)
    assert [s.config["min.insync.replicas"] for s in specs] == ["2", "2"]


def test_replication_factor_none_means_cluster_default() -> None:
    events, dlq = _specs()
    assert events.replication_factor is None
    assert events.new_topic().replication_factor == -1
    assert dlq.new_topic().replication_factor == -1
    assert _specs(replication_factor=3)[0].new_topic().replication_factor == 3


def test_new_topic_carries_partitions_and_config() -> None:
    events, _ = _specs()
    new = events.new_topic()
    assert new.topic == "audit.events"
    assert new.num_partitions == 12
    assert new.config == events.config
    assert new.config is not events.config


@pytest.mark.parametrize(
    "overrides",
    [
        {"partitions": 0},
        {"replication_factor": 0},
        {"min_insync_replicas": 0},
        {"replication_factor": 1, "min_insync_replicas": 2},
        {"events_retention_hours": 0},
        {"dead_letter_topic": "audit.events"},
    ],
)
def test_invalid_values_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        _specs(**overrides)


def test_specs_are_hashable_despite_their_config_dict() -> None:
    events, dlq = _specs()
    assert len({events, dlq}) == 2


def test_the_command_line_expects_the_control_topics_compacted_after_the_events() -> None:
    settings = AuditlogSettings(topic_replication_factor=3, topic_min_insync_replicas=2)
    specs = wiring.topic_specs(settings)
    assert [s.name for s in specs] == [
        settings.events_topic,
        settings.dead_letter_topic,
        settings.destinations_topic,
        settings.sink_progress_topic,
        settings.accounts_topic,
    ]
    for control in specs[2:]:
        assert control.partitions == 3
        assert control.replication_factor == 3
        assert control.config == {
            "cleanup.policy": "compact",
            "min.compaction.lag.ms": "0",
            "delete.retention.ms": str(24 * 3_600_000),
            "compression.type": "zstd",
            "min.insync.replicas": "2",
        }


def test_a_topic_named_twice_in_the_settings_is_refused() -> None:
    settings = AuditlogSettings(accounts_topic="audit.destinations")
    with pytest.raises(ValueError, match=r"'audit\.destinations' is named twice"):
        wiring.topic_specs(settings)


# --- compare ------------------------------------------------------------------------------


def _live(spec: TopicSpec, **changes: str | None) -> dict[str, str | None]:
    """A live config listing: the spec's values plus unrelated defaults, then ``changes``."""
    configs: dict[str, str | None] = {"segment.bytes": "1073741824", **spec.config}
    configs.update(changes)
    return configs


def test_matching_topic_has_no_drift() -> None:
    events, _ = _specs(replication_factor=3)
    assert compare(events, 12, 3, _live(events)) == []


def test_config_drift_names_expected_and_found() -> None:
    events, _ = _specs()
    [drift] = compare(events, 12, 1, _live(events, **{"retention.ms": "86400000"}))
    assert (drift.topic, drift.setting, drift.expected, drift.actual) == (
        "audit.events",
        "retention.ms",
        "604800000",
        "86400000",
    )
    assert drift.message == "retention.ms: expected 604800000, found 86400000"


def test_any_partition_count_change_is_drift() -> None:
    events, _ = _specs()
    fewer = compare(events, 6, 1, _live(events))
    more = compare(events, 24, 1, _live(events))
    assert [(d.setting, d.expected, d.actual) for d in fewer] == [("partitions", "12", "6")]
    assert [(d.setting, d.expected, d.actual) for d in more] == [("partitions", "12", "24")]
    assert "order" in more[0].message


def test_replication_factor_compared_only_when_expected() -> None:
    default_rf, _ = _specs()
    assert compare(default_rf, 12, 1, _live(default_rf)) == []
    explicit, _ = _specs(replication_factor=3)
    [drift] = compare(explicit, 12, 1, _live(explicit))
    assert (drift.setting, drift.expected, drift.actual) == ("replication.factor", "3", "1")


def test_unreported_config_is_drift() -> None:
    events, _ = _specs()
    live = _live(events)
    del live["compression.type"]
    [drift] = compare(events, 12, 1, live)
    assert drift.setting == "compression.type"
    assert drift.actual == ""
    assert "does not report" in drift.message


def test_min_insync_replicas_drift_only_when_expected() -> None:
    without, _ = _specs()
    assert compare(without, 12, 1, _live(without, **{"min.insync.replicas": "2"})) == []
    with_isr, _ = _specs(replication_factor=3, min_insync_replicas=2)
    [drift] = compare(with_isr, 12, 3, _live(with_isr, **{"min.insync.replicas": "1"}))
    assert drift.message == "min.insync.replicas: expected 2, found 1"


def test_replication_below_min_insync_replicas_is_drift() -> None:
    """With the cluster's default factor, only the live topic shows the factor is too low."""
    with_isr, _ = _specs(min_insync_replicas=2)
    [drift] = compare(with_isr, 12, 1, _live(with_isr))
    assert (drift.setting, drift.expected, drift.actual) == ("replication.factor", ">= 2", "1")
    assert "acks=all" in drift.message
    assert compare(with_isr, 12, 2, _live(with_isr)) == []


def test_cleanup_policy_order_does_not_matter() -> None:
    spec = TopicSpec("t", 1, None, {"cleanup.policy": "compact,delete"})
    assert compare(spec, 1, 1, {"cleanup.policy": "delete, compact"}) == []
    assert len(compare(spec, 1, 1, {"cleanup.policy": "delete"})) == 1


def test_every_difference_is_reported() -> None:
    events, _ = _specs(replication_factor=3)
    live = _live(events, **{"retention.ms": "1", "compression.type": "producer"})
    drift = compare(events, 3, 1, live)
    assert {d.setting for d in drift} == {
        "partitions",
        "replication.factor",
        "retention.ms",
        "compression.type",
    }


# --- an unreachable broker ----------------------------------------------------------------


class _TimeoutsGiven:
    """The real admin client, recording the timeout of every call that waits on Kafka."""

    def __init__(self, admin: AdminClient) -> None:
        self._admin = admin
        self.timeouts: list[float] = []

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._admin, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            for key in ("timeout", "request_timeout", "operation_timeout"):
                if key in kwargs:
                    self.timeouts.append(kwargs[key])
            return method(*args, **kwargs)

        return call


def test_unreachable_broker_raises_within_the_timeout() -> None:
    """Every wait on the broker is given what is left of the 1 s: the call cannot block
    longer, however slow the machine (nothing here measures the wall clock)."""
    with closed_port() as refusing:
        bootstrap = f"127.0.0.1:{refusing.getsockname()[1]}"
        admin = _TimeoutsGiven(AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}))
        with pytest.raises(TopicsError, match=r"did not answer within 1 s \(listing topics\)"):
            ensure_topics(admin, _specs(), timeout_s=1.0)  # type: ignore[arg-type]
    assert admin.timeouts
    assert all(0 < timeout <= 1.0 for timeout in admin.timeouts)


def test_command_exits_10_with_a_clear_message_when_kafka_does_not_answer(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    with closed_port() as refusing:
        bootstrap = f"127.0.0.1:{refusing.getsockname()[1]}"
        monkeypatch.setenv("AUDITLOG_KAFKA_BOOTSTRAP", bootstrap)
        code = main(["topics", "ensure", "--timeout-s", "1"])

    assert code == 10  # Kafka not answering (auditlog.exit_codes)
    err = capfd.readouterr().err
    assert "no broker answered" in err
    assert bootstrap in err
    assert err.count("\n") == 1, "one line, not librdkafka's log of every retry"
