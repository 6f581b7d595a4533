"""Typed, validated access to the activity catalog (``activities.json``).

The catalog is data, so producers in any language can read it. This module is the Python
view of it: frozen pydantic models and :func:`load_catalog`, which either returns a
:class:`Catalog` whose cross-references all hold or raises :class:`CatalogError` naming every
bad entry. Nothing here does I/O other than reading the one file it is given.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    model_validator,
)

CATALOG_PATH = Path(__file__).with_name("activities.json")
"""The catalog bundled with this package (installed as package data)."""

ACTION_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
"""An action: dot-separated lowercase snake_case segments, at least two (``user.login``).
Anchored because pydantic uses the pattern text (its Rust engine searches; there ``$`` is
the end of the text); Python code calls ``fullmatch``, never ``match``."""

ID_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")
"""A category id, resource type id or details key: one lowercase snake_case segment."""


class CatalogError(ValueError):
    """The catalog file is missing, is not JSON, or breaks one of the catalog's rules.

    The message names the file and every bad entry (its position and its action or id).
    """


def _check_id(value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise ValueError(f"{value!r} is not a lowercase snake_case id (e.g. 'account_security')")
    return value


def _check_action(value: str) -> str:
    if not ACTION_PATTERN.fullmatch(value):
        raise ValueError(
            f"action {value!r} is not of the form 'resource.verb_past_tense' "
            "(dot-separated lowercase snake_case segments, e.g. 'user.login_failed')"
        )
    return value


def _check_details(value: Mapping[str, str]) -> Mapping[str, str]:
    for key in value:
        _check_id(key)
    return value


SnakeId = Annotated[str, AfterValidator(_check_id)]
ActionName = Annotated[str, AfterValidator(_check_action)]
DetailsDoc = Annotated[Mapping[str, str], AfterValidator(_check_details)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Category(_Frozen):
    """A group of related activities, shown as one section of the docs page."""

    id: SnakeId
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)


class ResourceType(_Frozen):
    """A kind of resource an event is about (the event's ``resource.type``)."""

    id: SnakeId
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)


class Activity(_Frozen):
    """One activity type: the value of an audit event's ``action``.

    ``details`` documents the activity-specific keys a producer may put in the event's
    ``details`` map (string values): key -> what the value means. Read-only.
    """

    action: ActionName
    category: SnakeId
    resource_type: SnakeId
    description: str = Field(min_length=1)
    details: DetailsDoc = Field(default_factory=dict)

    def __hash__(self) -> int:
        """Hash by action, which is unique in a catalog (``details`` is a dict)."""
        return hash(self.action)


class Catalog(_Frozen):
    """The whole catalog; constructing one checks every cross-reference.

    Raises ``pydantic.ValidationError`` (a ``ValueError``) when a category or resource type id
    is duplicated, an action is duplicated, or an activity names a category or resource type
    that is not listed. :func:`load_catalog` turns that into a :class:`CatalogError`.
    """

    catalog_version: int = Field(ge=1)
    categories: tuple[Category, ...] = Field(min_length=1)
    resource_types: tuple[ResourceType, ...] = Field(min_length=1)
    activities: tuple[Activity, ...] = Field(min_length=1)

    _by_action: dict[str, Activity] = PrivateAttr(default_factory=dict)
    _categories: dict[str, Category] = PrivateAttr(default_factory=dict)
    _resource_types: dict[str, ResourceType] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _check_references(self) -> Catalog:
        problems: list[str] = []
        categories = _index(self.categories, "categories", problems)
        resource_types = _index(self.resource_types, "resource_types", problems)
        by_action: dict[str, Activity] = {}
        for position, activity in enumerate(self.activities):
            where = f"activities[{position}] {activity.action!r}"
            if activity.action in by_action:
                problems.append(f"{where}: duplicate action")
            else:
                by_action[activity.action] = activity
            if activity.category not in categories:
                problems.append(f"{where}: unknown category {activity.category!r}")
            if activity.resource_type not in resource_types:
                problems.append(f"{where}: unknown resource_type {activity.resource_type!r}")
        if problems:
            raise ValueError("\n  ".join(problems))
        self._by_action = by_action
        self._categories = categories
        self._resource_types = resource_types
        return self

    @property
    def actions(self) -> frozenset[str]:
        """Every action in the catalog."""
        return frozenset(self._by_action)

    def activity(self, action: str) -> Activity | None:
        """The activity for ``action``, or None when the catalog does not list it."""
        return self._by_action.get(action)

    def category(self, category_id: str) -> Category | None:
        """The category with this id, or None."""
        return self._categories.get(category_id)

    def resource_type(self, resource_type_id: str) -> ResourceType | None:
        """The resource type with this id, or None."""
        return self._resource_types.get(resource_type_id)

    def category_of(self, action: str) -> Category | None:
        """The category of ``action``, or None when the catalog does not list the action."""
        activity = self._by_action.get(action)
        return None if activity is None else self._categories[activity.category]

    def activities_in(self, category_id: str) -> tuple[Activity, ...]:
        """The activities of one category, in catalog order (empty for an unknown id)."""
        return tuple(a for a in self.activities if a.category == category_id)


_Entry = TypeVar("_Entry", Category, ResourceType)


def _index(entries: tuple[_Entry, ...], field: str, problems: list[str]) -> dict[str, _Entry]:
    index: dict[str, _Entry] = {}
    for position, entry in enumerate(entries):
        if entry.id in index:
            problems.append(f"{field}[{position}] {entry.id!r}: duplicate id")
        else:
            index[entry.id] = entry
    return index


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    """Validate already-parsed JSON ``data`` as a catalog.

    Raises :class:`CatalogError` naming ``source`` and each bad entry.
    """
    try:
        return Catalog.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors(include_url=False):
            location = _location(problem["loc"], data)
            message = str(problem["msg"]).removeprefix("Value error, ")
            lines.append(f"  {location}: {message}" if location else f"  {message}")
        raise CatalogError(f"{source}: invalid activity catalog:\n" + "\n".join(lines)) from None


def _location(loc: tuple[int | str, ...], data: Any) -> str:
    """``activities[3] 'user.logn'.action`` for a pydantic error location."""
    text = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            name = node.get("action", node.get("id")) if isinstance(node, dict) else None
            if isinstance(name, str):
                text += f" {name!r}"
        else:
            text += f".{part}" if text else part
            node = node.get(part) if isinstance(node, dict) else None
    return text


def load_catalog(path: Path | None = None) -> Catalog:
    """Read and validate the catalog at ``path`` (default: the bundled ``activities.json``).

    The default catalog is read once per process and cached; an explicit path is read on
    every call. Raises :class:`CatalogError` when the file cannot be read, is not JSON, or
    breaks a catalog rule; the message names the file and the bad entries.
    """
    if path is None:
        return _load_bundled()
    return _load(path)


@functools.cache
def _load_bundled() -> Catalog:
    return _load(CATALOG_PATH)


def _load(path: Path) -> Catalog:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise CatalogError(f"{path}: cannot read the activity catalog: {error}") from error
    except json.JSONDecodeError as error:
        raise CatalogError(f"{path}: the activity catalog is not valid JSON: {error}") from error
    return parse_catalog(data, str(path))
