"""The record shape of a stored row, and the export encoders (CSV neutralisation)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from viewer.query.export import ExportStream, csv_cell, csv_lines_chunk, encoded_rows
from viewer.query.records import CSV_HEADER, flat, iso_ms, record


def _row(**over: Any) -> tuple[Any, ...]:
    values: dict[str, Any] = {
        "id": "0b9d5c1e-0000-4000-8000-000000000001",
        "occurred_ms": 1_796_083_200_007,
        "action": "recipe.stopped",
        "category": "recipes",
        "actor_type": "user",
        "actor_id": "u-1",
        "actor_name": "Ann",
        "actor_email": "ann@acme.io",
        "resource_type": "recipe",
        "resource_id": "r-1",
        "resource_name": "Payroll sync",
        "workspace_id": "w-1",
        "workspace_name": "Main",
        "environment": "prod",
        "ip": "203.0.113.7",
        "user_agent": "curl/8",
        "request_id": "req-1",
        "session_id": "s-1",
        "status": "success",
        "reason": None,
        "details": {"trigger": "manual"},
        "changes": [{"field": "state", "before": "running", "after": "stopped"}],
        "source": "recipes-service",
        "ingested_ms": 1_796_083_201_000,
    }
    values.update(over)
    return tuple(values.values())


def test_record_shape() -> None:
    assert record(_row()) == {
        "id": "0b9d5c1e-0000-4000-8000-000000000001",
        "timestamp": "2026-12-01T00:00:00.007Z",
        "event_type": "recipe.stopped",
        "category": "recipes",
        "user": {"id": "u-1", "type": "user", "name": "Ann", "email": "ann@acme.io"},
        "resource": {"id": "r-1", "type": "recipe", "name": "Payroll sync"},
        "workspace": {"id": "w-1", "name": "Main", "environment": "prod"},
        "outcome": {"status": "success", "reason": None},
        "details": {
            "request": {
                "ip": "203.0.113.7",
                "user_agent": "curl/8",
                "request_id": "req-1",
                "session_id": "s-1",
            },
            "trigger": "manual",
        },
        "changes": [{"field": "state", "before": "running", "after": "stopped"}],
        "source": "recipes-service",
        "ingested_at": "2026-12-01T00:00:01.000Z",
    }
    # Changes as plain tuples (another client's reading) give the same shape.
    assert record(_row(changes=[("state", "running", "stopped")]))["changes"] == [
        {"field": "state", "before": "running", "after": "stopped"}
    ]


def test_hostile_details_cannot_overwrite_the_request() -> None:
    rec = record(_row(details={"request": '{"ip": "1.1.1.1"}', "ip": "9.9.9.9"}))
    assert rec["details"]["request"]["ip"] == "203.0.113.7"
    assert rec["details"]["_request"] == '{"ip": "1.1.1.1"}'
    assert rec["details"]["ip"] == "9.9.9.9"


def test_iso_ms() -> None:
    assert iso_ms(0) == "1970-01-01T00:00:00.000Z"
    assert iso_ms(1_796_083_200_999) == "2026-12-01T00:00:00.999Z"


def test_csv_cell_neutralises_formulas() -> None:
    for hostile in ("=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")'):
        assert csv_cell(hostile) == "'" + hostile
    for fine in ("", "ann@acme.io", "1-2", "a=b"):
        assert csv_cell(fine) == fine


def _export(fmt: str, rows: list[tuple[Any, ...]]) -> tuple[bytes, ExportStream]:
    closed: list[bool] = []
    stream = ExportStream(encoded_rows([rows[:1], rows[1:]], fmt), fmt, lambda: closed.append(True))
    body = b"".join(stream)
    assert closed == [True]
    assert stream.count == len(rows)
    return body, stream


def test_csv_export() -> None:
    rows = [
        _row(),
        _row(resource_name="=cmd|' /C calc'!A0", actor_name="-2+3", details={"request": "@x"}),
    ]
    body, stream = _export("csv", rows)
    assert stream.media_type.startswith("text/csv")
    parsed = list(csv.reader(io.StringIO(body.decode())))
    assert parsed[0] == list(CSV_HEADER)
    assert len(parsed) == 3
    second = dict(zip(CSV_HEADER, parsed[2], strict=True))
    assert second["resource.name"] == "'=cmd|' /C calc'!A0"
    assert second["user.name"] == "'-2+3"
    assert json.loads(second["details"]) == {"_request": "@x"}
    assert parsed[1] == flat(record(rows[0]))
    assert json.loads(dict(zip(CSV_HEADER, parsed[1], strict=True))["changes"]) == [
        {"field": "state", "before": "running", "after": "stopped"}
    ]


def test_ndjson_export() -> None:
    rows = [_row(), _row(id="0b9d5c1e-0000-4000-8000-000000000002")]
    body, stream = _export("ndjson", rows)
    assert stream.media_type == "application/x-ndjson"
    lines = body.split(b"\n")
    assert lines[-1] == b""
    assert [json.loads(line) for line in lines[:-1]] == [record(r) for r in rows]


def test_closing_early_closes_once() -> None:
    closed: list[bool] = []
    chunks = encoded_rows([[_row()], [_row()]], "ndjson")
    stream = ExportStream(chunks, "ndjson", lambda: closed.append(True))
    first = next(iter(stream))
    assert first
    stream.close()
    stream.close()
    assert closed == [True]


def test_csv_lines_are_counted_as_records_not_line_ends() -> None:
    lines = [b'a,"two\r\nlines, ""quoted""",\r\n', b'b,"\n\n",\r\n', b"c,,\r\n"]
    closed: list[bool] = []
    stream = ExportStream(
        iter([csv_lines_chunk(lines[:2]), csv_lines_chunk([]), csv_lines_chunk(lines[2:])]),
        "csv",
        lambda: closed.append(True),
    )
    body = b"".join(stream)
    assert stream.count == 3
    assert closed == [True]
    parsed = list(csv.reader(io.StringIO(body.decode(), newline="")))
    assert parsed[0] == list(CSV_HEADER)
    assert parsed[1:] == [["a", 'two\r\nlines, "quoted"', ""], ["b", "\n\n", ""], ["c", "", ""]]
