"""A queue's counsellors are memoized by the values of their ledger rows, never by identity."""

from __future__ import annotations

import struct
import uuid
from typing import Any

from orchestrator.repositories.ledgers import LedgerRows


def _row(booked: list[int], **changes: Any) -> tuple[Any, ...]:
    """A ledger row as the loader returns it (fresh lists and bytes each time, as asyncpg's)."""
    packed = struct.pack(f">{len(booked)}q", *booked)
    values: dict[str, Any] = {
        "id": uuid.UUID(int=7),
        "skills": ["insertion"],
        "languages": ["fr"],
        "modes": ["in_person"],
        "name": "C0",
        "on_desk": True,
        "desk_label": "1",
        "desk_since": None,
        "weekdays": [0],
        "starts": ["09:00:00"],
        "ends": ["17:00:00"],
        "rule_modes": ["in_person"],
        "quotas": [None],
        "valid_froms": [None],
        "valid_untils": [None],
        "booked_starts": packed[: len(packed) // 2],
        "booked_ends": packed[len(packed) // 2 :],
        "serving_starts": None,
        "serving_ends": None,
        "unavailable_starts": None,
        "unavailable_ends": None,
    }
    values.update(changes)
    return tuple(values.values())


def test_equal_rows_give_the_same_ledger_record_and_a_changed_one_a_new_one() -> None:
    first = LedgerRows([_row([1_000, 2_000])]).day_pairs()
    again = LedgerRows([_row([1_000, 2_000])]).day_pairs()
    assert again[0] is first[0]  # equal values, new objects: the memoized pair
    booked = LedgerRows([_row([1_000, 3_000])]).day_pairs()[0][1]
    assert (booked.booked_starts, booked.booked_ends) == ((1_000,), (3_000,))
    away = LedgerRows([_row([1_000, 2_000], on_desk=False)]).day_pairs()[0][0]
    assert away.on_desk is False and first[0][0].on_desk is True
    assert LedgerRows([_row([1_000, 2_000])]).pairs()[0] == first[0]  # as without the memo
