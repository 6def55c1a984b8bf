"""The Blacklist page's match counts and a player's identifier lookups go through indexes (migration 0016), not
a scan of players, sessions, KYC documents or payments; and the new SQL helpers keep the old normalisation."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from app.services.blacklist import matching
from tests.services.conftest import World

INDEXES = {
    "phone": {"ix_players_phone_key"},
    "device": {"ix_players_device_key", "ix_sessions_device_key"},
    "document": {"ix_kyc_documents_number_key"},
    "payment_account": {"ix_payments_account_key"},
    "ip": {"ix_players_ip_host", "ix_sessions_ip_host"},
}
VALUES = {
    "phone": ["+447400900111"],
    "device": ["dev-shared"],
    "document": ["AB123456"],
    "payment_account": ["GB82WEST12345698765432"],
    "ip": ["203.0.113.99", "192.0.2.55"],
}


def _plans(engine: sa.Engine, run) -> str:
    """EXPLAIN of every statement `run(conn)` sends (sequential scans off: an index is used if one fits)."""
    sent: list[tuple[str, object]] = []

    def capture(conn, cursor, statement, params, context, executemany):
        if not statement.startswith(("EXPLAIN", "SET")):
            sent.append((statement, params))

    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        event.listen(conn, "before_cursor_execute", capture)
        result = run(conn)
        event.remove(conn, "before_cursor_execute", capture)
        plans = ["\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + s, p)) for s, p in sent]
    assert sent, result
    return "\n".join(plans)


@pytest.mark.parametrize("category", sorted(INDEXES))
def test_match_counts_use_the_identifier_indexes(ident_world: World, category: str) -> None:
    counts = {}

    def run(conn):
        counts.update(matching.match_counts(conn, category, VALUES[category]))

    plan = _plans(ident_world.engine, run)
    for index in INDEXES[category]:
        assert index in plan, plan
    assert all(n >= 1 for n in counts.values()), counts  # the fixture's identifiers are found


def test_a_players_documents_are_read_by_player(ident_world: World) -> None:
    p1 = ident_world.players[0]
    plan = _plans(ident_world.engine, lambda conn: matching.player_hits(conn, p1))
    assert "ix_kyc_documents_player" in plan, plan


@pytest.mark.parametrize(
    "ref", ["gb82 west 1234 5698 7654 32", "  de89370400440532013000 ", "card_fp_ABC def", "  wallet-9  ", "x"]
)
def test_payment_key_is_the_former_inline_expression(world: World, ref: str) -> None:
    former = (
        r"CASE WHEN btrim(:r) ~ '^[A-Za-z]{2}[0-9]{2}' THEN upper(regexp_replace(:r, '\s', '', 'g'))"
        " ELSE btrim(:r) END"
    )
    assert world.scalar(f"SELECT pitboss_payment_key(:r) IS NOT DISTINCT FROM ({former})", r=ref) is True


def test_inet_of_a_bad_address_is_null(world: World) -> None:
    assert world.scalar("SELECT pitboss_inet('not-an-ip')") is None
    assert world.scalar("SELECT host(pitboss_inet('203.0.113.7/24'))") == "203.0.113.7"
    assert world.scalar("SELECT pitboss_inet(NULL)") is None
