"""Blacklist matching on real PostgreSQL: the registration check, a player's hits, the players an entry
matches, and the e-mail match key shared by Python (`rules`) and SQL (`pitboss_email_key`)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from app.services.blacklist import matching, reads
from app.services.blacklist import writes as blacklist
from app.services.blacklist.matching import check_registration, player_hits
from app.services.blacklist.rules import email_key_variants, normalize
from tests.services.blacklist.conftest import entries
from tests.services.conftest import World


def rid() -> str:
    return uuid.uuid4().hex


def add(world: World, actor_name: str = "compliance", **kw):
    params = {"category": "email", "value": "x@example.com", "reason": "fraud", "operator_id": None}
    params.update(kw)
    return blacklist.add_entry(world.engine, world.actors[actor_name], request_id=rid(), **params)


def test_registration_check(ident_world: World) -> None:
    world = ident_world
    alpha, beta = world.brands["alpha"], world.brands["beta"]
    add(world, value="Base@Example.com")
    add(world, category="phone", value="+44 7400 900999", operator_id=beta)
    add(world, category="ip", value="203.0.113.0/24")
    add(world, category="device", value="Dev-Reg", operator_id=alpha)
    gone = add(world, value="gone@example.com").result["entry_id"]
    blacklist.end_entry(
        world.engine, world.actors["compliance"], entry_id=gone, reason="x", expected_version=1, request_id=rid()
    )
    expired = add(world, value="old@example.com").result["entry_id"]
    world.execute("UPDATE blacklist_entries SET expires_at = now() - interval '1 second' WHERE id = :i", i=expired)

    hits = check_registration(world.engine, email="base+promo@example.com", operator_id=alpha)
    assert [h.category for h in hits] == ["email"]
    assert check_registration(world.engine, email="x@y.com", phone="0044 7400 900999", operator_id=alpha) == []
    assert [
        h.category for h in check_registration(world.engine, email=None, phone="+447400900999", operator_id=beta)
    ] == ["phone"]
    assert [
        h.entry_value for h in check_registration(world.engine, email=None, ip="203.0.113.77", operator_id=beta)
    ] == ["203.0.113.0/24"]
    assert check_registration(world.engine, email=None, ip="203.0.114.1", operator_id=alpha) == []
    assert check_registration(world.engine, email=None, ip="garbage", device_id="dev-reg", operator_id=beta) == []
    assert len(check_registration(world.engine, email=None, device_id=" DEV-REG ", operator_id=alpha)) == 1
    assert check_registration(world.engine, email="gone@example.com", operator_id=alpha) == []
    assert check_registration(world.engine, email="old@example.com", operator_id=alpha) == []
    with world.engine.connect() as conn:  # also works on the caller's connection
        assert len(check_registration(conn, email="BASE@example.com", operator_id=beta)) == 1


def test_registration_check_on_a_raw_psycopg_connection(world: World) -> None:
    """The generator's live mode holds a psycopg connection, not a SQLAlchemy one."""
    import psycopg

    from app.db import libpq_dsn

    add(world, value="base@example.com")
    add(world, category="ip", value="203.0.113.0/24", operator_id=world.brands["beta"])
    with psycopg.connect(libpq_dsn(world.url)) as conn:
        hits = check_registration(conn, email="Base+x@example.com", ip="203.0.113.5", operator_id=world.brands["beta"])
        assert [h.category for h in hits] == ["email", "ip"]
        assert check_registration(conn, email="other@example.com", ip="203.0.113.5", operator_id=None) == []


# --------------------------------------------------------------------------- e-mail match keys (issue 10)


def test_email_variants_match_in_both_directions(world: World) -> None:
    """`john+casino@x.com` and `john@x.com` are one address; so are Gmail addresses that differ in dots."""
    p1, p2, p3 = world.players
    world.execute("UPDATE players SET email = 'John@X.com' WHERE id = :p", p=p1)
    world.execute("UPDATE players SET email = 'john+other@x.com' WHERE id = :p", p=p2)
    world.execute("UPDATE players SET email = 'J.O.H.N+z@GoogleMail.com' WHERE id = :p", p=p3)
    tagged = add(world, value="John+Casino@x.com").result["entry_id"]
    gmail = add(world, value="john@gmail.com").result["entry_id"]
    rows = {e["id"]: e for e in entries(world)}
    assert (rows[tagged]["value"], rows[tagged]["normalized_value"]) == ("John+Casino@x.com", "john@x.com")
    assert rows[gmail]["normalized_value"] == "john@gmail.com"

    comp = world.actors["compliance"]
    assert [m.player_id for m in reads.entry_detail(world.engine, comp, tagged).players] == [p1, p2]
    assert [m.player_id for m in reads.entry_detail(world.engine, comp, gmail).players] == [p3]
    counts = {e.id: e.matches for e in reads.list_entries(world.engine, comp, category="email")}
    assert counts == {tagged: 2, gmail: 1}
    with world.engine.connect() as conn:
        assert [h.entry_id for h in player_hits(conn, p1)] == [tagged]
        assert [h.entry_id for h in player_hits(conn, p3)] == [gmail]
    for address in ("john@x.com", "JOHN+new@X.COM", "jo.hn@gmail.com", "john+a@googlemail.com"):
        assert len(check_registration(world.engine, email=address, operator_id=world.brands["alpha"])) == 1, address
    assert check_registration(world.engine, email="jo.hn@outlook.com", operator_id=None) == []
    with pytest.raises(blacklist.AlreadyDone):  # the same address in another spelling is a duplicate
        add(world, value="j.o.h.n+again@gmail.com")


def test_internationalised_domains_match_in_either_form(world: World) -> None:
    p1, p2, _ = world.players
    world.execute("UPDATE players SET email = 'ana@bücher.de' WHERE id = :p", p=p1)
    world.execute("UPDATE players SET email = 'Ana+x@xn--bcher-kva.de' WHERE id = :p", p=p2)
    eid = add(world, value="ANA@bücher.de").result["entry_id"]
    assert entries(world)[0]["normalized_value"] == "ana@xn--bcher-kva.de"
    comp = world.actors["compliance"]
    assert [m.player_id for m in reads.entry_detail(world.engine, comp, eid).players] == [p1, p2]
    (listed,) = reads.list_entries(world.engine, comp, category="email")
    assert listed.matches == 2
    with world.engine.connect() as conn:
        assert [h.entry_id for h in player_hits(conn, p1)] == [eid]


KEY_BATTERY = [
    "Fraud.Ster@Example.COM",
    "  spaced@example.com ",
    "a+promo@x.io",
    "+tagonly@x.io",
    "a+b+c@x.io",
    "J.O.H.N@gmail.com",
    "j.o.h.n+casino@GoogleMail.com",
    "first.last@outlook.com",
    "x@sub.example.co.uk",
]


@pytest.mark.parametrize("address", KEY_BATTERY)
def test_sql_key_is_the_python_key(world: World, address: str) -> None:
    """Player e-mails are keyed in SQL, entries in Python: the two must agree."""
    sql_key = world.scalar("SELECT pitboss_email_key(:e)", e=address)
    assert sql_key == normalize("email", address)
    assert sql_key in email_key_variants(normalize("email", address))


def test_sql_key_of_a_malformed_address_is_null(world: World) -> None:
    for bad in ("no-at", "a@b@c", "@x.com", "x@"):
        assert world.scalar("SELECT pitboss_email_key(:e)", e=bad) is None


def test_players_are_looked_up_by_key_through_the_index(world: World) -> None:
    """The entry → players lookup and the per-tab counts use ix_players_email_key, not a scan of players."""
    with world.engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = conn.execute(
            sa.text("EXPLAIN " + matching._matching_sql("email")), {"keys": ["a@x.com"], "v": "a@x.com"}
        ).scalars()
        assert "ix_players_email_key" in "\n".join(plan)
