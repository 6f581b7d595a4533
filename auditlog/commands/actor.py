"""``--actor TYPE:ID``: who makes a change, for the audit event the change publishes."""

from __future__ import annotations

ACTOR_TYPES = ("user", "api_client", "system")


def parse_actor(text: str) -> dict[str, str]:
    """The event's ``actor`` for ``TYPE:ID``; raises ``ValueError`` saying what is wrong."""
    kind, sep, ident = text.partition(":")
    if not sep or kind not in ACTOR_TYPES or not ident:
        raise ValueError(
            f"--actor {text!r}: expected TYPE:ID with TYPE one of {', '.join(ACTOR_TYPES)}"
        )
    return {"type": kind, "id": ident}
