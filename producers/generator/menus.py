"""Which activities each kind of member does, and how often (relative weights).

Builders (developers) change assets, operators run them, analysts mostly keep data current;
admins do everything builders do plus account administration, which is rarer. Everybody
occasionally looks after their own sign-in settings.
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Sequence

from producers.generator.activities import audit, members, platform, recipes, security, workspace
from producers.generator.context import Handler


class Menu:
    """A weighted choice of activity handlers."""

    __slots__ = ("_cumulative", "_handlers")

    def __init__(self, entries: Sequence[tuple[float, Handler]]) -> None:
        self._handlers = [handler for _, handler in entries]
        self._cumulative: list[float] = []
        total = 0.0
        for weight, _ in entries:
            total += weight
            self._cumulative.append(total)

    def choose(self, rng: random.Random) -> Handler:
        """A handler, with probability proportional to its weight."""
        point = rng.random() * self._cumulative[-1]
        return self._handlers[
            min(bisect.bisect_right(self._cumulative, point), len(self._handlers) - 1)
        ]


SELF_SERVICE: list[tuple[float, Handler]] = [
    (0.3, security.profile_updated),
    (0.3, security.password_changed),
    (0.15, security.two_factor_enabled),
    (0.05, security.two_factor_disabled),
    (0.05, security.recovery_codes_regenerated),
    (0.2, security.access_token_created),
    (0.1, security.access_token_revoked),
    (0.05, security.email_changed),
]

BUILDING: list[tuple[float, Handler]] = [
    (20, recipes.recipe_updated),
    (8, recipes.recipe_started),
    (6, recipes.recipe_stopped),
    (4, recipes.recipe_created),
    (2, recipes.recipe_jobs_rerun),
    (1.5, recipes.recipe_renamed),
    (1, recipes.recipe_moved),
    (1.5, recipes.recipe_copied),
    (0.7, recipes.recipe_version_restored),
    (0.8, recipes.recipe_deleted),
    (4, recipes.connection_updated),
    (2.5, recipes.connection_created),
    (2, recipes.connection_connected),
    (0.8, recipes.connection_renamed),
    (0.4, recipes.connection_moved),
    (0.6, recipes.connection_disconnected),
    (0.5, recipes.connection_deleted),
    (1.5, workspace.folder_created),
    (0.6, workspace.folder_renamed),
    (0.4, workspace.folder_moved),
    (0.4, workspace.folder_deleted),
    (0.2, workspace.project_created),
    (0.15, workspace.project_renamed),
    (0.4, workspace.project_access_granted),
    (0.2, workspace.project_access_revoked),
    (0.08, workspace.project_deleted),
    (0.6, workspace.manifest_created),
    (0.8, workspace.manifest_updated),
    (0.2, workspace.manifest_deleted),
    (1, workspace.package_exported),
    (0.8, workspace.package_imported),
    (2, workspace.deployment_progress),
    (0.2, platform.collection_created),
    (0.4, platform.collection_updated),
    (0.05, platform.collection_deleted),
    (0.5, platform.endpoint_created),
    (0.6, platform.endpoint_updated),
    (0.3, platform.endpoint_enabled),
    (0.3, platform.endpoint_disabled),
    (0.1, platform.endpoint_deleted),
    (0.1, platform.connector_created),
    (0.4, platform.connector_updated),
    (0.2, platform.connector_released),
    (0.05, platform.connector_shared),
    (0.03, platform.connector_unshared),
    (0.03, platform.connector_deleted),
    (0.3, platform.property_created),
    (0.8, platform.property_updated),
    (0.1, platform.property_deleted),
    (0.3, platform.table_created),
    (2, platform.table_updated),
    (0.1, platform.table_deleted),
    (0.2, platform.tag_created),
    (1, platform.tag_assigned),
    (0.4, platform.tag_unassigned),
    (0.05, platform.tag_deleted),
    *SELF_SERVICE,
]

OPERATING: list[tuple[float, Handler]] = [
    (10, recipes.recipe_started),
    (8, recipes.recipe_stopped),
    (6, recipes.recipe_jobs_rerun),
    (3, recipes.connection_connected),
    (1, recipes.connection_disconnected),
    (2, recipes.connection_updated),
    (3, platform.table_updated),
    (2, recipes.recipe_updated),
    (0.5, platform.tag_assigned),
    *SELF_SERVICE,
]

ANALYSING: list[tuple[float, Handler]] = [
    (4, platform.table_updated),
    (3, recipes.recipe_updated),
    (1, platform.tag_assigned),
    (1, recipes.recipe_jobs_rerun),
    (0.3, workspace.manifest_created),
    (0.5, workspace.package_exported),
    *SELF_SERVICE,
]

ADMINISTERING: list[tuple[float, Handler]] = [
    (4, members.member_invited),
    (0.8, members.invitation_resent),
    (0.6, members.invitation_revoked),
    (2.5, members.role_changed),
    (1, members.member_removed),
    (0.3, members.custom_role_created),
    (0.6, members.custom_role_updated),
    (0.1, members.custom_role_deleted),
    (0.05, members.ownership_transferred),
    (0.5, platform.client_created),
    (0.6, platform.client_updated),
    (0.15, platform.client_deleted),
    (0.4, platform.access_profile_created),
    (0.5, platform.access_profile_updated),
    (0.5, platform.access_profile_key_regenerated),
    (0.15, platform.access_profile_enabled),
    (0.15, platform.access_profile_disabled),
    (0.1, platform.access_profile_deleted),
    (0.1, security.sso_enabled),
    (0.3, security.sso_updated),
    (0.03, security.sso_disabled),
    (0.1, security.two_factor_enforcement_changed),
    (0.3, security.ip_allowlist_updated),
    (3, members.user_unlocked),
    (0.3, members.session_revoked),
    (0.3, audit.stream_added),
    (0.3, audit.stream_updated),
    (0.5, audit.stream_tested),
    (0.15, audit.stream_paused),
    (0.3, audit.stream_resumed),
    (0.08, audit.stream_removed),
    (0.05, audit.stream_replay_requested),
    (0.05, audit.stream_verified),
    (0.05, audit.retention_changed),
    (4, audit.audit_viewed),
    (0.5, audit.audit_exported),
    (0.3, audit.audit_access_granted),
    (0.15, audit.audit_access_revoked),
    (0.03, audit.add_on_toggled),
    (0.02, audit.partner_changed),
    (0.5, audit.managed_added),
    (0.1, audit.managed_removed),
    (1.5, workspace.deployment_progress),
]

MENUS = {
    "developer": Menu(BUILDING),
    "operator": Menu(OPERATING),
    "analyst": Menu(ANALYSING),
    "admin_building": Menu(BUILDING),
    "admin": Menu(ADMINISTERING),
}


def menu_for(rng: random.Random, role: str) -> Menu:
    """The menu a member of ``role`` picks the next activity from (admins: 40% admin work)."""
    if role in ("owner", "admin"):
        return MENUS["admin"] if rng.random() < 0.4 else MENUS["admin_building"]
    return MENUS.get(role, MENUS["developer"])
