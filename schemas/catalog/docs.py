"""Render the activity reference page (Markdown) from the activity catalog.

``python -m schemas.catalog.docs`` writes ``docs/activities.md`` (relative to the working
directory; ``--output`` to change it). ``--check`` writes nothing and exits 1, saying how to
fix it, when the file on disk differs from what the catalog renders now. Exit 0 otherwise;
exit 2 when the catalog itself is invalid.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

from schemas.catalog.model import Activity, Catalog, CatalogError, load_catalog

DEFAULT_OUTPUT = Path("docs") / "activities.md"
"""Where the page goes, relative to the repository root (the working directory)."""

SOURCE = "schemas/catalog/activities.json"
COMMAND = "python -m schemas.catalog.docs"


def render(catalog: Catalog) -> str:
    """The whole Markdown page for ``catalog``; deterministic, ends with one newline."""
    lines = [
        "# Activity reference",
        "",
        f"This page is generated from `{SOURCE}` by `{COMMAND}` and must not be edited by hand: "
        f"change the catalog and run the command again (`{COMMAND} --check` fails while the "
        "page is out of date).",
        "",
        "Every audit event has an `action` that says what happened. This page lists every "
        f"action of the activity catalog (version {catalog.catalog_version}, "
        f"{len(catalog.activities)} activities) by category, with the type of resource the "
        "event is about and the activity-specific keys a producer puts in the event's "
        "`details` map (string values). Fields every event has, such as the user, the "
        "resource and the request's IP address and user agent, are not repeated here.",
        "",
        "## Contents",
        "",
    ]
    for category in catalog.categories:
        count = len(catalog.activities_in(category.id))
        lines.append(f"- [{category.title}](#{heading_anchor(category.title)}) ({count})")
    lines.append(f"- [Resource types](#{heading_anchor('Resource types')})")
    for category in catalog.categories:
        lines += ["", f"## {category.title}", "", table_cell(category.description), ""]
        activities = catalog.activities_in(category.id)
        if not activities:
            lines.append("No activities yet.")
            continue
        lines += [
            "| Action | Resource type | Description | Details keys |",
            "|---|---|---|---|",
        ]
        lines += [_activity_row(catalog, activity) for activity in activities]
    lines += [
        "",
        "## Resource types",
        "",
        "| Resource type | Title | Description |",
        "|---|---|---|",
    ]
    lines += [
        f"| `{rtype.id}` | {table_cell(rtype.title)} | {table_cell(rtype.description)} |"
        for rtype in catalog.resource_types
    ]
    return "\n".join(lines) + "\n"


def _activity_row(catalog: Catalog, activity: Activity) -> str:
    rtype = catalog.resource_type(activity.resource_type)
    title = rtype.title if rtype is not None else activity.resource_type
    details = "<br>".join(
        f"`{key}`: {table_cell(meaning)}" for key, meaning in activity.details.items()
    )
    return (
        f"| `{activity.action}` | {table_cell(title)} | {table_cell(activity.description)} "
        f"| {details or '-'} |"
    )


def table_cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, on one line."""
    return " ".join(text.replace("|", "\\|").split())


def heading_anchor(title: str) -> str:
    """The anchor GitHub-flavoured Markdown gives a heading with this title."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def main(argv: Sequence[str] | None = None) -> int:
    """Write (or with ``--check``, verify) the page; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog=COMMAND, description=f"Render {DEFAULT_OUTPUT} from {SOURCE}."
    )
    parser.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help=f"default: {DEFAULT_OUTPUT}"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from what the catalog renders",
    )
    args = parser.parse_args(argv)
    output: Path = args.output
    try:
        page = render(load_catalog())
    except CatalogError as error:
        print(error, file=sys.stderr)
        return 2
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else None
        if current == page:
            return 0
        state = "is missing" if current is None else "is out of date"
        print(
            f"{output} {state} with respect to {SOURCE}; regenerate it with `{COMMAND}`.",
            file=sys.stderr,
        )
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(page, encoding="utf-8", newline="\n")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
