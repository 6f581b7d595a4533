"""The activity catalog: complete enough for the product, valid, and in step with its docs."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from schemas.catalog import (
    ACTION_PATTERN,
    CATALOG_PATH,
    Catalog,
    CatalogError,
    docs,
    load_catalog,
)

REPO_ROOT = Path(__file__).resolve().parents[2]

# Actions the product must be able to record, by the category they belong to.
REQUIRED: dict[str, set[str]] = {
    "account_security": {
        "user.login",
        "user.login_failed",
        "user.logout",
        "user.password_changed",
        "user.email_changed",
        "user.two_factor_enabled",
        "user.two_factor_disabled",
        "user.session_revoked",
        "user.access_token_created",
        "user.access_token_revoked",
    },
    "members_roles": {
        "member.invited",
        "member.invitation_accepted",
        "member.invitation_revoked",
        "member.removed",
        "member.role_changed",
        "role.created",
        "role.updated",
        "role.deleted",
    },
    "recipes": {
        "recipe.created",
        "recipe.updated",
        "recipe.started",
        "recipe.stopped",
        "recipe.auto_stopped",
        "recipe.start_failed",
        "recipe.copied",
        "recipe.moved",
        "recipe.renamed",
        "recipe.deleted",
    },
    "connections": {
        "connection.created",
        "connection.updated",
        "connection.deleted",
        "connection.connected",
        "connection.disconnected",
    },
    "folders_projects": {
        "folder.created",
        "folder.renamed",
        "folder.moved",
        "folder.deleted",
        "project.created",
        "project.renamed",
        "project.deleted",
    },
    "packages_deployments": {
        "package.imported",
        "package.exported",
        "deployment.created",
        "deployment.deployed",
        "deployment.rolled_back",
    },
    "api_platform": {
        "api_client.created",
        "api_client.deleted",
        "api_endpoint.created",
        "access_profile.created",
        "access_profile.api_key_regenerated",
    },
    "custom_connectors": {
        "custom_connector.created",
        "custom_connector.updated",
        "custom_connector.released",
        "custom_connector.shared",
    },
    "account_settings": {
        "account_property.created",
        "account_property.updated",
        "account_property.deleted",
        "lookup_table.created",
        "tag.created",
        "managed_account.added",
        "managed_account.removed",
    },
    "audit_streaming": {
        "audit_stream.destination_added",
        "audit_stream.destination_updated",
        "audit_stream.destination_removed",
        "audit_stream.destination_paused",
        "audit_stream.destination_resumed",
        "audit_stream.destination_auto_paused",
        "audit_log.retention_changed",
    },
    "audit_access": {
        "audit_log.viewed",
        "audit_log.queried",
        "audit_log.exported",
        "audit_log.access_granted",
        "audit_log.access_revoked",
    },
}

# The resource types the product's public record names (facts file).
REQUIRED_RESOURCE_TYPES = {
    "user",
    "member",
    "invitation",
    "recipe",
    "connection",
    "folder",
    "package",
    "project",
    "deployment",
    "api_client",
    "api_endpoint",
    "access_profile",
    "lookup_table",
    "tag",
    "custom_connector",
    "account_property",
    "role",
    "audit_stream",
}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _bundled_json() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return data


def _tiny() -> dict[str, Any]:
    return {
        "catalog_version": 1,
        "categories": [{"id": "account_security", "title": "Security", "description": "d"}],
        "resource_types": [{"id": "user", "title": "User", "description": "d"}],
        "activities": [
            {
                "action": "user.login",
                "category": "account_security",
                "resource_type": "user",
                "description": "A user signed in.",
                "details": {"method": "sso or password."},
            },
            {
                "action": "user.logout",
                "category": "account_security",
                "resource_type": "user",
                "description": "A user signed out.",
            },
        ],
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "activities.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_the_bundled_catalog_loads_once(catalog: Catalog) -> None:
    assert load_catalog() is catalog
    assert catalog.catalog_version >= 1
    assert 80 <= len(catalog.activities) <= 140


@pytest.mark.parametrize("category_id", sorted(REQUIRED))
def test_each_category_holds_its_important_actions(catalog: Catalog, category_id: str) -> None:
    assert catalog.category(category_id) is not None
    actions = {a.action for a in catalog.activities_in(category_id)}
    assert REQUIRED[category_id] <= actions, REQUIRED[category_id] - actions


def test_every_category_is_listed_and_used(catalog: Catalog) -> None:
    assert {c.id for c in catalog.categories} == set(REQUIRED)
    used = {a.resource_type for a in catalog.activities}
    assert {r.id for r in catalog.resource_types} >= REQUIRED_RESOURCE_TYPES
    assert used == {r.id for r in catalog.resource_types}, "a resource type no activity uses"


def test_activities_are_grouped_in_category_order(catalog: Catalog) -> None:
    order = [c.id for c in catalog.categories]
    positions = [order.index(a.category) for a in catalog.activities]
    assert positions == sorted(positions)


def test_lookups(catalog: Catalog) -> None:
    login_failed = catalog.activity("user.login_failed")
    assert login_failed is not None
    assert login_failed.resource_type == "user"
    assert "method" in login_failed.details
    assert "method" in catalog.activity("user.login").details  # type: ignore[union-attr]
    category = catalog.category_of("recipe.stopped")
    assert category is not None
    assert category.id == "recipes"
    assert catalog.activity("recipe.exploded") is None
    assert catalog.category_of("recipe.exploded") is None
    assert "member.role_changed" in catalog.actions


def test_every_action_and_details_key_is_well_formed(catalog: Catalog) -> None:
    for activity in catalog.activities:
        assert ACTION_PATTERN.fullmatch(activity.action), activity.action
        assert activity.description.endswith("."), activity.action
        for key, meaning in activity.details.items():
            assert key.islower(), (activity.action, key)
            assert meaning.strip(), (activity.action, key)


def test_models_are_frozen(catalog: Catalog) -> None:
    activity = catalog.activities[0]
    with pytest.raises(ValueError, match="frozen"):
        activity.action = "user.renamed"
    assert len({activity, catalog.activities[0], catalog.activities[1]}) == 2
    assert hash(catalog) == hash(load_catalog())


def test_a_small_valid_catalog_loads_from_a_path(tmp_path: Path) -> None:
    loaded = load_catalog(_write(tmp_path, _tiny()))
    assert [a.action for a in loaded.activities] == ["user.login", "user.logout"]
    assert dict(loaded.activities[1].details) == {}


def test_unknown_category_is_rejected_by_name(tmp_path: Path) -> None:
    data = _tiny()
    data["activities"][1]["category"] = "recipes"
    with pytest.raises(CatalogError, match=r"'user\.logout': unknown category 'recipes'"):
        load_catalog(_write(tmp_path, data))


def test_unknown_resource_type_is_rejected_by_name(tmp_path: Path) -> None:
    data = _tiny()
    data["activities"][0]["resource_type"] = "robot"
    with pytest.raises(CatalogError, match=r"'user\.login': unknown resource_type 'robot'"):
        load_catalog(_write(tmp_path, data))


def test_duplicate_action_is_rejected_by_name(tmp_path: Path) -> None:
    data = _tiny()
    data["activities"].append(copy.deepcopy(data["activities"][0]))
    with pytest.raises(CatalogError, match=r"activities\[2\] 'user\.login': duplicate action"):
        load_catalog(_write(tmp_path, data))


def test_duplicate_category_id_is_rejected(tmp_path: Path) -> None:
    data = _tiny()
    data["categories"].append(copy.deepcopy(data["categories"][0]))
    with pytest.raises(CatalogError, match=r"categories\[1\] 'account_security': duplicate id"):
        load_catalog(_write(tmp_path, data))


@pytest.mark.parametrize(
    "bad", ["login", "User.login", "user.Login", "user..login", "user.login-failed", "1user.x"]
)
def test_bad_action_name_is_rejected(tmp_path: Path, bad: str) -> None:
    data = _tiny()
    data["activities"][0]["action"] = bad
    with pytest.raises(CatalogError, match=r"activities\[0\].*is not of the form") as caught:
        load_catalog(_write(tmp_path, data))
    assert str(tmp_path) in str(caught.value)


def test_bad_ids_and_unknown_fields_are_rejected(tmp_path: Path) -> None:
    data = _tiny()
    data["categories"][0]["id"] = "Account Security"
    data["activities"][0]["details"] = {"Login Method": "x"}
    data["activities"][1]["detials"] = {}
    with pytest.raises(CatalogError) as caught:
        load_catalog(_write(tmp_path, data))
    message = str(caught.value)
    assert "categories[0] 'Account Security'.id" in message
    assert "'Login Method' is not a lowercase snake_case id" in message
    assert "activities[1] 'user.logout'.detials" in message


def test_a_file_that_is_not_json_is_a_catalog_error(tmp_path: Path) -> None:
    path = tmp_path / "activities.json"
    path.write_text("{", encoding="utf-8")
    with pytest.raises(CatalogError, match="not valid JSON"):
        load_catalog(path)
    with pytest.raises(CatalogError, match="cannot read"):
        load_catalog(tmp_path / "missing.json")


def test_the_docs_page_matches_the_catalog(catalog: Catalog) -> None:
    page = (REPO_ROOT / "docs" / "activities.md").read_text(encoding="utf-8")
    assert page == docs.render(catalog), "run `python -m schemas.catalog.docs`"


def test_the_docs_page_lists_every_action_under_its_category(catalog: Catalog) -> None:
    page = docs.render(catalog)
    assert "python -m schemas.catalog.docs" in page
    assert "schemas/catalog/activities.json" in page
    for category in catalog.categories:
        assert f"](#{docs.heading_anchor(category.title)})" in page
    sections = page.split("\n## ")
    for activity in catalog.activities:
        title = catalog.category_of(activity.action).title  # type: ignore[union-attr]
        (section,) = [s for s in sections if s.startswith(title + "\n")]
        assert f"| `{activity.action}` |" in section


def test_check_mode_reports_a_stale_page(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "docs" / "activities.md"
    assert docs.main(["--check", "--output", str(output)]) == 1
    assert "is missing" in capsys.readouterr().err
    assert docs.main(["--output", str(output)]) == 0
    assert docs.main(["--check", "--output", str(output)]) == 0
    output.write_text(output.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    assert docs.main(["--check", "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert "out of date" in err
    assert "python -m schemas.catalog.docs" in err


def test_cells_escape_pipes() -> None:
    assert docs.table_cell("a | b\n c") == "a \\| b c"
