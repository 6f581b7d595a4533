"""The delivery retry policy: Retry-After in both forms, and what each HTTP
status means for a delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from runtime.backoff import Backoff
from sinks.retry import (
    MAX_RETRY_AFTER_S,
    SNIPPET_CHARS,
    bounded_snippet,
    classify_http_status,
    next_delay,
    parse_retry_after,
)
from sinks.senders.base import PermanentDeliveryError, RetryableDeliveryError

NOW = datetime(2026, 11, 25, 9, 30, 0, tzinfo=UTC)


class Extremes:
    """A jitter source that always picks the low or the high end."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def uniform(self, a: float, b: float) -> float:
        return b if self.high else a


def test_next_delay_is_the_backoff_without_retry_after() -> None:
    error = RetryableDeliveryError("HTTP 500")
    assert next_delay(error, 3, Backoff(), Extremes(high=True)) == 4.0
    assert next_delay(error, 3, Backoff(), Extremes(high=False)) == 0.0


def test_next_delay_waits_at_least_what_the_destination_asked() -> None:
    asked = RetryableDeliveryError("HTTP 429", retry_after_s=7.0)
    assert next_delay(asked, 0, Backoff(), Extremes(high=False)) == 7.0
    # The backoff wins when it is longer than what was asked.
    assert next_delay(asked, 6, Backoff(), Extremes(high=True)) == 32.0


def test_next_delay_caps_what_the_destination_asked() -> None:
    greedy = RetryableDeliveryError("HTTP 503", retry_after_s=14 * 24 * 3600.0)
    assert next_delay(greedy, 0, Backoff(), Extremes(high=False)) == MAX_RETRY_AFTER_S
    odd = RetryableDeliveryError("HTTP 503", retry_after_s=-5.0)
    assert next_delay(odd, 0, Backoff(), Extremes(high=False)) == 0.0


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("7", 7.0),
        (" 120 ", 120.0),
        ("0", 0.0),
        ("Wed, 25 Nov 2026 09:31:30 GMT", 90.0),
        ("Wednesday, 25-Nov-26 09:30:10 GMT", 10.0),  # RFC 850, still allowed by HTTP
        ("Wed, 25 Nov 2026 09:00:00 GMT", 0.0),  # in the past: retry now
        ("Wed, 25 Nov 2026 10:30:00 +0100", 0.0),
        ("Wed, 25 Nov 2026 10:31:00 +0100", 60.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
    ],
)
def test_retry_after_in_both_forms(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_with_a_naive_now_is_read_as_utc() -> None:
    naive = NOW.replace(tzinfo=None)
    assert parse_retry_after("Wed, 25 Nov 2026 09:31:00 GMT", naive) == 60.0
    assert parse_retry_after("Wed, 25 Nov 2026 09:31:00 GMT", NOW + timedelta(seconds=30)) == 30


@pytest.mark.parametrize("status", [200, 201, 202, 204, 299])
def test_2xx_is_delivered(status: int) -> None:
    assert classify_http_status(status) is None


@pytest.mark.parametrize("status", [408, 425, 429, 500, 502, 503, 504, 599])
def test_retryable_statuses(status: int) -> None:
    error = classify_http_status(status, 12.0, body_snippet="busy", origin="hooks.example.com")
    assert isinstance(error, RetryableDeliveryError)
    assert error.retry_after_s == 12.0
    assert f"HTTP {status} from hooks.example.com" in str(error)
    assert "busy" in str(error)


def test_503_without_retry_after_has_none() -> None:
    error = classify_http_status(503)
    assert isinstance(error, RetryableDeliveryError)
    assert error.retry_after_s is None


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirects_are_permanent_and_say_they_are_not_followed(status: int) -> None:
    error = classify_http_status(
        status,
        origin="hooks.example.com",
        location="http://169.254.169.254/latest/meta-data?token=s3cr3t#x",
    )
    assert isinstance(error, PermanentDeliveryError)
    assert "redirects are not followed" in str(error)
    assert "http://169.254.169.254/latest/meta-data" in str(error)
    assert "s3cr3t" not in str(error)


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "invalid"),
        (401, "credentials"),
        (403, "refused"),
        (404, "does not exist"),
        (410, "no longer exists"),
        (413, "lower the destination's batch max_bytes"),
        (422, "could not process"),
        (418, "refused"),
    ],
)
def test_other_4xx_are_permanent_with_status_and_body(status: int, words: str) -> None:
    error = classify_http_status(status, body_snippet='{"error":"nope"}', origin="h.example")
    assert isinstance(error, PermanentDeliveryError)
    message = str(error)
    assert f"HTTP {status} from h.example" in message
    assert words in message
    assert '{"error":"nope"}' in message


def test_unexpected_statuses_are_retryable() -> None:
    assert isinstance(classify_http_status(101), RetryableDeliveryError)
    assert isinstance(classify_http_status(600), RetryableDeliveryError)


def test_snippets_are_bounded_collapsed_and_redacted() -> None:
    body = b"token=tok-123  is\n\nwrong " + b"x" * 5000
    text = bounded_snippet(body, redact=[b"tok-123", b""])
    assert len(text) == SNIPPET_CHARS
    assert text.startswith("token=[redacted] is wrong x")
    assert text.endswith("…")
    assert bounded_snippet(b"\xff\xfeok") == "\ufffd\ufffdok"
    assert bounded_snippet(b"short") == "short"
