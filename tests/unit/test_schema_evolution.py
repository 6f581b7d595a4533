"""Every bundled schema version reads every other's data, in both directions."""

from __future__ import annotations

import copy
import itertools
import uuid
from typing import Any

import pytest

from schemas.compatibility import resolution_problems
from schemas.versions import SchemaVersion, bundled, by_fingerprint, current
from schemas.wire import Decoder, SingleObjectEncoder

PAIRS = list(itertools.combinations(bundled(), 2))


def _ids(pair: tuple[SchemaVersion, SchemaVersion]) -> str:
    return f"v{pair[0].version}-v{pair[1].version}"


@pytest.mark.parametrize("pair", PAIRS, ids=[_ids(p) for p in PAIRS])
def test_new_reader_reads_old_data(pair: tuple[SchemaVersion, SchemaVersion]) -> None:
    older, newer = pair
    assert resolution_problems(older, newer) == []


@pytest.mark.parametrize("pair", PAIRS, ids=[_ids(p) for p in PAIRS])
def test_old_reader_reads_new_data(pair: tuple[SchemaVersion, SchemaVersion]) -> None:
    older, newer = pair
    assert resolution_problems(newer, older) == []


def test_there_are_at_least_two_versions_and_fingerprints_are_distinct() -> None:
    versions = bundled()
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert len({v.fingerprint for v in versions}) == len(versions)
    for version in versions:
        assert by_fingerprint(version.fingerprint) is version


def _with_field_added_without_default(schema: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    changed["fields"].append({"name": "ticket", "type": "string"})
    return changed


def _with_enum_symbol_removed(schema: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    actor = next(f for f in changed["fields"] if f["name"] == "actor")
    enum = actor["type"]["fields"][0]["type"]
    enum["symbols"].remove("api_client")
    enum.pop("default")
    return changed


def _with_field_type_changed(schema: dict[str, Any]) -> dict[str, Any]:
    changed = copy.deepcopy(schema)
    field = next(f for f in changed["fields"] if f["name"] == "tenant_id")
    field["type"] = "long"
    return changed


@pytest.mark.parametrize(
    ("change", "direction"),
    [
        (_with_field_added_without_default, "new reads old"),
        (_with_enum_symbol_removed, "new reads old"),
        (_with_field_type_changed, "new reads old"),
        (_with_field_type_changed, "old reads new"),
    ],
)
def test_an_incompatible_change_is_caught(change: Any, direction: str) -> None:
    newest = current()
    changed = change(newest.schema)
    if direction == "new reads old":
        problems = resolution_problems(newest, changed)
    else:
        problems = resolution_problems(changed, newest)
    assert problems, f"{change.__name__} should break '{direction}'"


def _v2_event() -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "tenant_id": "acme",
        "occurred_at": 1_795_600_000_123,
        "action": "recipe.updated",
        "category": "recipes",
        "actor": {"type": "user", "id": "u1", "name": "Ann", "email": "ann@acme.io"},
        "resource": {"type": "recipe", "id": "r1", "name": "Onboarding"},
        "workspace": {"id": "w1", "name": "Main", "environment": "prod"},
        "request": {"ip": "10.0.0.1", "user_agent": "UA", "request_id": "q1", "session_id": "s1"},
        "outcome": {"status": "success", "reason": None},
        "details": {"version": "7"},
        "changes": [{"field": "schedule.cron", "before": "0 * * * *", "after": "*/5 * * * *"}],
        "source": "recipes-service",
    }


def test_a_v1_event_reads_as_v2_with_defaults() -> None:
    v1, v2 = bundled()[0], bundled()[1]
    value = SingleObjectEncoder(v1).encode(_v2_event())  # v1 ignores what it does not know
    decoded = Decoder(reader=v2).decode(value)
    assert decoded["changes"] == []
    assert decoded["request"]["session_id"] is None
    assert decoded["actor"]["email"] == "ann@acme.io"


def test_a_v2_event_reads_as_v1_without_the_new_fields() -> None:
    v1, v2 = bundled()[0], bundled()[1]
    value = SingleObjectEncoder(v2).encode(_v2_event())
    decoded = Decoder(reader=v1).decode(value)
    assert "changes" not in decoded
    assert "session_id" not in decoded["request"]
    assert decoded["resource"]["name"] == "Onboarding"


def _record_defaults_are_complete(schema: Any, where: str) -> list[str]:
    """Record fields whose default lacks one of the record's fields (strict Avro readers,
    ClickHouse's among them, refuse such a schema)."""
    problems: list[str] = []
    if isinstance(schema, list):
        for branch in schema:
            problems += _record_defaults_are_complete(branch, where)
    elif isinstance(schema, dict) and schema.get("type") == "record":
        for field in schema["fields"]:
            field_type = field["type"]
            is_record = isinstance(field_type, dict) and field_type.get("type") == "record"
            if is_record and "default" in field:
                names = {f["name"] for f in field_type["fields"]}
                missing = names - set(field["default"])
                if missing:
                    problems.append(f"{where}.{field['name']}: default lacks {sorted(missing)}")
            problems += _record_defaults_are_complete(field_type, f"{where}.{field['name']}")
    elif isinstance(schema, dict) and schema.get("type") == "array":
        problems += _record_defaults_are_complete(schema["items"], where)
    return problems


@pytest.mark.parametrize("version", bundled(), ids=lambda v: f"v{v.version}")
def test_record_defaults_name_every_field(version: SchemaVersion) -> None:
    assert _record_defaults_are_complete(version.schema, "AuditEvent") == []
