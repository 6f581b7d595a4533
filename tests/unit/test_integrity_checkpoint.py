"""Signed-note checkpoints: round trips, forgeries, key windows, rotation, and every format
rule of the parser; key ids and verifier keys as Go's sumdb/note makes them."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from integrity.checkpoint import (
    Checkpoint,
    CheckpointError,
    Signature,
    origin_for,
    parse,
    sign,
    verify,
)
from integrity.keys import KeyFormatError, KeyRing, SigningKey, parse_verifier_key
from integrity.merkle import leaf_hash, root

T = 1_764_000_000_000
ROOT = root([leaf_hash(b"a"), leaf_hash(b"b"), leaf_hash(b"c")])


def _key(
    name: str = "auditlog-2026", not_before_ms: int = 0, not_after_ms: int | None = None
) -> SigningKey:
    return SigningKey(name, Ed25519PrivateKey.generate(), not_before_ms, not_after_ms)


def _checkpoint(time_ms: int = T) -> Checkpoint:
    return Checkpoint(origin_for("acme"), 3, ROOT, time_ms)


def test_go_sumdb_note_vector() -> None:
    """The example of golang.org/x/mod/sumdb/note: same key id, verifier key and note."""
    seed = base64.b64decode("AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz")[1:]
    key = SigningKey("PeterNeumann", Ed25519PrivateKey.from_private_bytes(seed))
    assert (
        key.verifier().text()
        == "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    )
    text = (
        b"If you think cryptography is the answer to your problem,\n"
        b"then you don't know what your problem is.\n"
    )
    line = Signature(key.name, key.key_id, key.sign(text)).line()
    assert (
        line
        == "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNX"
        "gKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    )
    parsed = parse_verifier_key(key.verifier().text())
    assert parsed.key_id == 0xC74F20A3
    assert parsed.raw == key.verifier().raw


def test_sign_parse_verify_round_trip() -> None:
    key = _key()
    note = sign(_checkpoint(), [key])
    assert note.startswith(
        f"auditlog/acme\n3\n{base64.b64encode(ROOT).decode()}\ntime {T}\n\n\u2014 auditlog-2026 "
    )
    checkpoint, signatures = parse(note)
    assert checkpoint == _checkpoint()
    assert [(s.name, s.key_id) for s in signatures] == [("auditlog-2026", key.key_id)]
    assert verify(note, KeyRing([key.verifier()])) == _checkpoint()
    assert verify(note, KeyRing([key.verifier()]), origin="auditlog/acme") == _checkpoint()
    with pytest.raises(CheckpointError, match="not 'auditlog/other'"):
        verify(note, KeyRing([key.verifier()]), origin=origin_for("other"))


def test_a_forged_signature_is_refused() -> None:
    key = _key()
    note = sign(_checkpoint(), [key])
    tampered = note.replace(
        f"\n3\n{base64.b64encode(ROOT).decode()}", f"\n4\n{base64.b64encode(ROOT).decode()}"
    )
    with pytest.raises(CheckpointError, match="bad signature by key auditlog-2026"):
        verify(tampered, KeyRing([key.verifier()]))
    impostor = SigningKey("auditlog-2026", key.private_key)
    forged_line = Signature(key.name, key.key_id, _key().sign(_checkpoint().body())).line()
    forged = _checkpoint().body().decode() + "\n" + forged_line
    with pytest.raises(CheckpointError, match="bad signature"):
        verify(forged, KeyRing([impostor.verifier()]))


def test_a_signature_by_another_key_is_refused() -> None:
    note = sign(_checkpoint(), [_key("other")])
    with pytest.raises(CheckpointError, match=r"no valid signature: unknown key other\+"):
        verify(note, KeyRing([_key().verifier()]))
    same_name = _key("auditlog-2026")
    with pytest.raises(CheckpointError, match="unknown key auditlog-2026"):
        verify(sign(_checkpoint(), [same_name]), KeyRing([_key("auditlog-2026").verifier()]))


def test_a_key_outside_its_window_does_not_verify() -> None:
    private = Ed25519PrivateKey.generate()
    signer = SigningKey("k1", private, 0, None)
    note = sign(_checkpoint(T), [signer])
    expired = SigningKey("k1", private, 0, T).verifier()  # not_after is exclusive
    with pytest.raises(CheckpointError, match=f"key k1 is not valid at time {T}"):
        verify(note, KeyRing([expired]))
    future = SigningKey("k1", private, T + 1, None).verifier()
    with pytest.raises(CheckpointError, match="not valid at time"):
        verify(note, KeyRing([future]))
    assert verify(note, KeyRing([SigningKey("k1", private, T, T + 1).verifier()])).time_ms == T
    with pytest.raises(CheckpointError, match="key k1 is not valid at"):
        sign(_checkpoint(T), [SigningKey("k1", private, 0, T)])


def test_a_rotation_signs_with_both_and_either_key_verifies() -> None:
    old, new = _key("k-old", 0, T + 3_600_000), _key("k-new", T - 1, None)
    note = sign(_checkpoint(), [old, new])
    _, signatures = parse(note)
    assert [s.name for s in signatures] == ["k-old", "k-new"]
    assert verify(note, KeyRing([old.verifier()])) == _checkpoint()
    assert verify(note, KeyRing([new.verifier()])) == _checkpoint()
    assert verify(note, KeyRing([old.verifier(), new.verifier()])) == _checkpoint()
    # after the overlap only the new key is valid, and it alone suffices
    later = sign(_checkpoint(T + 3_600_000), [new])
    assert verify(later, KeyRing([old.verifier(), new.verifier()])).time_ms == T + 3_600_000


def test_sign_needs_a_key() -> None:
    with pytest.raises(CheckpointError, match="at least one signing key"):
        sign(_checkpoint(), [])


_K = _key("k")


def _good_note() -> str:
    return sign(_checkpoint(), [_K])


def _sig_line() -> str:
    return _good_note().split("\n\n", 1)[1]


_ROOT64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    ("note", "reason"),
    [
        (lambda: _good_note().rstrip("\n"), "ends with a newline"),
        (lambda: _good_note().replace("\n\n", "\n"), "no blank line"),
        (lambda: _good_note().replace("\u2014", "-"), "must start with"),
        (lambda: _good_note().replace("\u2014 k ", "\u2014 k  "), "not base64"),
        (lambda: _good_note().replace("\u2014 k ", "\u2014 k+1 "), "key name"),
        (lambda: _good_note().replace("\u2014 k ", "\u2014  "), "key name"),
        (lambda: _good_note() + _sig_line(), "the same key signed twice"),
        (lambda: _good_note().split("\n\n")[0] + "\n\n", "at least one signature"),
        (lambda: f"auditlog/acme\n03\n{_ROOT64}\ntime {T}\n\n" + _sig_line(), "size '03'"),
        (lambda: f"auditlog/acme\n-3\n{_ROOT64}\ntime {T}\n\n" + _sig_line(), "size '-3'"),
        (lambda: f"auditlog/acme\n 3\n{_ROOT64}\ntime {T}\n\n" + _sig_line(), "size"),
        (lambda: f"auditlog/acme\n3\n{_ROOT64[:-4]}\ntime {T}\n\n" + _sig_line(), "root: 30 bytes"),
        (
            lambda: f"auditlog/acme\n3\n{_ROOT64.rstrip('=')}\ntime {T}\n\n" + _sig_line(),
            "root: not",
        ),
        (lambda: f"auditlog/acme\n3\n{_ROOT64}\n\n" + _sig_line(), "four lines"),
        (lambda: f"auditlog/acme\n3\n{_ROOT64}\ntime {T}\nx y\n\n" + _sig_line(), "four lines"),
        (
            lambda: f"auditlog/acme\n3\n{_ROOT64}\ntimestamp {T}\n\n" + _sig_line(),
            "time <milliseconds>",
        ),
        (lambda: f"auditlog/acme\n3\n{_ROOT64}\ntime 0{T}\n\n" + _sig_line(), "time '0"),
        (lambda: f"\n3\n{_ROOT64}\ntime {T}\n\n" + _sig_line(), "origin line is empty"),
        (lambda: _good_note().replace("auditlog/acme", "auditlog/\tacme"), "control characters"),
        (lambda: _good_note().replace("\n", "\r\n"), "control characters"),
        (lambda: _good_note()[:-10] + "\n", "signature of k"),
    ],
)
def test_malformed_notes_are_refused_with_the_rule(note: object, reason: str) -> None:
    assert callable(note)
    with pytest.raises(CheckpointError, match=reason):
        parse(note())


def test_a_short_signature_is_refused() -> None:
    body = _checkpoint().body().decode()
    with pytest.raises(CheckpointError, match="too short"):
        parse(body + "\n\u2014 k " + base64.b64encode(b"1234").decode() + "\n")


def test_checkpoint_values_are_checked() -> None:
    with pytest.raises(CheckpointError, match="32 bytes"):
        Checkpoint("auditlog/acme", 1, b"short", T)
    with pytest.raises(CheckpointError, match="origin"):
        Checkpoint("a\nb", 1, ROOT, T)
    with pytest.raises(CheckpointError, match="size"):
        Checkpoint("auditlog/acme", -1, ROOT, T)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("k+c74f20a3", "expected name"),
        ("k+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "8 lower-case hex"),
        ("k+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "does not match"),
        ("k+c74f20a3+Apc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "not base64|Ed25519"),
        ("k+c74f20a3+AhpcQcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWA", "Ed25519"),
        ("a b+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "key name"),
    ],
)
def test_malformed_verifier_keys_are_refused(text: str, reason: str) -> None:
    with pytest.raises(KeyFormatError, match=reason):
        parse_verifier_key(text)


def test_key_windows_and_rings() -> None:
    with pytest.raises(KeyFormatError, match="must not be empty"):
        _key("k", 10, 10)
    key = _key("k")
    with pytest.raises(KeyFormatError, match="twice"):
        KeyRing([key.verifier(), key.verifier()])
    ring = KeyRing([_key("a", 0, 100).verifier(), _key("b", 50, None).verifier()])
    assert [k.name for k in ring.valid_at(10)] == ["a"]
    assert [k.name for k in ring.valid_at(60)] == ["a", "b"]
    assert [k.name for k in ring.valid_at(100)] == ["b"]
    assert "private" not in repr(key)
