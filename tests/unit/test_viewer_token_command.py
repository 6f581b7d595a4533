"""``auditlog viewer token``: mints a development token the viewer accepts when the
development secret is configured, and refuses (one line, exit 2) otherwise."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest

from auditlog import wiring
from auditlog.cli import main
from auditlog.settings import AuditlogSettings
from tests.unit.viewer_keys import DEV_SECRET, HS_SECRET
from viewer.identity import IdentityConfigError, InvalidToken, TokenVerifier
from viewer.principal import Principal

BASE = ["viewer", "token", "--account", "acme", "--user", "u-1"]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in AuditlogSettings.variables():
        if name.startswith("AUDITLOG_VIEWER_"):
            monkeypatch.delenv(name, raising=False)


@pytest.fixture
def dev_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLOG_VIEWER_DEV_SECRET", DEV_SECRET)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    out, err = capsys.readouterr()
    return code, out, err


def verifier() -> TokenVerifier:
    return wiring.token_verifier(AuditlogSettings())


@pytest.mark.usefixtures("dev_secret")
def test_the_minted_token_names_who_was_asked_for(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        [
            *BASE,
            "--role",
            "admin",
            "--privilege",
            "activity_audit",
            "--privilege",
            "billing",
            "--partner",
            "p-1",
            "--email",
            "ada@example.com",
            "--name",
            "Ada L",
        ],
        capsys,
    )
    assert (code, err) == (0, "")
    assert verifier().verify(out.strip()) == Principal(
        user_id="u-1",
        account_id="acme",
        email="ada@example.com",
        name="Ada L",
        roles=frozenset({"admin"}),
        privileges=frozenset({"activity_audit", "billing"}),
        partner_id="p-1",
    )


@pytest.mark.usefixtures("dev_secret")
def test_the_token_follows_the_configured_claim_names_and_audience(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITLOG_VIEWER_CLAIM_ACCOUNT", "tenant")
    monkeypatch.setenv("AUDITLOG_VIEWER_JWT_AUDIENCE", "audit-ui")
    code, out, _ = run([*BASE, "--role", "member"], capsys)
    assert code == 0
    assert verifier().verify(out.strip()).roles == {"member"}
    monkeypatch.setenv("AUDITLOG_VIEWER_JWT_AUDIENCE", "other")
    with pytest.raises(InvalidToken, match="wrong audience"):
        verifier().verify(out.strip())


def test_without_a_development_secret_it_refuses(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run([*BASE, "--role", "owner"], capsys)
    assert (code, out) == (2, "")
    assert err == (
        "auditlog: development tokens are disabled: set AUDITLOG_VIEWER_DEV_SECRET "
        "(development only)\n"
    )


@pytest.mark.usefixtures("dev_secret")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--account", "a b"], "'a b' is not a valid id"),
        (["--user", "u;1"], "'u;1' is not a valid id"),
        (["--partner", "../p"], "'../p' is not a valid id"),
        (["--privilege", "all privileges"], "is not a valid id"),
        (["--ttl-s", "0"], "--ttl-s must be between 1 and 86400"),
        (["--ttl-s", "100000"], "--ttl-s must be between 1 and 86400"),
    ],
)
def test_invalid_ids_and_ttls_are_refused(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*BASE, "--role", "admin", *extra], capsys)
    assert (code, out) == (2, "")
    assert message in err
    assert err.count("\n") == 1


@pytest.mark.usefixtures("dev_secret")
def test_an_unknown_role_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main([*BASE, "--role", "superuser"])
    assert caught.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_a_short_development_secret_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AUDITLOG_VIEWER_DEV_SECRET", "short")
    code, out, err = run([*BASE, "--role", "admin"], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("auditlog: AUDITLOG_VIEWER_DEV_SECRET is shorter than 32 bytes")


def test_identity_config_reads_every_viewer_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "JWT_SECRET": HS_SECRET,
        "JWKS_URL": "https://id.example.com/jwks",
        "JWT_ISSUER": "https://id.example.com",
        "JWT_AUDIENCE": "audit-ui",
        "CLAIM_USER_ID": "uid",
        "CLAIM_EMAIL": "mail",
        "CLAIM_NAME": "display",
        "CLAIM_ACCOUNT": "tenant",
        "CLAIM_ROLES": "groups",
        "CLAIM_PRIVILEGES": "scope",
        "CLAIM_PARTNER": "partner",
        "JWT_LEEWAY_S": "10",
        "DEV_SECRET": DEV_SECRET,
    }.items():
        monkeypatch.setenv(f"AUDITLOG_VIEWER_{name}", value)
    config = wiring.identity_config(AuditlogSettings())
    assert (config.hs256_secret, config.dev_secret) == (HS_SECRET, DEV_SECRET)
    assert (config.jwks_url, config.jwks_file) == ("https://id.example.com/jwks", None)
    assert (config.issuer, config.audience, config.leeway_s) == (
        "https://id.example.com",
        "audit-ui",
        10,
    )
    assert list(config.claim_names.values()) == [
        "uid",
        "mail",
        "display",
        "tenant",
        "groups",
        "scope",
        "partner",
    ]


def test_identity_config_problems_name_the_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AUDITLOG_VIEWER_JWKS_URL", "http://id.example.com/jwks")
    monkeypatch.setenv("AUDITLOG_VIEWER_JWT_ISSUER", "auditlog-dev")
    with pytest.raises(IdentityConfigError) as caught:
        wiring.identity_config(AuditlogSettings())
    assert str(caught.value).splitlines() == [
        "AUDITLOG_VIEWER_JWKS_URL must be an https URL (plain http only to a loopback host)",
        "AUDITLOG_VIEWER_JWT_ISSUER 'auditlog-dev' is reserved for development tokens",
    ]


def test_a_verifier_needs_some_key() -> None:
    with pytest.raises(IdentityConfigError, match="AUDITLOG_VIEWER_JWKS_URL"):
        wiring.token_verifier(AuditlogSettings())


@pytest.mark.usefixtures("dev_secret")
def test_a_sign_in_link_carries_a_short_lived_one_time_token(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = run([*BASE, "--role", "admin", "--sign-in", "http://127.0.0.1:8080/"], capsys)
    assert (code, err) == (0, "")
    base, _, query = out.strip().partition("?")
    assert base == "http://127.0.0.1:8080/sign-in"
    (token,) = parse_qs(query)["token"]
    signed = verifier().verify_sign_in(token)
    assert signed.principal.user_id == "u-1"
    assert signed.expires_at - time.time() <= 300


@pytest.mark.usefixtures("dev_secret")
@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sign-in", "ftp://host"], "--sign-in takes the viewer's http:// or https:// address"),
        (["--sign-in", "http://h", "--ttl-s", "3600"], "lives at most"),
    ],
)
def test_a_sign_in_link_refuses_a_bad_address_or_a_long_life(
    extra: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run([*BASE, "--role", "admin", *extra], capsys)
    assert (code, out) == (2, "")
    assert message in err
