"""Bearer tokens: what the viewer accepts (HS256 with the shared secret, RS256/ES256 with a
key of the provider's JWKS file or URL, development tokens while their secret is set), and
every kind of token it must refuse, each with its short reason."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import RSAAlgorithm

from tests.unit.http_receiver import closed_port
from tests.unit.viewer_keys import (
    DEV_SECRET,
    HS_SECRET,
    JwksServer,
    Keys,
    claims,
    hmac_signed,
    make_keys,
    sign,
    unsigned,
)
from viewer.dev_tokens import DevTokensDisabled, mint_development_token
from viewer.identity import IdentityConfig, IdentityConfigError, InvalidToken, TokenVerifier
from viewer.principal import Principal

ISSUER = "https://id.example.com"


@pytest.fixture(scope="module")
def keys() -> Keys:
    return make_keys()


@pytest.fixture
def jwks_file(tmp_path: Path, keys: Keys) -> Path:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks()))
    return path


@pytest.fixture
def verifier(jwks_file: Path) -> TokenVerifier:
    """HS256 secret, JWKS file, issuer, development secret: everything configured."""
    return TokenVerifier(
        IdentityConfig(
            hs256_secret=HS_SECRET, jwks_file=jwks_file, issuer=ISSUER, dev_secret=DEV_SECRET
        )
    )


def refused(verifier: TokenVerifier, token: str) -> str:
    with pytest.raises(InvalidToken) as caught:
        verifier.verify(token)
    reason = str(caught.value)
    if token:
        assert token not in reason
        assert token.split(".", maxsplit=1)[0] not in reason
    return reason


# -- accepted --------------------------------------------------------------------------


def test_hs256_token_names_the_principal(verifier: TokenVerifier) -> None:
    token = sign(claims(iss=ISSUER, partner_id="p-9"), HS_SECRET, "HS256")
    assert verifier.verify(token) == Principal(
        user_id="u-1",
        account_id="acme",
        email="ada@example.com",
        name="Ada",
        roles=frozenset({"admin"}),
        privileges=frozenset({"activity_audit"}),
        partner_id="p-9",
    )


def test_rs256_and_es256_with_keys_of_the_jwks_file(verifier: TokenVerifier, keys: Keys) -> None:
    rs = sign(claims(iss=ISSUER), keys.rsa, "RS256", kid="rsa-1")
    es = sign(claims(iss=ISSUER, sub="u-2"), keys.ec, "ES256", kid="ec-1")
    assert verifier.verify(rs).user_id == "u-1"
    assert verifier.verify(es).user_id == "u-2"


def test_a_roles_string_is_one_role_and_a_privileges_string_is_split_lower_case(
    verifier: TokenVerifier,
) -> None:
    token = sign(
        claims(iss=ISSUER, roles="ADMIN", privileges="Activity_Audit other"),
        HS_SECRET,
        "HS256",
    )
    principal = verifier.verify(token)
    assert principal.roles == {"admin"}
    assert principal.privileges == {"activity_audit", "other"}


@pytest.mark.parametrize("roles", ["Read-only admin", "member admin", ["Read-only admin"]])
def test_a_role_name_holding_admin_as_a_word_grants_nothing(
    verifier: TokenVerifier, roles: Any
) -> None:
    principal = verifier.verify(sign(claims(iss=ISSUER, roles=roles), HS_SECRET, "HS256"))
    assert principal.roles == frozenset()


def test_a_user_id_too_long_for_the_audit_event_is_refused(verifier: TokenVerifier) -> None:
    assert verifier.verify(sign(claims(iss=ISSUER, sub="u" * 256), HS_SECRET, "HS256"))
    with pytest.raises(InvalidToken, match="claim sub is too long"):
        verifier.verify(sign(claims(iss=ISSUER, sub="u" * 257), HS_SECRET, "HS256"))


def test_absent_roles_privileges_email_and_partner_are_empty(verifier: TokenVerifier) -> None:
    token = sign(
        claims(iss=ISSUER, roles=None, privileges=None, email=None, name=None),
        HS_SECRET,
        "HS256",
    )
    principal = verifier.verify(token)
    assert (principal.roles, principal.privileges) == (frozenset(), frozenset())
    assert (principal.email, principal.name, principal.partner_id) == (None, None, None)


def test_expiry_within_the_leeway_is_accepted(verifier: TokenVerifier) -> None:
    past = datetime.now(UTC) - timedelta(seconds=5)
    assert verifier.verify(sign(claims(iss=ISSUER, exp=past), HS_SECRET, "HS256"))


def test_a_token_without_kid_is_accepted_when_the_set_holds_one_key(
    tmp_path: Path, keys: Keys
) -> None:
    path = tmp_path / "one.json"
    path.write_text(json.dumps({"keys": [keys.jwk_ec()]}))
    one = TokenVerifier(IdentityConfig(jwks_file=path))
    assert one.verify(sign(claims(), keys.ec, "ES256")).account_id == "acme"


def test_claim_names_are_configurable(keys: Keys) -> None:
    config = IdentityConfig(
        hs256_secret=HS_SECRET,
        claim_user_id="uid",
        claim_email="mail",
        claim_name="display_name",
        claim_account="tenant",
        claim_roles="groups",
        claim_privileges="scope",
        claim_partner="org_partner",
    )
    token = sign(
        {
            "uid": "u-7",
            "mail": "bo@example.com",
            "display_name": "Bo",
            "tenant": "t-1",
            "groups": ["owner"],
            "scope": "activity_audit read",
            "org_partner": "p-1",
            "sub": "ignored",
            "account_id": "ignored",
            "aud": "auditlog-viewer",
            "exp": datetime.now(UTC) + timedelta(hours=1),
        },
        HS_SECRET,
        "HS256",
    )
    assert TokenVerifier(config).verify(token) == Principal(
        user_id="u-7",
        account_id="t-1",
        email="bo@example.com",
        name="Bo",
        roles=frozenset({"owner"}),
        privileges=frozenset({"activity_audit", "read"}),
        partner_id="p-1",
    )
    without = sign(claims(), HS_SECRET, "HS256")  # has account_id, not tenant
    assert refused(TokenVerifier(config), without) == "missing claim uid"


def test_audience_is_configurable() -> None:
    config = IdentityConfig(hs256_secret=HS_SECRET, audience="audit-ui")
    ok = sign(claims(aud="audit-ui"), HS_SECRET, "HS256")
    assert TokenVerifier(config).verify(ok).user_id == "u-1"
    assert refused(TokenVerifier(config), sign(claims(), HS_SECRET, "HS256")) == "wrong audience"


# -- refused ---------------------------------------------------------------------------

TokenMaker = Callable[[Keys], str]


def _public_pem(keys: Keys) -> bytes:
    return keys.rsa.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def _ago(seconds: int) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


BAD_TOKENS: list[tuple[str, TokenMaker, str]] = [
    ("missing", lambda k: "", "missing token"),
    ("garbage", lambda k: "not-a-token", "malformed token"),
    ("garbage segments", lambda k: "abc.def.ghi", "malformed token"),
    (
        "expired",
        lambda k: sign(claims(iss=ISSUER, exp=_ago(3600)), HS_SECRET, "HS256"),
        "expired",
    ),
    (
        "not yet valid",
        lambda k: sign(claims(iss=ISSUER, nbf=_ago(-3600)), HS_SECRET, "HS256"),
        "not yet valid",
    ),
    (
        "wrong issuer",
        lambda k: sign(claims(iss="https://evil.example"), k.rsa, "RS256", kid="rsa-1"),
        "wrong issuer",
    ),
    (
        "no issuer though one is configured",
        lambda k: sign(claims(), HS_SECRET, "HS256"),
        "missing claim iss",
    ),
    (
        "wrong audience",
        lambda k: sign(claims(iss=ISSUER, aud="billing"), k.ec, "ES256", kid="ec-1"),
        "wrong audience",
    ),
    (
        "no audience",
        lambda k: sign(claims(iss=ISSUER, aud=None), HS_SECRET, "HS256"),
        "missing claim aud",
    ),
    (
        "no expiry",
        lambda k: sign(claims(iss=ISSUER, exp=None), HS_SECRET, "HS256"),
        "missing claim exp",
    ),
    (
        "forged RS256 signature (another key, same kid)",
        lambda k: sign(claims(iss=ISSUER), k.rsa_other, "RS256", kid="rsa-1"),
        "signature does not verify",
    ),
    (
        "forged HS256 signature (another secret)",
        lambda k: sign(claims(iss=ISSUER), "x" * 40, "HS256"),
        "signature does not verify",
    ),
    (
        "tampered payload",
        lambda k: _tampered(sign(claims(iss=ISSUER), k.rsa, "RS256", kid="rsa-1")),
        "signature does not verify",
    ),
    ("alg none", lambda k: unsigned(claims(iss=ISSUER)), "algorithm none refused"),
    ("alg None", lambda k: unsigned(claims(iss=ISSUER), "None"), "algorithm none refused"),
    (
        "HS256 keyed with the provider's RSA public key",
        lambda k: hmac_signed(claims(iss=ISSUER), _public_pem(k), kid="rsa-1"),
        "signature does not verify",
    ),
    (
        "unknown algorithm",
        lambda k: sign(claims(iss=ISSUER), k.rsa, "PS256", kid="rsa-1"),
        "algorithm not accepted",
    ),
    (
        "HS512",
        lambda k: sign(claims(iss=ISSUER), HS_SECRET * 2, "HS512"),
        "algorithm not accepted",
    ),
    (
        "unknown kid",
        lambda k: sign(claims(iss=ISSUER), k.rsa, "RS256", kid="rsa-404"),
        "unknown key id",
    ),
    (
        "no kid, several keys",
        lambda k: sign(claims(iss=ISSUER), k.rsa, "RS256"),
        "the token names no key id and the key set holds several keys",
    ),
    (
        "wrong key type: ES256 naming the RSA key",
        lambda k: sign(claims(iss=ISSUER), k.ec, "ES256", kid="rsa-1"),
        "the key does not fit the token's algorithm",
    ),
    (
        "wrong key type: RS256 naming the EC key",
        lambda k: sign(claims(iss=ISSUER), k.rsa, "RS256", kid="ec-1"),
        "the key does not fit the token's algorithm",
    ),
    (
        "missing user id",
        lambda k: sign(claims(iss=ISSUER, sub=None), HS_SECRET, "HS256"),
        "missing claim sub",
    ),
    (
        "missing account",
        lambda k: sign(claims(iss=ISSUER, account_id=None), HS_SECRET, "HS256"),
        "missing claim account_id",
    ),
    (
        "account that is not an account id",
        lambda k: sign(claims(iss=ISSUER, account_id="acme; drop"), HS_SECRET, "HS256"),
        "claim account_id is not an account id",
    ),
    (
        "account that is not a string",
        lambda k: sign(claims(iss=ISSUER, account_id=["acme"]), HS_SECRET, "HS256"),
        "claim account_id is not a string",
    ),
    (
        "roles that are an object",
        lambda k: sign(claims(iss=ISSUER, roles={"admin": True}), HS_SECRET, "HS256"),
        "claim roles is not a list nor a string",
    ),
    (
        "partner that is not an account id",
        lambda k: sign(claims(iss=ISSUER, partner_id="../p"), HS_SECRET, "HS256"),
        "claim partner_id is not an account id",
    ),
    (
        "development issuer on a token of the provider's keys",
        lambda k: sign(claims(iss="auditlog-dev"), k.rsa, "RS256", kid="rsa-1"),
        "wrong issuer",
    ),
    (
        "development issuer signed with the production secret",
        lambda k: sign(claims(iss="auditlog-dev"), HS_SECRET, "HS256"),
        "signature does not verify",
    ),
    ("too large", lambda k: "a" * 20_000, "token too large"),
]


def _tampered(token: str) -> str:
    head, _, signature = token.split(".")
    other = sign(claims(iss=ISSUER, account_id="other"), "y" * 40, "HS256").split(".")[1]
    return f"{head}.{other}.{signature}"


@pytest.mark.parametrize(
    ("make", "reason"),
    [pytest.param(make, reason, id=label) for label, make, reason in BAD_TOKENS],
)
def test_bad_tokens_are_refused_with_their_reason(
    verifier: TokenVerifier, keys: Keys, make: TokenMaker, reason: str
) -> None:
    assert refused(verifier, make(keys)) == reason


def test_hs256_is_refused_without_a_shared_secret_even_keyed_with_the_public_key(
    jwks_file: Path, keys: Keys
) -> None:
    only_keys = TokenVerifier(IdentityConfig(jwks_file=jwks_file))
    confused = hmac_signed(claims(), _public_pem(keys), kid="rsa-1")
    assert refused(only_keys, confused) == "algorithm not accepted"
    assert refused(only_keys, sign(claims(), HS_SECRET, "HS256")) == "algorithm not accepted"


def test_rs256_is_refused_without_a_key_set() -> None:
    only_secret = TokenVerifier(IdentityConfig(hs256_secret=HS_SECRET))
    token = sign(claims(), make_keys().ec, "ES256", kid="ec-1")
    assert refused(only_secret, token) == "algorithm not accepted"


def test_a_jwk_whose_own_alg_differs_from_the_token_is_refused(tmp_path: Path, keys: Keys) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [keys.jwk_rsa(alg="RS384")]}))
    refusing = TokenVerifier(IdentityConfig(jwks_file=path))
    token = sign(claims(), keys.rsa, "RS256", kid="rsa-1")
    assert refused(refusing, token) == "the key does not fit the token's algorithm"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_a_weak_rsa_key_in_the_set_verifies_nothing(tmp_path: Path) -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    jwk = {**RSAAlgorithm.to_jwk(weak.public_key(), as_dict=True), "kid": "weak"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    token = sign(claims(), weak, "RS256", kid="weak")
    assert refused(TokenVerifier(IdentityConfig(jwks_file=path)), token) == "the key is too weak"


def test_private_keys_in_the_set_are_ignored(tmp_path: Path, keys: Keys) -> None:
    private = {**RSAAlgorithm.to_jwk(keys.rsa, as_dict=True), "kid": "priv"}
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [private, keys.jwk_ec()]}))
    token = sign(claims(), keys.rsa, "RS256", kid="priv")
    assert refused(TokenVerifier(IdentityConfig(jwks_file=path)), token) == "unknown key id"


def test_the_jwks_file_is_read_again_when_it_changes(
    jwks_file: Path, keys: Keys, verifier: TokenVerifier
) -> None:
    rotated = sign(claims(iss=ISSUER), keys.rsa, "RS256", kid="rsa-2")
    assert refused(verifier, rotated) == "unknown key id"
    jwks_file.write_text(json.dumps({"keys": [keys.jwk_rsa("rsa-2")]}))
    stat = jwks_file.stat()
    os.utime(jwks_file, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert verifier.verify(rotated).user_id == "u-1"
    old = sign(claims(iss=ISSUER), keys.rsa, "RS256", kid="rsa-1")
    assert refused(verifier, old) == "unknown key id"


# -- JWKS URL --------------------------------------------------------------------------


@pytest.fixture
def jwks_server(keys: Keys) -> Iterator[JwksServer]:
    with JwksServer(keys.jwks()).running() as server:
        yield server


def _url_verifier(url: str, **changes: Any) -> TokenVerifier:
    return TokenVerifier(replace(IdentityConfig(jwks_url=url), **changes))


def test_keys_from_a_jwks_url_are_fetched_once_and_cached(
    jwks_server: JwksServer, keys: Keys
) -> None:
    verifier = _url_verifier(jwks_server.url)
    assert verifier.verify(sign(claims(), keys.rsa, "RS256", kid="rsa-1")).user_id == "u-1"
    assert verifier.verify(sign(claims(), keys.ec, "ES256", kid="ec-1")).user_id == "u-1"
    assert jwks_server.requests == 1


def test_an_unknown_kid_fetches_the_set_anew_to_find_a_rotated_key(
    jwks_server: JwksServer, keys: Keys
) -> None:
    verifier = _url_verifier(jwks_server.url, jwks_refetch_cooldown_s=0.0)
    assert verifier.verify(sign(claims(), keys.rsa, "RS256", kid="rsa-1"))
    jwks_server.document = {"keys": [keys.jwk_rsa("rsa-2")]}
    assert verifier.verify(sign(claims(), keys.rsa, "RS256", kid="rsa-2"))
    assert jwks_server.requests == 2


def test_unknown_kids_fetch_again_at_most_once_per_cooldown(
    jwks_server: JwksServer, keys: Keys
) -> None:
    verifier = _url_verifier(jwks_server.url, jwks_refetch_cooldown_s=3600.0)
    for kid in ("made-up-1", "made-up-2", "made-up-3"):
        token = sign(claims(), keys.rsa, "RS256", kid=kid)
        assert refused(verifier, token) == "unknown key id"
    assert jwks_server.requests == 2  # the first fetch, then one refetch


def test_a_jwks_url_that_does_not_answer_is_a_refusal_and_is_logged(
    keys: Keys, caplog: pytest.LogCaptureFixture
) -> None:
    sock = closed_port()
    try:
        port = sock.getsockname()[1]
        verifier = _url_verifier(f"http://127.0.0.1:{port}/jwks.json")
        token = sign(claims(), keys.rsa, "RS256", kid="rsa-1")
        with caplog.at_level(logging.WARNING, logger="auditlog.viewer.jwks"):
            reason = refused(verifier, token)
    finally:
        sock.close()
    assert reason == "keys of the identity provider could not be fetched"
    assert any("could not be fetched" in record.getMessage() for record in caplog.records)


def test_a_jwks_url_answering_an_error_or_not_json_is_a_refusal(
    jwks_server: JwksServer, keys: Keys
) -> None:
    verifier = _url_verifier(jwks_server.url, jwks_refetch_cooldown_s=0.0)
    token = sign(claims(), keys.rsa, "RS256", kid="rsa-1")
    jwks_server.status = 500
    assert refused(verifier, token) == "keys of the identity provider could not be fetched"
    jwks_server.status = 200
    jwks_server.document = {"keys": "nope"}
    assert refused(verifier, token) == "keys of the identity provider could not be fetched"


@pytest.mark.parametrize(
    "url",
    ["http://id.example.com/jwks.json", "file:///etc/passwd", "ftp://127.0.0.1/x", "https://"],
)
def test_jwks_urls_must_be_https_except_to_loopback(url: str) -> None:
    with pytest.raises(IdentityConfigError, match="jwks_url"):
        TokenVerifier(IdentityConfig(jwks_url=url))


@pytest.mark.parametrize("url", ["https://id.example.com/jwks", "http://localhost:8080/jwks"])
def test_https_and_loopback_http_jwks_urls_are_accepted(url: str) -> None:
    assert IdentityConfig(jwks_url=url).problems() == []


# -- development tokens ----------------------------------------------------------------


def test_a_development_token_verifies_while_the_development_secret_is_set(
    verifier: TokenVerifier,
) -> None:
    token = mint_development_token(
        verifier.config,
        account_id="acme",
        user_id="dev-1",
        roles=["Member"],
        privileges=["activity_audit"],
        partner_id="p-1",
        email="dev@example.com",
        name="Dev",
    )
    assert verifier.verify(token) == Principal(
        user_id="dev-1",
        account_id="acme",
        email="dev@example.com",
        name="Dev",
        roles=frozenset({"member"}),
        privileges=frozenset({"activity_audit"}),
        partner_id="p-1",
    )


def test_development_tokens_are_refused_without_or_with_another_development_secret() -> None:
    minted = mint_development_token(
        IdentityConfig(dev_secret=DEV_SECRET), account_id="acme", user_id="u", roles=["admin"]
    )
    without = TokenVerifier(IdentityConfig(hs256_secret=HS_SECRET))
    assert refused(without, minted) == "development tokens are not accepted"
    other = TokenVerifier(IdentityConfig(dev_secret="o" * 40))
    assert refused(other, minted) == "signature does not verify"


def test_a_development_token_is_refused_once_expired() -> None:
    config = IdentityConfig(dev_secret=DEV_SECRET)
    token = mint_development_token(config, account_id="acme", user_id="u", ttl_s=60, now=_ago(3600))
    assert refused(TokenVerifier(config), token) == "expired"


def test_minting_needs_the_development_secret() -> None:
    with pytest.raises(DevTokensDisabled):
        mint_development_token(
            IdentityConfig(hs256_secret=HS_SECRET), account_id="acme", user_id="u"
        )


# -- configuration ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        (IdentityConfig(hs256_secret="short"), "shorter than 32 bytes"),
        (IdentityConfig(dev_secret="short"), "shorter than 32 bytes"),
        (IdentityConfig(hs256_secret="-----BEGIN PUBLIC KEY-----" + "x" * 40), "PEM key"),
        (IdentityConfig(hs256_secret=HS_SECRET, dev_secret=HS_SECRET), "must differ"),
        (IdentityConfig(hs256_secret=HS_SECRET, issuer="auditlog-dev"), "reserved"),
        (
            IdentityConfig(jwks_file=Path("k.json"), jwks_url="https://id.example.com/k"),
            "not both",
        ),
        (IdentityConfig(hs256_secret=HS_SECRET, leeway_s=3600), "leeway_s"),
        (IdentityConfig(hs256_secret=HS_SECRET, claim_roles="sub"), "same claim"),
        (IdentityConfig(hs256_secret=HS_SECRET, audience=""), "audience is empty"),
        (IdentityConfig(), "no way to verify tokens"),
    ],
)
def test_incoherent_configurations_are_refused(config: IdentityConfig, problem: str) -> None:
    with pytest.raises(IdentityConfigError, match=problem):
        TokenVerifier(config)


def test_an_unreadable_jwks_file_is_a_configuration_error(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text('{"keys": []}')
    with pytest.raises(IdentityConfigError, match="JWKS file"):
        TokenVerifier(IdentityConfig(jwks_file=path))
    with pytest.raises(IdentityConfigError, match="JWKS file"):
        TokenVerifier(IdentityConfig(jwks_file=tmp_path / "absent.json"))


def test_secrets_stay_out_of_the_configuration_repr() -> None:
    text = repr(IdentityConfig(hs256_secret=HS_SECRET, dev_secret=DEV_SECRET))
    assert HS_SECRET not in text
    assert DEV_SECRET not in text


def test_only_development_tokens_carry_the_development_issuer(jwks_file: Path, keys: Keys) -> None:
    """Without an issuer setting nothing else checks ``iss``: the verifier itself refuses
    the development issuer on any token not verified as a development token."""
    no_issuer = TokenVerifier(
        IdentityConfig(hs256_secret=HS_SECRET, jwks_file=jwks_file, dev_secret=DEV_SECRET)
    )
    provider = sign(claims(iss="auditlog-dev"), keys.rsa, "RS256", kid="rsa-1")
    assert refused(no_issuer, provider) == "wrong issuer"
    shared = sign(claims(iss="auditlog-dev"), HS_SECRET, "HS256")
    assert refused(no_issuer, shared) == "signature does not verify"
    assert no_issuer.verify(sign(claims(iss="anyone"), HS_SECRET, "HS256")).user_id == "u-1"
