"""The events the browser tests read, made here (not generated) so that every test can say
exactly which events a view must show.

All of them lie in one closed range, ``[since, until)``, three hours that end ten minutes
before the data set is made: the page's reads are audited into the account's own log as
they happen (``audit_log.queried`` at "now"), and so are the account changes, so a view of
this range stays the same however often the tests look at it.

- Account A (:data:`ACCOUNT_A`): :data:`A_EVENTS` (130) events, more than two pages of 50:
  four actors (three users, an API client), four categories, recipes, connections, users
  and a folder per login, two workspaces in two environments, successes and failures,
  field-level changes, three IP addresses; the seed's story (the recipe "Onboard new
  employees" created, started, stopped by Bob, changed and stopped again by Kim: the last
  stop is the answer the seed's Admin looks for); and hostile events in a workspace of
  their own (markup in a resource name, a user agent, an actor's name, a detail value and
  a change's field, before and after).
- Account B (:data:`ACCOUNT_B`): events of its own.
- Partner P (:data:`PARTNER`) manages :data:`MANAGED`, two accounts with events of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

ACCOUNT_A = "acme-page"
ACCOUNT_B = "globex-page"
PARTNER = "partner-page"
MANAGED = ("initech-page", "umbrella-page")
A_EVENTS = 130
PAGE_SIZE = 50  # the page's

ANN = {"type": "user", "id": "u-ann", "name": "Ann Lee", "email": "ann@acme.test"}
BOB = {"type": "user", "id": "u-bob", "name": "Bob Stone", "email": "bob@acme.test"}
KIM = {"type": "user", "id": "u-kim", "name": "Kim Known", "email": "kim@acme.test"}
CI_CLIENT = {"type": "api_client", "id": "ac-ci", "name": "CI pipeline"}
ACTORS = (ANN, BOB, CI_CLIENT, KIM)

MAIN = {"id": "ws-main", "name": "Main", "environment": "prod"}
LAB = {"id": "ws-lab", "name": "Lab", "environment": "dev"}
HOSTILE_WORKSPACE = {"id": "ws-hostile", "name": "Untrusted input", "environment": "test"}
IPS = ("203.0.113.7", "198.51.100.23", "192.0.2.44")
BROWSER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"

ONBOARDING = {"type": "recipe", "id": "r-onboard", "name": "Onboard new employees"}
RECIPES = (
    {"type": "recipe", "id": "r-invoices", "name": "Sync invoices to NetSuite"},
    {"type": "recipe", "id": "r-report", "name": "Nightly pipeline report"},
    {"type": "recipe", "id": "r-leads", "name": "Route new leads"},
)
CONNECTIONS = (
    {"type": "connection", "id": "c-salesforce", "name": "Salesforce production"},
    {"type": "connection", "id": "c-slack", "name": "Slack alerts"},
)

# Hostile values: each would set window.__xss if it ever became markup.
XSS_IMG = '<img src=x onerror="window.__xss=1">'
XSS_SCRIPT = "<script>window.__xss=2</script>"
XSS_AGENT = '"><svg onload="window.__xss=3">'
XSS_DETAIL = '<img src=x onerror="window.__xss=5">'
XSS_FIELD = "<i>description</i>"
XSS_BEFORE = '<b onmouseover="window.__xss=6">bold</b>'
XSS_AFTER = '<iframe src="javascript:window.__xss=7"></iframe>'
XSS_ACTOR = {
    "type": "user",
    "id": "u-mallory",
    "name": '<svg onload="window.__xss=8">',
    "email": "mallory@acme.test",
}
XSS_TEXTS = (XSS_IMG, XSS_SCRIPT, XSS_AGENT, XSS_DETAIL, XSS_BEFORE, XSS_AFTER)

ONBOARDING_CHANGES: list[dict[str, Any]] = [
    {"field": "trigger", "before": "New row in HR sheet", "after": "New hire in Workday"},
    {"field": "concurrency", "before": "1", "after": "3"},
    {"field": "description", "before": None, "after": "Creates accounts for new hires"},
]


@dataclass
class Seed:
    """The events of every account (each with its ``event_id`` once published), in the
    order they happened, and the ones the tests look for."""

    since: datetime
    until: datetime
    events: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def all_events(self) -> list[dict[str, Any]]:
        return [event for events in self.events.values() for event in events]

    def newest_first(self, account: str) -> list[dict[str, Any]]:
        return sorted(self.events[account], key=lambda e: e["occurred_at"], reverse=True)

    def ids(self, account: str) -> set[str]:
        return {event["event_id"] for event in self.events[account]}

    def marked(self, mark: str) -> dict[str, Any]:
        (found,) = [e for e in self.all_events() if e.get("details", {}).get("test_mark") == mark]
        return found

    def marked_all(self, prefix: str) -> list[dict[str, Any]]:
        return [
            e
            for e in self.all_events()
            if str(e.get("details", {}).get("test_mark", "")).startswith(prefix)
        ]

    def range_query(self) -> str:
        """The page's (and the API's) query parameters of the seeded range."""
        return f"range=custom&from={iso(self.since)}&to={iso(self.until)}"

    def api_range_query(self) -> str:
        return f"from={iso(self.since)}&to={iso(self.until)}"


def iso(moment: datetime) -> str:
    """ISO 8601 UTC with milliseconds and Z, as the API writes times."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def make_seed(now: datetime) -> Seed:
    """The events to publish, timed inside the range that ends ten minutes before ``now``
    (whole minutes, so a form that shows the range to the minute keeps it exact)."""
    until = (now - timedelta(minutes=10)).replace(second=0, microsecond=0)
    seed = Seed(since=until - timedelta(hours=3), until=until)
    seed.events[ACCOUNT_A] = _timed(seed, _account_a())
    seed.events[ACCOUNT_B] = _timed(seed, _other_account("Globex", "gina@globex.test", 12))
    for account in MANAGED:
        name = account.split("-")[0].capitalize()
        seed.events[account] = _timed(seed, _other_account(name, f"ops@{account}.test", 6))
    for account, events in seed.events.items():
        for event in events:
            event["tenant_id"] = account
    return seed


def _timed(seed: Seed, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spread ``events`` in order over the range, each at its own millisecond."""
    step = (seed.until - seed.since) / (len(events) + 1)
    for n, event in enumerate(events, start=1):
        moment = seed.since + step * n
        event["occurred_at"] = moment.replace(microsecond=moment.microsecond // 1000 * 1000)
    return events


def _event(
    action: str,
    actor: dict[str, Any],
    resource: dict[str, Any],
    *,
    workspace: dict[str, Any] = MAIN,
    ip: str = IPS[0],
    user_agent: str = BROWSER_AGENT,
    failure: str | None = None,
    details: dict[str, str] | None = None,
    changes: list[dict[str, Any]] | None = None,
    mark: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "action": action,
        "actor": dict(actor),
        "resource": dict(resource),
        "workspace": dict(workspace),
        "request": {"ip": ip, "user_agent": user_agent, "request_id": f"req-{action}"},
        "outcome": {"status": "failure", "reason": failure} if failure else {"status": "success"},
        "details": dict(details or {}),
        "source": "browser-test-seed",
    }
    if mark is not None:
        event["details"]["test_mark"] = mark
    if changes is not None:
        event["changes"] = changes
    return event


def _generic(n: int) -> dict[str, Any]:
    """The ``n``-th ordinary event of account A: a mix of eight kinds of activity."""
    actor = ACTORS[(n // 3) % len(ACTORS)]
    workspace = (MAIN, LAB)[(n // 2) % 2]
    ip = IPS[(n // 5) % len(IPS)]
    recipe = RECIPES[n % len(RECIPES)]
    connection = CONNECTIONS[n % len(CONNECTIONS)]
    person = {"type": "user", "id": actor["id"], "name": actor["name"]}
    common: dict[str, Any] = {"workspace": workspace, "ip": ip}
    kind = n % 8
    if kind == 0:
        return _event("recipe.started", actor, recipe, **common)
    if kind == 1:
        return _event("recipe.stopped", actor, recipe, details={"reason": "manual"}, **common)
    if kind == 2:
        changes = [{"field": "schedule", "before": "hourly", "after": f"every {n} minutes"}]
        return _event("recipe.updated", actor, recipe, changes=changes, **common)
    if kind == 3:
        changes = [{"field": "host", "before": "old.example.test", "after": "new.example.test"}]
        return _event("connection.updated", actor, connection, changes=changes, **common)
    if kind == 4:
        return _event("connection.connect_failed", actor, connection, failure="timeout", **common)
    if kind == 5:
        return _event("user.login", actor, person, **common)
    if kind == 6:
        return _event("user.login_failed", actor, person, failure="invalid_credentials", **common)
    folder = {"type": "folder", "id": f"f-{n}", "name": f"Quarter {n} handover"}
    return _event("folder.created", actor, folder, **common)


def _account_a() -> list[dict[str, Any]]:
    story = {
        20: _event("recipe.created", ANN, ONBOARDING, mark="onboarding-created"),
        40: _event("recipe.started", ANN, ONBOARDING, mark="onboarding-started"),
        41: _event(
            "member.role_changed",
            ANN,
            {"type": "member", "id": "u-bob", "name": "Bob Stone"},
            changes=[{"field": "role", "before": "member", "after": "admin"}],
            mark="role-changed",
        ),
        60: _event(
            "recipe.stopped", BOB, ONBOARDING, details={"reason": "manual"}, mark="first-stop"
        ),
        100: _event(
            "recipe.updated",
            KIM,
            ONBOARDING,
            ip=IPS[1],
            changes=ONBOARDING_CHANGES,
            details={"editor": "recipe designer"},
            mark="onboarding-updated",
        ),
        115: _event(
            "recipe.stopped",
            KIM,
            ONBOARDING,
            ip="203.0.113.99",
            details={"reason": "manual"},
            mark="known-stop",
        ),
    }
    hostile = [
        _event(
            "recipe.updated",
            ANN,
            {"type": "recipe", "id": "r-xss-img", "name": XSS_IMG},
            workspace=HOSTILE_WORKSPACE,
            mark="hostile-img",
        ),
        _event(
            "recipe.started",
            BOB,
            {"type": "recipe", "id": "r-xss-script", "name": XSS_SCRIPT},
            workspace=HOSTILE_WORKSPACE,
            mark="hostile-script",
        ),
        _event(
            "user.login",
            KIM,
            {"type": "user", "id": "u-kim", "name": "Kim Known"},
            workspace=HOSTILE_WORKSPACE,
            user_agent=XSS_AGENT,
            mark="hostile-agent",
        ),
        _event(
            "recipe.updated",
            XSS_ACTOR,
            {"type": "recipe", "id": "r-xss-fields", "name": "Fields with markup"},
            workspace=HOSTILE_WORKSPACE,
            details={"note": XSS_DETAIL},
            changes=[{"field": XSS_FIELD, "before": XSS_BEFORE, "after": XSS_AFTER}],
            mark="hostile-fields",
        ),
    ]
    generic = iter(range(A_EVENTS - len(story) - len(hostile)))
    events: list[dict[str, Any]] = []
    while len(events) < A_EVENTS:
        slot = len(events)
        if slot in story:
            events.append(story[slot])
        elif slot == 80:
            events.extend(hostile)
        else:
            events.append(_generic(next(generic)))
    assert next(generic, None) is None
    return events


def _other_account(name: str, email: str, count: int) -> list[dict[str, Any]]:
    actor = {"type": "user", "id": f"u-{name.lower()}", "name": f"{name} Admin", "email": email}
    return [
        _event(
            ("recipe.started", "recipe.stopped")[n % 2],
            actor,
            {"type": "recipe", "id": f"r-{name.lower()}-{n % 3}", "name": f"{name} sync {n % 3}"},
        )
        for n in range(count)
    ]


def publishable(event: dict[str, Any]) -> dict[str, Any]:
    """The event as the SDK takes it (``occurred_at`` in ISO 8601)."""
    return {
        **{k: v for k, v in event.items() if k != "event_id"},
        "occurred_at": event["occurred_at"].isoformat(),
    }
