"""Oracle test of the finance-grade dating (SPEC §3): operational rows written to PostgreSQL, ingested, and every
deduction read through `api.kpis` equals the same figure computed in PostgreSQL by independent SQL in this file,
to the cent, in each brand's currency and in EUR, for complete and partial windows and their previous periods.

The oracle uses other methods than the marts: the duty walks the days of each brand one by one (a recursive
CTE carrying the GGR balance), the provider-fee carry walks the months; the partial day is cut with plain
timestamp comparisons on the raw rows.

The scenario (as-of instant = the latest event, 2026-03-15 14:30 UTC):
- xa (EUR, duty 20 % on GGR, 30 % from 2026-02-15 — a change inside February): January ends −250 (no duty,
  carried); February's first part takes the carry, accrues 10 on 02-05 and gives it back on 02-10 (a negative
  day inside the month) and ends −30, carried into the 30 % part; March has a negative day (03-15).
  Game provider P1 loses in January, carries through February into March; P2 is positive.
- xb (GBP, 15 %): February ends negative (−540), carried into March.
- xc (EUR, 1 % of handle): accrues on handle whatever the GGR.
- Payments: fees on declined and failed deposits; a January deposit (an FTD) charged back on 03-05 with a
  chargeback fee; a February FTD charged back on 02-28 11:00; events on 02-28 on both sides of 14:30
  (bets, deposits, a registration with its FTD, a bonus conversion) for the partial-day comparison.
"""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest

from pipelines.ingest import run_ingest
from warehouse import api, periods
from warehouse.gateway import Gateway

D = dt.date
CENT = Decimal("0.01")
AS_OF = dt.datetime(2026, 3, 15, 14, 30)
OBSERVED = dt.datetime(2026, 3, 15, 14, 31)  # when the live snapshot read the platform
LO, HI = D(2025, 12, 1), D(2026, 3, 31)

ROWS = """
INSERT INTO operators (id, code, name, company, currency, jurisdiction, status, launched_at) VALUES
 (1, 'xa', 'XA Casino', 'XA Ltd', 'EUR', 'XA', 'active', '2025-01-01'),
 (2, 'xb', 'XB Bet', 'XB plc', 'GBP', 'XB', 'active', '2025-01-01'),
 (3, 'xc', 'XC Sports', 'XC SA', 'EUR', 'XC', 'active', '2025-01-01');
INSERT INTO countries (code, iso3, name, region) VALUES
 ('MT', 'MLT', 'Malta', 'Europe'), ('DE', 'DEU', 'Germany', 'Europe'), ('GB', 'GBR', 'United Kingdom', 'Europe');
INSERT INTO fx_rates (rate_date, currency, rate_to_eur) VALUES
 ('2026-01-01', 'GBP', 1.15), ('2026-02-01', 'GBP', 1.17), ('2026-03-01', 'GBP', 1.16), ('2026-01-01', 'EUR', 1);
INSERT INTO tax_rates (id, jurisdiction, basis, rate, effective_from, effective_to) VALUES
 (1, 'XA', 'ggr', 0.20, '2025-01-01', '2026-02-15'), (2, 'XA', 'ggr', 0.30, '2026-02-15', NULL),
 (3, 'XB', 'ggr', 0.15, '2025-01-01', NULL), (4, 'XC', 'handle', 0.01, '2025-01-01', NULL);
INSERT INTO providers (id, name, fee_rate) VALUES (1, 'P1', 0.10), (2, 'P2', 0.12);
INSERT INTO games (id, provider_id, code, name, category, theoretical_rtp, released_at) VALUES
 (1, 1, 'g1', 'Slot One', 'slots', 0.96, '2025-01-01'), (2, 2, 'g2', 'Live Two', 'live', 0.97, '2025-01-01');
INSERT INTO players (id, operator_id, username, email, first_name, last_name, country_code, date_of_birth,
                     registered_at, is_test) VALUES
 (1, 1, 'a1', 'a1@x.test', 'A', 'One', 'MT', '1990-01-01', '2026-01-01 08:00', false),
 (2, 1, 'a2', 'a2@x.test', 'A', 'Two', 'DE', '1990-01-01', '2026-01-02 08:00', false),
 (3, 1, 'a3', 'a3@x.test', 'A', 'Test', 'MT', '1990-01-01', '2026-01-01 08:00', true),
 (4, 1, 'a4', 'a4@x.test', 'A', 'Four', 'MT', '1990-01-01', '2026-02-28 12:00', false),
 (5, 1, 'a5', 'a5@x.test', 'A', 'Five', 'DE', '1990-01-01', '2026-02-28 18:00', false),
 (6, 2, 'b1', 'b1@x.test', 'B', 'One', 'GB', '1990-01-01', '2026-01-01 08:00', false),
 (7, 2, 'b2', 'b2@x.test', 'B', 'Two', 'GB', '1990-01-01', '2026-02-01 09:00', false),
 (8, 3, 'c1', 'c1@x.test', 'C', 'One', 'MT', '1990-01-01', '2026-01-01 08:00', false),
 (9, 1, 'a6', 'a6@x.test', 'A', 'Six', 'MT', '1990-01-01', '2026-03-14 08:00', false);
"""

# player, brand, game, stake, win, jackpot, settled_at
BETS = [
    (1, 1, 1, 100, 500, 1, "2026-01-10 12:00"),
    (1, 1, 2, 150, 0, 0, "2026-01-20 12:00"),
    (3, 1, 1, 1000, 0, 0, "2026-01-21 12:00"),  # the test account: out of everything
    (2, 1, 1, 300, 0, 0, "2026-02-05 12:00"),
    (1, 1, 1, 100, 180, 0, "2026-02-10 12:00"),
    (2, 1, 2, 200, 50, 2, "2026-02-20 12:00"),
    (1, 1, 1, 50, 0, 0, "2026-02-25 12:00"),
    (2, 1, 2, 80, 0, 0, "2026-02-28 10:00"),  # before the 14:30 cut
    (1, 1, 1, 70, 0, 0, "2026-02-28 16:00"),  # after it
    (2, 1, 1, 400, 0, 0, "2026-03-01 10:00"),
    (1, 1, 1, 60, 0, 0, "2026-03-15 09:00"),
    (2, 1, 2, 100, 300, 0, "2026-03-15 14:30"),  # the latest event: the as-of instant
    (6, 2, 1, 1000, 0, 0, "2026-01-15 12:00"),
    (6, 2, 1, 100, 900, 0, "2026-02-03 12:00"),
    (7, 2, 2, 200, 0, 0, "2026-02-20 12:00"),
    (7, 2, 2, 40, 0, 0, "2026-02-28 14:00"),
    (7, 2, 1, 20, 0, 0, "2026-02-28 15:00"),
    (7, 2, 2, 500, 0, 0, "2026-03-02 12:00"),
    (6, 2, 1, 300, 0, 0, "2026-03-10 12:00"),
    (8, 3, 1, 100, 150, 0, "2026-01-05 12:00"),
    (8, 3, 2, 50, 0, 0, "2026-02-28 09:00"),
]
# id, player, brand, kind, amount, method, fee, status, created_at, charged_back_at, chargeback_fee
PAYMENTS = [
    (1, 1, 1, "deposit", 500, "card", 5.00, "approved", "2026-01-02 09:00", None, 0),
    (2, 2, 1, "deposit", 1000, "card", 10.00, "chargeback", "2026-01-03 09:00", "2026-03-05 10:00", 25.00),
    (3, 2, 1, "deposit", 80, "card", 0.50, "declined", "2026-02-02 09:00", None, 0),
    (4, 2, 1, "deposit", 80, "ewallet", 0.30, "failed", "2026-02-02 09:05", None, 0),
    (5, 2, 1, "deposit", 300, "card", 3.00, "approved", "2026-02-27 09:00", None, 0),
    (6, 1, 1, "withdrawal", 200, "bank_transfer", 1.00, "approved", "2026-02-12 09:00", None, 0),
    (7, 1, 1, "withdrawal", 100, "bank_transfer", 0, "pending", "2026-03-14 09:00", None, 0),
    (8, 4, 1, "deposit", 50, "card", 0.75, "approved", "2026-02-28 12:30", None, 0),
    (9, 1, 1, "deposit", 120, "card", 1.20, "approved", "2026-02-28 15:00", None, 0),
    (10, 6, 2, "deposit", 2000, "card", 20.00, "approved", "2026-01-14 09:00", None, 0),
    (11, 7, 2, "deposit", 100, "card", 1.00, "chargeback", "2026-02-01 10:00", "2026-02-28 11:00", 15.00),
    (12, 7, 2, "deposit", 600, "card", 6.00, "approved", "2026-02-19 09:00", None, 0),
    (13, 6, 2, "deposit", 100, "card", 1.00, "approved", "2026-03-15 10:00", None, 0),
    (14, 3, 1, "deposit", 999, "card", 9.00, "approved", "2026-01-05 09:00", None, 0),
    (15, 8, 3, "deposit", 200, "card", 2.00, "approved", "2026-01-04 09:00", None, 0),
    (16, 9, 1, "deposit", 40, "card", 0.40, "approved", "2026-03-14 09:30", None, 0),
    (17, 2, 1, "deposit", 60, "card", 0.80, "declined", "2026-02-28 13:00", None, 0),
]
# player, brand, converted amount, converted_at
BONUSES = [(1, 1, 40, "2026-02-28 15:30"), (6, 2, 25, "2026-03-03 12:00"), (2, 1, 10, "2026-02-28 08:00")]


def _load(url: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(ROWS)
        for i, (pid, brand, game, stake, win, jackpot, at) in enumerate(BETS, 1):
            conn.execute(
                "INSERT INTO bets (id, player_id, operator_id, game_id, real_stake, real_win, jackpot_contribution,"
                " status, placed_at, settled_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 'settled', %s, %s)",
                (i, pid, brand, game, stake, win, jackpot, f"{at}+00", f"{at}+00"),
            )
        for pay_id, pid, brand, kind, amount, method, fee, status, at, cb_at, cb_fee in PAYMENTS:
            conn.execute(
                "INSERT INTO payments (id, player_id, operator_id, kind, amount, currency, method, provider_fee,"
                " status, created_at, charged_back_at, chargeback_fee)"
                " VALUES (%s, %s, %s, %s, %s, (SELECT currency FROM operators WHERE id = %s), %s, %s, %s, %s, %s, %s)",
                (pay_id, pid, brand, kind, amount, brand, method, fee, status, f"{at}+00",
                 None if cb_at is None else f"{cb_at}+00", cb_fee),
            )  # fmt: skip
        for i, (pid, brand, amount, at) in enumerate(BONUSES, 1):
            conn.execute(
                "INSERT INTO bonuses (id, player_id, operator_id, type, amount, status, granted_at, converted_at,"
                " converted_amount) VALUES (%s, %s, %s, 'welcome', %s, 'converted', %s, %s, %s)",
                (i, pid, brand, amount, f"{at}+00", f"{at}+00", amount),
            )


# --------------------------------------------------------------------------- the oracle (PostgreSQL)

# Per brand and day: the rate and basis of the duty in force, the day's GGR and handle (and the part up to
# the cut time of day), and the duty by walking the days in order with the GGR balance of the current period.
DUTY_SQL = """
WITH RECURSIVE
days AS (
    SELECT o.id AS brand_id, o.jurisdiction, d::date AS day, row_number() OVER (PARTITION BY o.id ORDER BY d) AS n
    FROM operators o, generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') d
),
rated AS (
    SELECT d.*, coalesce(t.rate, 0) AS rate, coalesce(t.basis, 'ggr') AS basis
    FROM days d LEFT JOIN LATERAL (
        SELECT rate, basis FROM tax_rates t WHERE t.jurisdiction = d.jurisdiction AND t.effective_from <= d.day
           AND (t.effective_to IS NULL OR d.day < t.effective_to) ORDER BY t.effective_from DESC LIMIT 1) t ON true
),
played AS (
    SELECT b.operator_id AS brand_id, (b.settled_at AT TIME ZONE 'UTC')::date AS day,
           sum(b.real_stake) AS handle, sum(b.real_stake - b.real_win) AS ggr,
           coalesce(sum(b.real_stake) FILTER (WHERE (b.settled_at AT TIME ZONE 'UTC')::time <= %(cut)s::time), 0)
               AS handle_cut,
           coalesce(sum(b.real_stake - b.real_win)
                    FILTER (WHERE (b.settled_at AT TIME ZONE 'UTC')::time <= %(cut)s::time), 0) AS ggr_cut
    FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test
    WHERE b.status = 'settled' GROUP BY 1, 2
),
seq AS (
    SELECT r.*, coalesce(x.handle, 0) AS handle, coalesce(x.ggr, 0) AS ggr, coalesce(x.handle_cut, 0) AS handle_cut,
           coalesce(x.ggr_cut, 0) AS ggr_cut
    FROM rated r LEFT JOIN played x ON x.brand_id = r.brand_id AND x.day = r.day
),
walk AS (
    SELECT s.brand_id, s.n, s.day, s.rate, s.basis, s.handle, s.ggr, s.handle_cut, s.ggr_cut,
           0::numeric AS before, CASE WHEN s.basis = 'ggr' THEN s.ggr ELSE 0 END AS last_balance
    FROM seq s WHERE s.n = 1
    UNION ALL
    SELECT s.brand_id, s.n, s.day, s.rate, s.basis, s.handle, s.ggr, s.handle_cut, s.ggr_cut,
           CASE WHEN s.basis <> 'ggr' THEN 0
                WHEN date_trunc('month', s.day) <> date_trunc('month', w.day) OR s.rate <> w.rate
                     OR s.basis <> w.basis THEN least(0, w.last_balance)
                ELSE w.last_balance END,
           CASE WHEN s.basis <> 'ggr' THEN w.last_balance
                WHEN date_trunc('month', s.day) <> date_trunc('month', w.day) OR s.rate <> w.rate
                     OR s.basis <> w.basis THEN least(0, w.last_balance) + s.ggr
                ELSE w.last_balance + s.ggr END
    FROM walk w JOIN seq s ON s.brand_id = w.brand_id AND s.n = w.n + 1
)
SELECT brand_id, day,
       CASE WHEN basis = 'handle' THEN rate * handle
            ELSE rate * (greatest(0, before + ggr) - greatest(0, before)) END AS duty,
       CASE WHEN basis = 'handle' THEN rate * handle_cut
            ELSE rate * (greatest(0, before + ggr_cut) - greatest(0, before)) END AS duty_cut
FROM walk
"""

# Per brand × provider and day: the fee, with the carry-in of each month found by walking the months.
PROVIDER_SQL = """
WITH RECURSIVE
played AS (
    SELECT b.operator_id AS brand_id, g.provider_id, pr.fee_rate, (b.settled_at AT TIME ZONE 'UTC')::date AS day,
           sum(b.real_stake - b.real_win) AS ggr,
           coalesce(sum(b.real_stake - b.real_win)
                    FILTER (WHERE (b.settled_at AT TIME ZONE 'UTC')::time <= %(cut)s::time), 0) AS ggr_cut
    FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test
    JOIN games g ON g.id = b.game_id JOIN providers pr ON pr.id = g.provider_id
    WHERE b.status = 'settled' GROUP BY 1, 2, 3, 4
),
months AS (
    SELECT k.brand_id, k.provider_id, m::date AS month, row_number() OVER (PARTITION BY k.brand_id, k.provider_id
           ORDER BY m) AS n,
           coalesce((SELECT sum(ggr) FROM played x WHERE x.brand_id = k.brand_id AND x.provider_id = k.provider_id
                     AND date_trunc('month', x.day) = m), 0) AS ggr
    FROM (SELECT DISTINCT brand_id, provider_id FROM played) k,
         generate_series(%(lo)s::date, %(hi)s::date, interval '1 month') m
),
carry AS (
    SELECT brand_id, provider_id, n, month, 0::numeric AS carry_in, ggr FROM months WHERE n = 1
    UNION ALL
    SELECT m.brand_id, m.provider_id, m.n, m.month, least(0, c.carry_in + c.ggr), m.ggr
    FROM carry c JOIN months m ON m.brand_id = c.brand_id AND m.provider_id = c.provider_id AND m.n = c.n + 1
),
daily AS (
    SELECT x.*, c.carry_in + coalesce((SELECT sum(y.ggr) FROM played y WHERE y.brand_id = x.brand_id
           AND y.provider_id = x.provider_id AND date_trunc('month', y.day) = date_trunc('month', x.day)
           AND y.day < x.day), 0) AS before
    FROM played x JOIN carry c ON c.brand_id = x.brand_id AND c.provider_id = x.provider_id
         AND c.month = date_trunc('month', x.day)
)
SELECT brand_id, day, sum(fee_rate * (greatest(0, before + ggr) - greatest(0, before))) AS fee,
       sum(fee_rate * (greatest(0, before + ggr_cut) - greatest(0, before))) AS fee_cut
FROM daily GROUP BY 1, 2
"""

# Per brand and day, each figure in full and up to the cut time of day (`_cut`): events of non-test players.
EVENTS_SQL = """
WITH ev AS (
    SELECT b.operator_id AS brand_id, b.settled_at AT TIME ZONE 'UTC' AS at, b.real_stake AS handle,
           b.real_stake - b.real_win AS ggr, b.jackpot_contribution AS jackpot, 0 AS bonus_cost, 0 AS payment_fees,
           0 AS chargebacks, 0 AS deposits, 0 AS withdrawals, 0 AS registrations, 0 AS ftds, 0 AS ftds_charged_back
    FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test WHERE b.status = 'settled'
    UNION ALL
    SELECT y.operator_id, y.created_at AT TIME ZONE 'UTC', 0, 0, 0, 0, y.provider_fee, 0,
           CASE WHEN y.kind = 'deposit' AND y.status IN ('approved', 'chargeback') THEN y.amount ELSE 0 END,
           CASE WHEN y.kind = 'withdrawal' AND y.status = 'approved' THEN y.amount ELSE 0 END, 0, 0, 0
    FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test
    UNION ALL
    SELECT y.operator_id, coalesce(y.charged_back_at, y.updated_at) AT TIME ZONE 'UTC', 0, 0, 0, 0,
           y.chargeback_fee, y.amount, 0, 0, 0, 0, 0
    FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test WHERE y.status = 'chargeback'
    UNION ALL
    SELECT x.operator_id, x.converted_at AT TIME ZONE 'UTC', 0, 0, 0, x.converted_amount, 0, 0, 0, 0, 0, 0, 0
    FROM bonuses x JOIN players p ON p.id = x.player_id AND NOT p.is_test WHERE x.converted_at IS NOT NULL
    UNION ALL
    SELECT operator_id, registered_at AT TIME ZONE 'UTC', 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0 FROM players WHERE NOT is_test
    UNION ALL (
        SELECT DISTINCT ON (y.player_id) y.operator_id, y.created_at AT TIME ZONE 'UTC', 0, 0, 0, 0, 0, 0, 0, 0, 0,
               1, CASE WHEN y.status = 'chargeback' THEN 1 ELSE 0 END
        FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test
        WHERE y.kind = 'deposit' AND y.status IN ('approved', 'chargeback')
        ORDER BY y.player_id, y.created_at, y.id
    )
)
SELECT brand_id, at::date AS day, {cols}
FROM ev GROUP BY 1, 2
"""
COUNTED = ("registrations", "ftds", "ftds_charged_back")
FIGURES = (
    "handle",
    "ggr",
    "jackpot",
    "bonus_cost",
    "payment_fees",
    "chargebacks",
    "deposits",
    "withdrawals",
    "registrations",
    "ftds",
    "ftds_charged_back",
)

# Distinct players with a settled real-money bet / a deposit (approved or later charged back) in [lo, hi].
PLAYERS_SQL = """
SELECT
  (SELECT count(DISTINCT b.player_id) FROM bets b JOIN players p ON p.id = b.player_id AND NOT p.is_test
   WHERE b.status = 'settled' AND b.real_stake > 0 AND b.operator_id = ANY(%(brands)s)
     AND b.settled_at AT TIME ZONE 'UTC' >= %(lo)s AND b.settled_at AT TIME ZONE 'UTC' < %(hi)s),
  (SELECT count(DISTINCT y.player_id) FROM payments y JOIN players p ON p.id = y.player_id AND NOT p.is_test
   WHERE y.kind = 'deposit' AND y.status IN ('approved', 'chargeback') AND y.operator_id = ANY(%(brands)s)
     AND y.created_at AT TIME ZONE 'UTC' >= %(lo)s AND y.created_at AT TIME ZONE 'UTC' < %(hi)s)
"""

RATES_SQL = """
SELECT o.id, d::date, CASE WHEN o.currency = 'EUR' THEN 1 ELSE coalesce(
    (SELECT r.rate_to_eur FROM fx_rates r WHERE r.currency = o.currency AND r.rate_date <= d::date
     ORDER BY r.rate_date DESC LIMIT 1),
    (SELECT r.rate_to_eur FROM fx_rates r WHERE r.currency = o.currency ORDER BY r.rate_date LIMIT 1)) END
FROM operators o, generate_series(%(lo)s::date, %(hi)s::date, interval '1 day') d
"""


class Oracle:
    """Per brand and day, every figure in full and up to the as-of time of day, from PostgreSQL."""

    def __init__(self, url: str, cut: dt.time, lo: dt.date = LO, hi: dt.date = HI) -> None:
        self.url = url.replace("postgresql+psycopg://", "postgresql://")
        params = {"lo": lo, "hi": hi, "cut": cut}
        self.full: dict[tuple[int, dt.date], dict[str, Decimal]] = {}
        self.cut: dict[tuple[int, dt.date], dict[str, Decimal]] = {}
        cols = ", ".join(
            f"sum({f}) AS {f}, coalesce(sum({f}) FILTER (WHERE at::time <= %(cut)s::time), 0) AS {f}_cut"
            for f in FIGURES
        )
        with psycopg.connect(self.url) as conn:
            for row in conn.execute(EVENTS_SQL.format(cols=cols), params):
                key = (row[0], row[1])
                for i, f in enumerate(FIGURES):
                    self._add(key, f, row[2 + 2 * i], row[3 + 2 * i])
            for brand, day, duty, duty_cut in conn.execute(DUTY_SQL, params):
                self._add((brand, day), "duty", duty, duty_cut)
            for brand, day, fee, fee_cut in conn.execute(PROVIDER_SQL, params):
                self._add((brand, day), "provider_fee", fee, fee_cut)
            self.rates = {(b, d): Decimal(r) for b, d, r in conn.execute(RATES_SQL, params)}

    def _add(self, key: tuple[int, dt.date], name: str, full: Decimal, cut: Decimal) -> None:
        self.full.setdefault(key, {})[name] = self.full.get(key, {}).get(name, 0) + Decimal(full or 0)
        self.cut.setdefault(key, {})[name] = self.cut.get(key, {}).get(name, 0) + Decimal(cut or 0)

    def sums(self, brands: list[int], lo: dt.date, hi: dt.date, cut_day: dt.date | None, eur: bool) -> dict:
        """Figures over [lo, hi] (whole days), plus `cut_day` up to the cut time; EUR at each day's rate."""
        total: dict[str, Decimal] = {}
        for (brand, day), figures in self.full.items():
            source = self.cut[(brand, day)] if day == cut_day else figures if lo <= day <= hi else None
            if brand not in brands or source is None:
                continue
            rate = self.rates[(brand, day)] if eur else Decimal(1)
            for name, value in source.items():
                total[name] = total.get(name, Decimal(0)) + value * (1 if name in COUNTED else rate)
        money = ("handle", "ggr", "jackpot", "bonus_cost", "payment_fees", "chargebacks", "deposits", "withdrawals")
        out = {n: total.get(n, Decimal(0)) for n in (*money, "duty", "provider_fee")}
        out["ngr"] = out["ggr"] - sum(
            out[n] for n in ("bonus_cost", "jackpot", "provider_fee", "payment_fees", "chargebacks", "duty")
        )
        shown = {n: float(v.quantize(CENT, rounding=ROUND_HALF_UP)) for n, v in out.items()}  # half away from 0
        shown |= {n: int(total.get(n, 0)) for n in COUNTED}
        return shown

    def players(self, brands: list[int], lo: dt.datetime, hi: dt.datetime) -> tuple[int, int]:
        with psycopg.connect(self.url) as conn:
            return conn.execute(PLAYERS_SQL, {"brands": brands, "lo": lo, "hi": hi}).fetchone()


NAMES = {
    "handle": "handle",
    "ggr": "ggr",
    "jackpot": "jackpot_contributions",
    "bonus_cost": "bonus_cost",
    "payment_fees": "payment_fees",
    "chargebacks": "chargebacks",
    "deposits": "deposits",
    "withdrawals": "withdrawals",
    "duty": "gaming_duty",
    "provider_fee": "provider_fees",
    "ngr": "ngr",
    "registrations": "registrations",
    "ftds": "ftds",
    "ftds_charged_back": "ftds_charged_back",
}


@pytest.fixture(scope="module")
def served(pg_server_url: str, migrated_template: str, tmp_path_factory: pytest.TempPathFactory):
    """(gateway of the warehouse as read live at OBSERVED, the oracle, gateway of the same data read much later)."""
    import shutil
    import uuid

    from tests.conftest import create_database, drop_database

    name = f"pb_oracle_{uuid.uuid4().hex[:8]}"
    url = create_database(pg_server_url, name, template=migrated_template)
    try:
        _load(url)
        later = tmp_path_factory.mktemp("oracle") / "warehouse.duckdb"
        run_ingest(url, later, full=True).raise_for_status()  # read now: every day up to today has ended
        live = later.with_name("live.duckdb")
        shutil.copy(later, live)
        con = duckdb.connect(str(live))
        con.execute("UPDATE meta.snapshot SET source_as_of = ?", [OBSERVED])  # as if read at 14:31 on 03-15
        con.close()
        yield Gateway(live), Oracle(url, AS_OF.time()), Gateway(later)
    finally:
        drop_database(pg_server_url, name)


def _kpis(gw: Gateway, f: api.Filters) -> dict[str, dict]:
    return {r["metric"]: r for r in api.kpis(gw, f, scope=None).iter_rows(named=True)}


def _check(
    gw: Gateway,
    oracle: Oracle,
    f: api.Filters,
    brands: list[int],
    eur: bool,
    as_of: dt.datetime = AS_OF,
    observed: dt.datetime = OBSERVED,
) -> dict[str, dict]:
    k = _kpis(gw, f)
    cmp = periods.comparison(f, as_of, observed)
    cur = oracle.sums(brands, f.start, min(f.end, as_of.date()), None, eur)
    prev_hi = (cmp.cut_day - dt.timedelta(days=1)) if cmp.so_far else cmp.previous.end
    prev = oracle.sums(brands, cmp.previous.start, prev_hi, cmp.cut_day if cmp.so_far else None, eur)
    for ours, name in NAMES.items():
        assert (k[name]["value"], k[name]["previous"]) == (cur[ours], prev[ours]), (name, f)
    start = dt.datetime.combine(f.start, dt.time())
    assert (k["active_players"]["value"], k["depositing_players"]["value"]) == oracle.players(
        brands, start, dt.datetime.combine(f.end + dt.timedelta(days=1), dt.time())
    )
    prev_until = cmp.cutoff + dt.timedelta(microseconds=1) if cmp.so_far else dt.datetime.combine(f.start, dt.time())
    assert (k["active_players"]["previous"], k["depositing_players"]["previous"]) == oracle.players(
        brands, dt.datetime.combine(cmp.previous.start, dt.time()), prev_until
    )
    return k


WINDOWS = [
    api.Filters(D(2026, 1, 1), D(2026, 1, 31)),  # January: losses carried out of it
    api.Filters(D(2026, 2, 1), D(2026, 2, 28)),  # February: the rate change, a negative day, carry in and out
    api.Filters(D(2026, 3, 1), D(2026, 3, 15)),  # March to date: so far, against 02-14 … 02-28 14:30
    api.Filters(D(2026, 3, 15), D(2026, 3, 15)),  # today so far against yesterday to the same time
    api.Filters(D(2026, 3, 9), D(2026, 3, 20)),  # a window running past the data: so far, cut at as-of − 12 days
]


@pytest.mark.parametrize("f", WINDOWS, ids=lambda f: f"{f.start}..{f.end}")
def test_every_brand_in_its_currency_equals_the_oracle(served, f):
    gw, oracle, _ = served
    for brand in (1, 2, 3):
        _check(gw, oracle, api.Filters(f.start, f.end, brands=frozenset({brand}), currency="brand"), [brand], False)


@pytest.mark.parametrize("f", WINDOWS, ids=lambda f: f"{f.start}..{f.end}")
def test_all_brands_in_eur_equal_the_oracle(served, f):
    gw, oracle, _ = served
    _check(gw, oracle, f, [1, 2, 3], True)


def test_the_scenario_exercises_what_it_claims(served):
    """The figures the scenario was built for, by hand (so the oracle above is not vacuous)."""
    gw, _, _ = served
    xa = frozenset({1})
    jan = _kpis(gw, api.Filters(D(2026, 1, 1), D(2026, 1, 31), brands=xa, currency="brand"))
    assert jan["ggr"]["value"] == -250.0 and jan["gaming_duty"]["value"] == 0.0  # no tax credit
    # P1 −400 → 0, P2 +150 → 18
    assert jan["provider_fees"]["value"] == 18.0
    feb = _kpis(gw, api.Filters(D(2026, 2, 1), D(2026, 2, 28), brands=xa, currency="brand"))
    # 02-01…02-14 at 20 %: −250 carried + 300 − 80 = −30 → 0 (10 on 02-05, −10 on 02-10);
    # 02-15…02-28 at 30 %: −30 + 150 + 50 + 80 + 70 = 320 → 96
    assert feb["gaming_duty"]["value"] == 96.0
    # P1 carried −400: −400 + 300 − 80 + 50 + 70 = −60 → 0; P2: 150 + 80 = 230 → 27.60
    assert feb["provider_fees"]["value"] == 27.6
    # fees: declined 0.50 + failed 0.30 + 3.00 + withdrawal 1.00 + 0.75 + 1.20 + declined 0.80 = 7.55
    assert feb["payment_fees"]["value"] == 7.55
    day = _kpis(gw, api.Filters(D(2026, 2, 10), D(2026, 2, 10), brands=xa, currency="brand"))
    assert day["gaming_duty"]["value"] == -10.0  # a later loss reverses earlier accrual inside the month
    mar = _kpis(gw, api.Filters(D(2026, 3, 1), D(2026, 3, 15), brands=xa, currency="brand"))
    # the January deposit charged back on 03-05: 1000 + its fee 25 in March; its deposit stays in January
    assert mar["chargebacks"]["value"] == 1000.0 and jan["deposits"]["value"] == 1500.0
    assert jan["ftds"]["value"] == 2 and jan["ftds_charged_back"]["value"] == 1
    assert mar["ggr"]["so_far"]
    assert mar["ggr"]["previous_until"] == dt.datetime(2026, 2, 28, 14, 30)
    # previous period 02-14 … 02-28 14:30: 02-20 +150, 02-25 +50, 02-28 10:00 +80 (the 16:00 bet is after the cut)
    assert mar["ggr"]["previous"] == 280.0
    # 03-01 +400, 03-15 +60 − 200 → March cum 260 at 30 %: 120 then −42
    assert mar["gaming_duty"]["value"] == 78.0
    xb = _kpis(gw, api.Filters(D(2026, 3, 1), D(2026, 3, 31), brands=frozenset({2}), currency="brand"))
    # February ended −540 (carried): March −540 + 500 + 300 = 260 → 39
    assert xb["gaming_duty"]["value"] == 39.0
    xc = _kpis(gw, api.Filters(D(2026, 1, 1), D(2026, 1, 31), brands=frozenset({3}), currency="brand"))
    assert xc["ggr"]["value"] == -50.0 and xc["gaming_duty"]["value"] == 1.0  # 1 % of handle 100


def test_without_the_partial_day_rule_the_comparison_would_differ(served):
    """The so-far cut matters in this data: the whole previous period is larger than its first 14.6 days."""
    gw, oracle, later = served
    f = api.Filters(D(2026, 3, 1), D(2026, 3, 15))
    whole = oracle.sums([1, 2, 3], D(2026, 2, 14), D(2026, 2, 28), None, True)
    shown = _kpis(gw, f)
    for name in ("ggr", "deposits", "gaming_duty", "bonus_cost", "registrations"):
        assert shown[name]["previous"] != whole[{v: k for k, v in NAMES.items()}[name]], name
    # read after the window's last day ended, the same window is complete: whole days against whole days
    done = _kpis(later, f)
    assert not done["ggr"]["so_far"] and done["ggr"]["previous_until"] is None
    for ours, name in NAMES.items():
        assert done[name]["previous"] == whole[ours], name
    assert (done["active_players"]["previous"], done["depositing_players"]["previous"]) == oracle.players(
        [1, 2, 3], dt.datetime(2026, 2, 14), dt.datetime(2026, 3, 1)
    )


def test_the_comparison_rule():
    f = api.Filters(D(2026, 3, 1), D(2026, 3, 15))
    live = periods.comparison(f, AS_OF, OBSERVED)
    assert (live.so_far, live.cutoff, live.cut_day) == (True, dt.datetime(2026, 2, 28, 14, 30), D(2026, 2, 28))
    assert not periods.comparison(f, AS_OF, dt.datetime(2026, 3, 16)).so_far  # read after the window ended
    assert not periods.comparison(api.Filters(D(2026, 3, 1), D(2026, 3, 14)), AS_OF, OBSERVED).so_far
    assert not periods.comparison(f, None, OBSERVED).so_far  # no data
    # a window running past the data: cut at as-of − its length, whole days before that
    long = periods.comparison(api.Filters(D(2026, 3, 9), D(2026, 3, 20)), AS_OF, OBSERVED)
    assert (long.so_far, long.cutoff) == (True, dt.datetime(2026, 3, 3, 14, 30))


def test_the_tiny_seed_equals_the_oracle(tiny_db: str, tmp_path: Path):
    """The same oracle on generated data (four brands and currencies, a duty-rate change, chargebacks with their
    fee, fees on declined deposits, thousands of players sharing each day's accruals), read live at its as-of."""
    wh = tmp_path / "warehouse.duckdb"
    run_ingest(tiny_db, wh, full=True).raise_for_status()
    con = duckdb.connect(str(wh))
    as_of = con.execute("SELECT as_of FROM mart.as_of").fetchone()[0]
    lo, hi = con.execute("SELECT min(day), max(day) FROM mart.calendar").fetchone()
    # every so-far row's NGR is its components exactly (it was rounded to the cent: a UNION's decimal scale)
    assert not con.execute(
        "SELECT count(*) FROM mart.daily_kpi_sofar"
        " WHERE ngr <> ggr - bonus_cost - jackpot - provider_fee - payment_fees - chargebacks - duty"
    ).fetchone()[0]
    observed = as_of + dt.timedelta(seconds=30)
    con.execute("UPDATE meta.snapshot SET source_as_of = ?", [observed])
    brands = [r[0] for r in con.execute("SELECT brand_id FROM mart.brands ORDER BY 1").fetchall()]
    con.close()
    gw, oracle = Gateway(wh), Oracle(tiny_db, as_of.time(), lo, hi)
    assert len(brands) >= 2
    month = as_of.date().replace(day=1)
    windows = [
        api.Filters(month - dt.timedelta(days=61), month - dt.timedelta(days=1)),  # two whole months
        api.Filters(month, as_of.date()),  # month to date, so far
        api.Filters(as_of.date() - dt.timedelta(days=29), as_of.date()),  # last 30 days, so far
    ]
    for f in windows:
        for brand in brands:
            scoped = api.Filters(f.start, f.end, brands=frozenset({brand}), currency="brand")
            _check(gw, oracle, scoped, [brand], False, as_of, observed)
        k = _check(gw, oracle, f, brands, True, as_of, observed)
        assert k["ggr"]["value"] and k["gaming_duty"]["value"] and k["payment_fees"]["value"]
