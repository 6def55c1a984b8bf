"""Player activity for a chunk of players: sessions/logins, bets, bonuses, payments and the ledger.

Money model (the invariants the tests assert):
- every balance movement is a `ledger` row; a player's `cash_balance`/`bonus_balance` is the sum of
  the rows' `cash_amount`/`bonus_amount`, and never negative;
- an approved deposit has one `deposit` row (+amount) at approval; pending, declined and failed
  deposits move nothing; a chargeback keeps the deposit row and adds a `chargeback` row (−amount);
- a withdrawal debits the balance when requested (`withdrawal` row, −amount, for every status);
  a declined or failed one is credited back by a `withdrawal_reversal` row at the decision;
- a bet that is not void has one `bet` row at placement (cash −real_stake, bonus −bonus_stake);
  a settled bet with a win has one `win` row at settlement (cash +real_win, bonus +bonus_win);
  open bets have only the `bet` row; a void bet is either never debited (the generated history) or,
  when live mode voids an open bet, refunded by a `bet_void` row (cash +real_stake, bonus +bonus_stake);
- a bonus has a `bonus_grant` row (bonus +amount); when wagered it is converted (`bonus_convert`:
  bonus −rest, cash +rest), otherwise forfeited after 14 days (`bonus_forfeit`: bonus −rest) or it
  stays active. Bonus bets are paid from the bonus wallet only and never exceed it.
Deposits are simulated session by session so that the cash never runs out in the middle of a
session (the need is the session's lowest running balance) and whales deposit more.
"""

from __future__ import annotations

import numpy as np

from pipelines.generator.activity_model import (
    BONUS_WAGER,
    CALIBRATION,
    CASHBACK_UNITS,
    HIT_P,
    SPORTS,
    STAKE_FACTOR,
    VOID_P,
    WIN_CAP,
    WIN_SIGMA,
    ChunkResult,
    Ids,
)
from pipelines.generator.activity_tables import ChunkTables
from pipelines.generator.common import (
    DAY,
    HOUR,
    HOUR_WEIGHTS,
    MINUTE,
    SECOND,
    Clock,
    group_starts,
    rank_within,
    round_up,
)
from pipelines.generator.players import (
    Players,
)
from pipelines.generator.reference import Reference


def simulate_chunk(
    rng: np.random.Generator,
    clock: Clock,
    ref: Reference,
    pl_: Players,
    lo: int,
    hi: int,
    bets_per_depositor: float,
    ids: Ids,
) -> ChunkResult:
    """Generate all activity of players [lo, hi) and advance `ids`."""
    c = _Chunk(rng, clock, ref, pl_, lo, hi)
    c.sessions()
    c.bets(bets_per_depositor)
    c.bonuses()
    c.money_flow()
    return c.finish(ids)


class _Chunk(ChunkTables):
    """One chunk's simulation (sessions, bets, bonuses, money); the tables are built by `ChunkTables`."""

    def __init__(self, rng: np.random.Generator, clock: Clock, ref: Reference, p: Players, lo: int, hi: int):
        self.rng, self.clock, self.ref = rng, clock, ref
        sl = slice(lo, hi)
        self.n = hi - lo
        self.pid = p.id[sl]
        self.op = p.operator[sl]
        self.country = p.country[sl]
        self.reg = p.registered[sl]
        self.until = p.active_until[sl]
        self.depositor = p.depositor[sl]
        self.stake = p.stake_cents[sl]
        self.intensity = p.intensity[sl]
        self.visit = p.visit_rate[sl]
        self.sports = p.sports_fan[sl]
        self.method = p.method[sl]
        self.status = p.status[sl]
        self.status_at = p.status_at[sl]
        self.ip = p.ip[sl]
        self.device = p.device[sl]
        factor = ref.brand_factor[self.op]
        self.step = np.where(factor >= 5, 5000, 500)  # deposit / withdrawal rounding (brand currency cents)
        typical = np.clip(self.stake * 15, 1000 * factor, 200_000 * factor)
        self.typical_dep = round_up(typical.astype(np.int64), self.step)
        self.unit = (100 * factor).astype(np.int64)  # one "EUR-like" unit in brand cents

    # ------------------------------------------------------------------ sessions
    def sessions(self) -> None:
        rng, clock = self.rng, self.clock
        life_days = (self.until - self.reg) / DAY
        n_s = np.where(
            self.depositor,
            1 + rng.poisson(self.visit * life_days),
            1 + rng.poisson(np.minimum(0.6, life_days)),
        )
        n_s = np.minimum(n_s, 400)
        sp = np.repeat(np.arange(self.n), n_s)
        first = np.r_[True, sp[1:] != sp[:-1]]
        reg, until = self.reg[sp], self.until[sp]
        span = np.maximum(until - reg - 2 * MINUTE, MINUTE)
        t = reg + 2 * MINUTE + (rng.random(len(sp)) * span).astype(np.int64)
        # move to an evening-heavy hour of the same day when that stays inside the player's life
        hour = rng.choice(24, size=len(sp), p=HOUR_WEIGHTS)
        t2 = (t // DAY) * DAY + hour * HOUR + rng.integers(0, HOUR, size=len(sp))
        t = np.where((t2 > reg + 2 * MINUTE) & (t2 < until), t2, t)
        t = np.where(first, reg + rng.integers(2 * MINUTE, 20 * MINUTE, size=len(sp)), t)
        t = np.minimum(t, clock.as_of - 2 * MINUTE)
        order = np.lexsort((t, sp))
        self.s_player = sp[order]
        self.s_start = t[order]
        self.s_rank = rank_within(self.s_player)
        dur = np.exp(rng.normal(np.log(15 * MINUTE), 0.9, size=len(sp))).astype(np.int64)
        dur = np.clip(dur, MINUTE, 6 * HOUR)
        end = self.s_start + dur
        self.s_ongoing = end >= clock.as_of
        self.s_end = np.where(self.s_ongoing, clock.as_of - SECOND, end)
        # the session's game: sports fans mostly bet on sports, others on the casino
        casino = self.ref.game_category != SPORTS
        pop = self.ref.game_popularity
        p_c = np.where(casino, pop, 0) / np.where(casino, pop, 0).sum()
        p_s = np.where(~casino, pop, 0) / np.where(~casino, pop, 0).sum()
        ns = len(sp)
        want_sports = self.sports[self.s_player] & (rng.random(ns) < 0.85)
        g_c = rng.choice(len(pop), size=ns, p=p_c)
        g_s = rng.choice(len(pop), size=ns, p=p_s)
        self.s_game = np.where(want_sports, g_s, g_c)  # index into ref.game_ids

    # ------------------------------------------------------------------ bets
    def bets(self, bets_per_depositor: float) -> None:
        rng, clock, ref = self.rng, self.clock, self.ref
        sp = self.s_player
        plays = self.depositor[sp]
        dur = self.s_end - self.s_start
        w = np.where(plays, self.intensity[sp] * np.sqrt(dur / (15 * MINUTE)), 0.0)
        target = bets_per_depositor * self.depositor.sum()
        lam = w * (target / max(w.sum(), 1e-9))
        nb = np.minimum(rng.poisson(lam), 3000)
        self.s_nbets = nb
        n = int(nb.sum())
        bs = np.repeat(np.arange(len(sp)), nb)  # session of each bet (sessions are in player/time order)
        self.b_session = bs
        # placement: ordered uniform points inside the session (normalised exponential gaps)
        gaps = rng.exponential(size=n)
        cs = np.cumsum(gaps)
        starts = np.r_[0, np.cumsum(nb)[:-1]]
        has = nb > 0
        grp_first = np.repeat(starts[has], nb[has])
        within = cs - cs[grp_first] + gaps[grp_first]
        total = np.zeros(len(sp))
        total[has] = np.add.reduceat(gaps, starts[has]) + rng.exponential(size=int(has.sum()))
        window = np.maximum(dur - 2 * SECOND, SECOND)
        placed = self.s_start[bs] + SECOND + (within / total[bs] * window[bs]).astype(np.int64)
        self.b_placed = placed
        # game: mostly the session's game, sometimes another popular one
        other = rng.choice(len(ref.game_popularity), size=n, p=ref.game_popularity)
        g = np.where(rng.random(n) < 0.85, self.s_game[bs], other)
        cat = ref.game_category[g]
        sports_session = ref.game_category[self.s_game[bs]] == SPORTS
        g = np.where(sports_session & (cat != SPORTS), self.s_game[bs], g)  # sports sessions stay on sports
        cat = ref.game_category[g]
        self.b_game = g
        stake = self.stake[sp][bs] * STAKE_FACTOR[cat] * np.exp(rng.normal(0, 0.4, size=n))
        stake = np.maximum(10, np.round(stake / 10) * 10).astype(np.int64)
        hit = rng.random(n) < HIT_P[cat]
        sig = WIN_SIGMA[cat]
        mult = ref.game_rtp[g] * ref.game_bias[g] / HIT_P[cat] * np.exp(rng.normal(-sig * sig / 2, sig))
        win = np.where(hit, np.round(stake * np.minimum(mult, WIN_CAP)), 0).astype(np.int64)
        win = self._calibrated(win, stake, g, cat, sp[bs])
        self.b_stake, self.b_win = stake, win
        self.b_jackpot = np.where(ref.game_jackpot[g], np.round(stake * 0.01), 0).astype(np.int64)
        # settlement: casino rounds in seconds, sports events hours later
        # sports: most events end within hours; outrights (10 %) settle up to a month later
        sports_delay = np.where(
            rng.random(n) < 0.1,
            rng.uniform(1, 30, size=n) * DAY,
            np.minimum(np.exp(rng.normal(np.log(3 * HOUR), 1.2, size=n)), 10 * DAY),
        )
        delay = np.where(cat == SPORTS, sports_delay, rng.uniform(0.3, 4.0, size=n) * SECOND).astype(np.int64)
        settled = placed + delay
        last_of_session = np.r_[bs[1:] != bs[:-1], True] if n else np.zeros(0, bool)
        open_ = (settled >= clock.as_of) | (last_of_session & self.s_ongoing[bs] & (cat != SPORTS))
        void = ~open_ & (rng.random(n) < VOID_P)
        self.b_status = np.where(open_, 0, np.where(void, 2, 1))  # 0 open, 1 settled, 2 void
        self.b_settled = settled
        self.b_bonus = np.zeros(n, dtype=bool)

    def _calibrated(
        self, win: np.ndarray, stake: np.ndarray, g: np.ndarray, cat: np.ndarray, who: np.ndarray
    ) -> np.ndarray:
        """Wins scaled per brand and category so that the chunk's rounds pay close to the games' RTP.

        An operator's volume makes its hold per category converge on the games' maths within a month; the
        generator's sample is far smaller, and a few whales' big wins would otherwise decide a brand's year (a
        brand with a negative hold). The scale is bounded (CALIBRATION), so a big win still makes its day, and
        often its month, a losing one; no random draws are used (the rest of the data keeps its values).
        """
        if len(win) == 0:
            return win
        n_cat = len(HIT_P)
        key = self.op[who] * n_cat + cat
        size = int(self.op.max(initial=0) + 1) * n_cat
        expected = np.bincount(key, weights=stake * self.ref.game_rtp[g] * self.ref.game_bias[g], minlength=size)
        actual = np.bincount(key, weights=win, minlength=size)
        lo, hi = CALIBRATION
        factor = np.clip(np.divide(expected, actual, out=np.ones(size), where=actual > 0), lo, hi)
        return np.round(win * factor[key]).astype(np.int64)

    # ------------------------------------------------------------------ bonuses
    def bonuses(self) -> None:
        rng = self.rng
        sp, rank = self.s_player, self.s_rank
        ns = len(sp)
        eligible = self.depositor[sp] & (self.s_nbets > 0)
        u = rng.random(ns)
        btype = np.full(ns, -1)
        btype[(rank == 0) & (u < 0.35)] = 0
        later = rank > 0
        btype[later & (u < 0.03)] = 1
        btype[later & (u >= 0.03) & (u < 0.05)] = 2
        btype[later & (u >= 0.05) & (u < 0.062)] = 3
        btype[(rank > 10) & (u >= 0.062) & (u < 0.068)] = 4
        btype[~eligible] = -1
        s = np.flatnonzero(btype >= 0)
        bt = btype[s]
        unit = self.unit[sp[s]]
        typical = self.typical_dep[sp[s]]
        amount = np.select(
            [bt == 0, bt == 1, bt == 2, bt == 3],
            [
                np.minimum(typical // 2, 100 * unit),
                np.minimum(typical // 4, 50 * unit),
                rng.choice([5, 10, 20], size=len(s)) * unit,
                rng.integers(*CASHBACK_UNITS, size=len(s)) * unit,
            ],
            rng.integers(10, 25, size=len(s)) * unit,
        )
        amount = np.maximum(amount, unit)
        # bonus bets: the session's first bets while their stakes fit in the bonus amount
        sess_amount = np.zeros(ns, dtype=np.int64)
        sess_amount[s] = amount
        bs = self.b_session
        stake = self.b_stake
        if len(bs):
            cs = np.cumsum(stake)
            first = group_starts(bs)
            base = np.repeat(cs[first] - stake[first], np.diff(np.r_[first, len(bs)]))
            self.b_bonus = (cs - base) <= sess_amount[bs]
        live = self.b_status != 2
        b_stake = np.where(self.b_bonus & live, stake, 0)
        b_win = np.where(self.b_bonus & (self.b_status == 1), self.b_win, 0)
        all_stake = np.where(live, stake, 0)
        sum_bstake = np.bincount(bs, weights=b_stake, minlength=ns).astype(np.int64)
        sum_bwin = np.bincount(bs, weights=b_win, minlength=ns).astype(np.int64)
        wagered = np.bincount(bs, weights=all_stake, minlength=ns).astype(np.int64)
        rest = amount - sum_bstake[s] + sum_bwin[s]
        granted = self.s_start[s] - 20 * SECOND
        converted_at = self.s_end[s] + SECOND
        forfeit_at = granted + 14 * DAY
        ongoing = self.s_ongoing[s]
        req = np.round(amount * BONUS_WAGER[bt]).astype(np.int64)
        status = np.where(
            ongoing,
            0,
            np.where(
                rest == 0,
                3,
                np.where(wagered[s] >= req, 1, np.where(forfeit_at <= self.clock.as_of, 2, 0)),
            ),
        )
        status = np.where((status == 2) & (rng.random(len(s)) < 0.1), 4, status)  # some cancelled by ops
        self.bo_session, self.bo_type, self.bo_amount, self.bo_req = s, bt, amount, req
        self.bo_wagered = wagered[s]
        self.bo_rest, self.bo_status, self.bo_granted = rest, status, granted
        self.bo_converted_at, self.bo_forfeit_at = converted_at, forfeit_at
        conv = np.zeros(ns, dtype=np.int64)
        conv[s] = np.where(status == 1, rest, 0)
        self.s_conversion = conv

    # ------------------------------------------------------------------ deposits, withdrawals
    def money_flow(self) -> None:
        rng, clock = self.rng, self.clock
        sp = self.s_player
        ns = len(sp)
        bs = self.b_session
        live = self.b_status != 2
        real_stake = np.where(live & ~self.b_bonus, self.b_stake, 0)
        real_win = np.where((self.b_status == 1) & ~self.b_bonus, self.b_win, 0)
        x = real_win - real_stake
        need = np.zeros(ns, dtype=np.int64)
        if len(bs):
            cs = np.cumsum(x)
            first = group_starts(bs)
            sizes = np.diff(np.r_[first, len(bs)])
            base = np.repeat(cs[first] - x[first], sizes)
            low = (cs - base) - real_win  # running balance right after each debit, relative to the start
            need[bs[first]] = np.maximum(0, -np.minimum.reduceat(low, first))
        net = np.bincount(bs, weights=x, minlength=ns).astype(np.int64) + self.s_conversion
        plays = self.depositor[sp]
        reload = rng.random(ns) < np.where(self.s_nbets > 0, 0.05, 0.02)
        wd_u = rng.random(ns)
        wd_frac = rng.uniform(0.5, 1.0, size=ns)
        wd_ok = ~self.s_ongoing & (self.s_end + 10 * MINUTE < clock.as_of)
        dep = np.zeros(ns, dtype=np.int64)
        wd = np.zeros(ns, dtype=np.int64)
        bal = np.zeros(self.n, dtype=np.int64)
        perm = np.argsort(self.s_rank, kind="stable")
        bounds = np.searchsorted(self.s_rank[perm], np.arange(self.s_rank.max() + 2 if ns else 1))
        for r in range(len(bounds) - 1):
            s = perm[bounds[r] : bounds[r + 1]]
            s = s[plays[s]]
            if len(s) == 0:
                continue
            p = sp[s]
            b = bal[p]
            want = np.where((r == 0) | reload[s], self.typical_dep[p], 0)
            d = np.where(b < need[s], np.maximum(need[s] - b, want), want)
            d = np.where(d > 0, round_up(d, self.step[p]), 0)
            b = b + d + net[s]
            thresh = np.maximum(3 * self.typical_dep[p] // 2, 4 * self.step[p])
            take = wd_ok[s] & (b > thresh) & (wd_u[s] < 0.55)
            w = np.where(take, (b * wd_frac[s]).astype(np.int64) // self.step[p] * self.step[p], 0)
            b = b - w
            bal[p] = b
            dep[s] = d
            wd[s] = w
        self.s_dep, self.s_wd = dep, wd
