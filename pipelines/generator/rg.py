"""Responsible gambling in the seeded history: limits players set on the platform (some lowered over time, a
few raises and removals still in their 24 h cooling-off at `as_of`, a few cancelled), time-outs (some still
running), the limit hits the platform recorded (some players hitting limits often in the last week) and the
RG team's interaction log (some follow-ups overdue at `as_of`).

The rows obey the rules the back office and the live platform apply (`app.services.rg.rules`): a lower limit
is in force when set, a raise or a removal 24 h after it was asked for; a time-out lasts 24 h – 6 weeks.
Seeded limits are the players' own (source `player`): there are no staff accounts when the seed runs, so the
interaction log names the RG team members as text.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import polars as pl

from pipelines.generator.common import DAY, HOUR, MINUTE, Clock, ts
from pipelines.generator.players import ACTIVE, Players
from pipelines.generator.reference import BRANDS

COOLING_OFF = 24 * HOUR
KINDS = ("deposit", "loss", "wager", "session_time")
KIND_P = np.array([0.55, 0.2, 0.1, 0.15])
PERIODS = ("day", "week", "month")
# a typical limit per kind and period (brand currency units at FX factor 1.0); session time: minutes per day
TYPICAL = {
    ("deposit", "day"): 100, ("deposit", "week"): 400, ("deposit", "month"): 1000,
    ("loss", "day"): 50, ("loss", "week"): 250, ("loss", "month"): 600,
    ("wager", "day"): 300, ("wager", "week"): 1500, ("wager", "month"): 4000,
}  # fmt: skip
TIMEOUT_HOURS = np.array([24, 48, 72, 168, 336, 672, 1008])
RG_TEAM = ("Amira Haddad", "Jonas Berg", "Priya Nair", "Tom Fletcher")
CHANNELS = ("phone", "email", "chat", "in_app")
NOTES = {
    "advice_given": "Talked through recent play and the tools available; the player will consider a limit.",
    "limit_agreed": "The player agreed to a lower deposit limit after a review of recent play.",
    "timeout_agreed": "The player asked for a break; the time-out was explained and agreed.",
    "referred_to_support_service": "Shared the details of a gambling support helpline.",
    "no_response": "No answer; left a message asking the player to get in touch.",
    "declined": "The player declined further contact about their play for now.",
}
OUTCOMES = tuple(NOTES)


def _value(rng: np.random.Generator, kind: str, period: str, factor: float) -> float:
    if kind == "session_time":
        return float(rng.choice([30, 60, 90, 120, 180, 240]))
    raw = TYPICAL[(kind, period)] * factor * float(rng.choice([0.25, 0.5, 0.75, 1.0, 1.5, 2.0]))
    return float(max(5, round(raw / 5) * 5))


def build_rg(rng: np.random.Generator, clock: Clock, p: Players) -> dict[str, pl.DataFrame]:
    """The RG tables for the seeded players (deterministic in `rng`), in foreign-key order."""
    as_of = clock.as_of
    eligible = np.flatnonzero((p.status == ACTIVE) & ~p.is_test & p.depositor & (p.registered < as_of - 3 * DAY))
    if len(eligible) == 0:
        return _frames([], [], [], [], [])
    holders = rng.choice(eligible, size=min(len(eligible), max(3, len(eligible) // 12)), replace=False)
    limits: list[dict] = []
    in_force: dict[int, list[dict]] = {}  # player index → its money limits in force at as_of

    def add(i: int, kind: str, period: str, value: float | None, asked: int, effective: int, **kw) -> dict:
        row = {"id": len(limits) + 1, "player_id": int(p.id[i]), "operator_id": int(p.operator[i]) + 1,
               "kind": kind, "period": period, "value": value, "requested_at": asked, "effective_at": effective,
               "cancelled_at": kw.get("cancelled_at"), "cancel_reason": kw.get("cancel_reason")}  # fmt: skip
        limits.append(row)
        return row

    for n, i in enumerate(holders):
        factor = BRANDS[int(p.operator[i])][6]
        kind = str(rng.choice(KINDS, p=KIND_P))
        period = "day" if kind == "session_time" else str(rng.choice(PERIODS))
        value = _value(rng, kind, period, factor)
        start = max(int(p.registered[i]) + HOUR, as_of - 150 * DAY)
        set_at = start + int(rng.integers(0, max(1, as_of - 2 * DAY - start)))
        if rng.random() < 0.3:  # an earlier, higher limit, later lowered (a lowering is in force at once)
            add(i, kind, period, value * 2, set_at - 20 * DAY, set_at - 20 * DAY)
        row = add(i, kind, period, value, set_at, set_at)
        if kind != "session_time":
            in_force.setdefault(i, []).append(row)
        u = rng.random()
        if n < 3 or u < 0.12:  # a raise (now and then a removal) still in its cooling-off at as_of
            asked = as_of - int(rng.integers(MINUTE, 20 * HOUR))
            add(i, kind, period, None if rng.random() < 0.25 else value * 2, asked, asked + COOLING_OFF)
        elif u < 0.16:  # a raise asked for earlier and cancelled before it took effect
            asked = set_at + int(rng.integers(HOUR, 10 * DAY))
            if asked + COOLING_OFF < as_of:
                add(i, kind, period, value * 3, asked, asked + COOLING_OFF, cancelled_at=asked + 2 * HOUR,
                    cancel_reason="Cancelled after a call with the player")  # fmt: skip
        if kind != "deposit" and rng.random() < 0.15:  # a deposit limit as well
            period2 = str(rng.choice(PERIODS))
            t = set_at + int(rng.integers(0, max(1, as_of - DAY - set_at)))
            in_force.setdefault(i, []).append(add(i, "deposit", period2, _value(rng, "deposit", period2, factor), t, t))

    timeouts = _timeouts(rng, clock, p, eligible)
    hits = _hits(rng, clock, in_force)
    interactions = _interactions(rng, clock, hits, timeouts)
    return _frames(_profiles(limits, timeouts), limits, timeouts, hits, interactions)


def _timeouts(rng: np.random.Generator, clock: Clock, p: Players, eligible: np.ndarray) -> list[dict]:
    who = rng.choice(eligible, size=min(len(eligible), max(3, len(eligible) // 150)), replace=False)
    rows = []
    for n, i in enumerate(who):
        hours = int(rng.choice(TIMEOUT_HOURS))
        if n < 3 or rng.random() < 0.4:  # still running at as_of
            starts = clock.as_of - int(rng.integers(HOUR, hours * HOUR))
        else:
            starts = clock.as_of - hours * HOUR - int(rng.integers(DAY, 90 * DAY))
        starts = max(starts, int(p.registered[i]) + HOUR)
        rows.append({"id": len(rows) + 1, "player_id": int(p.id[i]), "operator_id": int(p.operator[i]) + 1,
                     "starts_at": starts, "ends_at": starts + hours * HOUR,
                     "reason": "The player asked for a break"})  # fmt: skip
    return rows


def _hits(rng: np.random.Generator, clock: Clock, in_force: dict[int, list[dict]]) -> list[dict]:
    rows: list[dict] = []
    hitters = sorted(in_force)
    for n, k in enumerate(rng.permutation(len(hitters))[: max(4, len(hitters) // 4)]):
        mine = in_force[hitters[int(k)]]
        limit = mine[int(rng.integers(0, len(mine)))]
        frequent = n < 3 or rng.random() < 0.25  # these keep hitting their limit this week
        count = int(rng.integers(3, 7)) if frequent else int(rng.integers(1, 3))
        first = max(limit["effective_at"] + MINUTE, clock.as_of - (6 if frequent else 30) * DAY)
        for t in np.sort(first + rng.integers(0, max(1, clock.as_of - MINUTE - first), size=count)):
            lv = limit["value"]
            used = round(lv * float(rng.uniform(0.6, 1.0)), 2)
            attempted = round(lv - used + lv * float(rng.uniform(0.05, 0.5)) + 1, 2)
            rows.append({"id": len(rows) + 1, "player_id": limit["player_id"], "operator_id": limit["operator_id"],
                         "limit_id": limit["id"], "kind": limit["kind"], "period": limit["period"],
                         "action": "deposit" if limit["kind"] == "deposit" else "bet", "limit_value": lv,
                         "used": used, "attempted": attempted, "occurred_at": int(t)})  # fmt: skip
    return rows


def _interactions(rng: np.random.Generator, clock: Clock, hits: list[dict], timeouts: list[dict]) -> list[dict]:
    brand = {r["player_id"]: r["operator_id"] for r in [*hits, *timeouts]}
    rows: list[dict] = []
    for n, pid in enumerate(sorted(brand)):
        if n >= 3 and rng.random() < 0.3:
            continue
        t = clock.as_of - int(rng.integers(2 * DAY, 40 * DAY))
        for k in range(int(rng.integers(1, 3))):
            outcome = str(rng.choice(OUTCOMES))
            follow = None
            if n < 3 and k == 0:  # overdue at as_of
                follow = t + DAY
            elif rng.random() < 0.4:  # some overdue, some still ahead
                follow = t + int(rng.integers(1, 21)) * DAY
            rows.append({"id": len(rows) + 1, "player_id": pid, "operator_id": brand[pid],
                         "staff_name": str(rng.choice(RG_TEAM)), "channel": str(rng.choice(CHANNELS)),
                         "outcome": outcome, "note": NOTES[outcome], "follow_up_due": follow,
                         "occurred_at": t})  # fmt: skip
            t += int(rng.integers(DAY, 10 * DAY))
            if n < 3 or t >= clock.as_of - HOUR:
                break
    return rows


def _profiles(limits: list[dict], timeouts: list[dict]) -> list[dict]:
    """One RG profile per player with limits or time-outs; its version counts the changes made."""
    seen: dict[int, dict] = {}
    for r, at in [*((r, r["requested_at"]) for r in limits), *((t, t["starts_at"]) for t in timeouts)]:
        prof = seen.setdefault(r["player_id"], {"player_id": r["player_id"], "operator_id": r["operator_id"],
                                                "version": 0, "updated_at": 0})  # fmt: skip
        prof["version"] += 1 + (r.get("cancelled_at") is not None)
        prof["updated_at"] = max(prof["updated_at"], at, r.get("cancelled_at") or 0)
    return [seen[k] for k in sorted(seen)]


def _ints(rows: list[dict], key: str) -> pl.Series:
    return pl.Series(key, [r[key] for r in rows], dtype=pl.Int64)


def _text(rows: list[dict], key: str) -> pl.Series:
    return pl.Series(key, [r[key] for r in rows], dtype=pl.String)


def _num(rows: list[dict], key: str) -> pl.Series:
    return pl.Series(key, [r[key] for r in rows], dtype=pl.Float64)


def _time(rows: list[dict], key: str) -> pl.Series:
    values = np.array([r[key] or 0 for r in rows], dtype=np.int64)
    return ts(values, values == 0).alias(key)


def _frames(profiles, limits, timeouts, hits, interactions) -> dict[str, pl.DataFrame]:
    for r in limits:
        r["updated_at"] = max(r["requested_at"], r["cancelled_at"] or 0)
        r["source"] = "player"
    for r in timeouts:
        r["source"] = "player"
    due = [None if r["follow_up_due"] is None else dt.datetime.fromtimestamp(r["follow_up_due"] / 1e6, dt.UTC).date()
           for r in interactions]  # fmt: skip

    def frame(rows: list[dict], cols: dict) -> pl.DataFrame:
        return pl.DataFrame([fn(rows, key) for key, fn in cols.items()])

    return {
        "rg_profiles": frame(profiles, {"player_id": _ints, "operator_id": _ints, "version": _ints,
                                        "updated_at": _time}),
        "rg_limits": frame(limits, {"id": _ints, "player_id": _ints, "operator_id": _ints, "kind": _text,
                                    "period": _text, "value": _num, "requested_at": _time, "effective_at": _time,
                                    "source": _text, "cancelled_at": _time, "cancel_reason": _text,
                                    "updated_at": _time}),
        "rg_timeouts": frame(timeouts, {"id": _ints, "player_id": _ints, "operator_id": _ints, "starts_at": _time,
                                        "ends_at": _time, "source": _text, "reason": _text}).with_columns(
            pl.col("starts_at").alias("created_at")),
        "rg_limit_hits": frame(hits, {"id": _ints, "player_id": _ints, "operator_id": _ints, "limit_id": _ints,
                                      "kind": _text, "period": _text, "action": _text, "limit_value": _num,
                                      "used": _num, "attempted": _num, "occurred_at": _time}),
        "rg_interactions": frame(interactions, {"id": _ints, "player_id": _ints, "operator_id": _ints,
                                                "staff_name": _text, "channel": _text, "outcome": _text,
                                                "note": _text, "occurred_at": _time}).with_columns(
            pl.Series("follow_up_due", due, dtype=pl.Date)),
    }  # fmt: skip
