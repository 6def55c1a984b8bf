"""Reading adjustments: the queue and history within the reader's brands, the request form's player."""

from __future__ import annotations

import pytest

from app.services.core import Denied
from app.services.payments import reads
from app.services.payments import writes as adj


def _request(world, who, amount, pid):
    return adj.request_adjustment(world.engine, world.actors[who], player_id=pid, direction="credit",
                                  amount=amount, reason_code="correction", note="ticket 42",
                                  request_id=f"rd-{who}-{pid}-{amount}")  # fmt: skip


def test_reads_are_scoped(world):
    _request(world, "support", "150.00", world.players[0])
    _request(world, "support", "70.00", world.players[2])  # beta, threshold 50 → pending
    assert len(reads.list_adjustments(world.engine, world.actors["manager"], status="pending")) == 2
    assert [r["brand"] for r in reads.list_adjustments(world.engine, world.actors["support_beta"])] == ["beta"]
    with pytest.raises(Denied):
        reads.list_adjustments(world.engine, world.actors["analyst"])
    assert reads.adjustment_player(world.engine, world.actors["support_beta"], world.players[0]) is None


def test_request_form_player_carries_the_threshold_and_window(world):
    player = reads.adjustment_player(world.engine, world.actors["support"], world.players[0])
    assert player["adjustment_threshold"] == 100 and player["player_window_days"] == 30
    with pytest.raises(Denied):
        reads.adjustment_player(world.engine, world.actors["analyst"], world.players[0])
