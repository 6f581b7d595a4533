"""Concurrent exports per user and per process."""

from __future__ import annotations

import pytest

from viewer.export_slots import ExportSlots
from viewer.principal import Principal

ADA = Principal("ada", "acme")
BOB = Principal("bob", "acme")
ADA_ELSEWHERE = Principal("ada", "globex")


def test_each_user_has_slots_of_their_own_within_the_process_total() -> None:
    slots = ExportSlots(per_user=2, total=3)
    first, second = slots.take(ADA), slots.take(ADA)
    assert first is not None
    assert second is not None
    assert slots.take(ADA) is None
    third = slots.take(ADA_ELSEWHERE)  # the same user id in another account: another user
    assert third is not None
    assert slots.take(BOB) is None  # the process is full
    first.release()
    assert slots.take(BOB) is not None
    assert slots.running == 3


def test_releasing_twice_frees_one_slot() -> None:
    slots = ExportSlots(per_user=1, total=1)
    slot = slots.take(ADA)
    assert slot is not None
    slot.release()
    slot.release()
    assert slots.running == 0
    assert slots.take(ADA) is not None
    assert slots.take(BOB) is None


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError):
        ExportSlots(per_user=0, total=1)
    with pytest.raises(ValueError):
        ExportSlots(per_user=3, total=2)
