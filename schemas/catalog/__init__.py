"""The activity catalog: every audit event ``action``, with its category and resource type.

The catalog itself is data (``activities.json`` next to this file) so that producers in any
language can read it; this package gives Python typed, validated access to it and renders
the docs page (``python -m schemas.catalog.docs``).
"""

from schemas.catalog.model import (
    ACTION_PATTERN,
    CATALOG_PATH,
    Activity,
    Catalog,
    CatalogError,
    Category,
    ResourceType,
    load_catalog,
    parse_catalog,
)

__all__ = [
    "ACTION_PATTERN",
    "CATALOG_PATH",
    "Activity",
    "Catalog",
    "CatalogError",
    "Category",
    "ResourceType",
    "load_catalog",
    "parse_catalog",
]
