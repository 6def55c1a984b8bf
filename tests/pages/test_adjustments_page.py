"""The adjustments approval queue as a requester sees it: who may decide the waiting request."""

from __future__ import annotations

from app.services.payments import writes as adj
from tests.services.conftest import World


def test_a_requester_is_told_every_role_that_may_approve(ui, world: World) -> None:
    """It said "Waiting for a manager or admin." although finance approves adjustments too."""
    adj.request_adjustment(world.engine, world.actors["support"], player_id=world.players[0], direction="credit",
                           amount="500", reason_code="goodwill", note="n", request_id="page-wait-01")  # fmt: skip
    at = ui("adjustments", "support")
    assert not at.exception
    captions = [str(c.value) for c in at.caption]
    assert "Waiting for an approver (admin, manager, finance)." in captions, captions
