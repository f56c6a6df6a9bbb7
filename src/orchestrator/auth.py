"""Bearer tokens (signed JWT with expiry), roles and agency scoping.

Roles: ``admin`` (every agency), ``manager`` and ``front_desk`` (one agency), ``kiosk``
(one agency; may only issue walk-in tickets) and ``counsellor`` (self, own agency).
Job seekers have no account: they act on their appointment through its manage token.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import jwt

ALGORITHM = "HS256"
AUDIENCE = "orchestrator"


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    FRONT_DESK = "front_desk"
    KIOSK = "kiosk"
    COUNSELLOR = "counsellor"


STAFF_ROLES = frozenset({Role.ADMIN, Role.MANAGER, Role.FRONT_DESK, Role.COUNSELLOR})
AGENCY_ADMINS = frozenset({Role.ADMIN, Role.MANAGER})


class InvalidToken(Exception):
    """The bearer token is missing a claim, badly signed or expired."""


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling. ``agency_id`` is None only for admins."""

    subject: str
    role: Role
    agency_id: uuid.UUID | None = None
    counsellor_id: uuid.UUID | None = None

    @property
    def actor(self) -> str:
        """Audit name: role and subject, never personal data."""
        return f"{self.role}:{self.subject}"

    def sees_agency(self, agency_id: uuid.UUID) -> bool:
        return self.role is Role.ADMIN or self.agency_id == agency_id


def issue_token(
    secret: str,
    *,
    role: Role,
    subject: str,
    agency_id: uuid.UUID | None = None,
    counsellor_id: uuid.UUID | None = None,
    ttl: timedelta = timedelta(hours=12),
    now: datetime | None = None,
) -> str:
    """Sign a token. Non-admin roles must name their agency; counsellors their counsellor id."""
    if role is not Role.ADMIN and agency_id is None:
        raise ValueError(f"role {role} needs an agency")
    if role is Role.COUNSELLOR and counsellor_id is None:
        raise ValueError("role counsellor needs a counsellor id")
    issued = now or datetime.now(UTC)
    claims: dict[str, object] = {
        "sub": subject,
        "role": role.value,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ttl).timestamp()),
    }
    if agency_id is not None:
        claims["agency_id"] = str(agency_id)
    if counsellor_id is not None:
        claims["counsellor_id"] = str(counsellor_id)
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def read_token(secret: str, token: str) -> Principal:
    """Verify signature, audience and expiry; return the principal or raise ``InvalidToken``."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "role"]},
        )
        role = Role(claims["role"])
        agency = uuid.UUID(claims["agency_id"]) if claims.get("agency_id") else None
        counsellor = uuid.UUID(claims["counsellor_id"]) if claims.get("counsellor_id") else None
    except (jwt.PyJWTError, ValueError, KeyError, TypeError) as exc:
        raise InvalidToken(str(exc)) from exc
    if role is not Role.ADMIN and agency is None:
        raise InvalidToken("token has no agency")
    if role is Role.COUNSELLOR and counsellor is None:
        raise InvalidToken("counsellor token has no counsellor id")
    return Principal(subject=str(claims["sub"]), role=role, agency_id=agency, counsellor_id=counsellor)


def staff_of(principal: Principal | None, agency_id: uuid.UUID) -> Principal | None:
    """The caller if it is staff of that agency (admins are staff everywhere), else None."""
    if principal is not None and principal.role in STAFF_ROLES and principal.sees_agency(agency_id):
        return principal
    return None


def require(principal: Principal | None, *roles: Role) -> Principal:
    """The caller must be authenticated and hold one of ``roles``."""
    from orchestrator.errors import Forbidden, Unauthorized

    if principal is None:
        raise Unauthorized("a bearer token is required", code="unauthorized")
    if principal.role not in roles:
        raise Forbidden(f"role {principal.role} may not do this", code="forbidden")
    return principal


def require_in_agency(principal: Principal | None, agency_id: uuid.UUID, *roles: Role) -> Principal:
    """Like ``require`` and the object's agency must be the caller's; another agency's object is a 404."""
    from orchestrator.errors import NotFound

    caller = require(principal, *roles)
    if not caller.sees_agency(agency_id):
        raise NotFound("no such object", code="not_found")
    return caller
