"""The viewer's list and export parameters: every name, and every way to get a 400."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from viewer.query.params import (
    BadParameter,
    EventFilters,
    parse_export_query,
    parse_list_query,
)

Items = list[tuple[str, str]]


def test_defaults() -> None:
    query = parse_list_query([])
    assert (query.since, query.until, query.page_after, query.page_size, query.order) == (
        None,
        None,
        None,
        100,
        "newest",
    )
    assert query.filters == EventFilters()
    assert query.account_id is None


def test_every_parameter() -> None:
    query = parse_list_query(
        [
            ("from", "2026-11-01T00:00:00Z"),
            ("to", "2026-11-02T01:00:00+01:00"),
            ("users_ids[]", "u-2"),
            ("users_ids[]", "u-1"),
            ("users_ids[]", "u-2"),
            ("include_resource_types[]", "recipe"),
            ("exclude_resource_types[]", "connection"),
            ("include_event_types[]", "recipe.stopped"),
            ("exclude_event_types[]", "user.login"),
            ("categories[]", "recipes"),
            ("actor_emails[]", "Ann@Acme.IO"),
            ("resource_ids[]", "r-1"),
            ("workspace_id", "w-1"),
            ("environment", "prod"),
            ("outcome", "failure"),
            ("ip", "::ffff:203.0.113.7"),
            ("q", "Onboard"),
            ("page[after]", "abc"),
            ("page[size]", "25"),
            ("order", "ingested"),
            ("account_id", "acme-eu"),
        ]
    )
    assert query.since == datetime(2026, 11, 1, tzinfo=UTC)
    assert query.until == datetime(2026, 11, 2, tzinfo=UTC)
    assert query.filters == EventFilters(
        users_ids=("u-1", "u-2"),
        include_resource_types=("recipe",),
        exclude_resource_types=("connection",),
        include_event_types=("recipe.stopped",),
        exclude_event_types=("user.login",),
        categories=("recipes",),
        actor_emails=("ann@acme.io",),
        resource_ids=("r-1",),
        workspace_id="w-1",
        environment="prod",
        outcome="failure",
        ip="203.0.113.7",
        q="Onboard",
    )
    assert (query.page_after, query.page_size, query.order, query.account_id) == (
        "abc",
        25,
        "ingested",
        "acme-eu",
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-01", datetime(2026, 11, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
        # Rounded up to the millisecond: "from" .123456 excludes an event at .123.
        ("2026-11-01T10:00:00.123456Z", datetime(2026, 11, 1, 10, 0, 0, 124000, tzinfo=UTC)),
        ("2026-11-01T10:00:00.999001Z", datetime(2026, 11, 1, 10, 0, 1, tzinfo=UTC)),
        ("2026-11-01T10:00:00.123000Z", datetime(2026, 11, 1, 10, 0, 0, 123000, tzinfo=UTC)),
        ("2026-11-01T12:00:00+02:00", datetime(2026, 11, 1, 10, tzinfo=UTC)),
    ],
)
def test_dates(value: str, expected: datetime) -> None:
    assert parse_list_query([("from", value)]).since == expected


@pytest.mark.parametrize(
    ("items", "parameter"),
    [
        ([("colour", "red")], "colour"),
        ([("users_ids", "u-1")], "users_ids"),  # the seed's name has the brackets
        ([("from", "yesterday")], "from"),
        ([("from", "2026-13-01")], "from"),
        ([("to", "1700000000")], "to"),
        ([("from", "0001-01-01T00:00:00Z")], "from"),
        ([("from", "2026-11-02"), ("to", "2026-11-01")], "to"),
        ([("from", "2026-11-01"), ("to", "2026-11-01")], "to"),
        ([("page[size]", "0")], "page[size]"),
        ([("page[size]", "101")], "page[size]"),
        ([("page[size]", "-1")], "page[size]"),
        ([("page[size]", "ten")], "page[size]"),
        ([("page[limit]", "0")], "page[limit]"),
        ([("page[limit]", "1001")], "page[limit]"),
        ([("page[size]", "10"), ("page[limit]", "10")], "page[limit]"),
        ([("page[after]", "")], "page[after]"),
        ([("q", "a"), ("q", "b")], "q"),
        ([("from", "2026-11-01"), ("from", "2026-11-01")], "from"),
        ([("page[size]", "10"), ("page[size]", "10")], "page[size]"),
        ([("q", "")], "q"),
        ([("q", "x" * 257)], "q"),
        ([("outcome", "maybe")], "outcome"),
        ([("ip", "10.0.0.256")], "ip"),
        ([("ip", "' OR 1=1 --")], "ip"),
        ([("order", "oldest")], "order"),
        ([("include_event_types[]", "' OR 1=1 --")], "include_event_types[]"),
        ([("exclude_resource_types[]", "Recipe; DROP TABLE events")], "exclude_resource_types[]"),
        ([("categories[]", "a b")], "categories[]"),
        ([("users_ids[]", "")], "users_ids[]"),
        ([("users_ids[]", "u\x00")], "users_ids[]"),
        ([("resource_ids[]", "r" * 600)], "resource_ids[]"),
        ([("users_ids[]", f"u-{n}") for n in range(101)], "users_ids[]"),
        ([("account_id", "acme' --")], "account_id"),
        ([("workspace_id", "")], "workspace_id"),
        ([("format", "csv")], "format"),  # export only
    ],
)
def test_refused(items: Items, parameter: str) -> None:
    with pytest.raises(BadParameter) as caught:
        parse_list_query(items)
    assert caught.value.parameter == parameter
    assert caught.value.message
    assert str(caught.value).startswith(parameter)


def test_page_sizes_at_the_limits() -> None:
    assert parse_list_query([("page[size]", "1")]).page_size == 1
    assert parse_list_query([("page[size]", "100")]).page_size == 100
    assert parse_list_query([("page[limit]", "1000")]).page_size == 1000


@pytest.mark.parametrize(
    "name", ["users_ids[]", "actor_emails[]", "resource_ids[]", "workspace_id", "environment", "q"]
)
def test_injection_attempts_are_values(name: str) -> None:
    hostile = "' OR 1=1 --"
    filters = parse_list_query([(name, hostile)]).filters
    value = getattr(filters, name.removesuffix("[]"))
    assert value in (hostile, (hostile,), (hostile.lower(),))


def test_unknown_name_is_shown_without_control_characters() -> None:
    with pytest.raises(BadParameter) as caught:
        parse_list_query([("x\nInjected: 1", "v")])
    assert "\n" not in caught.value.parameter


def test_export_query() -> None:
    query = parse_export_query(
        [("format", "csv"), ("from", "2026-11-01"), ("include_event_types[]", "recipe.stopped")]
    )
    assert (query.format, query.since, query.filters.include_event_types) == (
        "csv",
        datetime(2026, 11, 1, tzinfo=UTC),
        ("recipe.stopped",),
    )
    assert parse_export_query([]).format == "ndjson"
    for items, parameter in (
        ([("format", "xlsx")], "format"),
        ([("page[size]", "10")], "page[size]"),
        ([("page[after]", "x")], "page[after]"),
    ):
        with pytest.raises(BadParameter) as caught:
            parse_export_query(items)
        assert caught.value.parameter == parameter


def test_equal_filters_canonicalise_equal() -> None:
    one = parse_list_query([("users_ids[]", "b"), ("users_ids[]", "a")]).filters
    two = parse_list_query(
        [("users_ids[]", "a"), ("users_ids[]", "b"), ("users_ids[]", "a")]
    ).filters
    assert one == two
    assert one.canonical() == two.canonical()
    assert one.canonical() != EventFilters(users_ids=("a",)).canonical()
