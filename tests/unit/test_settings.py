from pathlib import Path

import pytest

from orchestrator.settings import Settings


def test_defaults_mean_embedded_servers():
    settings = Settings.from_env({})
    assert settings.embedded and settings.database_url is None and settings.port == 8000


def test_env_overrides():
    settings = Settings.from_env(
        {
            "ORCHESTRATOR_DATABASE_URL": "postgresql://db/x",
            "ORCHESTRATOR_REDIS_URL": "redis://r:6379/0",
            "ORCHESTRATOR_PORT": "9000",
            "ORCHESTRATOR_DATA_DIR": "/tmp/o",
            "ORCHESTRATOR_HOLD_TTL_MINUTES": "5",
        }
    )
    assert not settings.embedded
    assert (settings.port, settings.data_dir, settings.hold_ttl_minutes) == (9000, Path("/tmp/o"), 5)


def test_bad_integer_names_the_variable():
    with pytest.raises(ValueError, match="ORCHESTRATOR_PORT"):
        Settings.from_env({"ORCHESTRATOR_PORT": "eighty"})
