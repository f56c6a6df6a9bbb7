"""Apply the Alembic migrations programmatically (CLI, embedded start-up, tests)."""

from __future__ import annotations

import os
from pathlib import Path

from alembic import command
from alembic.config import Config

ROOT = Path(__file__).resolve().parents[2]


def alembic_config(url: str) -> Config:
    ini = Path(os.environ.get("ORCHESTRATOR_ALEMBIC_INI", ROOT / "alembic.ini"))
    cfg = Config(str(ini))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)
