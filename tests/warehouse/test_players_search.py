"""The Players search for masked roles (SPEC §5): by player id or username only, so that probing e-mail
substrings cannot rebuild a masked e-mail address."""

from __future__ import annotations

from warehouse import api


def _ids(gw, search: str, *, masked: bool) -> list[int]:
    df = api.players_list(gw, api.PlayerFilters(), scope=None, search=search, mask_personal=masked)
    return sorted(df["player_id"].to_list())


def test_masked_search_ignores_email_terms(gw) -> None:
    # unmasked viewers find players by e-mail substrings (ann@example.com, cat/dan/eve@example.co.uk)
    assert _ids(gw, "example.co.uk", masked=False) == [3, 4, 6]
    assert _ids(gw, "@example.com", masked=False) == [1, 2]
    # a masked viewer probing the same substrings learns nothing
    for probe in ("example.co.uk", "@example.com", "@", ".uk", "n@e", "ann@", "example"):
        assert _ids(gw, probe, masked=True) == [], probe


def test_masked_search_still_finds_by_id_and_username(gw) -> None:
    assert _ids(gw, "3", masked=True) == [3]
    assert _ids(gw, "AN", masked=True) == [1, 4]  # ann, dan
    masked = api.players_list(gw, api.PlayerFilters(), scope=None, search="eve", mask_personal=True)
    assert masked["email"].to_list() == ["e***@example.co.uk"]


def test_masked_search_by_phone_digits_finds_nothing(gw) -> None:
    assert _ids(gw, "35611", masked=True) == []
