"""Secret references read only what the operator allows: the prefix or the list, never the
product's own settings nor the worker's AWS credentials, whatever the policy says; a
careless policy is refused when it is built; the worker's SecretBox refuses before it
looks at its environment."""

from __future__ import annotations

import pytest

from auditlog import wiring
from auditlog.settings import AuditlogSettings
from sinks.destinations.model import SecretValue
from sinks.destinations.references import ReferencePolicy, ReferenceRefused
from sinks.destinations.secrets import SecretBox, SecretError

# What a worker's environment holds besides the destinations' secrets.
WORKER_ENVIRONMENT = {
    "AUDITLOG_SECRETS_KEY": "the-fernet-key",
    "AUDITLOG_CLICKHOUSE_URL": "http://writer:hunter2@clickhouse:8123",
    "AWS_SECRET_ACCESS_KEY": "the-workers-aws-secret",
    "AWS_SESSION_TOKEN": "the-workers-session",
    "HOME": "/root",
    "AUDITLOG_DEST_SECRET_ACME_HEC": "acme-hec-token",
    "ACME_LISTED": "acme-listed-token",
}
EDGE = ReferencePolicy(names=frozenset({"ACME_LISTED"}), reserved=AuditlogSettings.variables())


@pytest.mark.parametrize(
    ("name", "allowed"),
    [
        ("AUDITLOG_DEST_SECRET_ACME_HEC", True),
        ("ACME_LISTED", True),
        ("AUDITLOG_DEST_SECRET_", False),  # the prefix alone names nothing
        ("auditlog_dest_secret_ACME_HEC", False),  # exact match, case included
        ("acme_listed", False),
        ("AUDITLOG_SECRETS_KEY", False),
        ("auditlog_secrets_key", False),
        ("AUDITLOG_CLICKHOUSE_URL", False),
        ("AWS_SECRET_ACCESS_KEY", False),
        ("AWS_SESSION_TOKEN", False),
        ("HOME", False),
    ],
)
def test_which_names_a_reference_may_read(name: str, allowed: bool) -> None:
    if allowed:
        assert EDGE.check(f"env:{name}") == name
    else:
        with pytest.raises(ReferenceRefused, match=f"env:{name} is refused"):
            EDGE.check(f"env:{name}")


def test_the_message_names_the_reference_and_the_rule() -> None:
    with pytest.raises(ReferenceRefused) as refused:
        EDGE.check("env:HOME")
    assert str(refused.value) == (
        "secret reference env:HOME is refused: references may name only environment "
        "variables starting with AUDITLOG_DEST_SECRET_ or listed (ACME_LISTED)"
    )


def test_an_empty_prefix_allows_no_name_by_prefix() -> None:
    listed_only = ReferencePolicy(prefix="", names=frozenset({"ACME_LISTED"}))
    assert listed_only.check("env:ACME_LISTED") == "ACME_LISTED"
    with pytest.raises(ReferenceRefused, match="only environment variables listed"):
        listed_only.check("env:AUDITLOG_DEST_SECRET_ACME_HEC")
    with pytest.raises(ReferenceRefused, match="references are turned off"):
        ReferencePolicy(prefix="").check("env:ANYTHING")


@pytest.mark.parametrize(
    ("prefix", "names", "message"),
    [
        ("AUDITLOG_", frozenset(), "covers AUDITLOG_SECRETS_KEY"),
        ("auditlog_", frozenset(), "covers AUDITLOG_SECRETS_KEY"),
        ("AUDITLOG_S", frozenset(), "covers AUDITLOG_SECRETS_KEY"),
        ("AUDITLOG_CLICKHOUSE_U", frozenset(), "covers AUDITLOG_CLICKHOUSE_URL"),
        ("A", frozenset(), "covers AUDITLOG_SECRETS_KEY"),
        ("AWS", frozenset(), "covers AWS_*"),
        ("AWS_DEST_", frozenset(), "covers AWS_*"),
        ("BAD-PREFIX", frozenset(), "not the start of an environment variable name"),
        ("", frozenset({"AUDITLOG_SECRETS_KEY"}), "AUDITLOG_SECRETS_KEY cannot be allowed"),
        ("", frozenset({"aws_secret_access_key"}), "cannot be allowed: AWS_*"),
        ("", frozenset({"AUDITLOG_CLICKHOUSE_URL"}), "operator's own setting"),
        ("", frozenset({"NOT A NAME"}), "not an environment variable name"),
    ],
)
def test_a_careless_policy_is_refused_when_built(
    prefix: str, names: frozenset[str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        ReferencePolicy(prefix=prefix, names=names, reserved=AuditlogSettings.variables())


def test_the_secrets_key_is_reserved_even_without_the_edges_list() -> None:
    with pytest.raises(ValueError, match="covers AUDITLOG_SECRETS_KEY"):
        ReferencePolicy(prefix="AUDITLOG_")
    assert "AUDITLOG_SECRETS_KEY" in ReferencePolicy(reserved=frozenset()).reserved


def test_the_settings_become_the_policy_with_every_setting_reserved(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AUDITLOG_SINK_SECRET_REF_PREFIX", "ACME_")
    monkeypatch.setenv("AUDITLOG_SINK_SECRET_REF_NAMES", " HOOK_A, HOOK_B ,")
    policy = wiring.reference_policy(AuditlogSettings())
    assert (policy.prefix, policy.names) == ("ACME_", frozenset({"HOOK_A", "HOOK_B"}))
    assert "AUDITLOG_SINK_SECRET_REF_PREFIX" in policy.reserved
    assert "AUDITLOG_SECRETS_KEY" in policy.reserved


@pytest.mark.parametrize(
    "name", ["AUDITLOG_SECRETS_KEY", "AWS_SECRET_ACCESS_KEY", "AUDITLOG_CLICKHOUSE_URL", "HOME"]
)
def test_the_box_refuses_a_reference_before_it_reads_the_environment(name: str) -> None:
    """What a worker does with a destination that reached the store without the command's
    check: the value is never read, so it cannot be sent nor appear in a message."""
    box = SecretBox([], WORKER_ENVIRONMENT, references=EDGE)
    with pytest.raises(SecretError, match=f"secret reference env:{name} is refused") as refused:
        box.open(SecretValue(ref=f"env:{name}"))
    assert WORKER_ENVIRONMENT[name] not in str(refused.value)


def test_the_box_opens_allowed_references() -> None:
    box = SecretBox([], WORKER_ENVIRONMENT, references=EDGE)
    assert box.open(SecretValue(ref="env:AUDITLOG_DEST_SECRET_ACME_HEC")) == b"acme-hec-token"
    assert box.open(SecretValue(ref="env:ACME_LISTED")) == b"acme-listed-token"
