"""Activities on folders, projects, export manifests, packages and deployments.

Handlers follow the contract of :mod:`producers.generator.context`.
"""

from __future__ import annotations

from producers.generator import vocabulary as vocab
from producers.generator.activities.common import (
    rename_asset,
)
from producers.generator.context import (
    Ctx,
    change,
)
from producers.generator.world import Event

# ---- folders and projects --------------------------------------------------------------


def folder_created(c: Ctx) -> Event | None:
    folder = c.create("folder")
    details = {"project_id": folder.parent} if folder.parent else {}
    parent = c.pick("folder")
    if parent is not None and parent is not folder and c.rng.random() < 0.5:
        folder.extra = details["parent_folder_id"] = parent.id  # extra: the parent folder
    return c.emit("folder.created", folder, details=details)


def folder_renamed(c: Ctx) -> Event | None:
    folder = c.pick("folder")
    return None if folder is None else rename_asset(c, "folder.renamed", folder, "folder")


def folder_moved(c: Ctx) -> Event | None:
    folder, parent = c.pick("folder"), c.pick("folder")
    if folder is None or parent is None or parent.id in (folder.id, folder.extra):
        return None
    old, folder.extra = folder.extra, parent.id
    details = {"old_parent_folder_id": old} if old else {}
    details["new_parent_folder_id"] = parent.id
    changes = [change("parent_folder_id", old or None, parent.id)]
    return c.emit("folder.moved", folder, details=details, changes=changes)


def folder_deleted(c: Ctx) -> Event | None:
    folder = c.pick("folder")
    if folder is None or c.count("folder") < 3:
        return None
    c.remove("folder", folder)
    return c.emit("folder.deleted", folder)


def project_created(c: Ctx) -> Event | None:
    return c.emit("project.created", c.create("project"))


def project_renamed(c: Ctx) -> Event | None:
    project = c.pick("project")
    return None if project is None else rename_asset(c, "project.renamed", project, "project")


def project_access_granted(c: Ctx) -> Event | None:
    project = c.pick("project")
    if project is None:
        return None
    grantee = c.person_email() if c.rng.random() < 0.7 else c.rng.choice(vocab.CUSTOM_ROLE_NAMES)
    role = c.rng.choice(("viewer", "editor", "editor", "admin"))
    return c.emit("project.access_granted", project, details={"grantee": grantee, "role": role})


def project_access_revoked(c: Ctx) -> Event | None:
    project = c.pick("project")
    if project is None:
        return None
    return c.emit("project.access_revoked", project, details={"grantee": c.person_email()})


def project_deleted(c: Ctx) -> Event | None:
    project = c.pick("project")
    if project is None or c.count("project") < 2:
        return None
    c.remove("project", project)
    return c.emit("project.deleted", project)


# ---- packages and deployments ----------------------------------------------------------


def manifest_created(c: Ctx) -> Event | None:
    manifest = c.create("export_manifest")
    details = {"asset_count": str(manifest.version)}
    return c.emit("export_manifest.created", manifest, details=details)


def manifest_updated(c: Ctx) -> Event | None:
    manifest = c.pick("export_manifest")
    if manifest is None:
        return None
    old, manifest.version = manifest.version, max(1, manifest.version + c.rng.randint(-3, 6))
    return c.emit(
        "export_manifest.updated",
        manifest,
        details={"asset_count": str(manifest.version)},
        changes=[change("assets", f"{old} assets", f"{manifest.version} assets")],
    )


def manifest_deleted(c: Ctx) -> Event | None:
    manifest = c.pick("export_manifest")
    if manifest is None or c.count("export_manifest") < 2:
        return None
    c.remove("export_manifest", manifest)
    return c.emit("export_manifest.deleted", manifest)


def package_exported(c: Ctx) -> Event | None:
    manifest = c.pick("export_manifest")
    if manifest is None:
        return None
    package = c.create("package")
    package.name, package.version = f"{manifest.name}.zip", manifest.version
    details = {"manifest_id": manifest.id, "asset_count": str(package.version)}
    return c.emit("package.exported", package, details=details)


def package_imported(c: Ctx) -> Event | None:
    package = c.create("package")
    package.name = f"{package.name}.zip"
    if c.rng.random() < 0.15:
        error = c.rng.choice(vocab.IMPORT_ERRORS)
        return c.emit("package.import_failed", package, details={"error": error}, failure=error)
    folder = c.pick("folder")
    details = {"folder_id": folder.id if folder else "", "asset_count": str(package.version)}
    return c.emit("package.imported", package, details=details)


_NEXT_ENVIRONMENT = {"dev": "test", "test": "prod"}


def deployment_progress(c: Ctx) -> Event | None:  # noqa: PLR0911
    """Advance a deployment of this workspace by one stage (or start one)."""
    environments = {w.environment for w in c.tenant.workspaces}
    if c.ws.environment == "prod" or len(environments) < 2:
        return None
    deployment = c.pick("deployment")
    rng = c.rng
    if deployment is None or deployment.state in ("done", "rejected", "failed", "rolled_back"):
        deployment = c.create("deployment")
        target = _NEXT_ENVIRONMENT[c.ws.environment]
        deployment.extra = target if target in environments else "prod"
        deployment.state = "created"
        deployment.name = f"{deployment.name} to {deployment.extra}"
        details = {"source_environment": c.ws.environment, "target_environment": deployment.extra}
        return c.emit("deployment.created", deployment, details=details)
    if deployment.state == "created":
        deployment.state = "in_review"
        reviewers = ",".join(u.email for u in c.tenant.admins()[:2])
        return c.emit("deployment.review_requested", deployment, details={"reviewers": reviewers})
    if deployment.state == "in_review":
        if not c.is_admin:
            return None
        if rng.random() < 0.15:
            deployment.state = "rejected"
            comment = rng.choice(vocab.REJECT_COMMENTS)
            return c.emit("deployment.rejected", deployment, details={"comment": comment})
        deployment.state = "approved"
        return c.emit("deployment.approved", deployment)
    if deployment.state == "approved":
        if rng.random() < 0.1:
            deployment.state = "failed"
            error = rng.choice(vocab.DEPLOY_ERRORS)
            return c.emit("deployment.failed", deployment, details={"error": error}, failure=error)
        deployment.state = "deployed"
        details = {"target_environment": deployment.extra}
        return c.emit("deployment.deployed", deployment, details=details)
    if rng.random() < 0.1:
        deployment.state = "rolled_back"
        previous = c.pick("deployment")
        restored = previous.id if previous is not None and previous is not deployment else ""
        details = {"restored_deployment_id": restored} if restored else {}
        return c.emit("deployment.rolled_back", deployment, details=details)
    deployment.state = "done"
    return None
