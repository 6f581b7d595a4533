"""The key store (file modes, windows, rotation) and the ``auditlog keys`` command."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from auditlog import cli
from integrity.checkpoint import Checkpoint, sign, verify
from integrity.keys import KeyFormatError
from integrity.keystore import KeyStore, KeyStoreError, parse_public_document
from integrity.merkle import EMPTY_ROOT

NOW = 1_764_000_000_000
HOUR_MS = 3_600_000


def test_generate_writes_a_private_key_0600_and_public_metadata(tmp_path: Path) -> None:
    store = KeyStore(tmp_path / "keys")
    key = store.generate("k1", NOW)
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    pem = tmp_path / "keys" / "k1.pem"
    assert stat.S_IMODE(pem.stat().st_mode) == 0o600
    assert pem.read_text().startswith("-----BEGIN PRIVATE KEY-----")
    document = json.loads((tmp_path / "keys" / "keys.json").read_text())
    assert document["keys"] == [
        {
            "name": "k1",
            "key_id": f"{key.key_id:08x}",
            "verifier_key": key.text(),
            "not_before_ms": NOW,
            "not_after_ms": None,
        }
    ]
    assert "PRIVATE" not in json.dumps(document)
    [signer] = store.active_signers(NOW)
    assert signer.verifier().text() == key.text()
    assert store.active_signers(NOW - 1) == []


def test_generate_refuses_when_a_key_exists(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.generate("k1", NOW)
    with pytest.raises(KeyStoreError, match="already has key k1") as caught:
        store.generate("k2", NOW)
    assert caught.value.refused


def test_a_private_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.generate("k1", NOW)
    os.chmod(tmp_path / "k1.pem", 0o640)
    with pytest.raises(
        KeyStoreError, match=r"readable by group or others \(mode 0640\).*chmod 600"
    ):
        store.active_signers(NOW)
    os.chmod(tmp_path / "k1.pem", 0o604)
    with pytest.raises(KeyStoreError, match="readable by group or others"):
        store.active_signers(NOW)
    os.chmod(tmp_path / "k1.pem", 0o600)
    assert len(store.active_signers(NOW)) == 1


def test_a_missing_or_swapped_private_key_is_refused(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.generate("k1", NOW)
    store.rotate("k2", NOW + 1, 0)
    (tmp_path / "k2.pem").unlink()
    with pytest.raises(KeyStoreError, match="private key of k2 is missing"):
        store.active_signers(NOW + 2)
    os.rename(tmp_path / "k1.pem", tmp_path / "k2.pem")
    with pytest.raises(KeyStoreError, match="does not match the public key of k2"):
        store.active_signers(NOW + 2)


def test_rotation_overlaps_and_both_keys_sign(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    store.generate("k1", NOW)
    store.rotate("k2", NOW + HOUR_MS, HOUR_MS)
    windows = {k.name: (k.not_before_ms, k.not_after_ms) for k in store.public_keys()}
    assert windows == {"k1": (NOW, NOW + 2 * HOUR_MS), "k2": (NOW + HOUR_MS, None)}
    during = store.active_signers(NOW + HOUR_MS + 1)
    assert [k.name for k in during] == ["k1", "k2"]
    note = sign(Checkpoint("auditlog/acme", 0, EMPTY_ROOT, NOW + HOUR_MS + 1), during)
    assert verify(note, store.ring()).size == 0
    assert [k.name for k in store.active_signers(NOW + 2 * HOUR_MS)] == ["k2"]


@pytest.mark.parametrize("name", ["", "a b", "../x", "k+1", "x" * 65, ".hidden"])
def test_bad_key_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(KeyFormatError, match="key name"):
        KeyStore(tmp_path).generate(name, NOW)


def test_rotate_refuses_without_an_active_key_or_with_a_name_in_use(tmp_path: Path) -> None:
    store = KeyStore(tmp_path)
    with pytest.raises(KeyStoreError, match="no active key"):
        store.rotate("k2", NOW, 0)
    store.generate("k1", NOW)
    with pytest.raises(KeyStoreError, match="exists already"):
        store.rotate("k1", NOW, 0)


def test_a_corrupt_metadata_file_is_reported(tmp_path: Path) -> None:
    (tmp_path / "keys.json").write_text("{not json")
    with pytest.raises(KeyStoreError, match="not a key document"):
        KeyStore(tmp_path).public_keys()


def _run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("AUDITLOG_INTEGRITY_KEYS_DIR", str(tmp_path / "keys"))
    code = cli.main(["keys", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_keys_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(tmp_path, monkeypatch, capsys, "generate", "--name", "k1")
    assert code == 0
    assert "generated k1" in out
    code, _, err = _run(tmp_path, monkeypatch, capsys, "generate", "--name", "k2")
    assert (code, err.count("\n")) == (3, 1)
    assert "already has key k1" in err
    code, _, err = _run(tmp_path, monkeypatch, capsys, "rotate", "--name", "bad name")
    assert (code, err.count("\n")) == (2, 1)
    code, out, _ = _run(
        tmp_path, monkeypatch, capsys, "rotate", "--name", "k2", "--overlap-s", "60"
    )
    assert code == 0
    assert "k1 signs until" in out
    code, out, _ = _run(tmp_path, monkeypatch, capsys, "list")
    assert code == 0
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["k1", "k2"]
    assert all("private key present" in line and "active" in line for line in lines)
    code, out, _ = _run(tmp_path, monkeypatch, capsys, "export")
    assert code == 0
    assert "PRIVATE" not in out
    keys = parse_public_document(json.loads(out))
    assert [k.name for k in keys] == ["k1", "k2"]
    assert keys[0].not_after_ms is not None
    assert keys[1].not_after_ms is None
    os.chmod(tmp_path / "keys" / "k1.pem", 0o644)
    (tmp_path / "keys" / "keys.json").write_text("[]")
    code, _, err = _run(tmp_path, monkeypatch, capsys, "list")
    assert (code, err.count("\n")) == (4, 1)
