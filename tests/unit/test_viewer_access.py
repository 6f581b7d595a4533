"""Who may read which account's activity audit log: the full matrix of principals and
requested accounts, with the grant's basis or the refusal's reason."""

from __future__ import annotations

import pytest

from accounts.model import AccountFacts
from viewer.access import Forbidden, authorize
from viewer.principal import Basis, Grant, Principal

FACTS = {
    facts.account_id: facts
    for facts in [
        AccountFacts("acme", audit_log_add_on=True),  # direct customer with the add-on
        AccountFacts("plain"),  # direct customer without it
        AccountFacts("offed", audit_log_add_on=False),
        AccountFacts("managed", partner_id="p-1"),  # on by default for a partner's account
        AccountFacts("managed-off", partner_id="p-1", audit_log_add_on=False),
        AccountFacts("foreign", partner_id="p-2"),  # another partner's
        AccountFacts("p-1-home", partner_id=None, audit_log_add_on=True),  # the partner's own
    ]
}


def facts_of(account_id: str) -> AccountFacts | None:
    return FACTS.get(account_id)


def who(
    account: str,
    *,
    roles: tuple[str, ...] = (),
    privileges: tuple[str, ...] = (),
    partner: str | None = None,
) -> Principal:
    return Principal(
        user_id="u-1",
        account_id=account,
        roles=frozenset(roles),
        privileges=frozenset(privileges),
        partner_id=partner,
    )


OWNER = who("acme", roles=("owner",))
ADMIN = who("acme", roles=("admin",))
AUDITOR = who("acme", roles=("member",), privileges=("activity_audit",))
MEMBER = who("acme", roles=("member",), privileges=("billing",))
OTHER_ADMIN = who("globex", roles=("admin",))
PARTNER_ADMIN = who("p-1-home", roles=("admin",), partner="p-1")
PARTNER_OWNER = who("p-1-home", roles=("owner",), partner="p-1")
PARTNER_STAFF = who("p-1-home", roles=("member",), privileges=("activity_audit",), partner="p-1")
NOT_ENABLED = (
    "the activity audit log is not enabled for account {}: it is an add-on, ask your "
    "Customer Success Manager"
)
NEEDS_ROLE = "you need the Admin role or the activity audit privilege for account {}"
OWN_ONLY = (
    "you may read only the log of your own account {}; only a partner's admins may name an "
    "account their partner manages"
)
NOT_MANAGED = "account {} is not managed by your partner"

# (case, principal, requested account, expected: (account, basis, partner) or a reason)
Expected = tuple[str, Basis, str | None] | str
MATRIX: list[tuple[str, Principal, str | None, Expected]] = [
    ("owner, own account", OWNER, None, ("acme", "owner", None)),
    ("owner naming own account", OWNER, "acme", ("acme", "owner", None)),
    ("admin", ADMIN, None, ("acme", "admin", None)),
    ("privilege holder", AUDITOR, None, ("acme", "privilege", None)),
    ("ordinary member", MEMBER, None, NEEDS_ROLE.format("acme")),
    ("ordinary member naming own account", MEMBER, "acme", NEEDS_ROLE.format("acme")),
    ("another account's admin asking for acme", OTHER_ADMIN, "acme", OWN_ONLY.format("globex")),
    (
        "another account's admin asking for an account that does not exist",
        OTHER_ADMIN,
        "no-such",
        OWN_ONLY.format("globex"),
    ),
    ("member asking for another account", MEMBER, "managed", OWN_ONLY.format("acme")),
    (
        "partner admin, managed account",
        PARTNER_ADMIN,
        "managed",
        ("managed", "partner_admin", "p-1"),
    ),
    (
        "partner owner, managed account",
        PARTNER_OWNER,
        "managed",
        ("managed", "partner_admin", "p-1"),
    ),
    ("partner admin, own account", PARTNER_ADMIN, None, ("p-1-home", "admin", None)),
    (
        "partner admin, another partner's account",
        PARTNER_ADMIN,
        "foreign",
        NOT_MANAGED.format("foreign"),
    ),
    ("partner admin, a direct customer", PARTNER_ADMIN, "acme", NOT_MANAGED.format("acme")),
    ("partner admin, an unknown account", PARTNER_ADMIN, "no-such", NOT_MANAGED.format("no-such")),
    (
        "partner staff without admin, managed account",
        PARTNER_STAFF,
        "managed",
        OWN_ONLY.format("p-1-home"),
    ),
    (
        "partner admin, managed account with the add-on explicitly off",
        PARTNER_ADMIN,
        "managed-off",
        NOT_ENABLED.format("managed-off"),
    ),
    (
        "owner of an account without the add-on",
        who("plain", roles=("owner",)),
        None,
        NOT_ENABLED.format("plain"),
    ),
    (
        "admin of an account with the add-on switched off",
        who("offed", roles=("admin",)),
        None,
        NOT_ENABLED.format("offed"),
    ),
    (
        "admin of an account with no facts",
        who("ghost", roles=("admin",)),
        None,
        NOT_ENABLED.format("ghost"),
    ),
    (
        "admin of a managed account reading it directly",
        who("managed", roles=("admin",)),
        None,
        ("managed", "admin", None),
    ),
    (
        "partner admin naming something that is not an account id",
        PARTNER_ADMIN,
        "../etc",
        "the account requested is not an account id",
    ),
]


@pytest.mark.parametrize(
    ("principal", "requested", "expected"),
    [pytest.param(p, r, e, id=case) for case, p, r, e in MATRIX],
)
def test_access_matrix(principal: Principal, requested: str | None, expected: Expected) -> None:
    if isinstance(expected, str):
        with pytest.raises(Forbidden) as caught:
            authorize(principal, requested, facts_of)
        assert caught.value.reason == expected
        assert str(caught.value) == expected
        return
    account, basis, partner = expected
    assert authorize(principal, requested, facts_of) == Grant(
        principal=principal, account_id=account, basis=basis, partner_id=partner
    )


def test_refusals_of_other_accounts_do_not_depend_on_whether_they_exist() -> None:
    reasons = set()
    for account in ("acme", "managed", "no-such"):
        with pytest.raises(Forbidden) as caught:
            authorize(OTHER_ADMIN, account, facts_of)
        reasons.add(caught.value.reason)
    assert len(reasons) == 1


def test_facts_are_asked_only_for_the_account_read() -> None:
    asked: list[str] = []

    def recording(account_id: str) -> AccountFacts | None:
        asked.append(account_id)
        return facts_of(account_id)

    authorize(PARTNER_ADMIN, "managed", recording)
    authorize(ADMIN, None, recording)
    with pytest.raises(Forbidden):
        authorize(MEMBER, "managed", recording)  # refused before any account is looked up
    assert asked == ["managed", "acme"]


def test_a_failing_store_is_not_a_refusal() -> None:
    def down(account_id: str) -> AccountFacts | None:
        raise ConnectionError("store down")

    with pytest.raises(ConnectionError):
        authorize(ADMIN, None, down)
