"""SecretBox: sealed secrets round-trip, keys rotate, references resolve, and a secret never
reaches the model's JSON or ``show``."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from auditlog.commands import destination_view as view
from sinks.destinations.model import Destination, SecretValue, WebhookTarget
from sinks.destinations.references import ReferencePolicy
from sinks.destinations.secrets import SecretBox, SecretError, generate_key

PLAINTEXT = "whsec-do-not-print-7f3a91"
REFS = ReferencePolicy()


def test_a_sealed_secret_opens_to_what_was_sealed() -> None:
    box = SecretBox([generate_key()], {}, references=REFS)
    sealed = box.seal(PLAINTEXT)
    assert sealed.encrypted is not None
    assert PLAINTEXT not in sealed.encrypted
    assert box.open(sealed) == PLAINTEXT.encode()


def test_rotation_new_secrets_use_the_first_key_old_ones_open_with_any() -> None:
    old_key, new_key = generate_key(), generate_key()
    old_box = SecretBox([old_key], {}, references=REFS)
    sealed_before = old_box.seal(PLAINTEXT)

    rotated = SecretBox.from_setting(f"{new_key}, {old_key}", {}, references=REFS)
    assert rotated.open(sealed_before) == PLAINTEXT.encode()
    sealed_after = rotated.seal(PLAINTEXT)
    assert SecretBox([new_key], {}, references=REFS).open(sealed_after) == PLAINTEXT.encode()
    with pytest.raises(SecretError):
        old_box.open(sealed_after)


def test_a_wrong_key_says_what_to_check_without_the_secret() -> None:
    sealed = SecretBox([generate_key()], {}, references=REFS).seal(PLAINTEXT)
    with pytest.raises(SecretError, match="does not open with any AUDITLOG_SECRETS_KEY") as info:
        SecretBox([generate_key()], {}, references=REFS).open(sealed)
    assert PLAINTEXT not in str(info.value)
    assert "rotated" in str(info.value)


def test_a_malformed_key_names_the_setting_and_keygen() -> None:
    with pytest.raises(SecretError, match="auditlog destinations keygen"):
        SecretBox.from_setting("not-a-fernet-key", {}, references=REFS)


def test_sealing_without_a_key_explains_both_ways_out() -> None:
    box = SecretBox.from_setting(None, {}, references=REFS)
    with pytest.raises(SecretError, match="AUDITLOG_SECRETS_KEY") as info:
        box.seal(PLAINTEXT)
    assert "env:NAME" in str(info.value)
    with pytest.raises(SecretError, match="needs AUDITLOG_SECRETS_KEY"):
        box.open(SecretValue(encrypted="gAAAAA"))


def test_references_are_read_from_the_environment_given() -> None:
    box = SecretBox([], {"AUDITLOG_DEST_SECRET_HOOK": PLAINTEXT}, references=REFS)
    assert box.open(SecretValue(ref="env:AUDITLOG_DEST_SECRET_HOOK")) == PLAINTEXT.encode()
    with pytest.raises(SecretError, match="AUDITLOG_DEST_SECRET_MISSING is not set"):
        box.open(SecretValue(ref="env:AUDITLOG_DEST_SECRET_MISSING"))


def _webhook(sealed: SecretValue, headers: dict[str, str]) -> Destination:
    now = datetime.now(UTC)
    return Destination(
        id="webhook-secret",
        tenant_id="acme",
        target=WebhookTarget(
            url="https://hooks.example.com/in", signing_secret=sealed, headers=headers
        ),
        created_at=now,
        updated_at=now,
    )


def test_neither_the_model_json_nor_show_holds_the_secret() -> None:
    sealed = SecretBox([generate_key()], {}, references=REFS).seal(PLAINTEXT)
    destination = _webhook(sealed, {"X-Env": "prod"})
    shown = "\n".join(view.details(destination) + view.table([destination]))
    assert PLAINTEXT not in destination.model_dump_json()
    assert PLAINTEXT not in shown
    assert sealed.encrypted is not None
    assert sealed.encrypted not in shown
    assert "signing secret: encrypted" in shown
    assert "X-Env: prod" in shown


def test_show_hides_the_values_of_credential_like_headers() -> None:
    """Extra headers are stored as given (use a reference for secrets); ``show`` still
    hides the values of those that look like credentials."""
    destination = _webhook(
        SecretValue(ref="env:HOOK"),
        {"Authorization": f"Bearer {PLAINTEXT}", "X-Api-Key": PLAINTEXT, "X-Env": "prod"},
    )
    shown = "\n".join(view.details(destination))
    assert PLAINTEXT not in shown
    assert "Authorization: (hidden)" in shown
    assert "X-Api-Key: (hidden)" in shown
    assert "signing secret: reference env:HOOK" in shown
