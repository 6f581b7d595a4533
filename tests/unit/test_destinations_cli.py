"""``auditlog destinations``: bad input is refused (exit 2) with one clear line, before any
broker is asked; and the pure pieces behind the commands."""

from __future__ import annotations

import argparse
import contextlib
import gzip
import io
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet

from auditlog.cli import main
from auditlog.commands import destination_view as view
from auditlog.commands.destination_options import (
    OptionError,
    OptionReader,
    add_options,
    parse_headers,
)
from auditlog.commands.destinations import changed_fields
from auditlog.exit_codes import ExitCode
from schemas.catalog import load_catalog
from sinks.destinations.model import Destination, Filters, S3Target, SecretValue, WebhookTarget
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.replay import parse_since
from sinks.destinations.sample import TEST_PARTITION, sample_payload
from sinks.destinations.secrets import SecretBox, generate_key
from tests.unit.http_receiver import closed_port

PLAINTEXT = "whsec-cli-never-shown-42"
NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def _no_broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Nothing here may reach Kafka: the bootstrap is a port that refuses connections."""
    with closed_port() as refusing:
        monkeypatch.setenv("AUDITLOG_KAFKA_BOOTSTRAP", f"127.0.0.1:{refusing.getsockname()[1]}")
        monkeypatch.setenv("AUDITLOG_SECRETS_KEY", generate_key())
        monkeypatch.setenv("HOOK_SECRET", PLAINTEXT)
        monkeypatch.delenv("AUDITLOG_SINK_ALLOW_LOCAL", raising=False)
        yield


class _HangingUpBroker:
    """A "broker" that hangs up on every connection and counts them: a command that tried
    to reach Kafka is seen, and does not wait for an answer."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)
        self.port: int = self._listener.getsockname()[1]
        self._count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hanging-up-broker")
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                self._hang_up()

    def _hang_up(self) -> None:
        connection, _ = self._listener.accept()
        connection.close()
        self._count += 1

    def connections(self) -> int:
        """Every connection made so far, those still queued included (stops serving)."""
        self.close()
        return self._count

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._thread.join()
        self._listener.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            while True:
                self._hang_up()
        self._listener.close()


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch) -> Iterator[_HangingUpBroker]:
    found = _HangingUpBroker()
    monkeypatch.setenv("AUDITLOG_KAFKA_BOOTSTRAP", f"127.0.0.1:{found.port}")
    yield found
    found.close()


WEBHOOK = ["destinations", "add", "acme", "--kind", "webhook", "--url", "https://8.8.8.8/in"]
# References the default policy allows (AUDITLOG_DEST_SECRET_*).
REF, TOKEN_REF = "env:AUDITLOG_DEST_SECRET_X", "env:AUDITLOG_DEST_SECRET_T"


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (WEBHOOK, "a webhook needs a signing secret"),
        (
            [*WEBHOOK, "--secret-env", "HOOK_SECRET", "--secret-ref", REF],
            "give one of --secret-env, --secret-ref",
        ),
        ([*WEBHOOK, "--secret-ref", "HOOK_SECRET"], "expected env:NAME"),
        ([*WEBHOOK, "--secret-env", "NOT_SET_ANYWHERE"], "$NOT_SET_ANYWHERE is not set"),
        (
            [*WEBHOOK, "--secret-ref", REF, "--bucket", "b-1"],
            "--bucket does not apply to a webhook destination",
        ),
        (
            [*WEBHOOK, "--secret-ref", REF, "--token-ref", TOKEN_REF],
            "--token-ref does not apply to a webhook destination",
        ),
        ([*WEBHOOK, "--secret-ref", REF, "--header", "no colon"], "expected 'Name: value'"),
        (
            [*WEBHOOK, "--secret-ref", REF, "--header", "Content-Type: text/plain"],
            "cannot be overridden",
        ),
        ([*WEBHOOK, "--secret-ref", REF, "--actor", "robot"], "--actor 'robot'"),
        ([*WEBHOOK, "--secret-ref", REF, "--id", "Bad_Id"], "destination id 'Bad_Id'"),
        ([*WEBHOOK, "--secret-ref", REF, "--max-records", "0"], "batch.max_records"),
        (
            [*WEBHOOK, "--secret-ref", REF, "--include-category", "recipe"],
            "'recipe': not a category",
        ),
        (
            [*WEBHOOK, "--secret-ref", REF, "--exclude-action", "user.flew"],
            "not an action of the activity catalog",
        ),
        (
            ["destinations", "add", "a b", "--kind", "webhook", "--url", "https://8.8.8.8"],
            "'a b' is not a tenant id",
        ),
        (
            ["destinations", "add", "acme", "--kind", "webhook", "--secret-ref", REF],
            "needs --url",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "webhook", "--secret-ref", REF,
                "--url", "http://8.8.8.8/in",
            ],
            "destinations must use https",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "webhook", "--secret-ref", REF,
                "--url", "https://127.0.0.1/in",
            ],
            "non-public addresses are refused",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "webhook", "--secret-ref", REF,
                "--url", "https://169.254.169.254/latest/meta-data",
            ],
            "non-public addresses are refused",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "splunk_hec", "--url",
                "https://8.8.8.8:8088", "--token-ref", TOKEN_REF, "--format", "json_array",
            ],
            "Splunk HEC takes --format ndjson only",
        ),
        (
            ["destinations", "add", "acme", "--kind", "splunk_hec", "--url", "https://8.8.8.8"],
            "needs its token",
        ),
        (["destinations", "add", "acme", "--kind", "s3"], "needs --bucket"),
        (
            ["destinations", "add", "acme", "--kind", "s3", "--bucket", "Bad_Bucket"],
            "target.bucket",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1",
                "--prefix-template", "../{tenant_id}",
            ],
            "prefix template",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1",
                "--access-key-id-ref", "env:AUDITLOG_DEST_SECRET_AK",
            ],
            "give both --access-key-id-ref and --secret-access-key-ref",
        ),
        (
            ["destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1", "--kms-key-id", "k"],
            "--kms-key-id needs --sse aws:kms",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1",
                "--endpoint-url", "http://10.0.0.5:9000",
            ],
            "https",
        ),
        (
            [*WEBHOOK, "--secret-ref", "env:AUDITLOG_SECRETS_KEY"],
            "secret reference env:AUDITLOG_SECRETS_KEY is refused: AUDITLOG_SECRETS_KEY is "
            "the operator's own setting",
        ),
        (
            [*WEBHOOK, "--secret-ref", "env:HOOK_SECRET"],
            "secret reference env:HOOK_SECRET is refused: references may name only "
            "environment variables starting with AUDITLOG_DEST_SECRET_ "
            "(AUDITLOG_SINK_SECRET_REF_PREFIX",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "splunk_hec", "--url",
                "https://8.8.8.8:8088", "--token-ref", "env:auditlog_secrets_key",
            ],
            "env:auditlog_secrets_key is refused",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1",
                "--access-key-id-ref", "env:AWS_ACCESS_KEY_ID",
                "--secret-access-key-ref", "env:AWS_SECRET_ACCESS_KEY",
            ],
            "env:AWS_ACCESS_KEY_ID is refused: AWS_* variables are the worker's own",
        ),
        (
            [*WEBHOOK, "--secret-env", "AUDITLOG_SECRETS_KEY"],
            "--secret-env: AUDITLOG_SECRETS_KEY cannot be used as a destination secret",
        ),
        (
            ["destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1"],
            "an s3 destination needs credentials of its own: --role-arn ARN, or",
        ),
        (
            [
                "destinations", "add", "acme", "--kind", "s3", "--bucket", "b-1",
                "--role-arn", "arn:aws:iam::123456789012:role/r", "--external-id", "theirs",
            ],
            "the external id is chosen by the service, not the tenant; the workers send "
            "'auditlog:acme'",
        ),
        (
            ["destinations", "add", "--kind", "webhook", "--url", "https://8.8.8.8"],
            "give a tenant or --partner P, exactly one of them",
        ),
        (
            ["destinations", "add", "acme", "--partner", "p1", "--kind", "webhook"],
            "give a tenant or --partner P, exactly one of them",
        ),
        (
            ["destinations", "add", "--partner", "p/1", "--kind", "webhook"],
            "'p/1' is not a partner id",
        ),
        (
            [*WEBHOOK, "--secret-ref", REF, "--include-account", "a1"],
            "--include-account and --exclude-account are for --partner destinations",
        ),
        (
            [
                "destinations", "add", "--partner", "p1", "--kind", "webhook", "--url",
                "https://8.8.8.8/in", "--secret-ref", REF, "--exclude-account", "../etc",
            ],
            "--exclude-account '../etc': not an account id",
        ),
        (
            [
                "destinations", "add", "--partner", "p1", "--kind", "webhook", "--url",
                "https://8.8.8.8/in", "--secret-ref", REF, "--include-account", "a 1",
            ],
            "--include-account 'a 1': not an account id",
        ),
        (
            ["destinations", "replay", "webhook-1", "--since", "1h", "--account", "a/b"],
            "--account 'a/b': not an account id",
        ),
        (["destinations", "update", "webhook-1"], "give at least one setting"),
        (["destinations", "replay", "webhook-1", "--since", "yesterday"], "expected an ISO"),
        (["destinations", "replay", "webhook-1", "--since", "2999-01-01"], "in the future"),
        (["destinations", "pause", "webhook-1", "--actor", "nobody:"], "--actor"),
    ],
)  # fmt: skip
def test_bad_input_exits_2_with_one_line_and_touches_no_broker(
    argv: list[str], message: str, broker: _HangingUpBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, err
    assert message in err
    assert err.startswith("auditlog: ")
    assert err.count("\n") == 1
    assert out == ""
    assert PLAINTEXT not in err
    assert broker.connections() == 0


def test_sealing_without_a_key_says_how_to_fix_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("AUDITLOG_SECRETS_KEY")
    code = main([*WEBHOOK, "--secret-env", "HOOK_SECRET"])
    err = capsys.readouterr().err
    assert code == ExitCode.SECRETS_KEY_MISSING
    assert err.splitlines() == [
        "auditlog: AUDITLOG_SECRETS_KEY: not set, so destination secrets cannot be sealed or "
        "opened: make a key with `auditlog destinations keygen` and export "
        "AUDITLOG_SECRETS_KEY=<key> (or pass the secret by reference, --secret-ref env:NAME)"
    ]
    assert PLAINTEXT not in err


def test_a_malformed_secrets_key_is_refused(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITLOG_SECRETS_KEY", "short")
    assert main([*WEBHOOK, "--secret-ref", REF]) == 2
    assert "keygen" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("AUDITLOG_SINK_SECRET_REF_PREFIX", "AUDITLOG_", "covers AUDITLOG_SECRETS_KEY"),
        ("AUDITLOG_SINK_SECRET_REF_PREFIX", "AWS_", "covers AWS_*"),
        ("AUDITLOG_SINK_SECRET_REF_NAMES", "MY_HOOK, AUDITLOG_CLICKHOUSE_URL", "cannot be allowed"),
    ],
)
def test_a_careless_reference_setting_stops_every_command(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    variable: str,
    value: str,
    message: str,
) -> None:
    monkeypatch.setenv(variable, value)
    assert main([*WEBHOOK, "--secret-ref", REF]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"auditlog: {variable}: ")
    assert message in err


def test_argparse_refuses_a_missing_kind_and_unknown_choices() -> None:
    with pytest.raises(SystemExit) as missing:
        main(["destinations", "add", "acme", "--url", "https://8.8.8.8"])
    assert missing.value.code == 2
    with pytest.raises(SystemExit) as bad_kind:
        main(["destinations", "add", "acme", "--kind", "ftp"])
    assert bad_kind.value.code == 2
    with pytest.raises(SystemExit) as bad_format:
        main([*WEBHOOK, "--format", "xml"])
    assert bad_format.value.code == 2


def test_keygen_prints_a_usable_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["destinations", "keygen"]) == 0
    key = capsys.readouterr().out.strip()
    Fernet(key.encode())  # raises if it is not a key


# --- the pieces behind the commands --------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2h", NOW - timedelta(hours=2)),
        ("30m", NOW - timedelta(minutes=30)),
        ("3d", NOW - timedelta(days=3)),
        ("1w", NOW - timedelta(weeks=1)),
        ("90s", NOW - timedelta(seconds=90)),
        ("2026-11-25T08:00:00Z", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("2026-11-25T10:00:00+02:00", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("2026-11-25 08:00", datetime(2026, 11, 25, 8, tzinfo=UTC)),
        ("2026-11-24", datetime(2026, 11, 24, tzinfo=UTC)),
    ],
)
def test_since_accepts_relative_and_iso_times(text: str, expected: datetime) -> None:
    assert parse_since(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "2 hours", "-2h", "2y", "2026-13-01", "2026-11-26T00:00Z"])
def test_since_refuses_other_text_and_the_future(text: str) -> None:
    with pytest.raises(ValueError, match="--since"):
        parse_since(text, now=NOW)


def _webhook(**changes: object) -> Destination:
    return Destination.model_validate(
        {
            "id": "webhook-1",
            "tenant_id": "acme",
            "target": WebhookTarget(
                url="https://hooks.example.com/in", signing_secret=SecretValue(ref="env:HOOK")
            ),
            "created_at": NOW,
            "updated_at": NOW,
            **changes,
        }
    )


def test_changed_fields_names_nested_settings_but_not_bookkeeping() -> None:
    before = _webhook()
    after = _webhook(
        name="SIEM",
        revision=2,
        updated_at=NOW + timedelta(hours=1),
        target=WebhookTarget(
            url="https://hooks.example.com/v2", signing_secret=SecretValue(ref="env:HOOK2")
        ),
        filters=Filters(exclude_actions=frozenset({"user.logout"})),
        batch={"max_records": 10},
    )
    assert changed_fields(before, after) == [
        "name",
        "target.signing_secret",
        "target.url",
        "filters.exclude_actions",
        "batch.max_records",
    ]
    assert changed_fields(before, before.model_copy(update={"revision": 5})) == []


def test_the_sample_payload_is_a_valid_event_on_partition_minus_one() -> None:
    destination = _webhook()
    payload = sample_payload(
        destination, topic="audit.events", actor={"type": "user", "id": "u-1"}, now=NOW
    )
    assert (payload.partition, payload.first_offset, payload.last_offset) == (TEST_PARTITION, 0, 0)
    assert payload.partition == -1
    assert (payload.content_encoding, payload.file_extension) == ("gzip", "ndjson.gz")
    [line] = gzip.decompress(payload.body).decode().splitlines()
    event = json.loads(line)
    assert event["tenant_id"] == "acme"
    assert event["action"] == "audit_stream.destination_tested"
    assert event["category"] == "audit_streaming"
    assert event["resource"] == {"type": "audit_stream", "id": "webhook-1", "name": None}
    assert event["occurred_at"] == "2026-11-25T09:30:00.000Z"
    assert payload.first_event_at == NOW


def test_list_rows_summarise_target_and_filters() -> None:
    s3 = Destination(
        id="s3-archive",
        tenant_id="globex",
        target=S3Target(bucket="auditlog-dev"),
        filters=Filters(
            include_categories=frozenset({"recipes"}), exclude_actions=frozenset({"recipe.copied"})
        ),
        state="pending_verification",
        created_at=NOW,
        updated_at=NOW,
    )
    header, first, second = view.table([s3, _webhook()])
    assert header.split() == ["ID", "TENANT", "KIND", "STATE", "TARGET", "FILTERS"]
    assert first.split() == [
        "s3-archive",
        "globex",
        "s3",
        "pending_verification",
        "s3://auditlog-dev/auditlog/globex/s3-archive",
        "+category:recipes",
        "-action:recipe.copied",
    ]
    assert second.split()[-3:] == ["hooks.example.com", "all", "events"]


# --- options of add and update -------------------------------------------------------------


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def _reader(stdin: io.StringIO, box: SecretBox) -> OptionReader:
    return OptionReader(
        box,
        load_catalog(),
        environ={"HOOK_SECRET": PLAINTEXT},
        stdin=stdin,
        prompt=lambda _text: PLAINTEXT,
    )


def _parsed(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_options(parser)
    return parser.parse_args(argv)


def test_update_changes_only_what_is_given_and_empty_values_unset() -> None:
    current = Destination(
        id="s3-archive",
        tenant_id="acme",
        target=S3Target(
            bucket="auditlog-dev",
            endpoint_url="https://s3.example.com",
            access_key_id=SecretValue(ref="env:AK"),
            secret_access_key=SecretValue(ref="env:SK"),
        ),
        filters=Filters(include_categories=frozenset({"recipes"})),
        created_at=NOW,
        updated_at=NOW,
    )
    args = _parsed(
        "--endpoint-url", "", "--access-key-id-ref", "", "--secret-access-key-ref", "",
        "--include-category", "", "--exclude-action", "user.logout", "--max-records", "10",
    )  # fmt: skip
    merged = _reader(io.StringIO(), SecretBox([], {}, references=ReferencePolicy())).apply(
        args, "s3", current.model_dump()
    )
    updated = Destination.model_validate(merged)

    assert isinstance(updated.target, S3Target)
    assert updated.target.endpoint_url is None
    assert updated.target.access_key_id is None
    assert updated.target.bucket == "auditlog-dev"
    assert updated.filters == Filters(exclude_actions=frozenset({"user.logout"}))
    assert updated.batch.max_records == 10
    assert updated.batch.max_bytes == current.batch.max_bytes
    assert changed_fields(current, updated) == [
        "target.access_key_id",
        "target.endpoint_url",
        "target.secret_access_key",
        "filters.exclude_actions",
        "filters.include_categories",
        "batch.max_records",
    ]


@pytest.mark.parametrize(
    ("argv", "stdin"),
    [
        (("--secret-env", "HOOK_SECRET"), io.StringIO()),
        (("--secret-stdin",), io.StringIO(PLAINTEXT + "\n")),
        (("--secret-stdin",), _Tty()),  # a terminal: prompted without echo
    ],
)
def test_clear_secrets_are_sealed_at_once(argv: tuple[str, ...], stdin: io.StringIO) -> None:
    box = SecretBox([generate_key()], {}, references=ReferencePolicy())
    merged = _reader(stdin, box).apply(_parsed(*argv), "webhook", {})
    sealed = SecretValue.model_validate(merged["target"]["signing_secret"])
    assert sealed.encrypted is not None
    assert PLAINTEXT not in json.dumps(merged)
    assert box.open(sealed) == PLAINTEXT.encode()


def test_headers_replace_all_and_an_empty_one_clears_them() -> None:
    assert parse_headers(["X-Env: prod", "X-Team:  sec ops "]) == {
        "X-Env": "prod",
        "X-Team": "sec ops",
    }
    assert parse_headers([""]) == {}
    with pytest.raises(OptionError, match="expected 'Name: value'"):
        parse_headers(["Bad Name: x"])


def test_a_partner_destination_lists_and_shows_its_partner_and_accounts() -> None:
    destination = Destination.model_validate(
        {
            "id": "hook-p1",
            "partner_id": "p1",
            "target": WebhookTarget(url="https://8.8.8.8/in", signing_secret=SecretValue(ref=REF)),
            "accounts": {"exclude_accounts": ["a2"]},
            "created_at": NOW,
            "updated_at": NOW,
        }
    )
    assert destination.tenant_id == "p1"
    assert destination.is_partner
    rows = view.table([destination])
    assert "partner:p1" in rows[1]
    assert "-account:a2" in rows[1]
    shown = "\n".join(view.details(destination))
    assert "partner: p1" in shown
    assert "exclude accounts: a2" in shown


def test_a_destination_belongs_to_an_account_or_a_partner_not_both() -> None:
    base = {
        "id": "hook-p1",
        "target": WebhookTarget(url="https://8.8.8.8/in", signing_secret=SecretValue(ref=REF)),
        "created_at": NOW,
        "updated_at": NOW,
    }
    with pytest.raises(ValueError, match="not both"):
        Destination.model_validate({**base, "tenant_id": "a1", "partner_id": "p1"})
    with pytest.raises(ValueError, match="only a partner destination has lists"):
        Destination.model_validate(
            {**base, "tenant_id": "a1", "accounts": {"include_accounts": ["a2"]}}
        )
    with pytest.raises(ValueError, match="not an account id"):
        Destination.model_validate(
            {**base, "partner_id": "p1", "accounts": {"include_accounts": ["a/2"]}}
        )
