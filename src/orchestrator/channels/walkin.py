"""Walk-in queue, front desk, counsellor desk and the live display board (HTTP + SSE)."""

from typing import Any

HANDLERS: list[Any] = []
