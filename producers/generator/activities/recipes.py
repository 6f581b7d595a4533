"""Activities on recipes and connections.

Handlers follow the contract of :mod:`producers.generator.context`: the event of what the
actor just did, or None when the activity does not apply right now.
"""

from __future__ import annotations

from producers.generator import vocabulary as vocab
from producers.generator.activities.common import (
    move_asset,
    rename_asset,
)
from producers.generator.context import (
    Ctx,
    FieldTable,
    change,
    changed_fields,
    field_changes,
)
from producers.generator.population import Asset
from producers.generator.world import Change, Event

# ---- recipes ---------------------------------------------------------------------------

_STEP_FIELDS = ("Id,Name", "Id,Name,Amount", "Id,Name,Amount,CloseDate", "Id,Email,Status")


def _recipe_changes(c: Ctx, recipe: Asset) -> list[Change]:
    rng = c.rng
    step = rng.randrange(1, 9)
    kinds = rng.sample(range(6), rng.choice((1, 1, 1, 2, 2, 3)))
    result: list[Change] = []
    for kind in sorted(kinds):
        if kind == 0:
            before, after = rng.sample(vocab.SCHEDULES, 2)
            result.append(change("trigger.schedule.cron", before, after))
        elif kind == 1:
            before, after = rng.sample(_STEP_FIELDS, 2)
            result.append(change(f"steps[{step}].input.fields", before, after))
        elif kind == 2:
            _, app = rng.choice(vocab.APPS)
            obj = rng.choice(vocab.BUSINESS_OBJECTS)
            added = rng.random() < 0.7
            text = f"Create {obj} in {app}"
            result.append(
                change(f"steps[{step}]", None if added else text, text if added else None)
            )
        elif kind == 3:
            before = str(rng.randrange(1, 4))
            result.append(change("concurrency", before, str(int(before) + rng.randrange(1, 4))))
        elif kind == 4:
            email = c.person_email()
            result.append(
                change("error_notifications.emails", email, f"{email},{c.person_email()}")
            )
        else:
            connection = c.pick("connection")
            other = c.pick("connection")
            if connection is not None and other is not None and connection is not other:
                result.append(change(f"steps[{step}].connection_id", connection.id, other.id))
            else:
                result.append(change("description", None, f"Handles {recipe.name.lower()}"))
    return result


def recipe_updated(c: Ctx) -> Event | None:
    recipe = c.pick("recipe")
    if recipe is None:
        return recipe_created(c)
    recipe.version += 1
    changes = _recipe_changes(c, recipe)
    return c.emit(
        "recipe.updated", recipe, details={"version": str(recipe.version)}, changes=changes
    )


def _start(c: Ctx, recipe: Asset) -> Event | None:
    if recipe.state == "running":
        return None
    if c.rng.random() < 0.06:
        error = c.rng.choice(vocab.RECIPE_START_ERRORS)
        return c.emit("recipe.start_failed", recipe, details={"error": error}, failure=error)
    recipe.state = "running"
    return c.emit("recipe.started", recipe, details={"version": str(recipe.version)})


def recipe_started(c: Ctx) -> Event | None:
    recipe = c.pick("recipe", "stopped")
    return None if recipe is None else _start(c, recipe)


def recipe_stopped(c: Ctx) -> Event | None:
    recipe = c.pick("recipe", "running")
    if recipe is None:
        return None
    recipe.state = "stopped"
    if c.rng.random() < 0.3:  # stopped to be changed, then started again
        c.then(lambda c: _edit(c, recipe))
        c.then(lambda c: _start(c, recipe))
    return c.emit("recipe.stopped", recipe)


def _edit(c: Ctx, recipe: Asset) -> Event:
    recipe.version += 1
    changes = _recipe_changes(c, recipe)
    return c.emit(
        "recipe.updated", recipe, details={"version": str(recipe.version)}, changes=changes
    )


def recipe_created(c: Ctx) -> Event | None:
    recipe = c.create("recipe")
    for _ in range(c.rng.randrange(3)):
        c.then(lambda c: _edit(c, recipe))
    if c.rng.random() < 0.5:
        c.then(lambda c: _start(c, recipe))
    return c.emit("recipe.created", recipe, details={"folder_id": recipe.parent})


def recipe_copied(c: Ctx) -> Event | None:
    source = c.pick("recipe")
    if source is None:
        return None
    copy = c.create("recipe")
    copy.name, copy.parent = f"Copy of {source.name}", source.parent
    details = {"source_recipe_id": source.id, "folder_id": copy.parent}
    return c.emit("recipe.copied", copy, details=details)


def recipe_moved(c: Ctx) -> Event | None:
    recipe = c.pick("recipe")
    if recipe is None:
        return None
    keys = ("old_folder_id", "new_folder_id")
    return move_asset(c, "recipe.moved", recipe, keys, "folder_id")


def recipe_renamed(c: Ctx) -> Event | None:
    recipe = c.pick("recipe")
    return None if recipe is None else rename_asset(c, "recipe.renamed", recipe, "recipe")


def recipe_version_restored(c: Ctx) -> Event | None:
    recipe = c.pick("recipe")
    if recipe is None or recipe.version < 3:
        return None
    restored = c.rng.randrange(1, recipe.version)
    recipe.version += 1
    details = {"restored_version": str(restored), "new_version": str(recipe.version)}
    return c.emit("recipe.version_restored", recipe, details=details)


def recipe_jobs_rerun(c: Ctx) -> Event | None:
    recipe = c.pick("recipe")
    if recipe is None:
        return None
    count = str(max(1, int(c.rng.paretovariate(1.3))))
    return c.emit("recipe.jobs_rerun", recipe, details={"job_count": count})


def recipe_deleted(c: Ctx) -> Event | None:
    recipe = c.pick("recipe", "stopped")
    if recipe is None or c.count("recipe") < 4:
        return None
    c.remove("recipe", recipe)
    return c.emit("recipe.deleted", recipe)


# ---- connections -----------------------------------------------------------------------

_CONNECTION_FIELDS: FieldTable = (
    ("auth_type", ("basic", "oauth2", "api_key")),
    ("host", ("api.eu.example-erp.com", "api.example-erp.com", "erp-sandbox.internal")),
    ("api_version", ("v58.0", "v60.0", "v61.0")),
    ("credentials", ("[redacted]",)),
    ("sandbox", ("true", "false")),
    ("scopes", ("read", "read,write", "read,write,admin")),
)


def connection_created(c: Ctx) -> Event | None:
    connection = c.create("connection")
    c.then(lambda c: _connect(c, connection))
    details = {"provider": connection.extra, "folder_id": connection.parent}
    return c.emit("connection.created", connection, details=details)


def _connect(c: Ctx, connection: Asset) -> Event | None:
    if connection.state == "connected":
        return None
    if c.rng.random() < 0.15:
        error = c.rng.choice(vocab.CONNECT_ERRORS)
        return c.emit(
            "connection.connect_failed", connection, details={"error": error}, failure=error
        )
    connection.state = "connected"
    return c.emit("connection.connected", connection, details={"provider": connection.extra})


def connection_connected(c: Ctx) -> Event | None:
    connection = c.pick("connection", "disconnected")
    return None if connection is None else _connect(c, connection)


def connection_disconnected(c: Ctx) -> Event | None:
    connection = c.pick("connection", "connected")
    if connection is None:
        return None
    connection.state = "disconnected"
    return c.emit("connection.disconnected", connection, details={"reason": "user"})


def connection_updated(c: Ctx) -> Event | None:
    connection = c.pick("connection")
    if connection is None:
        return None
    changes = field_changes(c.rng, _CONNECTION_FIELDS)
    details = {"changed_fields": changed_fields(changes)}
    return c.emit("connection.updated", connection, details=details, changes=changes)


def connection_renamed(c: Ctx) -> Event | None:
    connection = c.pick("connection")
    return (
        None
        if connection is None
        else rename_asset(c, "connection.renamed", connection, "connection")
    )


def connection_moved(c: Ctx) -> Event | None:
    connection = c.pick("connection")
    if connection is None:
        return None
    keys = ("old_folder_id", "new_folder_id")
    return move_asset(c, "connection.moved", connection, keys, "folder_id")


def connection_deleted(c: Ctx) -> Event | None:
    connection = c.pick("connection", "disconnected")
    if connection is None or c.count("connection") < 3:
        return None
    c.remove("connection", connection)
    return c.emit("connection.deleted", connection, details={"provider": connection.extra})
