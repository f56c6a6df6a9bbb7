"""What every HTTP channel shares: dependency and parameter aliases, idempotent creation."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Response
from litestar.di import NamedDependency
from litestar.params import FromPath, HeaderParameter
from litestar.status_codes import HTTP_201_CREATED

from orchestrator.auth import Principal
from orchestrator.db import UnitOfWork
from orchestrator.services import idempotency
from orchestrator.settings import Settings

Caller = NamedDependency[Principal | None]
UoW = NamedDependency[UnitOfWork]
Clock = NamedDependency[Callable[[], datetime]]
Config = NamedDependency[Settings]
Id = FromPath[uuid.UUID]
ManageToken = Annotated[str | None, HeaderParameter(name="X-Manage-Token", required=False)]
IdempotencyKey = Annotated[str | None, HeaderParameter(name="Idempotency-Key", required=False)]
IdempotencyScope = NamedDependency[str]


async def idempotent_create(
    uow: UnitOfWork,
    scope: str,
    key: str | None,
    data: msgspec.Struct,
    create: Callable[[], Awaitable[Any]],
) -> Response[Any]:
    """Run ``create`` once per (scope, Idempotency-Key); replay the first 201 for the same body.

    ``scope`` is the ``idempotency_scope`` dependency: a token's subject, or an anonymous
    caller's client address, so nobody replays another person's key (and gets their token)."""
    if key is None:
        return Response(await create(), status_code=HTTP_201_CREATED)
    key = idempotency.check_key(key)
    digest = idempotency.fingerprint(msgspec.json.encode(data))
    stored = await idempotency.replay(uow, principal=scope, key=key, request_hash=digest)
    if stored is not None:
        return Response(stored[1], status_code=stored[0], headers={"Idempotent-Replayed": "true"})
    body = msgspec.to_builtins(await create())
    await idempotency.remember(
        uow, principal=scope, key=key, request_hash=digest, status=HTTP_201_CREATED, body=body
    )
    return Response(body, status_code=HTTP_201_CREATED)
