"""``auditlog verify``'s window options: the times it takes, and what it refuses before it
reads anything."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from auditlog.commands import verify
from auditlog.settings import AuditlogSettings
from integrity.keys import SigningKey
from integrity.keystore import public_document


@pytest.mark.parametrize(
    ("text", "moment"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T08:00:00Z", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T09:30:00+01:30", datetime(2026, 11, 1, 8, tzinfo=UTC)),
        ("2026-11-01T08:00:00.250Z", datetime(2026, 11, 1, 8, 0, 0, 250_000, tzinfo=UTC)),
    ],
)
def test_a_window_time_is_a_date_or_a_time_with_a_zone(text: str, moment: datetime) -> None:
    assert verify._moment(text) == moment


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-11-01T08:00:00", "has no time zone: add Z"),
        ("yesterday", "is not an ISO 8601 time"),
        ("2026-13-01", "is not an ISO 8601 time"),
    ],
)
def test_a_time_without_a_zone_or_not_a_time_is_refused(text: str, reason: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match=reason):
        verify._moment(text)


def _parse(*argv: str) -> Any:
    parser = argparse.ArgumentParser()
    verify.register(parser.add_subparsers())
    return parser.parse_args(["verify", *argv])


def test_an_empty_window_is_refused_before_anything_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    keys = tmp_path / "keys.json"
    key = SigningKey("auditlog-2026", Ed25519PrivateKey.generate())
    keys.write_text(json.dumps(public_document([key.verifier()])))
    args = _parse(
        "--account", "acme", "--keys", str(keys), "--from", "2026-11-02", "--to", "2026-11-01"
    )
    # No ClickHouse here: a refusal must come before the store is asked.
    assert args.run(args, AuditlogSettings()) == verify.REFUSED
    err = capsys.readouterr().err
    assert "--from 2026-11-02T00:00:00+00:00 is not before --to 2026-11-01T00:00:00+00:00" in err
