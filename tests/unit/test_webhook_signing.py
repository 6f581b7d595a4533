"""Webhook signatures: what a receiver accepts and what it refuses."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest

from sinks.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    SignatureError,
    idempotency_key,
    sign,
    verify,
)

BODY = b'[{"event_id": "e1"}]'
SECRET = b"whsec-current"
NOW = 1_795_600_000


def test_a_signed_body_verifies_and_returns_its_timestamp() -> None:
    headers = sign(BODY, [SECRET], timestamp=NOW)
    assert verify(BODY, headers, SECRET, now=NOW + 10) == NOW


def test_header_names_are_case_insensitive() -> None:
    headers = {k.lower(): v for k, v in sign(BODY, [SECRET], timestamp=NOW).items()}
    assert verify(BODY, headers, SECRET, now=NOW) == NOW


@pytest.mark.parametrize(
    ("body", "secret", "now", "message"),
    [
        (BODY + b" ", SECRET, NOW, "no v1 signature"),
        (BODY, b"another secret", NOW, "no v1 signature"),
        (BODY, SECRET, NOW + 301, "more than 300 s"),
        (BODY, SECRET, NOW - 301, "more than 300 s"),
    ],
)
def test_tampered_stale_or_foreign_requests_are_refused(
    body: bytes, secret: bytes, now: int, message: str
) -> None:
    headers = sign(BODY, [SECRET], timestamp=NOW)
    with pytest.raises(SignatureError, match=message):
        verify(body, headers, secret, now=now)


def test_a_replayed_signature_with_a_new_timestamp_is_refused() -> None:
    headers = sign(BODY, [SECRET], timestamp=NOW)
    replayed = {**headers, TIMESTAMP_HEADER: str(NOW + 60)}
    with pytest.raises(SignatureError, match="no v1 signature"):
        verify(BODY, replayed, SECRET, now=NOW + 60)


def test_during_rotation_both_secrets_verify() -> None:
    headers = sign(BODY, [b"new", b"old"], timestamp=NOW)
    assert headers[SIGNATURE_HEADER].count("v1=") == 2
    assert verify(BODY, headers, b"new", now=NOW) == NOW
    assert verify(BODY, headers, b"old", now=NOW) == NOW


def test_missing_or_malformed_headers_are_refused() -> None:
    with pytest.raises(SignatureError, match="missing"):
        verify(BODY, {}, SECRET, now=NOW)
    with pytest.raises(SignatureError, match="not an integer"):
        verify(BODY, {TIMESTAMP_HEADER: "soon", SIGNATURE_HEADER: "v1=00"}, SECRET, now=NOW)


def test_idempotency_keys_follow_the_source_offsets() -> None:
    key = idempotency_key("acme", "d1", topic="audit.events", partition=3, first=100, last=199)
    assert key == idempotency_key(
        "acme", "d1", topic="audit.events", partition=3, first=100, last=199
    )
    assert key != idempotency_key(
        "acme", "d1", topic="audit.events", partition=3, first=100, last=200
    )
    assert key != idempotency_key(
        "acme", "d2", topic="audit.events", partition=3, first=100, last=199
    )
    assert len(key) == 32
    assert IDEMPOTENCY_HEADER == "X-Auditlog-Idempotency-Key"


def test_a_replay_batch_has_a_key_of_its_own_and_live_keys_are_unchanged() -> None:
    live = idempotency_key("acme", "d1", topic="audit.events", partition=3, first=100, last=199)
    # The key of a live batch is what it was before replays had keys of their own.
    material = "acme\nd1\naudit.events\n3\n100\n199"
    assert live == hashlib.sha256(material.encode()).hexdigest()[:32]
    replayed = idempotency_key(
        "acme", "d1", topic="audit.events", partition=3, first=100, last=199, replay_id="r1"
    )
    assert replayed != live
    assert replayed != idempotency_key(
        "acme", "d1", topic="audit.events", partition=3, first=100, last=199, replay_id="r2"
    )


def test_the_readme_receiver_snippet_accepts_our_signatures() -> None:
    """The verification code shown to customers must agree with what we send."""
    import re  # noqa: PLC0415
    from pathlib import Path  # noqa: PLC0415

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    snippet = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", readme, re.S)
    assert snippet is not None, "the README lost its receiver snippet"
    namespace: dict[str, object] = {}
    exec(snippet.group(1), namespace)  # our own README
    readme_verify = namespace["verify"]
    assert callable(readme_verify)
    headers = sign(BODY, [b"new", SECRET])
    readme_verify(BODY, headers, SECRET)
    with pytest.raises(ValueError, match="bad signature"):
        readme_verify(BODY + b"x", headers, SECRET)
    stale = sign(BODY, [SECRET], timestamp=NOW)
    with pytest.raises(ValueError, match="stale"):
        readme_verify(BODY, stale, SECRET)


def _readme_verify() -> Callable[..., None]:
    """The ``verify`` of the README's receiver snippet, as a receiver would paste it."""
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("```python\nimport hashlib, hmac, time\n", 1)[1].split("```", 1)[0]
    namespace: dict[str, Any] = {}
    exec("import hashlib, hmac, time\n" + snippet, namespace)  # our own README
    return cast(Callable[..., None], namespace["verify"])


def test_the_readme_receiver_snippet_accepts_a_signed_request() -> None:
    headers = sign(BODY, [SECRET])
    _readme_verify()(BODY, headers, SECRET)


@pytest.mark.parametrize("prefix", ["v0=", "xx=", "v1:", "sha"])
def test_the_readme_receiver_snippet_checks_the_v1_prefix(prefix: str) -> None:
    headers = sign(BODY, [SECRET])
    headers[SIGNATURE_HEADER] = prefix + headers[SIGNATURE_HEADER].removeprefix("v1=")
    with pytest.raises(ValueError, match="bad signature"):
        _readme_verify()(BODY, headers, SECRET)
