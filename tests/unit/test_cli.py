import uuid

import pytest

from orchestrator.auth import Role, read_token
from orchestrator.cli import main, parser

SECRET = "cli-test-secret-0123456789-abcdefghij"


@pytest.mark.parametrize(
    "command", [[], ["run"], ["worker"], ["migrate"], ["seed-demo"], ["token", "create"]]
)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parser().parse_args([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: orchestrator" in capsys.readouterr().out


def test_token_create_prints_a_scoped_token(monkeypatch, capsys):
    monkeypatch.setenv("ORCHESTRATOR_TOKEN_SECRET", SECRET)
    agency = uuid.uuid4()
    main(["token", "create", "--role", "front_desk", "--agency", str(agency), "--subject", "desk-1"])
    principal = read_token(SECRET, capsys.readouterr().out.strip())
    assert (principal.role, principal.agency_id, principal.subject) == (Role.FRONT_DESK, agency, "desk-1")


def test_token_create_refuses_a_scoped_role_without_agency(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_TOKEN_SECRET", SECRET)
    with pytest.raises(SystemExit, match="needs an agency"):
        main(["token", "create", "--role", "manager"])


def test_production_requires_a_secret(monkeypatch):
    monkeypatch.delenv("ORCHESTRATOR_TOKEN_SECRET", raising=False)
    monkeypatch.setenv("ORCHESTRATOR_DATABASE_URL", "postgresql://db/x")
    monkeypatch.setenv("ORCHESTRATOR_REDIS_URL", "redis://r/0")
    with pytest.raises(SystemExit, match="TOKEN_SECRET"):
        main(["token", "create", "--role", "admin"])
