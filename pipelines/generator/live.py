"""Live mode: keep producing activity at `rate` events per second so pipelines and dashboards move.

Every event is one short transaction through normal SQL (triggers on): registrations, logins,
bets, late settlements of open bets, deposits, withdrawals and their status changes, bonus grants
and conversions, KYC submissions, account status changes, players changing their responsible-gambling
limits or taking a time-out, and updates to old rows. Deposits and bets honour the limits, time-outs and
self-exclusions through the injected `PlatformRules`: a refused one leaves no payment or bet (a refusal
by a limit is recorded as an `rg_limit_hits` row), and a player in a time-out cannot log in. Money always
moves as a ledger row plus the matching balance update in the same transaction, with the player
row locked (`SELECT … FOR UPDATE`), so the invariants of `pipelines.generator.invariants` hold.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter, deque
from collections.abc import Callable
from decimal import Decimal

import numpy as np
import psycopg

from pipelines.generator.load import connect
from pipelines.generator.platform import PlatformRules

log = logging.getLogger(__name__)

CENT = Decimal("0.01")
EVENT_WEIGHTS = {
    "bet": 0.50,
    "settlement": 0.10,
    "login": 0.08,
    "deposit": 0.07,
    "payment_status": 0.05,
    "registration": 0.05,
    "withdrawal": 0.03,
    "bonus_grant": 0.02,
    "bonus_conversion": 0.02,
    "kyc_submission": 0.03,
    "account_status": 0.02,
    "old_row_update": 0.03,
    "rg_change": 0.01,
}
RG_SEEKING = 0.15  # share of deposits and bets made by players who have a limit (so limits get hit live)


class _Live:
    def __init__(self, conn: psycopg.Connection, rng: np.random.Generator, rules: PlatformRules):
        self.conn, self.rng, self.rules = conn, rng, rules
        self.ops = conn.execute("SELECT id, currency FROM operators ORDER BY id").fetchall()
        games = conn.execute("SELECT id, theoretical_rtp, category FROM games WHERE enabled ORDER BY id").fetchall()
        if not self.ops or not games:
            raise RuntimeError("live mode needs a seeded database (python -m app seed --scale tiny)")
        self.games = games
        self.countries = [r[0] for r in conn.execute("SELECT code FROM countries ORDER BY code").fetchall()]
        # work queues (oldest first), read once: there is no index on status, so no scan per event
        self.open_bets = deque(
            r[0] for r in conn.execute("SELECT id FROM bets WHERE status = 'open' ORDER BY placed_at")
        )
        # pending deposits only: a pending withdrawal waits for staff (the withdrawal queue), never for the generator
        self.pending_payments = deque(
            r[0]
            for r in conn.execute(
                "SELECT id FROM payments WHERE status = 'pending' AND kind = 'deposit' ORDER BY created_at"
            )
        )
        conn.commit()

    # -------------------------------------------------------------- helpers
    def _money(self, units: float) -> Decimal:
        return Decimal(str(max(0.1, round(units, 1)))).quantize(CENT)

    def _factor(self, currency: str) -> float:
        return {"SEK": 10.0, "GBP": 0.85, "CAD": 1.5}.get(currency, 1.0)

    def _random_player(self, where: str = "account_status = 'active'") -> tuple | None:
        """A random player id matching `where` (cheap: a random id probe, then the next match)."""
        top = self.conn.execute("SELECT coalesce(max(id), 0) FROM players").fetchone()[0]
        if not top:
            return None
        probe = int(self.rng.integers(1, top + 1))
        row = self.conn.execute(
            f"SELECT id FROM players WHERE id >= %s AND {where} ORDER BY id LIMIT 1", (probe,)
        ).fetchone()
        return row or self.conn.execute(f"SELECT id FROM players WHERE {where} ORDER BY id LIMIT 1").fetchone()

    def _lock(self, player_id: int) -> tuple:
        return self.conn.execute(
            "SELECT p.id, p.operator_id, p.cash_balance, p.bonus_balance, p.account_status, o.currency "
            "FROM players p JOIN operators o ON o.id = p.operator_id WHERE p.id = %s FOR UPDATE OF p",
            (player_id,),
        ).fetchone()

    def _move(self, pid: int, op: int, kind: str, cash: Decimal, bonus: Decimal, ref_type: str, ref_id: int) -> None:
        """A ledger row and the matching balance change (caller holds the player's row lock)."""
        self.conn.execute(
            "INSERT INTO ledger (player_id, operator_id, kind, cash_amount, bonus_amount, ref_type, ref_id, "
            "created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now())",
            (pid, op, kind, cash, bonus, ref_type, ref_id),
        )
        self.conn.execute(
            "UPDATE players SET cash_balance = cash_balance + %s, bonus_balance = bonus_balance + %s WHERE id = %s",
            (cash, bonus, pid),
        )

    # -------------------------------------------------------------- events
    def registration(self) -> str:
        rng = self.rng
        op_id, _cur = self.ops[int(rng.integers(0, len(self.ops)))]
        token = int(rng.integers(10**7, 10**8))
        email = f"live.player{token}@example.com"
        if rng.random() < 0.05:  # now and then someone already on the blacklist tries to register
            hit = self.conn.execute(
                "SELECT value FROM blacklist_entries WHERE category = 'email' AND removed_at IS NULL "
                "AND operator_id IS NULL AND (expires_at IS NULL OR expires_at > now()) LIMIT 1"
            ).fetchone()
            email = hit[0] if hit else email
        phone = f"+44{int(rng.integers(7_000_000_000, 7_999_999_999))}"
        ip = f"{rng.integers(11, 223)}.{rng.integers(0, 256)}.{rng.integers(0, 256)}.{rng.integers(1, 255)}"
        device = f"dev-{int(rng.integers(0, 10**12)):012d}"
        if self.rules.registration_blocked(
            self.conn, email=email, phone=phone, ip=ip, device_id=device, operator_id=op_id
        ):
            return "registration_blocked"
        country = self.countries[int(rng.integers(0, len(self.countries)))]
        pid = self.conn.execute(
            "INSERT INTO players (operator_id, username, email, phone, first_name, last_name, country_code, "
            "date_of_birth, registered_at, registration_ip, device_id, channel) VALUES "
            "(%s, %s, %s, %s, 'Live', 'Player', %s, current_date - %s, now(), %s, %s, 'organic') RETURNING id",
            (op_id, f"live{token}", email, phone, country, int(rng.integers(18 * 366, 70 * 365)), ip, device),
        ).fetchone()[0]
        self._session(pid, op_id, "ok", ip, device)
        return "registration"

    def _session(self, pid: int, op: int, outcome: str, ip: str | None = None, device: str | None = None) -> int:
        return self.conn.execute(
            "INSERT INTO sessions (player_id, operator_id, started_at, ip, device_id, country_code, outcome) "
            "SELECT id, %s, now(), coalesce(%s, registration_ip), coalesce(%s, device_id), country_code, %s "
            "FROM players WHERE id = %s RETURNING id",
            (op, ip, device, outcome, pid),
        ).fetchone()[0]

    def login(self) -> str:
        row = self._random_player("true")
        if not row:
            return "skipped"
        status, op = self.conn.execute("SELECT account_status, operator_id FROM players WHERE id = %s", row).fetchone()
        outcome = "ok" if status == "active" else "blocked"
        if outcome == "ok" and self.rules.play_blocked(self.conn, player_id=row[0]):  # a time-out
            outcome = "blocked"
        if outcome == "ok" and self.rng.random() < 0.1:
            outcome = "failed_password"
        self._session(row[0], op, outcome)
        # close this player's older open sessions (an update to old rows)
        self.conn.execute(
            "UPDATE sessions SET ended_at = greatest(started_at, now() - interval '1 minute') "
            "WHERE player_id = %s AND ended_at IS NULL AND outcome = 'ok' "
            "AND started_at < now() - interval '30 minutes'",
            row,
        )
        return "login"

    def bet(self) -> str:
        where = "account_status = 'active' AND cash_balance > 0"
        if self.rng.random() < RG_SEEKING:
            where += " AND id IN (SELECT player_id FROM rg_limits WHERE kind <> 'deposit')"
        row = self._random_player(where)
        if not row:
            return "skipped"
        pid, op, cash, _bonus, _status, cur = self._lock(row[0])
        stake = min(cash, self._money(float(np.exp(self.rng.normal(np.log(1.0), 0.9))) * self._factor(cur)))
        if stake <= 0:
            return "skipped"
        if self.rules.bet_refused(self.conn, player_id=pid, stake=stake):
            return "bet_refused_rg"
        gid, rtp, category = self.games[int(self.rng.integers(0, len(self.games)))]
        session = self.conn.execute(
            "SELECT id FROM sessions WHERE player_id = %s AND outcome = 'ok' AND ended_at IS NULL "
            "ORDER BY started_at DESC LIMIT 1",
            (pid,),
        ).fetchone()
        sid = session[0] if session else self._session(pid, op, "ok")
        settle_now = category != "sports"
        win = Decimal(0)
        if settle_now and self.rng.random() < 0.4:
            win = (stake * Decimal(str(round(float(rtp) / 0.4 * self.rng.lognormal(-0.18, 0.6), 4)))).quantize(CENT)
        bet_id = self.conn.execute(
            "INSERT INTO bets (player_id, operator_id, game_id, session_id, real_stake, real_win, status, placed_at, "
            "settled_at) VALUES (%s, %s, %s, %s, %s, %s, %s, now(), CASE WHEN %s THEN now() END) RETURNING id",
            (pid, op, gid, sid, stake, win, "settled" if settle_now else "open", settle_now),
        ).fetchone()[0]
        if not settle_now:
            self.open_bets.append(bet_id)
        self._move(pid, op, "bet", -stake, Decimal(0), "bet", bet_id)
        if win > 0:
            self._move(pid, op, "win", win, Decimal(0), "bet", bet_id)
        return "bet"

    def settlement(self) -> str:
        """A late settlement: the oldest open bet is settled (or voided and refunded)."""
        bet = None
        while bet is None and self.open_bets:
            bet = self.conn.execute(
                "SELECT b.id, b.player_id, b.operator_id, b.real_stake, b.bonus_stake, g.theoretical_rtp FROM bets b "
                "JOIN games g ON g.id = b.game_id WHERE b.id = %s AND b.status = 'open' FOR UPDATE OF b SKIP LOCKED",
                (self.open_bets.popleft(),),
            ).fetchone()
        if not bet:
            return "skipped"
        bid, pid, op, stake, bstake, rtp = bet
        self._lock(pid)
        if self.rng.random() < 0.03:
            self.conn.execute("UPDATE bets SET status = 'void', settled_at = now() WHERE id = %s", (bid,))
            self._move(pid, op, "bet_void", stake, bstake, "bet", bid)
            return "void"
        won = self.rng.random() < 0.45
        odds = Decimal(str(round(float(rtp) / 0.45, 4)))
        win, bwin = ((stake * odds).quantize(CENT), (bstake * odds).quantize(CENT)) if won else (Decimal(0),) * 2
        self.conn.execute(
            "UPDATE bets SET status = 'settled', settled_at = greatest(now(), placed_at), real_win = %s, "
            "bonus_win = %s WHERE id = %s",
            (win, bwin, bid),
        )
        if win + bwin > 0:
            self._move(pid, op, "win", win, bwin, "bet", bid)
        return "settlement"

    def deposit(self) -> str:
        seeking = self.rng.random() < RG_SEEKING
        row = self._random_player(
            "account_status = 'active'"
            + (" AND id IN (SELECT player_id FROM rg_limits WHERE kind = 'deposit')" if seeking else "")
        )
        if not row:
            return "skipped"
        pid, op, _cash, _bonus, _status, cur = self._lock(row[0])
        amount = Decimal(int(self.rng.choice([10, 20, 25, 50, 100, 200])) * int(max(1, self._factor(cur))))
        if self.rules.deposit_refused(self.conn, player_id=pid, amount=amount):
            return "deposit_refused_rg"
        status = str(self.rng.choice(["approved", "pending", "declined", "failed"], p=[0.75, 0.15, 0.07, 0.03]))
        fee = (amount * Decimal("0.018")).quantize(CENT) if status == "approved" else Decimal(0)
        pay = self.conn.execute(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, account_ref, provider_fee, "
            "status, created_at) VALUES (%s, %s, 'deposit', %s, %s, 'card', %s, %s, %s, now()) RETURNING id",
            (pid, op, amount, cur, f"card-fp-{pid:012d}", fee, status),
        ).fetchone()[0]
        if status == "approved":
            self._move(pid, op, "deposit", amount, Decimal(0), "payment", pay)
        if status == "pending":
            self.pending_payments.append(pay)
        return "deposit"

    def withdrawal(self) -> str:
        row = self._random_player("account_status = 'active' AND cash_balance >= 20")
        if not row:
            return "skipped"
        pid, op, cash, _bonus, _status, cur = self._lock(row[0])
        amount = (cash * Decimal(str(round(self.rng.uniform(0.3, 1.0), 2)))).quantize(Decimal("1"))
        if amount <= 0 or amount > cash:
            return "skipped"
        pay = self.conn.execute(
            "INSERT INTO payments (player_id, operator_id, kind, amount, currency, method, account_ref, status, "
            "created_at) VALUES (%s, %s, 'withdrawal', %s, %s, 'bank_transfer', %s, 'pending', now()) RETURNING id",
            (pid, op, amount, cur, f"iban-{pid:012d}"),
        ).fetchone()[0]
        self._move(pid, op, "withdrawal", -amount, Decimal(0), "payment", pay)
        return "withdrawal"  # it waits in the withdrawal queue for a staff decision (approve / decline / hold)

    def payment_status(self) -> str:
        """A pending deposit is decided by its provider (credited on approval). Withdrawals are not decided here:
        staff decide them in the withdrawal queue (app/services/payments/decisions.py)."""
        pay = None
        while pay is None and self.pending_payments:
            pay = self.conn.execute(
                "SELECT id, player_id, operator_id, kind, amount FROM payments WHERE id = %s AND status = 'pending' "
                "AND kind = 'deposit' FOR UPDATE SKIP LOCKED",
                (self.pending_payments.popleft(),),
            ).fetchone()
        if not pay:
            return "skipped"
        pay_id, pid, op, _kind, amount = pay
        self._lock(pid)
        status = str(self.rng.choice(["approved", "declined", "failed"], p=[0.85, 0.1, 0.05]))
        self.conn.execute("UPDATE payments SET status = %s WHERE id = %s", (status, pay_id))
        if status == "approved":
            self._move(pid, op, "deposit", amount, Decimal(0), "payment", pay_id)
        return "payment_status"

    def bonus_grant(self) -> str:
        row = self._random_player()
        if not row:
            return "skipped"
        pid, op, _cash, _bonus, _status, cur = self._lock(row[0])
        amount = Decimal(int(self.rng.choice([5, 10, 20])) * int(max(1, self._factor(cur))))
        bid = self.conn.execute(
            "INSERT INTO bonuses (player_id, operator_id, type, amount, wagering_requirement, status, granted_at) "
            "VALUES (%s, %s, 'reload', %s, %s, 'active', now()) RETURNING id",
            (pid, op, amount, amount * 3),
        ).fetchone()[0]
        self._move(pid, op, "bonus_grant", Decimal(0), amount, "bonus", bid)
        return "bonus_grant"

    def bonus_conversion(self) -> str:
        """An active bonus is converted into cash (up to what is left in the bonus wallet)."""
        bonus = self.conn.execute(
            "SELECT id, player_id, operator_id, amount FROM bonuses WHERE status = 'active' "
            "ORDER BY granted_at LIMIT 1 FOR UPDATE SKIP LOCKED"
        ).fetchone()
        if not bonus:
            return "skipped"
        bid, pid, op, amount = bonus
        _pid, _op, _cash, wallet, _status, _cur = self._lock(pid)
        rest = min(amount, wallet)
        if rest <= 0:
            self.conn.execute("UPDATE bonuses SET status = 'expired' WHERE id = %s", (bid,))
            return "bonus_expired"
        self.conn.execute(
            "UPDATE bonuses SET status = 'converted', converted_at = now(), converted_amount = %s, "
            "wagered = greatest(wagered, wagering_requirement) WHERE id = %s",
            (rest, bid),
        )
        self._move(pid, op, "bonus_convert", rest, -rest, "bonus", bid)
        return "bonus_conversion"

    def kyc_submission(self) -> str:
        row = self._random_player("kyc_status IN ('none', 'reupload_requested') AND account_status = 'active'")
        if not row:
            return "skipped"
        pid, op, *_ = self._lock(row[0])
        score = int(np.clip(self.rng.normal(20, 20), 0, 100))
        reasons = []
        if score >= 30:
            reasons.append({"code": "name_mismatch", "detail": "name on document differs from account", "weight": 30})
        if score >= 60:
            reasons.append({"code": "document_expired", "detail": "document expired", "weight": 35})
        suggestion = "approve" if score < 30 else ("review" if score < 70 else "reject")
        case = self.conn.execute(
            "INSERT INTO kyc_cases (player_id, operator_id, auto_score, auto_reasons, auto_suggestion, submitted_at, "
            "due_at) VALUES (%s, %s, %s, %s, %s, now(), now() + interval '72 hours') RETURNING id",
            (pid, op, score, json.dumps(reasons), suggestion),
        ).fetchone()[0]
        self.conn.execute(
            "INSERT INTO kyc_documents (case_id, player_id, doc_type, doc_number, issuing_country, full_name, "
            "date_of_birth, expires_on, file_name, submitted_at) SELECT %s, id, 'passport', %s, country_code, "
            "first_name || ' ' || last_name, date_of_birth, current_date + 1500, %s, now() FROM players WHERE id = %s",
            (case, f"LV{pid:08d}", f"case{case}_1_passport.jpg", pid),
        )
        self.conn.execute("UPDATE players SET kyc_status = 'pending' WHERE id = %s", (pid,))
        return "kyc_submission"

    def account_status(self) -> str:
        """Support suspends an active player, or reactivates a suspended one."""
        if self.rng.random() < 0.5:
            row = self._random_player("account_status = 'suspended'")
            new = "active"
        else:
            row = self._random_player("account_status = 'active'")
            new = "suspended"
        if not row:
            return "skipped"
        self._lock(row[0])
        self.conn.execute("UPDATE players SET account_status = %s WHERE id = %s", (new, row[0]))
        return "account_status"

    def rg_change(self) -> str:
        """A player changes a responsible-gambling limit on the site (lower, raise, remove), or takes a time-out."""
        row = self._random_player()
        if not row:
            return "skipped"
        pid, _op, _cash, _bonus, _status, cur = self._lock(row[0])
        if self.rng.random() < 0.2:
            hours = int(self.rng.choice([24, 48, 72, 168, 336, 672, 1008]))
            return "rg_timeout" if self.rules.player_takes_timeout(self.conn, player_id=pid, hours=hours) else "skipped"
        kind = str(self.rng.choice(["deposit", "loss", "wager", "session_time"], p=[0.6, 0.2, 0.1, 0.1]))
        period = "day" if kind == "session_time" else str(self.rng.choice(["day", "week", "month"]))
        if kind == "session_time":
            value = Decimal(int(self.rng.choice([30, 60, 120, 240])))
        else:
            value = Decimal(int(self.rng.choice([20, 50, 100, 250, 500, 1000])) * int(max(1, self._factor(cur))))
        change = self.rules.player_sets_limit(
            self.conn, player_id=pid, kind=kind, period=period, value=None if self.rng.random() < 0.1 else value
        )
        return f"rg_limit_{change}"

    def old_row_update(self) -> str:
        """Late changes to old rows: a ticket gets resolved, a failed postback is retried."""
        if self.rng.random() < 0.5:
            n = self.conn.execute(
                "UPDATE support_tickets SET status = 'resolved', resolved_at = now(),"
                " first_response_at = coalesce(first_response_at, now()) WHERE id = ("
                "SELECT id FROM support_tickets WHERE status IN ('open', 'pending') ORDER BY created_at LIMIT 1 "
                "FOR UPDATE SKIP LOCKED)"
            ).rowcount
        else:
            n = self.conn.execute(
                "UPDATE postbacks SET status = 'delivered', attempts = attempts + 1, last_http_code = 200, "
                "delivered_at = now(), next_retry_at = NULL WHERE id = (SELECT id FROM postbacks "
                "WHERE status IN ('pending', 'failed') ORDER BY created_at LIMIT 1 FOR UPDATE SKIP LOCKED)"
            ).rowcount
        return "old_row_update" if n else "skipped"


def live(
    url: str, rate: float, seconds: float | None = None, seed: int | None = None, *, rules: PlatformRules
) -> dict[str, int]:
    """Produce `rate` events per second for `seconds` (until Ctrl-C when None); returns counts per event."""
    if rate <= 0:
        raise ValueError("rate must be positive (events per second)")
    if seconds is not None and seconds < 0:
        raise ValueError("seconds must not be negative")
    rng = np.random.default_rng(seed)
    kinds = list(EVENT_WEIGHTS)
    p = np.array([EVENT_WEIGHTS[k] for k in kinds])
    p /= p.sum()
    counts: Counter[str] = Counter()
    with connect(url) as conn:
        state = _Live(conn, rng, rules)
        conn.autocommit = True  # each event is its own explicit transaction
        start = time.monotonic()
        i = 0
        try:
            while seconds is None or time.monotonic() - start < seconds:
                kind = kinds[int(rng.choice(len(kinds), p=p))]
                handler: Callable[[], str] = getattr(state, kind)
                try:
                    with conn.transaction():
                        outcome = handler()
                except psycopg.errors.UniqueViolation:
                    outcome = "skipped"
                counts[outcome] += 1
                i += 1
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
        except KeyboardInterrupt:  # Ctrl-C ends an endless run; the event in flight was rolled back
            log.info("live mode interrupted after %d events", i)
    return dict(counts)
