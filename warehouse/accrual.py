"""The SQL of the accrued deductions (SPEC §3): gaming duty and game-provider fees, with negative carry-forward.

Both accrue on an accounting period and are never negative over a period:

- **Gaming duty**, per brand. The periods are the calendar months (UTC), each split where the duty rate or
  basis in force changes inside it (`tax_rates`, effective-dated by the brand's jurisdiction). For a period P
  with rate r: the cumulative duty to day d is `r × max(0, carry_in(P) + Σ GGR of P's days up to d)`, and a
  day's duty is the change in that figure (negative inside a period when later losses reverse earlier
  accrual; a whole period's duty is `r × max(0, carry_in + GGR of P)` ≥ 0, so no month's duty is negative).
  `carry_in(P)` ≤ 0 is the GGR balance a period ending negative hands to the next one (`min(0, carry_in +
  GGR of P)`); a period ending positive hands 0. A period on the `handle` basis accrues `r × handle` (never
  negative) and leaves the GGR carry as it was.
- **Game-provider fees**, per brand × provider, on calendar months only (`providers.fee_rate` is not
  effective-dated): the same rule with the provider's GGR and fee rate.

The carry over a sequence of periods is computed with window functions, not a loop: with S_k the running sum
of the periods' GGR, the carry into period k is `S_{k-1} − max(0, max_{j<k} S_j)` (the negative excursion of
the running sum below its running maximum, which is the closed form of `carry_k = min(0, carry_{k-1} + G)`).

Below the brand (a country, a player, a game), duty and provider fees are the brand's accrual allocated in
proportion to each part's signed GGR (or handle) of the day: `share = accrual × part ÷ total`, rounded to
6 decimals, the rounding remainder given to the largest part, so the parts add up to the brand's accrual
exactly. (Where nothing was clamped this is exactly `rate × the part's GGR`.)

"So far" columns (`*_sofar`) repeat a figure for the events of each day up to the time of day of the data's
as-of instant (`mart.as_of.cut_time`): they compare a partial day with the same part of another day. The
settled bets so far are summed by day × brand × country × provider (`mart.bets_sofar`), not per player.
"""

from __future__ import annotations

SOFAR = "CAST({ts} AS TIME) <= cut.cut_time"


def sofar(ts: str) -> str:
    """SQL condition: the event at `ts` falls on its day no later than the as-of time of day (needs `cut`)."""
    return SOFAR.format(ts=ts)


def allocation(name: str, total: str, weight: str, part: str, tie: str) -> tuple[str, str]:
    """Two SELECT fragments of an exact allocation of `total` (constant within the window `part`) to the rows
    of `part` in proportion to `weight`: the first computes the rounded share and the rank (use it in one CTE),
    the second (in the next CTE) adds the rounding remainder to the row of largest |weight| (ties by `tie`)."""
    first = (
        f"CAST(coalesce(round(CAST({total} * {weight} AS DOUBLE) "
        f"/ nullif(CAST(sum({weight}) OVER ({part}) AS DOUBLE), 0), 6), 0) AS DECIMAL(18,6)) AS {name}_share, "
        f"row_number() OVER ({part} ORDER BY abs({weight}) DESC, {tie}) AS {name}_rank"
    )
    second = (
        f"CAST({name}_share + CASE WHEN {name}_rank = 1 THEN {total} - sum({name}_share) OVER ({part}) ELSE 0 END "
        f"AS DECIMAL(18,6))"
    )
    return first, second


def _carry(totals: str, keys: str, order: str) -> str:
    """SELECT over `totals` (one row per period, `ggr_total`) adding `carry_in` by the closed form above."""
    return f"""
    SELECT *, CAST(coalesce(lag(s) OVER (PARTITION BY {keys} ORDER BY {order}), 0)
                   - greatest(0, coalesce(max(s) OVER (PARTITION BY {keys} ORDER BY {order}
                                          ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)) AS DECIMAL(18,2))
               AS carry_in
    FROM (SELECT *, sum(ggr_total) OVER (PARTITION BY {keys} ORDER BY {order}) AS s FROM {totals})"""


# Day × player × provider: the settled real-money figures a player's day needs, split by game provider (for
# the provider-fee allocation).
PLAYER_PROVIDER_DAY_SQL = """
CREATE OR REPLACE TABLE mart.player_provider_day AS
SELECT CAST(b.settled_at AS DATE) AS day, b.player_id, p.brand_id, p.country_code, g.provider_id,
       count(*) AS rounds, count(*) FILTER (WHERE b.real_stake > 0) AS real_rounds,
       CAST(sum(b.real_stake) AS DECIMAL(18,2)) AS handle, CAST(sum(b.real_win) AS DECIMAL(18,2)) AS real_win,
       CAST(sum(b.bonus_stake) AS DECIMAL(18,2)) AS bonus_stake, CAST(sum(b.bonus_win) AS DECIMAL(18,2)) AS bonus_win,
       CAST(sum(b.jackpot_contribution) AS DECIMAL(18,2)) AS jackpot,
       min(b.settled_at) FILTER (WHERE b.real_stake > 0) AS first_real_bet_at
FROM raw.bets b
JOIN mart.games g ON g.game_id = b.game_id
JOIN mart.player_dim p ON p.player_id = b.player_id AND NOT p.is_test
WHERE b.status = 'settled'
GROUP BY ALL
ORDER BY day
"""

# Day × brand × country × provider (the keys of `player_provider_day` without the player): the settled bets'
# figures "so far" (events up to the as-of time of day); a key has a row whatever the cut. Small, so that a
# moved cut shifts it cheaply (warehouse/incremental_sofar.py).
BETS_SOFAR_SQL = f"""
CREATE OR REPLACE TABLE mart.bets_sofar AS
WITH cut AS (SELECT cut_time FROM mart.as_of)
SELECT CAST(b.settled_at AS DATE) AS day, p.brand_id, p.country_code, g.provider_id,
       count(*) FILTER (WHERE {sofar("b.settled_at")}) AS rounds_sofar,
       count(*) FILTER (WHERE b.real_stake > 0 AND {sofar("b.settled_at")}) AS real_rounds_sofar,
       CAST(coalesce(sum(b.real_stake) FILTER (WHERE {sofar("b.settled_at")}), 0) AS DECIMAL(18,2)) AS handle_sofar,
       CAST(coalesce(sum(b.real_win) FILTER (WHERE {sofar("b.settled_at")}), 0) AS DECIMAL(18,2)) AS real_win_sofar,
       CAST(coalesce(sum(b.bonus_stake) FILTER (WHERE {sofar("b.settled_at")}), 0) AS DECIMAL(18,2))
           AS bonus_stake_sofar,
       CAST(coalesce(sum(b.bonus_win) FILTER (WHERE {sofar("b.settled_at")}), 0) AS DECIMAL(18,2)) AS bonus_win_sofar,
       CAST(coalesce(sum(b.jackpot_contribution) FILTER (WHERE {sofar("b.settled_at")}), 0) AS DECIMAL(18,2))
           AS jackpot_sofar
FROM raw.bets b
JOIN mart.games g ON g.game_id = b.game_id
JOIN mart.player_dim p ON p.player_id = b.player_id AND NOT p.is_test
CROSS JOIN cut
WHERE b.status = 'settled'
GROUP BY ALL
ORDER BY day
"""

# Day × brand × provider (days with settled bets): the provider's GGR, the month's carry and the fee accrued.
PROVIDER_FEE_DAY_SQL = f"""
CREATE OR REPLACE TABLE mart.provider_fee_day AS
WITH s AS (
    SELECT day, brand_id, provider_id, CAST(sum(handle_sofar) AS DECIMAL(18,2)) AS handle_sofar,
           CAST(sum(handle_sofar - real_win_sofar) AS DECIMAL(18,2)) AS ggr_sofar
    FROM mart.bets_sofar GROUP BY ALL
),
d AS (
    SELECT x.*, s.handle_sofar, s.ggr_sofar
    FROM (
        SELECT x.day, x.brand_id, x.provider_id, CAST(date_trunc('month', x.day) AS DATE) AS month,
               CAST(sum(x.handle) AS DECIMAL(18,2)) AS handle, CAST(sum(x.handle - x.real_win) AS DECIMAL(18,2)) AS ggr
        FROM mart.player_provider_day x GROUP BY ALL
    ) x
    JOIN s ON s.day = x.day AND s.brand_id = x.brand_id AND s.provider_id = x.provider_id
),
months AS (
    SELECT brand_id, provider_id, month, sum(ggr) AS ggr_total FROM d GROUP BY ALL
),
carried AS ({_carry("months", "brand_id, provider_id", "month")}),
bal AS (
    SELECT d.*, c.carry_in, pr.fee_rate,
           CAST(c.carry_in + coalesce(sum(d.ggr) OVER (PARTITION BY d.brand_id, d.provider_id, d.month ORDER BY d.day
                ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS DECIMAL(18,2)) AS base_before
    FROM d
    JOIN carried c ON c.brand_id = d.brand_id AND c.provider_id = d.provider_id AND c.month = d.month
    JOIN (SELECT DISTINCT provider_id, fee_rate FROM mart.games) pr ON pr.provider_id = d.provider_id
)
SELECT day, brand_id, provider_id, month, fee_rate, handle, ggr, handle_sofar, ggr_sofar, carry_in, base_before,
       CAST(fee_rate * (greatest(0, base_before + ggr) - greatest(0, base_before)) AS DECIMAL(18,6)) AS fee,
       CAST(fee_rate * (greatest(0, base_before + ggr_sofar) - greatest(0, base_before)) AS DECIMAL(18,6)) AS fee_sofar,
       CAST(fee_rate * greatest(0, base_before + ggr) AS DECIMAL(18,6)) AS fee_to_date
FROM bal
ORDER BY day, brand_id, provider_id
"""

# Day × brand (every calendar day): the duty period (month split at a rate or basis change), its carry, the
# base (GGR or handle) of the day and the duty accrued, also so far.
DUTY_DAY_SQL = f"""
CREATE OR REPLACE TABLE mart.duty_day AS
WITH g AS (
    SELECT day, brand_id, sum(handle) AS handle, sum(ggr) AS ggr, sum(handle_sofar) AS handle_sofar,
           sum(ggr_sofar) AS ggr_sofar
    FROM mart.provider_fee_day GROUP BY ALL
),
d AS (
    SELECT bd.day, bd.brand_id, CAST(date_trunc('month', bd.day) AS DATE) AS month, bd.duty_rate, bd.duty_basis,
           CAST(coalesce(g.handle, 0) AS DECIMAL(18,2)) AS handle, CAST(coalesce(g.ggr, 0) AS DECIMAL(18,2)) AS ggr,
           CAST(coalesce(CASE WHEN bd.duty_basis = 'handle' THEN g.handle ELSE g.ggr END, 0) AS DECIMAL(18,2)) AS base,
           CAST(coalesce(CASE WHEN bd.duty_basis = 'handle' THEN g.handle_sofar ELSE g.ggr_sofar END, 0)
                AS DECIMAL(18,2)) AS base_sofar
    FROM mart.brand_day bd LEFT JOIN g ON g.day = bd.day AND g.brand_id = bd.brand_id
),
numbered AS (
    SELECT *, sum(starts) OVER (PARTITION BY brand_id ORDER BY day) AS period_no
    FROM (
        SELECT *, CASE WHEN lag(day) OVER w IS NULL OR lag(month) OVER w <> month
                         OR lag(duty_rate) OVER w <> duty_rate OR lag(duty_basis) OVER w <> duty_basis
                       THEN 1 ELSE 0 END AS starts
        FROM d WINDOW w AS (PARTITION BY brand_id ORDER BY day)
    )
),
periods AS (
    SELECT brand_id, period_no, min(day) AS period_start,
           CASE WHEN any_value(duty_basis) = 'ggr' THEN sum(ggr) ELSE 0 END AS ggr_total
    FROM numbered GROUP BY ALL
),
carried AS ({_carry("periods", "brand_id", "period_no")}),
bal AS (
    SELECT n.*, p.period_start,
           CAST(CASE WHEN n.duty_basis = 'ggr' THEN p.carry_in ELSE 0 END AS DECIMAL(18,2)) AS carry_in,
           CAST(CASE WHEN n.duty_basis = 'ggr' THEN p.carry_in ELSE 0 END
                + coalesce(sum(n.base) OVER (PARTITION BY n.brand_id, n.period_no ORDER BY n.day
                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS DECIMAL(18,2)) AS base_before
    FROM numbered n JOIN carried p ON p.brand_id = n.brand_id AND p.period_no = n.period_no
)
SELECT day, brand_id, month, period_start, duty_rate, duty_basis, handle, ggr, base, base_sofar, carry_in,
       base_before,
       CAST(duty_rate * (greatest(0, base_before + base) - greatest(0, base_before)) AS DECIMAL(18,6)) AS duty,
       CAST(duty_rate * (greatest(0, base_before + base_sofar) - greatest(0, base_before)) AS DECIMAL(18,6))
           AS duty_sofar,
       CAST(duty_rate * greatest(0, base_before + base) AS DECIMAL(18,6)) AS duty_to_date
FROM bal
ORDER BY day, brand_id
"""
