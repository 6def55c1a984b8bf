"""Building a chunk's tables (sessions, bets, bonuses, payments, the ledger) from its simulated arrays."""

from __future__ import annotations

import numpy as np
import polars as pl

from app.models import BONUS_STATUSES, BONUS_TYPES, LEDGER_KINDS
from pipelines.generator.activity_model import (
    APPROVED,
    CHARGEBACK,
    DECLINED,
    DEP_FEE_RATE,
    FAILED,
    PAY_STATUSES,
    PENDING,
    ChunkResult,
    Ids,
)
from pipelines.generator.common import (
    DAY,
    HOUR,
    MINUTE,
    SECOND,
    group_starts,
    money,
    pick,
    ts,
)
from pipelines.generator.players import (
    ACTIVE,
    METHODS,
    account_refs,
    device_strings,
    ip_strings,
    random_ips,
)
from pipelines.generator.reference import COUNTRY_CODES


class ChunkTables:
    """The table-building half of a chunk (mixed into `activity._Chunk`, which sets the arrays it reads)."""

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
