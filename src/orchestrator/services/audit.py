"""Audit trail: every state change records who did what to which object (no personal data)."""

from __future__ import annotations

import uuid
from typing import Any

from orchestrator.db import UnitOfWork
from orchestrator.models import AuditEvent
from orchestrator.repositories.writes import NewRow, row_of


def row(*, actor: str, action: str, entity: Any, agency_id: uuid.UUID | None, **data: Any) -> NewRow:
    """The audit row of a change, to write with it (``writes.write_together``)."""
    return row_of(
        AuditEvent(
            agency_id=agency_id,
            actor=actor,
            action=action,
            entity_type=type(entity).__tablename__,
            entity_id=entity.id,
            data={k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in data.items()},
        )
    )


def record(
    uow: UnitOfWork,
    *,
    actor: str,
    action: str,
    entity: Any,
    agency_id: uuid.UUID | None,
    **data: Any,
) -> None:
    """Add the audit row of a change to the unit of work (written at commit)."""
    uow.add_rows(row(actor=actor, action=action, entity=entity, agency_id=agency_id, **data))
