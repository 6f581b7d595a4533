"""The query parameters of the list and export endpoints, as the OpenAPI document shows them.

The routes parse the query string themselves (:mod:`viewer.query.params`: unknown names
refused, every value checked, 400 naming the parameter), so FastAPI does not declare them;
this table describes them for the document. ``tests/unit/test_viewer_openapi.py`` checks
that it names exactly the parameters the parser accepts.
"""

from __future__ import annotations

from typing import Any

_STRING: dict[str, Any] = {"type": "string"}
_TIME: dict[str, Any] = {"type": "string", "format": "date-time"}
_STRINGS: dict[str, Any] = {"type": "array", "items": {"type": "string"}}

ACCOUNT_ID_DESCRIPTION = (
    "For a partner's admins only: the managed account to read. Everyone else reads the "
    "account of their token."
)

# (name, schema, description), in the order a reader meets them.
_RANGE = [
    (
        "from",
        _TIME,
        "Start of the time range (ISO 8601, inclusive). Default: the start of "
        "the account's retention.",
    ),
    (
        "to",
        _TIME,
        "End of the time range (ISO 8601, exclusive). Default: now, pinned by the "
        "first page's cursor.",
    ),
]
_FILTERS = [
    ("users_ids[]", _STRINGS, "Only events by these users (actor ids)."),
    ("include_resource_types[]", _STRINGS, "Only events on these resource types."),
    ("exclude_resource_types[]", _STRINGS, "No events on these resource types."),
    ("include_event_types[]", _STRINGS, "Only these event types (actions, e.g. recipe.stopped)."),
    ("exclude_event_types[]", _STRINGS, "No events of these types."),
    ("categories[]", _STRINGS, "Only events of these categories (see docs/activities.md)."),
    ("actor_emails[]", _STRINGS, "Only events by actors with these emails."),
    ("resource_ids[]", _STRINGS, "Only events on these resources: a resource's own history."),
    ("workspace_id", _STRING, "Only events in this workspace."),
    ("environment", _STRING, "Only events in this environment of their workspace."),
    (
        "outcome",
        {"type": "string", "enum": ["success", "failure"]},
        "Only events with this outcome.",
    ),
    ("ip", _STRING, "Only events from this client IP address."),
    ("q", _STRING, "Text search: case-insensitive substring of resource names and actor emails."),
    (
        "account_id",
        _STRING,
        "For a partner's admins only: the managed account to read. "
        "Everyone else reads the account of their token.",
    ),
]
_PAGING = [
    (
        "page[after]",
        _STRING,
        "The cursor of the next page, from the previous answer's "
        "`page.after` (or its `Link: rel=next`). Opaque; bound to this query and account.",
    ),
    (
        "page[size]",
        {"type": "integer", "minimum": 1, "maximum": 100, "default": 100},
        "Events per page, at most 100 (the seed API's limit).",
    ),
    (
        "page[limit]",
        {"type": "integer", "minimum": 1, "maximum": 1000},
        "Events per page up to 1,000 (instead of page[size]).",
    ),
    (
        "order",
        {"type": "string", "enum": ["newest", "ingested"], "default": "newest"},
        "newest: by time of the event, newest first. ingested: in the order events reached "
        "the store, oldest first, for pollers; a late event with an old timestamp is not "
        "missed.",
    ),
]
_FORMAT = [
    (
        "format",
        {"type": "string", "enum": ["ndjson", "csv"], "default": "ndjson"},
        "ndjson: one record per line, as the list returns them. csv: one row per event, nested "
        "fields as dotted columns; cells a spreadsheet would run as formulas are prefixed "
        "with '.",
    ),
]


def _described(rows: list[tuple[str, dict[str, Any], str]]) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "query", "required": False, "schema": schema, "description": text}
        for name, schema, text in rows
    ]


LIST_PARAMETERS = _described(_RANGE + _FILTERS + _PAGING)
EXPORT_PARAMETERS = _described(_RANGE + _FILTERS + _FORMAT)
