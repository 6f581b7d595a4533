"""RecordKind: decoding one value, a loaded table, and a batch of followed changes."""

from __future__ import annotations

import logging

import pytest
from pydantic import BaseModel, ConfigDict

from runtime.compacted_table import Change
from runtime.keyed_records import RecordChange, RecordKind

LOG = logging.getLogger("tests.keyed_records")
OTHER_LOG = logging.getLogger("tests.keyed_records.other")


class Item(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    revision: int = 1


ITEMS = RecordKind(
    model=Item,
    id_of=lambda item: item.name,
    revision_of=lambda item: item.revision,
    noun="item",
    description="an item",
    log=LOG,
)


def _value(name: str, revision: int = 1) -> bytes:
    return ITEMS.encode(Item(name=name, revision=revision))


def test_decode_reads_what_encode_wrote() -> None:
    assert ITEMS.decode(b"a", _value("a", 3)) == Item(name="a", revision=3)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (b"\xff", _value("a"), "key b'\\xff' is not UTF-8"),
        (b"a", b"not json", "not an item ("),
        (b"a", b'{"name": "a", "secret": "s3cr3t"}', "not an item (secret: "),
        (b"a", _value("b"), "value is item 'b', not its key"),
    ],
)
def test_decode_refuses_with_a_reason_that_holds_no_value(
    key: bytes, value: bytes, reason: str
) -> None:
    with pytest.raises(ValueError) as refused:
        ITEMS.decode(key, value)
    assert reason in str(refused.value)
    assert "s3cr3t" not in str(refused.value)


def test_decode_table_skips_unreadable_values_and_logs_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        found, invalid = ITEMS.decode_table({b"a": _value("a"), b"b": b"{}"}, "topic-t")

    assert found == {"a": Item(name="a")}
    assert list(invalid) == ["b"]
    assert [(r.name, r.getMessage().split(":")[0]) for r in caplog.records] == [
        (LOG.name, "item 'b' in topic-t skipped")
    ]


A1, A2, B1 = Item(name="a"), Item(name="a", revision=2), Item(name="b")


@pytest.mark.parametrize(
    ("changes", "records", "invalid", "changed"),
    [
        ([], {"a": A1}, {"x": "old"}, []),
        ([(b"b", _value("b"))], {"a": A1, "b": B1}, {"x": "old"}, [(None, B1)]),
        ([(b"a", _value("a", 2))], {"a": A2}, {"x": "old"}, [(A1, A2)]),
        ([(b"a", _value("a"))], {"a": A1}, {"x": "old"}, []),  # rewritten unchanged
        ([(b"a", None)], {}, {"x": "old"}, [(A1, None)]),
        ([(b"z", None)], {"a": A1}, {"x": "old"}, []),  # tombstone of nothing
        ([(b"x", None)], {"a": A1}, {}, []),  # tombstone clears an unreadable key
        ([(b"x", _value("x"))], {"a": A1, "x": Item(name="x")}, {}, [(None, Item(name="x"))]),
        ([(b"a", b"{}")], {"a": A1}, {"x": "old", "a": "..."}, []),  # last good stays
        (
            [(b"a", _value("a", 2)), (b"a", None), (b"b", _value("b"))],
            {"b": B1},
            {"x": "old"},
            [(A1, A2), (A2, None), (None, B1)],
        ),
    ],
)
def test_apply_reports_each_change_in_the_order_written(
    changes: list[Change],
    records: dict[str, Item],
    invalid: dict[str, str],
    changed: list[tuple[Item | None, Item | None]],
) -> None:
    before_records, before_invalid = {"a": A1}, {"x": "old"}

    applied = ITEMS.apply(before_records, before_invalid, changes, "topic-t")

    assert applied.records == records
    assert set(applied.invalid) == set(invalid)
    assert [(c.before, c.after) for c in applied.changes] == changed
    assert (before_records, before_invalid) == ({"a": A1}, {"x": "old"})  # left as they were


def test_apply_logs_a_skipped_value_to_the_logger_given(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        ITEMS.apply({"a": A1}, {}, [(b"a", b"{}")], "topic-t", log=OTHER_LOG)

    assert [r.name for r in caplog.records] == [OTHER_LOG.name]
    assert (
        caplog.records[0]
        .getMessage()
        .startswith("item 'a' in topic-t skipped (its last good value stays): not an item (")
    )


def test_a_change_names_the_record_present() -> None:
    assert RecordChange(None, A1).present is A1
    assert RecordChange(A1, None).present is A1
    assert RecordChange(A1, A2).present is A2
    assert (RecordChange(None, A1).added, RecordChange(None, A1).removed) == (True, False)
    assert (RecordChange(A1, None).added, RecordChange(A1, None).removed) == (False, True)
    assert (RecordChange(A1, A2).added, RecordChange(A1, A2).removed) == (False, False)
