"""The page's session cookie and its sign-in ledger: pure, with a fake clock."""

from __future__ import annotations

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from viewer.dev_tokens import mint_development_token
from viewer.identity import DEV_ISSUER, IdentityConfig, InvalidToken, TokenVerifier
from viewer.principal import Principal
from viewer.session import (
    InvalidSession,
    SessionCodec,
    SessionTooLarge,
    SignInLedger,
    session_key,
)

KEY = b"s" * 32
PRINCIPAL = Principal(
    "u-1",
    "acme",
    email="kim@acme.test",
    name="Kim <b>",
    roles=frozenset({"admin"}),
    privileges=frozenset({"activity_audit"}),
    partner_id="partnerco",
)


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_a_session_reads_back_as_issued_until_it_expires() -> None:
    clock = Clock()
    codec = SessionCodec(KEY, ttl_s=60, clock=clock)
    value, session = codec.issue(PRINCIPAL)
    assert codec.read(value) == session
    assert session.principal == PRINCIPAL
    clock.now += 59
    assert codec.read(value).session_id == session.session_id
    clock.now += 1
    with pytest.raises(InvalidSession):
        codec.read(value)


def test_a_session_never_outlives_its_cap() -> None:
    clock = Clock()
    codec = SessionCodec(KEY, ttl_s=600, clock=clock)
    _, session = codec.issue(PRINCIPAL, not_after=clock.now + 10)
    assert session.expires_at == clock.now + 10


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=255))
def test_any_changed_byte_invalidates_the_session(position: int, byte: int) -> None:
    codec = SessionCodec(KEY, ttl_s=60)
    value, _ = codec.issue(PRINCIPAL)
    position %= len(value)
    changed = value[:position] + chr(byte) + value[position + 1 :]
    if changed == value:
        return
    with pytest.raises(InvalidSession):
        codec.read(changed)


def test_another_key_does_not_read_the_session() -> None:
    value, _ = SessionCodec(KEY, ttl_s=60).issue(PRINCIPAL)
    with pytest.raises(InvalidSession):
        SessionCodec(b"t" * 32, ttl_s=60).read(value)


def test_the_csrf_token_belongs_to_one_session() -> None:
    codec = SessionCodec(KEY, ttl_s=60)
    _, first = codec.issue(PRINCIPAL)
    _, second = codec.issue(PRINCIPAL)
    token = codec.csrf_token(first)
    assert codec.csrf_matches(first, token)
    assert not codec.csrf_matches(second, token)
    assert not codec.csrf_matches(first, None)
    assert not codec.csrf_matches(first, "")


def test_a_principal_too_large_for_a_cookie_is_refused() -> None:
    crowded = Principal("u", "acme", roles=frozenset(f"role-{n:04}" for n in range(400)))
    with pytest.raises(SessionTooLarge):
        SessionCodec(KEY, ttl_s=60).issue(crowded)


def test_the_session_key_is_derived_from_the_cursor_key_unless_set() -> None:
    derived = session_key(None, b"c" * 32)
    assert derived != b"c" * 32
    assert len(derived) == 32
    assert session_key(None, b"c" * 32) == derived
    assert session_key(b"x" * 40, b"c" * 32) == b"x" * 40
    with pytest.raises(ValueError, match="32 bytes"):
        SessionCodec(b"short", ttl_s=60)


def test_the_ledger_accepts_a_token_once_until_it_expires() -> None:
    clock = Clock()
    ledger = SignInLedger(clock=clock)
    assert ledger.first_use("a", clock.now + 30) is True
    assert ledger.first_use("a", clock.now + 30) is False
    clock.now += 31
    assert ledger.first_use("a", clock.now + 30) is True  # expired: the verifier refuses it


def test_a_full_ledger_refuses_rather_than_forgets() -> None:
    clock = Clock()
    ledger = SignInLedger(capacity=2, clock=clock)
    assert ledger.first_use("a", clock.now + 30)
    assert ledger.first_use("b", clock.now + 60)
    assert ledger.first_use("c", clock.now + 30) is None
    assert ledger.first_use("a", clock.now + 30) is False
    clock.now += 31
    assert ledger.first_use("c", clock.now + 30) is True


def test_a_sign_in_token_needs_a_jti() -> None:
    config = IdentityConfig(dev_secret="d" * 40)
    verifier = TokenVerifier(config)
    token = mint_development_token(config, account_id="acme", user_id="u-1", roles=["admin"])
    signed = verifier.verify_sign_in(token)
    assert signed.principal.user_id == "u-1"
    assert signed.token_id
    claims = jwt.decode(token, options={"verify_signature": False})
    del claims["jti"]
    bare = jwt.encode(claims, "d" * 40, algorithm="HS256")
    assert verifier.verify(bare).user_id == "u-1"
    with pytest.raises(InvalidToken, match="jti"):
        verifier.verify_sign_in(bare)
    assert claims["iss"] == DEV_ISSUER
