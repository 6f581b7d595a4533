"""The sink's Avro -> JSON fast path gives exactly what decode + event_json give."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas.validation import EventValidator
from schemas.versions import bundled, by_fingerprint
from schemas.wire import Decoder, SingleObjectEncoder, WireError
from sinks.encoding import event_json
from sinks.transcode import EventTranscoder, rfc3339_millis
from tests.events import valid_event, valid_events

VALIDATOR = EventValidator()
DECODER = Decoder()


@settings(max_examples=200, deadline=None)
@given(valid_events())
def test_the_fast_path_is_byte_identical(event: dict[str, object]) -> None:
    value = SingleObjectEncoder().encode(VALIDATOR.validate(event).to_avro())
    line, occurred_ms, tenant = EventTranscoder(DECODER).to_json(value)
    datum = DECODER.decode(value)
    assert line == event_json(datum)
    assert occurred_ms == int(datum["occurred_at"].timestamp() * 1000)
    assert tenant == datum["tenant_id"]


@settings(max_examples=50, deadline=None)
@given(
    st.lists(valid_events(), min_size=2, max_size=20), st.lists(st.integers(0, 2500), min_size=20)
)
def test_one_transcoder_over_many_events_matches_the_decoder(
    events: list[dict[str, object]], steps_ms: list[int]
) -> None:
    """The time of day is kept from one event to the next: events in the same second,
    the next one, and far apart all come out as the decoder has them."""
    transcoder = EventTranscoder(DECODER)
    two_days_ago = datetime.now(UTC) - timedelta(days=2)
    at = two_days_ago.replace(hour=23, minute=59, second=58, microsecond=0)  # then midnight
    for event, step in zip(events, steps_ms, strict=False):
        at += timedelta(milliseconds=step)
        event["occurred_at"] = at.isoformat()
        value = SingleObjectEncoder().encode(VALIDATOR.validate(event).to_avro())
        assert transcoder.to_json(value)[0] == event_json(DECODER.decode(value))


def test_an_older_writer_schema_is_read_into_the_current_one() -> None:
    oldest = bundled()[0]
    datum = VALIDATOR.validate(valid_event()).to_avro()
    fields = {f["name"] for f in oldest.schema["fields"]}
    old_datum = {k: v for k, v in datum.items() if k in fields}
    old_datum["request"] = {k: v for k, v in datum["request"].items() if k != "session_id"}
    value = SingleObjectEncoder(oldest).encode(old_datum)
    assert by_fingerprint(value[2:10]) is oldest
    transcoder = EventTranscoder(DECODER)
    line, _, _ = transcoder.to_json(value)
    assert line == event_json(DECODER.decode(value))
    assert transcoder.to_json(value)[0] == line  # the cached schemas read it alike


def test_bad_values_raise_what_the_decoder_raises() -> None:
    good = SingleObjectEncoder().encode(VALIDATOR.validate(valid_event()).to_avro())
    transcoder = EventTranscoder(DECODER)
    for bad, reason in (
        (b"plain text", "not-framed"),
        (b"\xc3\x01" + b"\x00" * 8 + b"x", "unknown-schema"),
        (good[:-3], "corrupt-datum"),
        (good + b"\x00", "corrupt-datum"),
    ):
        with pytest.raises(WireError) as caught:
            transcoder.to_json(bad)
        assert caught.value.reason == reason


def test_rfc3339_millis() -> None:
    assert rfc3339_millis(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339_millis(1_795_637_779_123) == "2026-11-25T20:16:19.123Z"
