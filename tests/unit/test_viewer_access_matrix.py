"""The access matrix, for every endpoint, through the real token verifier and access rules.

Tokens are real JWTs (HS256 with the identity provider's secret, RS256 from a JWKS file);
only the reader and Kafka are fakes. For each kind of caller and each endpoint: the status,
which account was read (never one the caller may not read), and that nothing was read or
audited when the answer is 401 or 403.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from accounts.model import AccountFacts
from tests.unit import viewer_fakes as fakes
from tests.unit.viewer_keys import (
    AUDIENCE,
    HS_SECRET,
    Keys,
    claims,
    hmac_signed,
    make_keys,
    sign,
    unsigned,
)
from viewer.identity import IdentityConfig, TokenVerifier

ISSUER = "https://idp.example.test"
FACTS = {
    "acme": AccountFacts("acme", audit_log_add_on=True),
    "globex": AccountFacts("globex", audit_log_add_on=True),
    "managed": AccountFacts("managed", partner_id="partnerco"),
    "managed-off": AccountFacts("managed-off", audit_log_add_on=False, partner_id="partnerco"),
    "elsewhere": AccountFacts("elsewhere", partner_id="otherpartner"),
    "plain": AccountFacts("plain"),
}
EVENT_ID = fakes.RECORD["id"]
ENDPOINTS = {
    "list": "/api/activity_logs",
    "event": f"/api/activity_logs/{EVENT_ID}",
    "export": "/api/activity_logs/export",
}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture(scope="module")
def verifier(keys: Keys, tmp_path_factory: pytest.TempPathFactory) -> TokenVerifier:
    jwks: Path = tmp_path_factory.mktemp("jwks") / "jwks.json"
    jwks.write_text(json.dumps({"keys": [keys.jwk_rsa()]}))
    return TokenVerifier(
        IdentityConfig(hs256_secret=HS_SECRET, jwks_file=jwks, issuer=ISSUER, audience=AUDIENCE)
    )


def token(**changes: Any) -> str:
    return sign(claims(iss=ISSUER, **changes), HS_SECRET, "HS256")


# caller -> (token maker, account asked for with ?account_id=, account read or a status)
Caller = tuple[Callable[[Keys], str], str | None, str | int]
CALLERS: dict[str, Caller] = {
    "owner": (lambda k: token(roles=["owner"], privileges=[]), None, "acme"),
    "admin": (lambda k: token(roles=["admin"], privileges=[]), None, "acme"),
    "admin, RS256 from the JWKS": (
        lambda k: sign(claims(iss=ISSUER, privileges=[]), k.rsa, "RS256", kid="rsa-1"),
        None,
        "acme",
    ),
    "privilege holder": (
        lambda k: token(roles=["member"], privileges=["activity_audit"]),
        None,
        "acme",
    ),
    "member": (lambda k: token(roles=["member"], privileges=[]), None, 403),
    "admin naming their own account": (lambda k: token(roles=["admin"]), "acme", "acme"),
    "another account's admin naming acme": (
        lambda k: token(account_id="globex", roles=["admin"]),
        "acme",
        403,
    ),
    "partner admin, managed account": (
        lambda k: token(account_id="partnerco", partner_id="partnerco", roles=["admin"]),
        "managed",
        "managed",
    ),
    "partner admin, managed account with the add-on off": (
        lambda k: token(account_id="partnerco", partner_id="partnerco", roles=["admin"]),
        "managed-off",
        403,
    ),
    "partner admin, another partner's account": (
        lambda k: token(account_id="partnerco", partner_id="partnerco", roles=["admin"]),
        "elsewhere",
        403,
    ),
    "partner admin, a direct customer's account": (
        lambda k: token(account_id="partnerco", partner_id="partnerco", roles=["admin"]),
        "acme",
        403,
    ),
    "partner staff, not admin, managed account": (
        lambda k: token(
            account_id="partnerco", partner_id="partnerco", roles=["member"], privileges=[]
        ),
        "managed",
        403,
    ),
    "admin of an account without the add-on": (
        lambda k: token(account_id="plain", roles=["admin"]),
        None,
        403,
    ),
    "admin of an account the control plane does not know": (
        lambda k: token(account_id="unknown", roles=["admin"]),
        None,
        403,
    ),
    "no token": (lambda k: "", None, 401),
    "expired": (
        lambda k: token(exp=datetime.now(UTC) - timedelta(hours=2), iat=None),
        None,
        401,
    ),
    "not yet valid": (
        lambda k: token(nbf=datetime.now(UTC) + timedelta(hours=1)),
        None,
        401,
    ),
    "forged (another secret)": (
        lambda k: sign(claims(iss=ISSUER), "x" * 40, "HS256"),
        None,
        401,
    ),
    "forged (a key not in the set)": (
        lambda k: sign(claims(iss=ISSUER), k.rsa_other, "RS256", kid="rsa-1"),
        None,
        401,
    ),
    "wrong audience": (lambda k: token(aud="another-service"), None, 401),
    "wrong issuer": (
        lambda k: sign(claims(iss="https://evil.test"), HS_SECRET, "HS256"),
        None,
        401,
    ),
    "alg none": (lambda k: unsigned(claims(iss=ISSUER)), None, 401),
    "HS256 signed with the RSA public key": (
        lambda k: hmac_signed(claims(iss=ISSUER), _public_pem(k), kid="rsa-1"),
        None,
        401,
    ),
}


def _public_pem(keys: Keys) -> bytes:
    return keys.rsa.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("endpoint", sorted(ENDPOINTS))
@pytest.mark.parametrize("who", list(CALLERS))
def test_access_matrix(who: str, endpoint: str, keys: Keys, verifier: TokenVerifier) -> None:
    make_token, asked, expected = CALLERS[who]
    viewer = fakes.make_viewer(verifier, FACTS.get)
    path = ENDPOINTS[endpoint] + (f"?account_id={asked}" if asked else "")
    answer = viewer.get(path, token=make_token(keys) or None)
    if isinstance(expected, int):
        assert answer.status_code == expected, answer.text
        assert answer.json()["error"]["code"] == {401: "invalid_token", 403: "forbidden"}[expected]
        assert viewer.reader.calls == []
        assert viewer.publisher.events == []
        return
    assert answer.status_code == 200, answer.text
    assert {account for account, _ in viewer.reader.calls} == {expected}
    (audit_event,) = viewer.publisher.events
    assert audit_event["tenant_id"] == expected


def test_a_refusal_names_what_is_missing(keys: Keys, verifier: TokenVerifier) -> None:
    viewer = fakes.make_viewer(verifier, FACTS.get)
    member = viewer.get(ENDPOINTS["list"], token=token(roles=["member"], privileges=[]))
    assert "Admin role or the activity audit privilege" in member.json()["error"]["message"]
    no_add_on = viewer.get(ENDPOINTS["list"], token=token(account_id="plain", roles=["admin"]))
    assert "not enabled" in no_add_on.json()["error"]["message"]


def test_naming_an_account_reveals_nothing_about_whether_it_exists(
    keys: Keys, verifier: TokenVerifier
) -> None:
    viewer = fakes.make_viewer(verifier, FACTS.get)
    partner = token(account_id="partnerco", partner_id="partnerco", roles=["admin"])
    existing = viewer.get(f"{ENDPOINTS['list']}?account_id=elsewhere", token=partner)
    missing = viewer.get(f"{ENDPOINTS['list']}?account_id=no-such-account", token=partner)
    assert existing.status_code == missing.status_code == 403
    assert existing.json()["error"]["message"].replace("elsewhere", "X") == missing.json()["error"][
        "message"
    ].replace("no-such-account", "X")
