"""The SQL of the additive KPI marts: the money events of a player's day, `mart.daily_kpi` and its "so far"
twin `mart.daily_kpi_sofar` (same columns, each day cut at the data's as-of time of day).

A day's KPIs are the sum of parts, each part a set of events dated on that day:
- bets (settled, real money): rounds, handle, wins, GGR, bonus stakes/wins, jackpot contributions, and the
  game-provider fees and gaming duty accrued on them (warehouse/accrual.py);
- money: deposits (approved, including those later charged back) and withdrawals (approved) and the fee of
  every payment whatever its status, on the payment's creation day; chargebacks and their fee on the
  chargeback's day; bonus cost on the conversion day;
- players: registrations on the registration day; FTDs (first deposit approved, even if later charged back)
  on the FTD day, with those later charged back counted apart.
"""

from __future__ import annotations

from collections.abc import Callable

from warehouse.accrual import allocation, sofar

DEPOSIT = "kind = 'deposit' AND status IN ('approved', 'chargeback')"
WITHDRAWAL = "kind = 'withdrawal' AND status = 'approved'"
CHARGEBACK_AT = "coalesce(charged_back_at, updated_at)"

MONEY2 = (
    "handle",
    "real_win",
    "ggr",
    "bonus_stake",
    "bonus_win",
    "jackpot",
    "bonus_cost",
    "deposits",
    "withdrawals",
    "payment_fees",
    "chargebacks",
)
MONEY6 = ("provider_fee", "duty", "ngr")
COUNTS = ("rounds", "real_rounds", "deposit_count", "withdrawal_count", "chargeback_count")
PLAYER_COUNTS = ("active_players", "depositing_players", "registrations", "ftds", "ftds_charged_back")


def money_events(when: Callable[[str], str] | None = None, cross: str = "") -> str:
    """A SELECT of every money event of a player as rows (day, player_id, the figures it adds). With `when`,
    only the events whose time `ts` meets the condition `when(ts)` (e.g. `sofar`: up to the as-of time of their
    day; `cross` joins what the condition reads, e.g. `CROSS JOIN cut`)."""
    created = f"WHERE {when('created_at')}" if when else ""
    charged = f"AND {when(CHARGEBACK_AT)}" if when else ""
    converted = f"AND {when('converted_at')}" if when else ""
    return f"""
        SELECT CAST(created_at AS DATE) AS day, player_id,
               count(*) FILTER (WHERE {DEPOSIT}) AS deposit_count, sum(amount) FILTER (WHERE {DEPOSIT}) AS deposits,
               min(created_at) FILTER (WHERE {DEPOSIT}) AS first_deposit_at,
               count(*) FILTER (WHERE {WITHDRAWAL}) AS withdrawal_count,
               sum(amount) FILTER (WHERE {WITHDRAWAL}) AS withdrawals,
               sum(provider_fee) AS payment_fees
        FROM raw.payments {cross} {created} GROUP BY ALL
        UNION ALL BY NAME
        SELECT CAST({CHARGEBACK_AT} AS DATE) AS day, player_id, count(*) AS chargeback_count,
               sum(amount) AS chargebacks, sum(chargeback_fee) AS payment_fees
        FROM raw.payments {cross} WHERE status = 'chargeback' {charged} GROUP BY ALL
        UNION ALL BY NAME
        SELECT CAST(converted_at AS DATE) AS day, player_id, sum(converted_amount) AS bonus_cost
        FROM raw.bonuses {cross} WHERE converted_at IS NOT NULL AND converted_amount > 0 {converted} GROUP BY ALL"""


_PF_FIRST, _PF_SECOND = allocation("pf", "fee_total", "pggr", "PARTITION BY day, brand_id, provider_id", "player_id")
_DU_FIRST, _DU_SECOND = allocation("du", "duty_total", "dweight", "PARTITION BY day, brand_id", "player_id")

# Day × player (see warehouse/transforms.py PLAYER_DAY).
PLAYER_DAY_SQL = f"""
CREATE OR REPLACE TABLE mart.player_day_base AS
WITH pp AS (
    SELECT x.*, f.fee AS fee_total, x.handle - x.real_win AS pggr
    FROM mart.player_provider_day x
    JOIN mart.provider_fee_day f ON f.day = x.day AND f.brand_id = x.brand_id AND f.provider_id = x.provider_id
),
pp1 AS (SELECT *, {_PF_FIRST} FROM pp),
pp2 AS (SELECT *, {_PF_SECOND} AS provider_fee FROM pp1),
bet AS (
    SELECT day, player_id, sum(rounds) AS rounds, sum(real_rounds) AS real_rounds, sum(handle) AS handle,
           sum(real_win) AS real_win, sum(bonus_stake) AS bonus_stake, sum(bonus_win) AS bonus_win,
           sum(jackpot) AS jackpot, sum(provider_fee) AS provider_fee, min(first_real_bet_at) AS first_real_bet_at
    FROM pp2 GROUP BY ALL
),
money AS (
    SELECT day, player_id, sum(deposit_count) AS deposit_count, sum(deposits) AS deposits,
           min(first_deposit_at) AS first_deposit_at,
           sum(withdrawal_count) AS withdrawal_count, sum(withdrawals) AS withdrawals,
           sum(payment_fees) AS payment_fees, sum(chargeback_count) AS chargeback_count,
           sum(chargebacks) AS chargebacks, sum(bonus_cost) AS bonus_cost
    FROM ({money_events()})
    GROUP BY ALL
),
per_day AS (
    SELECT coalesce(b.day, m.day) AS day, coalesce(b.player_id, m.player_id) AS player_id,
           CAST(coalesce(b.rounds, 0) AS INTEGER) AS rounds,
           CAST(coalesce(b.real_rounds, 0) AS INTEGER) AS real_rounds,
           CAST(coalesce(b.provider_fee, 0) AS DECIMAL(18,6)) AS provider_fee,
           CAST(coalesce(m.deposit_count, 0) AS INTEGER) AS deposit_count,
           CAST(coalesce(m.withdrawal_count, 0) AS INTEGER) AS withdrawal_count,
           CAST(coalesce(m.chargeback_count, 0) AS INTEGER) AS chargeback_count,
           CAST(coalesce(b.handle, 0) AS DECIMAL(18,2)) AS handle,
           CAST(coalesce(b.real_win, 0) AS DECIMAL(18,2)) AS real_win,
           CAST(coalesce(b.bonus_stake, 0) AS DECIMAL(18,2)) AS bonus_stake,
           CAST(coalesce(b.bonus_win, 0) AS DECIMAL(18,2)) AS bonus_win,
           CAST(coalesce(b.jackpot, 0) AS DECIMAL(18,2)) AS jackpot,
           CAST(coalesce(m.bonus_cost, 0) AS DECIMAL(18,2)) AS bonus_cost,
           CAST(coalesce(m.deposits, 0) AS DECIMAL(18,2)) AS deposits,
           CAST(coalesce(m.withdrawals, 0) AS DECIMAL(18,2)) AS withdrawals,
           CAST(coalesce(m.payment_fees, 0) AS DECIMAL(18,2)) AS payment_fees,
           CAST(coalesce(m.chargebacks, 0) AS DECIMAL(18,2)) AS chargebacks,
           b.first_real_bet_at, m.first_deposit_at
    FROM bet b FULL OUTER JOIN money m ON m.day = b.day AND m.player_id = b.player_id
),
priced AS (
    SELECT d.*, p.brand_id, p.country_code, d.handle - d.real_win AS ggr, bd.rate_to_eur, dd.duty AS duty_total,
           CASE WHEN bd.duty_basis = 'handle' THEN d.handle ELSE d.handle - d.real_win END AS dweight
    FROM per_day d
    JOIN mart.player_dim p ON p.player_id = d.player_id AND NOT p.is_test
    JOIN mart.brand_day bd ON bd.day = d.day AND bd.brand_id = p.brand_id
    JOIN mart.duty_day dd ON dd.day = d.day AND dd.brand_id = p.brand_id
),
priced1 AS (SELECT *, {_DU_FIRST} FROM priced),
priced2 AS (SELECT *, {_DU_SECOND} AS duty FROM priced1)
SELECT day, player_id, brand_id, country_code, rounds, real_rounds,
       handle, real_win, ggr, bonus_stake, bonus_win, jackpot, provider_fee, bonus_cost,
       deposit_count, deposits, withdrawal_count, withdrawals, payment_fees, chargeback_count, chargebacks, duty,
       CAST(ggr - bonus_cost - jackpot - provider_fee - payment_fees - chargebacks - duty AS DECIMAL(18,6)) AS ngr,
       rate_to_eur,
       lag(CASE WHEN real_rounds > 0 THEN day END IGNORE NULLS) OVER earlier AS prev_active_day,
       lag(CASE WHEN deposit_count > 0 THEN day END IGNORE NULLS) OVER earlier AS prev_deposit_day,
       first_real_bet_at, first_deposit_at
FROM priced2
WINDOW earlier AS (PARTITION BY player_id ORDER BY day)
ORDER BY day;

CREATE OR REPLACE VIEW mart.player_day AS
SELECT *, deposits * rate_to_eur AS deposits_eur, ngr * rate_to_eur AS ngr_eur FROM mart.player_day_base
"""


def _sums() -> str:
    cols = [f"CAST(sum({c}) AS BIGINT) AS {c}" for c in COUNTS]
    cols += [f"CAST(sum({c}) AS DECIMAL(18,2)) AS {c}" for c in MONEY2]
    cols += [f"CAST(sum({c}) AS DECIMAL(18,6)) AS {c}" for c in MONEY6]
    return ", ".join(cols)


# The columns of the KPI tables (after day, brand_id, country_code; each money column also in EUR) and their types.
KPI_COLUMNS: tuple[tuple[str, str], ...] = (
    *((c, "BIGINT") for c in COUNTS),
    *((c, "DECIMAL(18,2)") for c in MONEY2),
    *((c, "DECIMAL(18,6)") for c in MONEY6),
    *((c, "BIGINT") for c in PLAYER_COUNTS[:4]),
    ("ftd_amount", "DECIMAL(18,2)"),
    ("ftds_charged_back", "BIGINT"),
)


def kpi_table_of(name: str, k: str, ctes: str = "") -> str:
    """CREATE the KPI table `name` (day × brand × country) from `k`: a SELECT of day, brand_id, country_code and
    KPI_COLUMNS (the EUR columns added here) that may read the CTEs `ctes` (each followed by a comma)."""
    eur = ", ".join(f"k.{c} * bd.rate_to_eur AS {c}_eur" for c in (*MONEY2, *MONEY6, "ftd_amount"))
    return f"""
CREATE OR REPLACE TABLE mart.{name} AS
WITH {ctes}
k AS ({k})
SELECT k.*, {eur}
FROM k JOIN mart.brand_day bd ON bd.day = k.day AND bd.brand_id = k.brand_id
ORDER BY k.day, k.brand_id, k.country_code
"""


def kpi_table(name: str, parts: str, ctes: str = "") -> str:
    """CREATE the KPI table `name` (day × brand × country) from `parts` (a UNION ALL BY NAME of partial rows)."""
    sums = ", ".join(f"CAST(coalesce(sum({c}), 0) AS {t}) AS {c}" for c, t in KPI_COLUMNS)
    return kpi_table_of(
        name, f"SELECT day, brand_id, country_code, {sums} FROM parts GROUP BY ALL", f"{ctes} parts AS ({parts}),"
    )


_COHORT_PARTS = """
    SELECT reg_date AS day, brand_id, country_code, count(*) AS registrations
    FROM mart.cohort_player {cross} {reg} GROUP BY ALL
    UNION ALL BY NAME
    SELECT ftd_date AS day, brand_id, country_code, count(*) AS ftds, sum(ftd_amount) AS ftd_amount,
           count(*) FILTER (WHERE ftd_charged_back_at IS NOT NULL) AS ftds_charged_back
    FROM mart.cohort_player {cross} WHERE ftd_date IS NOT NULL {ftd} GROUP BY ALL"""

# Day × brand × country: the additive KPI components plus registrations and FTDs; EUR = the day's brand
# amount × the day's rate (the rate is constant within a day and brand, so this is exact).
DAILY_KPI_SQL = kpi_table(
    "daily_kpi",
    f"""
    SELECT day, brand_id, country_code, {_sums()},
           count(*) FILTER (WHERE real_rounds > 0) AS active_players,
           count(*) FILTER (WHERE deposit_count > 0) AS depositing_players
    FROM mart.player_day GROUP BY ALL
    UNION ALL BY NAME {_COHORT_PARTS.format(cross="", reg="", ftd="")}""",
)

_FEE_FIRST, _FEE_SECOND = allocation(
    "pf", "fee_total", "pggr", "PARTITION BY day, brand_id, provider_id", "country_code"
)
_DUTY_FIRST, _DUTY_SECOND = allocation("du", "duty_total", "dweight", "PARTITION BY day, brand_id", "country_code")

SOFAR_BETS_COLUMNS = ("day", "brand_id", "country_code", "provider_id", "fee_total")


# Day × brand × country × provider (the keys of `bets_sofar`): the provider's so-far fee
# (`provider_fee_day.fee_sofar`, `fee_total`) allocated to the countries by their so-far GGR. Kept as a table so
# that a moved as-of cut allocates again only the fees that moved (warehouse/incremental_sofar_kpi.py).
def sofar_bets_select(bp: str) -> str:
    """The rows of `mart.daily_kpi_sofar_bets` from `bp`: a SELECT of its columns but `provider_fee` and of
    `pggr`, every row of each (day, brand, provider) it has."""
    return f"""
WITH bp AS ({bp}),
bp1 AS (SELECT *, {_FEE_FIRST} FROM bp)
SELECT {", ".join(SOFAR_BETS_COLUMNS)}, {_FEE_SECOND} AS provider_fee
FROM bp1"""


SOFAR_BETS_BP = """
    SELECT x.day, x.brand_id, x.country_code, x.provider_id, f.fee_sofar AS fee_total,
           CAST(x.handle_sofar - x.real_win_sofar AS DECIMAL(18,2)) AS pggr
    FROM mart.bets_sofar x
    JOIN mart.provider_fee_day f ON f.day = x.day AND f.brand_id = x.brand_id AND f.provider_id = x.provider_id"""
DAILY_KPI_SOFAR_BETS_SQL = f"""
CREATE OR REPLACE TABLE mart.daily_kpi_sofar_bets AS {sofar_bets_select(SOFAR_BETS_BP)}
ORDER BY day, brand_id, provider_id, country_code
"""

EVENT_COLUMNS = (
    "deposit_count",
    "deposits",
    "withdrawal_count",
    "withdrawals",
    "payment_fees",
    "chargeback_count",
    "chargebacks",
    "bonus_cost",
    "ngr",
    "active_players",
    "depositing_players",
    "registrations",
    "ftds",
    "ftd_amount",
    "ftds_charged_back",
)
# The bets and duty part of `daily_kpi_sofar` (one row per key of `bets_sofar` with its bets figures, provider
# fee and duty; no other part adds to those columns) and the CTEs it reads.
SOFAR_BETS_CTES = f"""bets AS (
    SELECT s.*, f.provider_fee
    FROM (
        SELECT day, brand_id, country_code, sum(rounds_sofar) AS rounds, sum(real_rounds_sofar) AS real_rounds,
               sum(handle_sofar) AS handle, sum(real_win_sofar) AS real_win, sum(bonus_stake_sofar) AS bonus_stake,
               sum(bonus_win_sofar) AS bonus_win, sum(jackpot_sofar) AS jackpot
        FROM mart.bets_sofar GROUP BY ALL
    ) s
    JOIN (SELECT day, brand_id, country_code, sum(provider_fee) AS provider_fee FROM mart.daily_kpi_sofar_bets
          GROUP BY ALL) f ON f.day = s.day AND f.brand_id = s.brand_id AND f.country_code = s.country_code
),
d0 AS (
    SELECT b.day, b.brand_id, b.country_code, dd.duty_sofar AS duty_total,
           CASE WHEN dd.duty_basis = 'handle' THEN b.handle ELSE b.handle - b.real_win END AS dweight
    FROM bets b JOIN mart.duty_day dd ON dd.day = b.day AND dd.brand_id = b.brand_id
),
d1 AS (SELECT *, {_DUTY_FIRST} FROM d0),
duty AS (SELECT day, brand_id, country_code, {_DUTY_SECOND} AS duty FROM d1),"""
SOFAR_BETS_PART = """
    SELECT b.day, b.brand_id, b.country_code, b.rounds, b.real_rounds, b.handle, b.real_win,
           b.handle - b.real_win AS ggr, b.bonus_stake, b.bonus_win, b.jackpot, b.provider_fee, d.duty,
           CAST(b.handle - b.real_win - b.jackpot - b.provider_fee AS DECIMAL(18,6))
               - coalesce(CAST(d.duty AS DECIMAL(18,6)), 0) AS ngr
    FROM bets b LEFT JOIN duty d ON d.day = b.day AND d.brand_id = b.brand_id AND d.country_code = b.country_code"""


def sofar_event_parts(when: Callable[[str], str], cross: str = "", every_key: bool = True) -> str:
    """The other parts of `daily_kpi_sofar` (their columns: EVENT_COLUMNS): money events, players' first real
    bet / deposit of the day, registrations and FTDs, each counted when its time `ts` meets `when(ts)` (`cross`:
    the join adding what `when` reads). With `every_key` the players' part has a row for every key of
    `mart.player_day`, counted or not; else only the players counted are read (a filter on each time, pushed
    down to the scan of the view's base table)."""
    if every_key:
        players = f"""
    SELECT day, brand_id, country_code,
           count(*) FILTER (WHERE {when("first_real_bet_at")}) AS active_players,
           count(*) FILTER (WHERE {when("first_deposit_at")}) AS depositing_players
    FROM mart.player_day_base {cross} GROUP BY ALL"""
    else:
        players = f"""
    SELECT day, brand_id, country_code, count(*) AS active_players
    FROM mart.player_day_base {cross} WHERE {when("first_real_bet_at")} GROUP BY ALL
    UNION ALL BY NAME
    SELECT day, brand_id, country_code, count(*) AS depositing_players
    FROM mart.player_day_base {cross} WHERE {when("first_deposit_at")} GROUP BY ALL"""
    return f"""
    SELECT m.day, p.brand_id, p.country_code, m.deposit_count, m.deposits, m.withdrawal_count, m.withdrawals,
           m.payment_fees, m.chargeback_count, m.chargebacks, m.bonus_cost,
           CAST(-coalesce(m.bonus_cost, 0) - coalesce(m.payment_fees, 0) - coalesce(m.chargebacks, 0)
                AS DECIMAL(18,6)) AS ngr
    FROM ({money_events(when, cross)}) m
    JOIN mart.player_dim p ON p.player_id = m.player_id AND NOT p.is_test
    UNION ALL BY NAME {players}
    UNION ALL BY NAME {
        _COHORT_PARTS.format(cross=cross, reg=f"WHERE {when('registered_at')}", ftd=f"AND {when('ftd_at')}")
    }"""


# The parts' NGR is cast to 6 decimals: a UNION of a DECIMAL(38,2) part with a DECIMAL(38,6) one keeps scale 2
# (DuckDB cannot widen past 38 digits), which rounded every so-far row's NGR to the cent.
# The same table for each day's events up to the as-of time of day: bets so far with their provider fees
# (daily_kpi_sofar_bets), the so-far duty (accrual marts) allocated to countries, money events, players' first
# bet / deposit of the day, registrations and FTDs, each up to that time.
DAILY_KPI_SOFAR_SQL = kpi_table(
    "daily_kpi_sofar",
    f"{SOFAR_BETS_PART}\n    UNION ALL BY NAME {sofar_event_parts(sofar, 'CROSS JOIN cut')}",
    ctes=f"cut AS (SELECT cut_time FROM mart.as_of),\n{SOFAR_BETS_CTES}",
)
