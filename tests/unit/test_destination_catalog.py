"""DestinationCatalog over a fake table: load, follow changes, skip what does not parse."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest

from runtime.compacted_table import Change
from sinks.destinations.model import Destination, S3Target
from sinks.destinations.store import DestinationCatalog, decode_record

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)


class FakeTable:
    """A compacted table in memory: ``write`` queues a change for the next ``changes``."""

    def __init__(self) -> None:
        self.table: dict[bytes, bytes] = {}
        self.pending: list[Change] = []
        self.closed = False

    def write(self, key: str, value: bytes | None) -> None:
        self.pending.append((key.encode(), value))

    def put(self, destination: Destination) -> None:
        self.write(destination.id, destination.model_dump_json().encode())

    def load(self, timeout_s: float = 30.0) -> dict[bytes, bytes]:
        for key, value in self.pending:
            if value is None:
                self.table.pop(key, None)
            else:
                self.table[key] = value
        self.pending = []
        return dict(self.table)

    def changes(self, timeout_s: float = 0.0) -> list[Change]:
        found, self.pending = self.pending, []
        return found

    def close(self) -> None:
        self.closed = True


def _destination(destination_id: str, tenant: str, **changes: object) -> Destination:
    return Destination.model_validate(
        {
            "id": destination_id,
            "tenant_id": tenant,
            "target": S3Target(bucket="auditlog-dev"),
            "created_at": NOW,
            "updated_at": NOW,
            **changes,
        }
    )


@pytest.fixture
def table() -> FakeTable:
    return FakeTable()


def test_load_groups_destinations_by_tenant(table: FakeTable) -> None:
    for destination_id, tenant in (("b-dest", "acme"), ("a-dest", "acme"), ("c-dest", "globex")):
        table.put(_destination(destination_id, tenant))
    catalog = DestinationCatalog(table)
    catalog.load()

    assert [d.id for d in catalog.for_tenant("acme")] == ["a-dest", "b-dest"]
    assert [d.id for d in catalog.for_tenant("globex")] == ["c-dest"]
    assert catalog.for_tenant("nobody") == ()
    assert [d.id for d in catalog.all()] == ["a-dest", "b-dest", "c-dest"]
    got = catalog.get("c-dest")
    assert got is not None
    assert got.tenant_id == "globex"
    assert catalog.refresh() == []


def test_refresh_reports_each_change_with_before_and_after(table: FakeTable) -> None:
    first = _destination("dest-one", "acme")
    table.put(first)
    catalog = DestinationCatalog(table)
    catalog.load()

    paused = first.model_copy(update={"state": "paused", "revision": 2})
    second = _destination("dest-two", "globex")
    table.put(paused)
    table.put(second)
    table.put(second)  # rewritten unchanged: no change
    table.write("dest-one", None)
    table.write("never-was", None)

    changes = catalog.refresh()

    assert [(c.before, c.after) for c in changes] == [
        (first, paused),
        (None, second),
        (paused, None),
    ]
    assert [c.destination_id for c in changes] == ["dest-one", "dest-two", "dest-one"]
    assert changes[1].added
    assert changes[2].removed
    assert catalog.get("dest-one") is None
    assert catalog.for_tenant("acme") == ()
    assert catalog.for_tenant("globex") == (second,)


def test_a_destination_moving_tenant_leaves_the_old_tenant(table: FakeTable) -> None:
    table.put(_destination("dest-one", "acme"))
    catalog = DestinationCatalog(table)
    catalog.load()
    table.put(_destination("dest-one", "globex", revision=2))
    catalog.refresh()
    assert catalog.for_tenant("acme") == ()
    assert [d.id for d in catalog.for_tenant("globex")] == ["dest-one"]


def test_unreadable_values_are_skipped_logged_and_reported(
    table: FakeTable, caplog: pytest.LogCaptureFixture
) -> None:
    good = _destination("dest-good", "acme")
    table.put(good)
    table.write("dest-bad", b'{"id": "dest-bad", "colour": "blue"}')
    table.write("dest-other", _destination("dest-mismatch", "acme").model_dump_json().encode())
    catalog = DestinationCatalog(table, topic="audit.destinations")
    with caplog.at_level(logging.WARNING):
        catalog.load()

    assert catalog.all() == (good,)
    assert set(catalog.invalid) == {"dest-bad", "dest-other"}
    assert "not a destination" in catalog.invalid["dest-bad"]
    assert "not its key" in catalog.invalid["dest-other"]
    assert "dest-bad" in caplog.text
    assert "audit.destinations" in caplog.text

    # A running worker keeps the last good value when a later one does not parse.
    table.write("dest-good", b"not json")
    assert catalog.refresh() == []
    assert catalog.get("dest-good") == good
    assert "dest-good" in catalog.invalid
    # A readable value (or a tombstone) clears the report.
    table.put(good.model_copy(update={"revision": 2}))
    table.write("dest-bad", None)
    assert len(catalog.refresh()) == 1
    assert set(catalog.invalid) == {"dest-other"}


def test_readers_get_a_whole_snapshot(table: FakeTable) -> None:
    table.put(_destination("dest-one", "acme"))
    catalog = DestinationCatalog(table)
    catalog.load()
    before = catalog.for_tenant("acme")
    table.put(_destination("dest-two", "acme"))
    catalog.refresh()
    assert len(before) == 1  # what a reader held is not changed under it
    assert len(catalog.for_tenant("acme")) == 2


def test_close_closes_the_table(table: FakeTable) -> None:
    DestinationCatalog(table).close()
    assert table.closed


def test_decode_record_refuses_non_utf8_keys() -> None:
    with pytest.raises(ValueError, match="not UTF-8"):
        decode_record(b"\xff\xfe", b"{}")
