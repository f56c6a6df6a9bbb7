"""Web booking channel: availability, holds, appointments (HTTP)."""

from typing import Any

HANDLERS: list[Any] = []
