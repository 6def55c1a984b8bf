"""The mart transforms: one SQL statement per mart, raw → mart, with its dependencies.

Conventions (see warehouse/metrics.py for the metric definitions built on these, docs/METRICS.md in words):
- Every fact mart excludes test accounts (`players.is_test`) and carries `brand_id`.
- Dates are UTC days of naive UTC TIMESTAMPs. A settled bet counts on its `settled_at` day; a payment (its
  amount and its fee, whatever its status) on its `created_at` day; a chargeback (its amount and its
  `chargeback_fee`) on its own day (`charged_back_at`, else the row's `updated_at`); bonus cost on
  `converted_at`. A deposit later charged back stays a deposit (and an FTD) of the day it was made.
- Gaming duty and game-provider fees accrue per period with negative carry-forward (warehouse/accrual.py).
- Brand-currency amounts sit next to EUR amounts (`*_eur` = amount × that day's `rate_to_eur`, exact
  decimals; rounding to cents happens only when a figure is shown).
- "So far" (`mart.daily_kpi_sofar`, `mart.bets_sofar`, `*_sofar` columns): each day's figures for the events
  up to the time of day of the data's as-of instant (`mart.as_of`: the latest event), so that a partial day can
  be compared with the same part of another day.
"""

from __future__ import annotations

from dataclasses import dataclass

from warehouse import accrual, kpi_sql


@dataclass(frozen=True)
class Mart:
    """A mart table: its name (in schema `mart`), what it reads, and the statement that builds it."""

    name: str
    raw_deps: frozenset[str]
    mart_deps: frozenset[str]
    sql: str


def _m(name: str, raw: str, marts: str, sql: str) -> Mart:
    return Mart(name, frozenset(raw.split()), frozenset(marts.split()), sql)


CALENDAR = _m(
    "calendar",
    "players bets payments bonuses fx_rates",
    "",
    """
CREATE OR REPLACE TABLE mart.calendar AS
WITH bounds AS (
    SELECT min(d) AS lo, max(d) AS hi FROM (
        SELECT CAST(min(registered_at) AS DATE) AS d FROM raw.players
        UNION ALL SELECT CAST(max(registered_at) AS DATE) FROM raw.players
        UNION ALL SELECT CAST(min(settled_at) AS DATE) FROM raw.bets
        UNION ALL SELECT CAST(max(settled_at) AS DATE) FROM raw.bets
        UNION ALL SELECT CAST(min(created_at) AS DATE) FROM raw.payments
        UNION ALL SELECT CAST(max(updated_at) AS DATE) FROM raw.payments
        UNION ALL SELECT CAST(max(converted_at) AS DATE) FROM raw.bonuses
        UNION ALL SELECT min(rate_date) FROM raw.fx_rates
        UNION ALL SELECT max(rate_date) FROM raw.fx_rates
    )
)
SELECT CAST(r.range AS DATE) AS day
FROM bounds, range(CAST(bounds.lo AS TIMESTAMP), CAST(bounds.hi AS TIMESTAMP) + INTERVAL 1 DAY, INTERVAL 1 DAY) AS r
ORDER BY day
""",
)

# Per day and brand: the EUR rate (latest rate on or before the day; the earliest known rate before the first
# one) and the gaming duty in force (effective-dated by the brand's jurisdiction; latest start wins).
BRAND_DAY = _m(
    "brand_day",
    "operators fx_rates tax_rates",
    "calendar",
    """
CREATE OR REPLACE TABLE mart.brand_day AS
WITH first_rate AS (
    SELECT currency, arg_min(rate_to_eur, rate_date) AS rate FROM raw.fx_rates GROUP BY currency
),
base AS (
    SELECT c.day, o.id AS brand_id, o.currency, o.jurisdiction FROM mart.calendar c CROSS JOIN raw.operators o
),
fx AS (
    SELECT b.*, f.rate_to_eur AS asof_rate
    FROM base b ASOF LEFT JOIN raw.fx_rates f ON f.currency = b.currency AND b.day >= f.rate_date
),
duty AS (
    SELECT fx.day, fx.brand_id, t.rate, t.basis
    FROM fx JOIN raw.tax_rates t
      ON t.jurisdiction = fx.jurisdiction AND fx.day >= t.effective_from
     AND (t.effective_to IS NULL OR fx.day < t.effective_to)
    QUALIFY row_number() OVER (PARTITION BY fx.day, fx.brand_id ORDER BY t.effective_from DESC) = 1
)
SELECT fx.day, fx.brand_id, fx.currency, fx.jurisdiction,
       CAST(CASE WHEN fx.currency = 'EUR' THEN 1 ELSE coalesce(fx.asof_rate, fr.rate) END AS DECIMAL(38,8))
           AS rate_to_eur,
       CAST(coalesce(d.rate, 0) AS DECIMAL(6,4)) AS duty_rate,
       coalesce(d.basis, 'ggr') AS duty_basis
FROM fx
LEFT JOIN first_rate fr ON fr.currency = fx.currency
LEFT JOIN duty d ON d.day = fx.day AND d.brand_id = fx.brand_id
ORDER BY fx.day, fx.brand_id
""",
)

GAMES = _m(
    "games",
    "games providers",
    "",
    """
CREATE OR REPLACE TABLE mart.games AS
SELECT g.id AS game_id, g.code, g.name, g.category, g.provider_id, p.name AS provider,
       g.theoretical_rtp, p.fee_rate, g.enabled
FROM raw.games g JOIN raw.providers p ON p.id = g.provider_id
""",
)

COUNTRIES = _m(
    "countries",
    "countries",
    "",
    "CREATE OR REPLACE TABLE mart.countries AS SELECT code AS country_code, iso3, name, region FROM raw.countries",
)

PLAYER_DIM = _m(
    "player_dim",
    "players affiliates",
    "",
    """
CREATE OR REPLACE TABLE mart.player_dim AS
SELECT p.id AS player_id, CAST(p.operator_id AS INTEGER) AS brand_id, p.country_code, p.affiliate_id,
       a.name AS affiliate, p.campaign_id, p.channel, p.is_test, p.registered_at,
       CAST(p.registered_at AS DATE) AS reg_date
FROM raw.players p LEFT JOIN raw.affiliates a ON a.id = p.affiliate_id
""",
)

# The data's as-of instant: the latest event the figures date (a settlement, a payment, a chargeback, a bonus
# conversion, a registration), and its time of day, where every day's "so far" figures are cut.
AS_OF = _m(
    "as_of",
    "players bets payments bonuses",
    "",
    """
CREATE OR REPLACE TABLE mart.as_of AS
SELECT max(t) AS as_of, CAST(max(t) AS TIME) AS cut_time FROM (
    SELECT max(settled_at) AS t FROM raw.bets WHERE status = 'settled'
    UNION ALL SELECT max(created_at) FROM raw.payments
    UNION ALL SELECT max(coalesce(charged_back_at, updated_at)) FROM raw.payments WHERE status = 'chargeback'
    UNION ALL SELECT max(converted_at) FROM raw.bonuses
    UNION ALL SELECT max(registered_at) FROM raw.players
)
""",
)

PLAYER_PROVIDER_DAY = _m("player_provider_day", "bets", "games player_dim", accrual.PLAYER_PROVIDER_DAY_SQL)
BETS_SOFAR = _m("bets_sofar", "bets", "games player_dim as_of", accrual.BETS_SOFAR_SQL)
PROVIDER_FEE_DAY = _m("provider_fee_day", "", "player_provider_day bets_sofar games", accrual.PROVIDER_FEE_DAY_SQL)
DUTY_DAY = _m("duty_day", "", "brand_day provider_fee_day", accrual.DUTY_DAY_SQL)

# Day × player: every player-attributable money flow (test accounts excluded), in the brand's currency as
# int64-backed decimals, with that day's EUR rate; provider fees and duty are the brand's accruals allocated
# to players (warehouse/accrual.py). `prev_active_day` / `prev_deposit_day` (the player's previous day with a
# real-money bet / a deposit) make distinct counts over any window a plain filtered count: a player is counted
# once, on their first qualifying day in the window; `first_real_bet_at` / `first_deposit_at` (the first of
# the day) cut a window's last day at a time of day.
PLAYER_DAY = _m(
    "player_day",
    "payments bonuses",
    "player_provider_day provider_fee_day duty_day player_dim brand_day",
    kpi_sql.PLAYER_DAY_SQL,
)

_GAME_EUR = """handle * rate_to_eur AS handle_eur, real_win * rate_to_eur AS real_win_eur, ggr * rate_to_eur AS ggr_eur,
       bonus_stake * rate_to_eur AS bonus_stake_eur, bonus_win * rate_to_eur AS bonus_win_eur,
       jackpot * rate_to_eur AS jackpot_eur, provider_fee * rate_to_eur AS provider_fee_eur,
       ss_win * CAST(rate_to_eur AS DOUBLE) ^ 2 AS ss_win_eur,
       ss_cross * CAST(rate_to_eur AS DOUBLE) ^ 2 AS ss_cross_eur,
       ss_stake * CAST(rate_to_eur AS DOUBLE) ^ 2 AS ss_stake_eur"""

# Day × brand × country × game: rounds and money of settled bets, plus the sums a per-round variance
# estimate of the RTP needs (in the brand currency squared, as DOUBLE; the views add EUR²).
_GF_FIRST, _GF_SECOND = accrual.allocation(
    "gf", "fee_total", "gggr", "PARTITION BY a.day, a.brand_id, g.provider_id", "a.country_code, a.game_id"
)

GAME_DAY = _m(
    "game_day",
    "bets",
    "games player_dim brand_day provider_fee_day",
    f"""
CREATE OR REPLACE TABLE mart.game_day_base AS
WITH agg AS (
    SELECT CAST(b.settled_at AS DATE) AS day, p.brand_id, p.country_code, b.game_id,
           count(*) AS rounds, count(*) FILTER (WHERE b.real_stake > 0) AS real_rounds,
           CAST(sum(b.real_stake) AS DECIMAL(18,2)) AS handle, CAST(sum(b.real_win) AS DECIMAL(18,2)) AS real_win,
           CAST(sum(b.bonus_stake) AS DECIMAL(18,2)) AS bonus_stake,
           CAST(sum(b.bonus_win) AS DECIMAL(18,2)) AS bonus_win,
           CAST(sum(b.jackpot_contribution) AS DECIMAL(18,2)) AS jackpot,
           coalesce(sum(CAST(b.real_win AS DOUBLE) ^ 2) FILTER (WHERE b.real_stake > 0), 0) AS ss_win,
           coalesce(sum(CAST(b.real_win AS DOUBLE) * CAST(b.real_stake AS DOUBLE)), 0) AS ss_cross,
           coalesce(sum(CAST(b.real_stake AS DOUBLE) ^ 2), 0) AS ss_stake
    FROM raw.bets b JOIN mart.player_dim p ON p.player_id = b.player_id AND NOT p.is_test
    WHERE b.status = 'settled'
    GROUP BY ALL
),
fee AS (
    SELECT a.*, a.handle - a.real_win AS gggr, f.fee AS fee_total, {_GF_FIRST}
    FROM agg a
    JOIN mart.games g ON g.game_id = a.game_id
    JOIN mart.provider_fee_day f ON f.day = a.day AND f.brand_id = a.brand_id AND f.provider_id = g.provider_id
)
SELECT a.day, a.brand_id, a.country_code, a.game_id, a.rounds, a.real_rounds,
       a.handle, a.real_win, a.handle - a.real_win AS ggr, a.bonus_stake, a.bonus_win, a.jackpot,
       {_GF_SECOND} AS provider_fee,
       a.ss_win, a.ss_cross, a.ss_stake, bd.rate_to_eur
FROM fee a
JOIN mart.games g ON g.game_id = a.game_id
JOIN mart.brand_day bd ON bd.day = a.day AND bd.brand_id = a.brand_id
ORDER BY a.day;

CREATE OR REPLACE VIEW mart.game_day AS SELECT *, {_GAME_EUR} FROM mart.game_day_base
""",
)

# Day × brand × game (countries summed): what the game reads use when no country filter is set.
GAME_BRAND_DAY = _m(
    "game_brand_day",
    "",
    "game_day",
    f"""
CREATE OR REPLACE TABLE mart.game_brand_day_base AS
SELECT day, brand_id, game_id, CAST(sum(rounds) AS BIGINT) AS rounds, CAST(sum(real_rounds) AS BIGINT) AS real_rounds,
       CAST(sum(handle) AS DECIMAL(18,2)) AS handle, CAST(sum(real_win) AS DECIMAL(18,2)) AS real_win,
       CAST(sum(ggr) AS DECIMAL(18,2)) AS ggr, CAST(sum(bonus_stake) AS DECIMAL(18,2)) AS bonus_stake,
       CAST(sum(bonus_win) AS DECIMAL(18,2)) AS bonus_win, CAST(sum(jackpot) AS DECIMAL(18,2)) AS jackpot,
       CAST(sum(provider_fee) AS DECIMAL(18,6)) AS provider_fee,
       sum(ss_win) AS ss_win, sum(ss_cross) AS ss_cross, sum(ss_stake) AS ss_stake,
       any_value(rate_to_eur) AS rate_to_eur
FROM mart.game_day_base GROUP BY day, brand_id, game_id
ORDER BY day;

CREATE OR REPLACE VIEW mart.game_brand_day AS SELECT *, {_GAME_EUR} FROM mart.game_brand_day_base
""",
)

# Day × brand × country × method × kind × status, as events: every payment on its creation day with its fee
# (a deposit later charged back counts there as `approved`: it was), and each chargeback on its own day as
# status `chargeback` with its amount and its chargeback fee.
PAYMENTS_DAILY = _m(
    "payments_daily",
    "payments",
    "player_dim brand_day",
    f"""
CREATE OR REPLACE TABLE mart.payments_daily AS
WITH ev AS (
    SELECT CAST(created_at AS DATE) AS day, player_id, method, kind,
           CASE WHEN status = 'chargeback' THEN 'approved' ELSE status END AS status, amount, provider_fee AS fee
    FROM raw.payments
    UNION ALL
    SELECT CAST({kpi_sql.CHARGEBACK_AT} AS DATE), player_id, method, kind, 'chargeback', amount, chargeback_fee
    FROM raw.payments WHERE status = 'chargeback'
),
agg AS (
    SELECT y.day, p.brand_id, p.country_code, y.method, y.kind, y.status,
           count(*) AS payment_count, sum(y.amount) AS amount, sum(y.fee) AS fees
    FROM ev y JOIN mart.player_dim p ON p.player_id = y.player_id AND NOT p.is_test
    GROUP BY ALL
)
SELECT a.*, a.amount * bd.rate_to_eur AS amount_eur, a.fees * bd.rate_to_eur AS fees_eur
FROM agg a JOIN mart.brand_day bd ON bd.day = a.day AND bd.brand_id = a.brand_id
ORDER BY a.day, a.brand_id
""",
)

PENDING_WITHDRAWALS = _m(
    "pending_withdrawals",
    "payments",
    "player_dim brand_day",
    """
CREATE OR REPLACE TABLE mart.pending_withdrawals AS
SELECT y.id AS payment_id, p.brand_id, y.player_id, p.country_code, y.method, y.amount, bd.currency,
       y.amount * bd.rate_to_eur AS amount_eur, y.created_at
FROM raw.payments y
JOIN mart.player_dim p ON p.player_id = y.player_id AND NOT p.is_test
JOIN mart.brand_day bd ON bd.day = CAST(y.created_at AS DATE) AND bd.brand_id = p.brand_id
WHERE y.kind = 'withdrawal' AND y.status = 'pending'
ORDER BY y.created_at
""",
)

# One row per (non-test) player: registration and FTD cohorts with the slice attributes. The FTD is the first
# deposit that was approved, fixed when it happens: a later chargeback does not move or remove it
# (`ftd_charged_back_at` says when it was charged back, if it was).
COHORT_PLAYER = _m(
    "cohort_player",
    "payments",
    "player_dim brand_day",
    f"""
CREATE OR REPLACE TABLE mart.cohort_player AS
WITH ftd AS (
    SELECT player_id, id AS ftd_payment_id, created_at AS ftd_at, amount AS ftd_amount,
           CASE WHEN status = 'chargeback' THEN {kpi_sql.CHARGEBACK_AT} END AS ftd_charged_back_at
    FROM raw.payments
    WHERE {kpi_sql.DEPOSIT}
    QUALIFY row_number() OVER (PARTITION BY player_id ORDER BY created_at, id) = 1
)
SELECT p.player_id, p.brand_id, p.country_code, p.affiliate_id, p.affiliate, p.channel,
       p.registered_at, p.reg_date,
       CAST(date_trunc('week', p.reg_date) AS DATE) AS reg_week,
       CAST(date_trunc('month', p.reg_date) AS DATE) AS reg_month,
       f.ftd_at, CAST(f.ftd_at AS DATE) AS ftd_date,
       CAST(date_trunc('week', CAST(f.ftd_at AS DATE)) AS DATE) AS ftd_week,
       CAST(date_trunc('month', CAST(f.ftd_at AS DATE)) AS DATE) AS ftd_month,
       f.ftd_amount, f.ftd_amount * bd.rate_to_eur AS ftd_amount_eur, f.ftd_payment_id, f.ftd_charged_back_at
FROM mart.player_dim p
LEFT JOIN ftd f ON f.player_id = p.player_id
LEFT JOIN mart.brand_day bd ON bd.day = CAST(f.ftd_at AS DATE) AND bd.brand_id = p.brand_id
WHERE NOT p.is_test
ORDER BY p.reg_date
""",
)

# Every chargeback (test accounts excluded): the deposit, when it was made and charged back, both fees and
# whether it was the player's FTD (for the Metrics page's worked example and the chargeback list).
CHARGEBACKS = _m(
    "chargebacks",
    "payments",
    "player_dim brand_day cohort_player",
    f"""
CREATE OR REPLACE TABLE mart.chargebacks AS
SELECT y.id AS payment_id, p.brand_id, y.player_id, p.country_code, y.method, y.amount, y.provider_fee,
       y.chargeback_fee, bd.currency, y.created_at, {kpi_sql.CHARGEBACK_AT} AS charged_back_at,
       coalesce(c.ftd_payment_id = y.id, false) AS was_ftd
FROM raw.payments y
JOIN mart.player_dim p ON p.player_id = y.player_id AND NOT p.is_test
JOIN mart.brand_day bd ON bd.day = CAST(y.created_at AS DATE) AND bd.brand_id = p.brand_id
LEFT JOIN mart.cohort_player c ON c.player_id = y.player_id
WHERE y.status = 'chargeback'
ORDER BY charged_back_at, y.id
""",
)

DAILY_KPI = _m("daily_kpi", "", "player_day cohort_player brand_day", kpi_sql.DAILY_KPI_SQL)
# Each country's share of a provider's so-far fee, by day × brand × country × provider (a table so that a moved
# as-of cut allocates again only the fees that moved: warehouse/incremental_sofar_kpi.py).
DAILY_KPI_SOFAR_BETS = _m("daily_kpi_sofar_bets", "", "bets_sofar provider_fee_day", kpi_sql.DAILY_KPI_SOFAR_BETS_SQL)
DAILY_KPI_SOFAR = _m(
    "daily_kpi_sofar",
    "payments bonuses",
    "as_of bets_sofar daily_kpi_sofar_bets duty_day player_day cohort_player player_dim brand_day",
    kpi_sql.DAILY_KPI_SOFAR_SQL,
)

# Player × week / month: activity flag and NGR, for retention and LTV.
PLAYER_PERIOD = _m(
    "player_period",
    "",
    "player_day",
    """
CREATE OR REPLACE TABLE mart.player_period AS
SELECT g.grain, CAST(date_trunc(g.grain, d.day) AS DATE) AS period_start, d.player_id, d.brand_id,
       bool_or(d.real_rounds > 0) AS active, sum(d.ngr) AS ngr, sum(d.ngr_eur) AS ngr_eur
FROM mart.player_day d CROSS JOIN (VALUES ('week'), ('month')) AS g(grain)
GROUP BY ALL
ORDER BY g.grain, period_start
""",
)

BRANDS = _m(
    "brands",
    "operators players",
    "brand_day",
    """
CREATE OR REPLACE TABLE mart.brands AS
WITH bal AS (
    SELECT operator_id AS brand_id, count(*) AS players,
           count(*) FILTER (WHERE account_status = 'active') AS active_accounts,
           sum(cash_balance) AS cash_owed, sum(bonus_balance) AS bonus_owed
    FROM raw.players WHERE NOT is_test GROUP BY ALL
),
latest AS (
    SELECT brand_id, arg_max(rate_to_eur, day) AS rate_to_eur FROM mart.brand_day GROUP BY brand_id
)
SELECT CAST(o.id AS INTEGER) AS brand_id, o.code, o.name, o.company, o.currency, o.jurisdiction, o.status,
       o.launched_at, coalesce(b.players, 0) AS players, coalesce(b.active_accounts, 0) AS active_accounts,
       coalesce(b.cash_owed, 0) AS cash_owed, coalesce(b.bonus_owed, 0) AS bonus_owed,
       l.rate_to_eur AS latest_rate_to_eur,
       coalesce(b.cash_owed, 0) * l.rate_to_eur AS cash_owed_eur,
       coalesce(b.bonus_owed, 0) * l.rate_to_eur AS bonus_owed_eur
FROM raw.operators o
LEFT JOIN bal b ON b.brand_id = o.id
LEFT JOIN latest l ON l.brand_id = o.id
ORDER BY o.id
""",
)

# Player list: attributes plus lifetime figures (test accounts keep zeros: metrics exclude them).
PLAYERS = _m(
    "players",
    "players bets sessions",
    "player_dim player_day cohort_player brands",
    """
CREATE OR REPLACE TABLE mart.players AS
WITH life AS (
    SELECT player_id, sum(deposit_count) AS deposit_count, sum(deposits) AS deposits,
           sum(deposits_eur) AS deposits_eur, sum(withdrawals) AS withdrawals,
           sum(withdrawals * rate_to_eur) AS withdrawals_eur,
           sum(ggr) AS ggr, sum(ngr) AS ngr, sum(ngr_eur) AS ngr_eur, sum(rounds) AS rounds
    FROM mart.player_day GROUP BY player_id
),
last_bet AS (SELECT player_id, max(placed_at) AS last_bet_at FROM raw.bets GROUP BY player_id),
last_login AS (
    SELECT player_id, max(started_at) AS last_login_at FROM raw.sessions WHERE outcome = 'ok' GROUP BY player_id
)
SELECT p.id AS player_id, CAST(p.operator_id AS INTEGER) AS brand_id, br.code AS brand_code, br.currency,
       p.username, p.email, p.phone, p.first_name, p.last_name, p.country_code, p.date_of_birth,
       p.registered_at, CAST(p.registered_at AS DATE) AS reg_date, p.account_status, p.kyc_status, p.risk_score,
       p.affiliate_id, d.affiliate, p.campaign_id, p.channel, p.is_test, p.cash_balance, p.bonus_balance,
       coalesce(l.deposit_count, 0) AS deposit_count,
       coalesce(l.deposits, 0) AS lifetime_deposits, coalesce(l.deposits_eur, 0) AS lifetime_deposits_eur,
       coalesce(l.withdrawals, 0) AS lifetime_withdrawals,
       coalesce(l.withdrawals_eur, 0) AS lifetime_withdrawals_eur,
       coalesce(l.ggr, 0) AS lifetime_ggr, coalesce(l.ngr, 0) AS lifetime_ngr,
       coalesce(l.ngr_eur, 0) AS lifetime_ngr_eur, coalesce(l.rounds, 0) AS rounds,
       c.ftd_at, lb.last_bet_at, ll.last_login_at,
       greatest(lb.last_bet_at, ll.last_login_at) AS last_activity_at
FROM raw.players p
JOIN mart.player_dim d ON d.player_id = p.id
LEFT JOIN mart.brands br ON br.brand_id = p.operator_id
LEFT JOIN life l ON l.player_id = p.id
LEFT JOIN mart.cohort_player c ON c.player_id = p.id
LEFT JOIN last_bet lb ON lb.player_id = p.id
LEFT JOIN last_login ll ON ll.player_id = p.id
ORDER BY p.id
""",
)

# Build order (each mart only reads marts listed before it).
MARTS: tuple[Mart, ...] = (
    CALENDAR,
    BRAND_DAY,
    GAMES,
    COUNTRIES,
    PLAYER_DIM,
    AS_OF,
    PLAYER_PROVIDER_DAY,
    BETS_SOFAR,
    PROVIDER_FEE_DAY,
    DUTY_DAY,
    PLAYER_DAY,
    GAME_DAY,
    GAME_BRAND_DAY,
    PAYMENTS_DAILY,
    PENDING_WITHDRAWALS,
    COHORT_PLAYER,
    CHARGEBACKS,
    DAILY_KPI,
    DAILY_KPI_SOFAR_BETS,
    DAILY_KPI_SOFAR,
    PLAYER_PERIOD,
    BRANDS,
    PLAYERS,
)
