"""Blacklist reads on real PostgreSQL: entries, the players an entry matches, counts — and brand scope."""

from __future__ import annotations

import uuid

import pytest

from app.services.blacklist import reads
from app.services.blacklist import writes as blacklist
from tests.services.blacklist.csv_battery import H
from tests.services.conftest import World


def rid() -> str:
    return uuid.uuid4().hex


def add(world: World, actor_name: str = "compliance", **kw):
    params = {"category": "email", "value": "x@example.com", "reason": "fraud", "operator_id": None}
    params.update(kw)
    return blacklist.add_entry(world.engine, world.actors[actor_name], request_id=rid(), **params)


@pytest.mark.parametrize(
    ("category", "value", "expected_players", "matched_on"),
    [
        ("email", "p1@example.com", [0], "email p1@Example.com"),
        ("phone", "+447400900111", [0, 2], "phone"),
        ("ip", "203.0.113.0/24", [0, 1], "ip"),
        ("ip", "192.0.2.55", [2], "registration ip 192.0.2.55"),
        ("device", "dev-shared", [1, 2], "session device"),
        ("document", "AB123456", [0], "document ab-123 456"),
        ("payment_account", "GB82WEST12345698765432", [2], "payment account"),
    ],
)
def test_entry_matches_players_across_brands(
    ident_world: World, category: str, value: str, expected_players: list[int], matched_on: str
) -> None:
    world = ident_world
    eid = add(world, category=category, value=value, operator_id=world.brands["alpha"]).result["entry_id"]
    detail = reads.entry_detail(world.engine, world.actors["compliance"], eid)
    assert [m.player_id for m in detail.players] == [world.players[i] for i in expected_players]
    assert all(matched_on in m.matched_on for m in detail.players)
    assert [m.in_entry_scope for m in detail.players] == [
        world.player(m.player_id)["operator_id"] == world.brands["alpha"] for m in detail.players
    ]
    (listed,) = reads.list_entries(world.engine, world.actors["compliance"], category=category)
    assert listed.matches == len(expected_players)  # the tab's batched count agrees with the detail


# Every category: an all-brand entry that matches players of both brands (p1, p2: alpha; p3: beta).
SHARED = [
    ("email", "p1@example.com", "UPDATE players SET email = 'P1+beta@example.com' WHERE username = 'p3'"),
    ("phone", "+447400900111", None),
    ("ip", "203.0.113.0/24", "UPDATE players SET registration_ip = '203.0.113.200' WHERE username = 'p3'"),
    ("device", "dev-shared", None),
    ("document", "AB123456", None),
    ("payment_account", "GB82WEST12345698765432", None),
]


@pytest.mark.parametrize(("category", "value", "setup"), SHARED)
def test_scoped_viewer_sees_and_counts_only_players_of_their_brands(
    ident_world: World, compliance_alpha, category: str, value: str, setup: str | None
) -> None:
    """Issue 6: counts and matches shown to a brand-scoped viewer leave other brands' players out entirely."""
    world = ident_world
    alpha, beta = world.brands["alpha"], world.brands["beta"]
    if setup:
        world.execute(setup)
    if category == "document":  # p3 (beta) carries the same document as p1 (alpha)
        world.execute(
            "INSERT INTO kyc_documents (case_id, player_id, doc_type, doc_number, file_name, submitted_at)"
            " SELECT case_id, :p, doc_type, 'AB 123456', 'copy.jpg', now() FROM kyc_documents LIMIT 1",
            p=world.players[2],
        )
    if category == "payment_account":  # p1 (alpha) pays from the same account as p3 (beta)
        world.execute(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, account_ref, status,"
            " created_at) VALUES (:p, :o, 'deposit', 10, 'EUR', 'bank_transfer', 'GB82WEST12345698765432',"
            " 'approved', now())",
            p=world.players[0],
            o=alpha,
        )
    eid = add(world, category=category, value=value).result["entry_id"]
    everyone = reads.entry_detail(world.engine, world.actors["compliance"], eid).players
    assert {m.operator_id for m in everyone} == {alpha, beta}  # the entry matches players of both brands
    (all_listed,) = reads.list_entries(world.engine, world.actors["compliance"], category=category)
    assert all_listed.matches == len(everyone)

    detail = reads.entry_detail(world.engine, compliance_alpha, eid)
    mine = [m.player_id for m in everyone if m.operator_id == alpha]
    assert [m.player_id for m in detail.players] == mine
    assert {m.operator_id for m in detail.players} == {alpha}
    assert not hasattr(detail, "hidden_matches")  # nothing tells how many players other brands hold
    (listed,) = reads.list_entries(world.engine, compliance_alpha, category=category)
    assert listed.matches == len(mine)


def test_scoped_viewer_counts_on_the_page_data_for_a_beta_only_match(ident_world: World, compliance_alpha) -> None:
    """An all-brand entry matching only a beta player shows 0 matches and no player to an alpha viewer."""
    world = ident_world
    eid = add(world, category="ip", value="192.0.2.55").result["entry_id"]
    (listed,) = reads.list_entries(world.engine, compliance_alpha, category="ip")
    assert listed.matches == 0
    assert reads.entry_detail(world.engine, compliance_alpha, eid).players == []
    (full,) = reads.list_entries(world.engine, world.actors["compliance"], category="ip")
    assert full.matches == 1


def test_dry_run_is_a_read(world: World) -> None:
    before = world.scalar("SELECT count(*) FROM blacklist_entries")
    preview = reads.dry_run(world.engine, world.actors["compliance"], (H + "email,r@example.com,r,,\n").encode())
    assert preview.count("new") == 1
    assert world.scalar("SELECT count(*) FROM blacklist_entries") == before
