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

from orchestrator.auth import STAFF_ROLES, Principal, staff_of
from orchestrator.db import UnitOfWork
from orchestrator.errors import Invalid
from orchestrator.services import idempotency
from orchestrator.services.commands import Actor, Channel, ManageTokenHolder, Public, Staff
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


def actor_of(principal: Principal | None, manage_token: str | None = None) -> Actor:
    """Who calls over HTTP: a bearer token's holder (staff, kiosk), else the holder of a manage
    token, else the public. A kiosk presenting a manage token acts as that token's holder."""
    if principal is not None and (principal.role in STAFF_ROLES or not manage_token):
        return Staff(principal)
    if manage_token:
        return ManageTokenHolder(manage_token)
    return Public()


def booking_channel(principal: Principal | None, agency_id: uuid.UUID, requested: str | None) -> Channel:
    """The channel a web booking came through: the agency's staff say which (front desk by
    default, or the phone line they answered…); everyone else is the web."""
    if staff_of(principal, agency_id) is not None:
        return Channel(requested) if requested else Channel.FRONT_DESK
    if requested is not None:
        raise Invalid("channel", "only the agency's staff may set the channel")
    return Channel.WEB
