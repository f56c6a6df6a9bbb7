"""Idempotency-Key for POSTs that create things (IETF draft semantics).

Same key + same body → the stored first response; same key + other body → 422; a key still
in flight in another transaction → 409. Only successful responses are stored, in the same
transaction as the work they describe.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from orchestrator.db import UnitOfWork
from orchestrator.errors import Conflict, Invalid
from orchestrator.models import IdempotencyKey

MAX_KEY = 255


def fingerprint(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def check_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_KEY or not key.isprintable():
        raise Invalid("Idempotency-Key", f"must be 1 to {MAX_KEY} printable characters")
    return key


async def replay(uow: UnitOfWork, *, principal: str, key: str, request_hash: str) -> tuple[int, Any] | None:
    """The stored response for this key, None if the key is new; 422 if the body differs."""
    stored = await uow.session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.principal == principal, IdempotencyKey.key == key)
    )
    if stored is None:
        return None
    if stored.request_hash != request_hash:
        raise Invalid("Idempotency-Key", "was already used with a different request body")
    return stored.response_status, stored.response_body


async def remember(
    uow: UnitOfWork, *, principal: str, key: str, request_hash: str, status: int, body: Any
) -> None:
    try:
        async with uow.session.begin_nested():
            uow.session.add(
                IdempotencyKey(
                    principal=principal,
                    key=key,
                    request_hash=request_hash,
                    response_status=status,
                    response_body=body,
                )
            )
            await uow.session.flush()
    except IntegrityError as exc:
        raise Conflict(
            "a request with this Idempotency-Key is already being processed", code="idempotency_in_flight"
        ) from exc
