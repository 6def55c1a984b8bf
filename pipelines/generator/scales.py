"""The generator's scales: how many players, bets, games … each one produces."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    players: int
    bets: int  # target number of bets (the result is within a few % of it)
    games: int
    affiliates: int
    chunk_players: int  # players simulated (and loaded) per chunk: bounds memory, drives the progress bar
    blacklist: int  # blacklist entries besides self-exclusions


SCALES: dict[str, Scale] = {
    "tiny": Scale("tiny", players=300, bets=20_000, games=60, affiliates=5, chunk_players=300, blacklist=60),
    "small": Scale("small", players=5_000, bets=300_000, games=150, affiliates=12, chunk_players=5_000, blacklist=200),
    "demo": Scale(
        "demo", players=50_000, bets=3_000_000, games=300, affiliates=25, chunk_players=10_000, blacklist=600
    ),
    "large": Scale(
        "large", players=1_000_000, bets=30_000_000, games=400, affiliates=60, chunk_players=20_000, blacklist=3_000
    ),
}


def get_scale(name: str) -> Scale:
    """The scale called `name`; ValueError naming the valid ones otherwise."""
    try:
        return SCALES[name]
    except KeyError:
        raise ValueError(f"unknown scale {name!r}: choose one of {', '.join(SCALES)}") from None
