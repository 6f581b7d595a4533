"""Tamper evidence: each account's events as an append-only RFC 9162 Merkle log, with
signed checkpoints (docs/integrity.md)."""
