"""The viewer's OpenAPI document: the checked-in copy is what the app serves, and the query
parameters it documents are exactly those the parser accepts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from viewer import openapi_document
from viewer.api_parameters import EXPORT_PARAMETERS, LIST_PARAMETERS
from viewer.query.params import BadParameter, parse_export_query, parse_list_query

CHECKED_IN = Path(__file__).resolve().parents[2] / "docs" / "viewer-openapi.json"

Parse = Callable[[Sequence[tuple[str, str]]], Any]


def test_the_checked_in_document_is_the_served_one() -> None:
    assert CHECKED_IN.read_text() == openapi_document.text(), (
        "docs/viewer-openapi.json is stale: python -m viewer.openapi_document > "
        "docs/viewer-openapi.json"
    )


def _accepted(parse: Parse, name: str) -> bool:
    try:
        parse([(name, "x")])
    except BadParameter as exc:
        return exc.message != "unknown parameter"
    return True


@pytest.mark.parametrize(
    ("parse", "documented"),
    [(parse_list_query, LIST_PARAMETERS), (parse_export_query, EXPORT_PARAMETERS)],
)
def test_every_documented_parameter_is_accepted_and_no_other(
    parse: Parse, documented: list[dict[str, Any]]
) -> None:
    names = {parameter["name"] for parameter in documented}
    assert all(_accepted(parse, name) for name in names)
    others = {p["name"] for p in LIST_PARAMETERS + EXPORT_PARAMETERS} - names
    others |= {"page[number]", "limit", "sort", "tenant_id", "users_ids", "account"}
    assert not any(_accepted(parse, name) for name in others)


def test_the_list_endpoint_documents_the_seed_parameters() -> None:
    documented = openapi_document.document()["paths"]["/api/activity_logs"]["get"]
    names = {parameter["name"] for parameter in documented["parameters"]}
    seed = {
        "from",
        "to",
        "users_ids[]",
        "include_resource_types[]",
        "exclude_resource_types[]",
        "include_event_types[]",
        "exclude_event_types[]",
        "page[after]",
        "page[size]",
    }
    assert seed <= names
