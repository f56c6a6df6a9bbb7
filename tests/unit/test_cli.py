import uuid

import pytest

from orchestrator.auth import Role, read_token
from orchestrator.cli import main, parser

SECRET = "cli-test-secret-0123456789-abcdefghij"


@pytest.mark.parametrize(
    "command",
    [[], ["run"], ["worker"], ["migrate"], ["seed-demo"], ["token", "create"], ["simulate"], ["local-smtp"]],
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


def test_the_local_twilio_takes_the_next_port_or_any_free_one():
    import contextlib
    import socket

    from orchestrator.channels.twilio import local_twilio_url
    from orchestrator.settings import Settings

    with socket.socket() as api:
        api.bind(("127.0.0.1", 0))
        port = api.getsockname()[1]
        with socket.socket() as taken:
            with contextlib.suppress(OSError):  # already taken by someone else: just as good
                taken.bind(("127.0.0.1", port + 1))
            url = local_twilio_url(Settings(host="127.0.0.1", port=port))
    assert url is not None and url != f"http://127.0.0.1:{port + 1}"
    assert local_twilio_url(Settings(twilio_account_sid="AC1")) is None  # a real account: no local one
    assert local_twilio_url(Settings(twilio_api_url="http://127.0.0.1:9999/")) == "http://127.0.0.1:9999"


def test_simulate_prints_a_table_json_and_a_chart(capsys, tmp_path):
    import json

    main(["simulate", "--profile", "small_rural", "--days", "1", "--seed", "3"])
    table = capsys.readouterr().out
    assert "small_rural: 1 days, seed 3" in table and "siloed" in table and "unified" in table
    chart = tmp_path / "waits.png"
    main(["simulate", "--profile", "walk_in_heavy", "--days", "1", "--json", "--plot", str(chart)])
    (report,) = json.loads(capsys.readouterr().out)["reports"]
    assert (
        report["profile"] == "walk_in_heavy"
        and "p90_wait_minutes_walkin_callback" in report["policies"]["unified"]
    )
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_simulate_reads_a_profile_file_and_refuses_unknown_fields(capsys, tmp_path):
    profile = tmp_path / "agency.json"
    profile.write_text(
        '{"name": "mine", "counsellors": 5, "hours": [[9, 12]], "walk_ins": [6, 5, 4],'
        ' "callbacks": [1, 1, 1], "bookings_per_day": 6, "callback_deadline": 90}'
    )
    main(["simulate", "--profile-file", str(profile), "--days", "1"])
    assert "mine: 1 days" in capsys.readouterr().out
    profile.write_text(
        '{"name": "x", "counsellors": 5, "hours": [[9, 12]], "walk_ins": [1], "callbacks": [1], "bookings_per_day": 1, "typo": 1}'
    )
    with pytest.raises(SystemExit, match="unknown profile fields typo"):
        main(["simulate", "--profile-file", str(profile)])


def test_idle_connections_outlive_the_pools_in_front_of_the_server():
    """A client or proxy must close an idle connection before the server does: otherwise a
    request sent on it as the server closes it is reset (a ReadError, or a proxy's 502)."""
    import httpx

    from orchestrator.cli import _config
    from orchestrator.settings import Settings

    kept = _config(Settings(), app=object()).timeout_keep_alive
    assert kept > httpx.Limits().keepalive_expiry  # httpx's pool: 5 s
    assert kept > 60  # a load balancer's or proxy's usual idle timeout


def test_a_server_process_freezes_its_startup_heap_once_started(monkeypatch):
    """Full collections then walk only what requests allocate (a ~100 ms pause became ~2 ms on
    a walk-in queue of 300); only servers do it: frozen objects are never freed."""
    import gc

    from litestar import Litestar

    from orchestrator import cli
    from orchestrator.settings import Settings

    monkeypatch.setattr(cli, "create_app", lambda settings: Litestar(route_handlers=[]))
    app = cli.served_app(Settings())
    assert cli.freeze_startup_heap in app.on_startup
    gc.unfreeze()
    try:
        cli.freeze_startup_heap()
        assert gc.get_freeze_count() > 0  # what is alive now is out of the collector's reach
    finally:
        gc.unfreeze()
