"""SMS encoding and segment count, as carriers (and Twilio) count them.

A message is GSM-7 when every character is in the GSM 03.38 basic set or its extension table
(extension characters cost two septets); any other character switches the *whole* message to
UCS-2. One segment holds 160 GSM-7 septets or 70 UCS-2 code units; a longer message is split
into segments of 153 / 67 (each carries a 6-byte header). French traps: ``ç ê ô î û œ``, the
typographic apostrophe (U+2019) and non-breaking spaces force UCS-2, while ``é è à ù`` do not.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = frozenset("^{}\\[~]|€\f")

Encoding = Literal["GSM-7", "UCS-2"]


@dataclass(frozen=True, slots=True)
class SmsShape:
    """How a body travels: its encoding, its length in that encoding's units, its segments."""

    encoding: Encoding
    units: int
    segments: int


def shape(body: str) -> SmsShape:
    """The encoding and segment count of ``body`` (an empty body is one segment)."""
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in body):
        units = sum(2 if char in GSM7_EXTENSION else 1 for char in body)
        return SmsShape("GSM-7", units, _segments(units, single=160, multi=153))
    units = len(body.encode("utf-16-le")) // 2  # characters outside the BMP take two units
    return SmsShape("UCS-2", units, _segments(units, single=70, multi=67))


def _segments(units: int, *, single: int, multi: int) -> int:
    if units <= single:
        return 1
    return -(-units // multi)


def forcing_ucs2(body: str) -> str:
    """The characters of ``body`` that force UCS-2 (empty when it is GSM-7), for template lint."""
    return "".join(sorted({c for c in body if c not in GSM7_BASIC and c not in GSM7_EXTENSION}))
