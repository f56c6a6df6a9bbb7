"""Decisions the core refuses, as plain exceptions carrying a machine-readable code.

No HTTP here: the service/channel layer maps ``code`` to a status and a message.
"""

from __future__ import annotations

from typing import Literal

SlotUnavailableCode = Literal[
    "mode_not_offered",  # the service is not offered in the requested mode
    "outside_notice",  # start < now + service.min_notice
    "beyond_horizon",  # start > now + service.max_horizon
    "counsellor_not_eligible",  # no counsellor (or not the requested one) has the skill and mode
    "outside_working_hours",  # no eligible counsellor works over [start, start + duration)
    "not_on_grid",  # working time covers it, but start is not on the service grid
    "no_counsellor_free",  # on the grid, but every eligible counsellor is busy (claims + buffers)
]


class SchedulingError(Exception):
    """Base class of core refusals; ``code`` is stable and machine-readable."""

    code: str

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(f"{code}: {detail}" if detail else code)
        self.code = code
        self.detail = detail


class SlotUnavailable(SchedulingError):
    """The requested start cannot be booked; ``code`` is a ``SlotUnavailableCode``."""

    code: SlotUnavailableCode

    def __init__(self, code: SlotUnavailableCode, detail: str = "") -> None:
        super().__init__(code, detail)
        self.code = code
