"""Audit trail: every state change records who did what to which object (no personal data)."""

from __future__ import annotations

import uuid
from typing import Any

from orchestrator.db import UnitOfWork
from orchestrator.models import AuditEvent


def record(
    uow: UnitOfWork,
    *,
    actor: str,
    action: str,
    entity: Any,
    agency_id: uuid.UUID | None,
    **data: Any,
) -> None:
    uow.session.add(
        AuditEvent(
            agency_id=agency_id,
            actor=actor,
            action=action,
            entity_type=type(entity).__tablename__,
            entity_id=entity.id,
            data={k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items()},
        )
    )
