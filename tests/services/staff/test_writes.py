"""Staff administration: a request id is bound to what it asked for (roles, brand scope, password…)."""

from __future__ import annotations

import uuid

import pytest

from app.services.core import Invalid
from app.services.staff import writes as staff
from auth import sessions as sess
from auth.identity import Actor

PW = "correct-horse-battery"


@pytest.fixture
def admin(authdb) -> Actor:
    uid = authdb.add_user("root_admin", roles=("admin",))
    with authdb.engine.begin() as conn:
        return sess.validate_session(conn, sess.start_session(conn, uid, "pytest"))


def _access(authdb, uid: int) -> dict:
    return authdb.rows("SELECT roles, brand_scope, version, password_hash FROM staff_users WHERE id = :u", u=uid)[0]


def test_set_access_request_id_is_bound_to_the_roles_and_scope(authdb, admin, fast_bcrypt) -> None:
    """Same request id, same reason and version, other roles (or brand scope): refused and audited, the first
    change stands; not answered "already done"."""
    uid = authdb.add_user("mona", roles=("support",))
    version = _access(authdb, uid)["version"]
    request = uuid.uuid4().hex
    harbour = authdb.brands["harbour"]

    def set_access(roles, scope):
        return staff.set_access(authdb.engine, admin, staff_id=uid, roles=roles, brand_scope=scope,
                                reason="new duties", expected_version=version, request_id=request)  # fmt: skip

    set_access(["analyst"], [harbour])
    assert set_access(["analyst"], [harbour]).replayed
    changed = _access(authdb, uid)
    with pytest.raises(Invalid, match="already used for a different request"):
        set_access(["admin"], [harbour])
    with pytest.raises(Invalid, match="already used for a different request"):
        set_access(["analyst"], None)  # all brands
    assert _access(authdb, uid) == changed and (changed["roles"], changed["brand_scope"]) == (["analyst"], [harbour])
    rows = [r for r in authdb.audit("staff.set_access") if r["request_id"] == request]
    assert [r["outcome"] for r in rows] == ["ok", "failed", "failed"]


def test_reset_password_request_id_is_bound_to_the_password(authdb, admin, fast_bcrypt) -> None:
    """A replay carrying another password is refused: the account keeps the first one. The payload binds the
    password only through a keyed digest: neither it nor an unkeyed hash of it is stored."""
    uid = authdb.add_user("mona", roles=("support",))
    version = _access(authdb, uid)["version"]
    request = uuid.uuid4().hex

    def reset(password: str):
        return staff.reset_password(authdb.engine, admin, staff_id=uid, new_password=password, reason="forgot",
                                    expected_version=version, request_id=request)  # fmt: skip

    reset("first-long-password-1")
    assert reset("first-long-password-1").replayed
    stored = _access(authdb, uid)
    with pytest.raises(Invalid, match="already used for a different request"):
        reset("second-long-password-2")
    assert _access(authdb, uid) == stored
    dump = str(authdb.rows("SELECT * FROM action_requests")) + str(authdb.audit())
    assert "first-long-password-1" not in dump and "second-long-password-2" not in dump


def test_add_staff_request_id_is_bound_to_the_account_asked_for(authdb, admin, fast_bcrypt) -> None:
    request = uuid.uuid4().hex

    def add(roles):
        return staff.add_staff(authdb.engine, admin, username="nina", display_name="Nina", email="nina@example.test",
                               password="a-long-enough-pass", roles=roles, request_id=request)  # fmt: skip

    first = add(["support"])
    assert add(["support"]).result == first.result
    with pytest.raises(Invalid, match="already used for a different request"):
        add(["admin"])
    assert authdb.rows("SELECT roles FROM staff_users WHERE username = 'nina'") == [{"roles": ["support"]}]
    assert [r["outcome"] for r in authdb.audit("staff.add")] == ["ok", "failed"]


@pytest.mark.parametrize(
    ("display_name", "message"),
    [("   ", "the display name is required"), ("N" * 101, "the display name has 101 characters: at most 100")],
)
def test_add_staff_says_which_display_name_problem(authdb, admin, fast_bcrypt, display_name, message) -> None:
    """A display name too long is not answered "required" (the admin filled it in): the message says the length."""
    with pytest.raises(Invalid) as caught:
        staff.add_staff(authdb.engine, admin, username="nina", display_name=display_name, email="nina@example.test",
                        password="a-long-enough-pass", roles=["support"], request_id=uuid.uuid4().hex)  # fmt: skip
    assert str(caught.value.message).startswith(message)
    assert authdb.rows("SELECT id FROM staff_users WHERE username = 'nina'") == []
