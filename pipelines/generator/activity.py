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

from dataclasses import dataclass, field

import numpy as np
import polars as pl

from app.models import BONUS_STATUSES, BONUS_TYPES, LEDGER_KINDS, PAYMENT_STATUSES
from pipelines.generator.common import (
    DAY,
    HOUR,
    HOUR_WEIGHTS,
    MINUTE,
    SECOND,
    Clock,
    group_starts,
    money,
    pick,
    rank_within,
    round_up,
    ts,
)
from pipelines.generator.players import (
    ACTIVE,
    METHODS,
    Players,
    account_refs,
    device_strings,
    ip_strings,
    random_ips,
)
from pipelines.generator.reference import COUNTRY_CODES, Reference

SPORTS = 4
HIT_P = np.array([0.28, 0.46, 0.46, 0.42, 0.45])  # by category: slots, live, table, crash, sports
WIN_SIGMA = np.array([1.3, 0.35, 0.3, 0.8, 0.35])
STAKE_FACTOR = np.array([1.0, 1.6, 1.4, 0.8, 3.5])
VOID_P = 0.003
WIN_CAP = 5000  # the largest win, in stakes
CALIBRATION = (0.75, 1.35)  # bounds of the per brand × category win scale (see _Chunk._calibrated)
BONUS_WAGER = np.array([3.0, 4.0, 3.0, 0.0, 1.0])  # wagering requirement (in the session) as a multiple of the amount
CASHBACK_UNITS = (2, 20)  # a cashback bonus: this many EUR-like units (low, high)
PAY_STATUSES = PAYMENT_STATUSES  # codes below index into it
PENDING, APPROVED, DECLINED, FAILED, CHARGEBACK = (
    PAY_STATUSES.index(s) for s in ("pending", "approved", "declined", "failed", "chargeback")
)
DEP_FEE_RATE = np.array([0.018, 0.005, 0.025, 0.010, 0.040])  # by method


@dataclass
class Ids:
    """Next free id of each generated table (ids are explicit so chunks can be loaded independently)."""

    session: int = 1
    bet: int = 1
    payment: int = 1
    bonus: int = 1
    ledger: int = 1


@dataclass
class ChunkResult:
    tables: dict[str, pl.DataFrame]
    cash: np.ndarray  # final balances per player of the chunk (cents)
    bonus: np.ndarray
    first_deposit: np.ndarray  # µs of the first approved deposit, 0 if none
    ftd_amount: np.ndarray  # cents
    deposits_first_day: np.ndarray  # approved deposits within 24 h of the first
    deposited_total: np.ndarray  # cents of approved deposits
    last_activity: np.ndarray  # µs of the player's last balance movement or login
    counts: dict[str, int] = field(default_factory=dict)


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


class _Chunk:
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

    # ------------------------------------------------------------------ tables
    def finish(self, ids: Ids) -> ChunkResult:
        sessions, sess_ids = self._sessions_table(ids)
        bets, bet_ids = self._bets_table(ids, sess_ids)
        bonuses, bonus_ids = self._bonuses_table(ids)
        payments, pay_rows = self._payments_table(ids)
        ledger = self._ledger(ids, bet_ids, bonus_ids, pay_rows)
        lp = ledger["_p"]
        cash = np.bincount(lp, weights=ledger["cash"], minlength=self.n).astype(np.int64)
        bonus = np.bincount(lp, weights=ledger["bonus"], minlength=self.n).astype(np.int64)
        if (cash < 0).any() or (bonus < 0).any():
            raise AssertionError("generator bug: a balance ended negative")
        last = np.zeros(self.n, dtype=np.int64)
        np.maximum.at(last, lp, ledger["t"])
        np.maximum.at(last, self.s_player, self.s_start)
        frame = pl.DataFrame(
            {
                "id": ledger["id"],
                "player_id": self.pid[lp],
                "operator_id": self.op[lp] + 1,
                "kind": pick(LEDGER_KINDS, ledger["kind"]),
                "cash_amount": money(ledger["cash"]),
                "bonus_amount": money(ledger["bonus"]),
                "ref_type": pick(("payment", "bet", "bonus"), ledger["ref_type"]),
                "ref_id": ledger["ref_id"],
                "created_at": ts(ledger["t"]),
            }
        )
        ftd_t, ftd_amt, first_day, total = self._deposit_summary(pay_rows)
        tables = {"sessions": sessions, "bets": bets, "bonuses": bonuses, "payments": payments, "ledger": frame}
        return ChunkResult(
            tables=tables,
            cash=cash,
            bonus=bonus,
            first_deposit=ftd_t,
            ftd_amount=ftd_amt,
            deposits_first_day=first_day,
            deposited_total=total,
            last_activity=last,
            counts={k: len(v) for k, v in tables.items()},
        )

    def _sessions_table(self, ids: Ids) -> tuple[pl.DataFrame, np.ndarray]:
        rng, clock = self.rng, self.clock
        sp = self.s_player
        ns = len(sp)
        # failed password attempts just before some sessions; blocked attempts after a block
        fail = np.flatnonzero(rng.random(ns) < 0.03)
        fail_t = np.maximum(self.s_start[fail] - rng.integers(20, 300, size=len(fail)) * SECOND, self.reg[sp[fail]])
        closed_out = np.flatnonzero((self.status != ACTIVE) & (self.status_at < clock.as_of - HOUR))
        k = rng.poisson(1.2, size=len(closed_out))
        bp = np.repeat(closed_out, k)
        span = clock.as_of - self.status_at[bp]
        block_t = self.status_at[bp] + (rng.random(len(bp)) * span).astype(np.int64)
        player = np.r_[sp, sp[fail], bp]
        start = np.r_[self.s_start, fail_t, block_t]
        outcome = np.r_[np.zeros(ns, int), np.ones(len(fail), int), np.full(len(bp), 2)]
        ended = np.r_[self.s_end, start[ns:]]
        no_end = np.r_[self.s_ongoing, np.ones(len(start) - ns, bool)]
        order = np.argsort(start, kind="stable")
        sess_ids = np.empty(len(start), dtype=np.int64)
        sess_ids[order] = ids.session + np.arange(len(start))
        ids.session += len(start)
        m = len(start)
        home = rng.random(m) < 0.97
        country = np.where(home, self.country[player], rng.integers(0, len(COUNTRY_CODES), size=m))
        ip = np.where(rng.random(m) < 0.8, self.ip[player], random_ips(rng, m))
        dev = np.where(rng.random(m) < 0.85, self.device[player], rng.integers(0, 10**12, size=m))
        updated = np.where(no_end, start, ended)
        df = pl.DataFrame(
            {
                "id": sess_ids,
                "player_id": self.pid[player],
                "operator_id": self.op[player] + 1,
                "started_at": ts(start),
                "ended_at": ts(ended, no_end),
                "ip": ip_strings(ip),
                "device_id": device_strings(dev),
                "country_code": pick(COUNTRY_CODES, country),
                "outcome": pick(("ok", "failed_password", "blocked"), outcome),
                "updated_at": ts(updated),
            }
        ).sort("id")
        self.s_logins_last = np.zeros(self.n, dtype=np.int64)
        np.maximum.at(self.s_logins_last, player, start)
        return df, sess_ids[:ns]

    def _bets_table(self, ids: Ids, sess_ids: np.ndarray) -> tuple[pl.DataFrame, np.ndarray]:
        n = len(self.b_session)
        order = np.argsort(self.b_placed, kind="stable")
        bet_ids = np.empty(n, dtype=np.int64)
        bet_ids[order] = ids.bet + np.arange(n)
        ids.bet += n
        st = self.b_status
        bonus = self.b_bonus
        settled = st == 1
        real_stake = np.where(bonus, 0, self.b_stake)
        bonus_stake = np.where(bonus, self.b_stake, 0)
        real_win = np.where(settled & ~bonus, self.b_win, 0)
        bonus_win = np.where(settled & bonus, self.b_win, 0)
        jackpot = np.where(bonus, 0, self.b_jackpot)
        sp = self.s_player[self.b_session]
        updated = np.where(st == 0, self.b_placed, self.b_settled)
        self.bet_arrays = (bet_ids, sp, real_stake, bonus_stake, real_win, bonus_win)
        df = pl.DataFrame(
            {
                "id": bet_ids,
                "player_id": self.pid[sp],
                "operator_id": self.op[sp] + 1,
                "game_id": self.ref.game_ids[self.b_game],
                "session_id": sess_ids[self.b_session],
                "real_stake": money(real_stake),
                "bonus_stake": money(bonus_stake),
                "real_win": money(real_win),
                "bonus_win": money(bonus_win),
                "jackpot_contribution": money(jackpot),
                "status": pick(("open", "settled", "void"), st),
                "placed_at": ts(self.b_placed),
                "settled_at": ts(self.b_settled, st == 0),
                "updated_at": ts(updated),
            }
        ).sort("id")
        return df, bet_ids

    def _bonuses_table(self, ids: Ids) -> tuple[pl.DataFrame, np.ndarray]:
        s = self.bo_session
        n = len(s)
        bonus_ids = ids.bonus + np.arange(n)
        ids.bonus += n
        st = self.bo_status
        sp = self.s_player[s]
        conv = st == 1
        forf = (st == 2) | (st == 4)
        updated = np.where(conv, self.bo_converted_at, np.where(forf, self.bo_forfeit_at, self.bo_granted))
        updated = np.where(st == 3, self.bo_converted_at, updated)
        df = pl.DataFrame(
            {
                "id": bonus_ids,
                "player_id": self.pid[sp],
                "operator_id": self.op[sp] + 1,
                "type": pick(BONUS_TYPES, self.bo_type),
                "amount": money(self.bo_amount),
                "wagering_requirement": money(self.bo_req),
                "wagered": money(self.bo_wagered),
                "status": pick(BONUS_STATUSES, st),
                "granted_at": ts(self.bo_granted),
                "converted_at": ts(self.bo_converted_at, ~conv),
                "forfeited_at": ts(self.bo_forfeit_at, ~forf),
                "converted_amount": money(np.where(conv, self.bo_rest, 0)),
                "updated_at": ts(np.minimum(updated, self.clock.as_of)),
            }
        )
        return df, bonus_ids

    def _payments_table(self, ids: Ids) -> tuple[pl.DataFrame, dict[str, np.ndarray]]:
        rng, clock = self.rng, self.clock
        sp = self.s_player
        dep_s = np.flatnonzero(self.s_dep > 0)
        wd_s = np.flatnonzero(self.s_wd > 0)
        # failed/declined attempts before some deposits; pending deposits near now
        att_s = dep_s[rng.random(len(dep_s)) < 0.07]
        recent = np.flatnonzero(
            self.depositor[sp] & (self.s_start > clock.as_of - 6 * HOUR) & (rng.random(len(sp)) < 0.15)
        )
        p_player = np.r_[sp[dep_s], sp[att_s], sp[recent], sp[wd_s]]
        kind = np.r_[np.zeros(len(dep_s) + len(att_s) + len(recent), int), np.ones(len(wd_s), int)]
        amount = np.r_[self.s_dep[dep_s], self.s_dep[att_s], self.typical_dep[sp[recent]], self.s_wd[wd_s]]
        created = np.r_[
            self.s_start[dep_s] - 30 * SECOND,
            self.s_start[att_s] - 50 * SECOND,
            self.s_start[recent] - 40 * SECOND,
            self.s_end[wd_s] + rng.integers(1, 8, size=len(wd_s)) * MINUTE,
        ]
        status = np.r_[
            np.full(len(dep_s), APPROVED),
            np.where(rng.random(len(att_s)) < 0.6, DECLINED, FAILED),
            np.full(len(recent), PENDING),
            np.zeros(len(wd_s), int),
        ]
        decided = created + 3 * SECOND
        w = slice(len(p_player) - len(wd_s), None)
        wd_decision = created[w] + rng.integers(30, 36 * 60, size=len(wd_s)) * MINUTE
        u = rng.random(len(wd_s))
        wd_status = np.where(u < 0.88, APPROVED, np.where(u < 0.96, DECLINED, FAILED))
        young = (created[w] > clock.as_of - 3 * DAY) & (rng.random(len(wd_s)) < 0.7)
        wd_status = np.where(young | (wd_decision >= clock.as_of), PENDING, wd_status)
        status[w] = wd_status
        decided[w] = np.where(wd_status == PENDING, created[w], wd_decision)
        pay_method = self.method[p_player]
        pay_method = np.where((kind == 1) & (pay_method == 4), 1, pay_method)  # vouchers cash out by bank
        # chargebacks: a card deposit disputed long after the player stopped, when the balance can cover it
        cb = self._chargebacks(p_player, kind, status, amount, created, pay_method)
        cb_time = np.zeros(len(p_player), dtype=np.int64)
        cb_time[cb] = self.cb_times
        status = np.where(cb_time > 0, CHARGEBACK, status)
        unit = self.unit[p_player]
        fee = np.select(
            [
                (kind == 0) & ((status == APPROVED) | (status == CHARGEBACK)),
                (kind == 1) & (status == APPROVED),
                (kind == 0) & (status == DECLINED) & (pay_method == 0),
            ],
            [
                np.round(amount * DEP_FEE_RATE[pay_method]) + np.where(pay_method == 0, unit // 5, 0),
                np.where(pay_method == 1, unit // 2, np.round(amount * 0.005)),
                unit // 10,
            ],
            0,
        ).astype(np.int64)
        cb_fee = np.where(status == CHARGEBACK, 15 * unit, 0).astype(np.int64)  # the dispute fee, kept apart
        n = len(p_player)
        pay_ids = np.empty(n, dtype=np.int64)
        order = np.argsort(created, kind="stable")
        pay_ids[order] = ids.payment + np.arange(n)
        ids.payment += n
        updated = np.where(status == CHARGEBACK, cb_time, decided)
        df = pl.DataFrame(
            {
                "id": pay_ids,
                "player_id": self.pid[p_player],
                "operator_id": self.op[p_player] + 1,
                "kind": pick(("deposit", "withdrawal"), kind),
                "amount": money(amount),
                "currency": pick(self.ref.brand_currency, self.op[p_player]),
                "method": pick(METHODS, pay_method),
                "account_ref": account_refs(self.pid[p_player], pay_method),
                "provider_fee": money(fee),
                "status": pick(PAY_STATUSES, status),
                "created_at": ts(created),
                "updated_at": ts(updated),
                "charged_back_at": ts(cb_time, status != CHARGEBACK),
                "chargeback_fee": money(cb_fee),
            }
        ).sort("id")
        rows = {
            "id": pay_ids,
            "p": p_player,
            "kind": kind,
            "status": status,
            "amount": amount,
            "created": created,
            "decided": decided,
            "cb": cb_time,
        }
        return df, rows

    def _chargebacks(self, p_player, kind, status, amount, created, pay_method) -> np.ndarray:
        """Indexes of card deposits that become chargebacks (their times in self.cb_times)."""
        rng, clock = self.rng, self.clock
        # balance each player ends with before chargebacks: deposits − withdrawals + play
        bal = np.zeros(self.n, dtype=np.int64)
        np.add.at(bal, self.s_player, self.s_dep - self.s_wd)
        sp_b = self.s_player[self.b_session]
        live = self.b_status != 2
        play = np.where(self.b_bonus | ~live, 0, -self.b_stake) + np.where(
            (self.b_status == 1) & ~self.b_bonus, self.b_win, 0
        )
        np.add.at(bal, sp_b, play)
        np.add.at(bal, self.s_player, self.s_conversion)
        last = np.zeros(self.n, dtype=np.int64)
        np.maximum.at(last, self.s_player, self.s_end)
        cand = np.flatnonzero(
            (kind == 0) & (status == APPROVED) & (pay_method == 0) & (last[p_player] < clock.as_of - 3 * DAY)
        )
        cand = cand[amount[cand] <= bal[p_player[cand]]]
        cand = cand[rng.random(len(cand)) < 0.03]
        # at most one per player
        _, first = np.unique(p_player[cand], return_index=True)
        cand = cand[np.sort(first)]
        lo = last[p_player[cand]] + DAY
        self.cb_times = lo + (rng.random(len(cand)) * np.maximum(clock.as_of - HOUR - lo, HOUR)).astype(np.int64)
        self.cb_times = np.minimum(self.cb_times, clock.as_of - MINUTE)
        return cand

    def _ledger(self, ids: Ids, bet_ids, bonus_ids, pay) -> dict[str, np.ndarray]:
        parts: list[tuple] = []  # (player idx, kind, cash, bonus, ref_type, ref_id, time)
        k = pay["kind"]
        st = pay["status"]
        dep = (k == 0) & ((st == APPROVED) | (st == CHARGEBACK))
        parts.append((pay["p"][dep], 0, pay["amount"][dep], 0, 0, pay["id"][dep], pay["decided"][dep]))
        cb = st == CHARGEBACK
        parts.append((pay["p"][cb], 10, -pay["amount"][cb], 0, 0, pay["id"][cb], pay["cb"][cb]))
        wd = k == 1
        parts.append((pay["p"][wd], 1, -pay["amount"][wd], 0, 0, pay["id"][wd], pay["created"][wd]))
        rev = wd & ((st == DECLINED) | (st == FAILED))
        parts.append((pay["p"][rev], 2, pay["amount"][rev], 0, 0, pay["id"][rev], pay["decided"][rev]))
        b_ids, b_p, rs, bst, rw, bw = self.bet_arrays
        debit = self.b_status != 2
        parts.append((b_p[debit], 3, -rs[debit], -bst[debit], 1, b_ids[debit], self.b_placed[debit]))
        won = (self.b_status == 1) & (rw + bw > 0)
        parts.append((b_p[won], 4, rw[won], bw[won], 1, b_ids[won], self.b_settled[won]))
        bo_p = self.s_player[self.bo_session]
        parts.append((bo_p, 6, 0, self.bo_amount, 2, bonus_ids, self.bo_granted))
        conv = (self.bo_status == 1) & (self.bo_rest > 0)
        parts.append(
            (bo_p[conv], 7, self.bo_rest[conv], -self.bo_rest[conv], 2, bonus_ids[conv], self.bo_converted_at[conv])
        )
        forf = ((self.bo_status == 2) | (self.bo_status == 4)) & (self.bo_rest > 0)
        parts.append((bo_p[forf], 8, 0, -self.bo_rest[forf], 2, bonus_ids[forf], self.bo_forfeit_at[forf]))

        def full(v, n):
            return np.broadcast_to(np.asarray(v, dtype=np.int64), (n,))

        cols = {"_p": [], "kind": [], "cash": [], "bonus": [], "ref_type": [], "ref_id": [], "t": []}
        for p, kind, cash, bonus, rtype, rid, t in parts:
            n = len(p)
            for name, v in zip(cols, (p, kind, cash, bonus, rtype, rid, t), strict=True):
                cols[name].append(full(v, n))
        out = {name: np.concatenate(v) for name, v in cols.items()}
        order = np.lexsort((out["kind"], out["t"]))
        out = {name: v[order] for name, v in out.items()}
        out["id"] = ids.ledger + np.arange(len(order))
        ids.ledger += len(order)
        return out

    def _deposit_summary(self, pay) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        ok = (pay["kind"] == 0) & ((pay["status"] == APPROVED) | (pay["status"] == CHARGEBACK))
        p, t, a = pay["p"][ok], pay["decided"][ok], pay["amount"][ok]
        order = np.lexsort((t, p))
        p, t, a = p[order], t[order], a[order]
        ftd_t = np.zeros(self.n, dtype=np.int64)
        ftd_a = np.zeros(self.n, dtype=np.int64)
        first = group_starts(p)
        ftd_t[p[first]] = t[first]
        ftd_a[p[first]] = a[first]
        in_day = t < ftd_t[p] + DAY
        first_day = np.bincount(p[in_day], minlength=self.n)
        total = np.bincount(p, weights=a, minlength=self.n).astype(np.int64)
        return ftd_t, ftd_a, first_day, total
