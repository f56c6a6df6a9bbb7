import uuid
from datetime import UTC, datetime, timedelta

import pytest

from orchestrator.auth import InvalidToken, Role, issue_token, read_token

SECRET = "unit-test-secret-0123456789-abcdefgh"
AGENCY = uuid.uuid4()


def test_round_trip_keeps_role_and_scope():
    counsellor = uuid.uuid4()
    token = issue_token(
        SECRET, role=Role.COUNSELLOR, subject="c1", agency_id=AGENCY, counsellor_id=counsellor
    )
    principal = read_token(SECRET, token)
    assert (principal.role, principal.agency_id, principal.counsellor_id) == (
        Role.COUNSELLOR,
        AGENCY,
        counsellor,
    )
    assert principal.sees_agency(AGENCY) and not principal.sees_agency(uuid.uuid4())


def test_admin_sees_every_agency():
    principal = read_token(SECRET, issue_token(SECRET, role=Role.ADMIN, subject="a"))
    assert principal.sees_agency(uuid.uuid4())


def test_expired_token_is_rejected():
    past = datetime.now(UTC) - timedelta(days=2)
    token = issue_token(SECRET, role=Role.ADMIN, subject="a", ttl=timedelta(hours=1), now=past)
    with pytest.raises(InvalidToken):
        read_token(SECRET, token)


def test_wrong_secret_is_rejected():
    token = issue_token(SECRET, role=Role.ADMIN, subject="a")
    with pytest.raises(InvalidToken):
        read_token("another-secret-0123456789-abcdefghij", token)


@pytest.mark.parametrize(
    ("role", "agency", "counsellor"),
    [(Role.MANAGER, None, None), (Role.FRONT_DESK, None, None), (Role.COUNSELLOR, AGENCY, None)],
)
def test_scoped_roles_need_their_scope(role, agency, counsellor):
    with pytest.raises(ValueError, match="needs"):
        issue_token(SECRET, role=role, subject="x", agency_id=agency, counsellor_id=counsellor)


def test_garbage_is_rejected():
    with pytest.raises(InvalidToken):
        read_token(SECRET, "not.a.token")
