"""The metric catalogue: ONE named definition per metric (SPEC §3). Every figure the read API returns
is computed from these definitions; the Metrics page shows them, docs/METRICS.md says them in words.

Each definition has a version (`ngr v2`): a change of its text (formula, what is included or excluded, its
SQL, or the version of a component it is built from) bumps it. tests/warehouse/test_metric_versions.py pins
every (name, version) to a hash of its definition text, so a silent change fails.

Decisions that apply to every metric:
- Test accounts (`players.is_test`) are excluded from every metric (the marts drop them).
- Day boundaries are UTC. A bet counts on its settlement day (`settled_at`); only `settled` bets count:
  `void` bets are excluded and `open` bets are not in handle until they settle.
- Real money only in handle, GGR and RTP. Bonus stakes and wins are shown apart and are not revenue.
- Bonus cost = the bonus money converted to withdrawable cash (`bonuses.converted_amount`, on
  `converted_at`). DOMAIN.md §1.1/§1.2: a bonus only has a cash value once the player has an
  unrestricted right to it (UKGC GGY rule); granting or wagering bonus money costs nothing until it
  converts, and forfeited/expired bonuses never cost anything.
- Every figure is dated by the event it records, so a closed period never changes: a payment (its amount and
  its fee, whatever its status) on its creation day; a chargeback (its amount and its fee) on the day it
  happened, while the deposit stays a deposit, and an FTD, of the day it was made.
- Gaming duty and game-provider fees accrue per period (brand × month, split where the duty rate changes;
  brand × provider × month) on the GGR with losses carried forward: a day's figure is the change in the
  period's accrual, and no period's figure is negative. A country's, player's or game's share is the
  brand's accrual in proportion to its signed GGR (or handle) of the day.
- Today is partial: when a window had not ended when the data was read (normally: it ends today), its
  figures are "so far" and the previous period is counted up to the same time of day (of the data's latest
  event) on the same relative day.
- Money is never summed across currencies: each amount is converted to EUR with the `fx_rates` rate of
  its own day (the latest rate on or before that day); brand-currency figures are returned only when the
  selection has a single currency. Exact decimals are summed; figures are rounded to cents when returned.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

import polars as pl

Unit = Literal["money", "count", "ratio"]


@dataclass(frozen=True)
class Metric:
    """A metric definition. `sql` is an aggregate over `mart.daily_kpi` ({c} = currency suffix) when the
    metric is additive; otherwise `computed_by` names the read function that evaluates it."""

    name: str
    label: str
    unit: Unit
    formula: str
    components: tuple[str, ...] = ()
    included: str = ""
    excluded: str = ""
    sql: str | None = None
    computed_by: str = ""
    higher_is_better: bool = True
    version: int = 1

    @property
    def tag(self) -> str:
        """The name and version of the definition, e.g. `ngr v2`."""
        return f"{self.name} v{self.version}"


# The NGR deductions, in order (each a metric of its own below): NGR = GGR − each of them.
NGR_DEDUCTIONS = (
    "bonus_cost",
    "jackpot_contributions",
    "provider_fees",
    "payment_fees",
    "chargebacks",
    "gaming_duty",
)
NGR_COMPONENTS = ("ggr", *NGR_DEDUCTIONS)

CATALOGUE: tuple[Metric, ...] = (
    Metric(
        "handle",
        "Handle (turnover)",
        "money",
        "Σ real_stake of settled bets",
        included="settled bets' real-money stakes, dated by settlement day",
        excluded="void bets, open bets, bonus stakes, test accounts",
        sql="sum(handle{c})",
    ),
    Metric(
        "ggr",
        "GGR",
        "money",
        "Σ real_stake − Σ real_win of settled bets",
        components=("handle", "real_wins"),
        included="settled real-money bets",
        excluded="void and open bets, bonus stakes and bonus wins, test accounts",
        sql="sum(ggr{c})",
    ),
    Metric(
        "real_wins",
        "Real wins",
        "money",
        "Σ real_win of settled bets",
        sql="sum(real_win{c})",
        higher_is_better=False,
    ),
    Metric(
        "bonus_cost",
        "Bonus cost",
        "money",
        "Σ bonuses.converted_amount, dated converted_at",
        included="bonus money converted to withdrawable cash",
        excluded="granted, wagered, forfeited, expired or cancelled bonus money (no cash right, DOMAIN §1.1)",
        sql="sum(bonus_cost{c})",
        higher_is_better=False,
    ),
    Metric(
        "jackpot_contributions",
        "Jackpot contributions",
        "money",
        "Σ jackpot_contribution of settled bets",
        sql="sum(jackpot{c})",
        higher_is_better=False,
    ),
    Metric(
        "provider_fees",
        "Game provider fees",
        "money",
        "per brand × provider × calendar month: fee to day d = provider.fee_rate × max(0, carry-in + the "
        "provider's GGR of the month up to d); a day's fee = the change in that figure",
        included="carry-in ≤ 0: the negative GGR balance a month hands to the next (a month ending negative "
        "carries it, a month ending positive resets it to 0); a day's fee can be negative inside a month, no "
        "month's fee is; a country's, player's or game's share is the day's fee in proportion to its GGR",
        excluded="providers' fee rates are not effective-dated: a changed rate re-prices past months",
        sql="sum(provider_fee{c})",
        higher_is_better=False,
        version=2,
    ),
    Metric(
        "payment_fees",
        "Payment fees",
        "money",
        "Σ payments.provider_fee of every payment, dated created_at + Σ payments.chargeback_fee, dated at the "
        "chargeback",
        included="every fee a payment provider charged, whatever the payment's final status (approved, pending, "
        "declined, failed, charged back); a chargeback's own fee on the chargeback's day",
        excluded="test accounts",
        sql="sum(payment_fees{c})",
        higher_is_better=False,
        version=2,
    ),
    Metric(
        "chargebacks",
        "Chargebacks",
        "money",
        "Σ amount of deposits charged back, dated at the chargeback (payments.charged_back_at, else updated_at)",
        included="an event on its own day: the deposit stays in the deposits (and FTDs) of the day it was made",
        excluded="the chargeback fee (in payment fees, on the same day)",
        sql="sum(chargebacks{c})",
        higher_is_better=False,
        version=2,
    ),
    Metric(
        "gaming_duty",
        "Gaming duty",
        "money",
        "per brand × duty period (a calendar month, split where the rate changes): duty to day d = rate × "
        "max(0, carry-in + GGR of the period up to d); a day's duty = the change in that figure",
        included="rate and basis in force for the brand's jurisdiction (tax_rates, [effective_from, "
        "effective_to)); carry-in ≤ 0: the negative GGR balance a period hands to the next (a period ending "
        "negative carries it, one ending positive resets it to 0); a day's duty can be negative inside a "
        "period, no period's (so no month's) duty is; basis handle: rate × handle, never negative, carry "
        "untouched; a country's or player's share is the day's duty in proportion to its GGR (or handle)",
        excluded="no tax credit: losses are never refunded, only carried forward",
        sql="sum(duty{c})",
        higher_is_better=False,
        version=2,
    ),
    Metric(
        "ngr",
        "NGR",
        "money",
        "GGR − bonus cost − jackpot contributions − provider fees − payment fees − chargebacks − gaming duty",
        components=NGR_COMPONENTS,
        included="every deduction is a named metric of its own, each dated by its own event",
        excluded="affiliate commissions, platform fees (not modelled)",
        sql="sum(ngr{c})",
        version=2,
    ),
    Metric(
        "hold_pct",
        "Hold %",
        "ratio",
        "GGR ÷ handle",
        components=("ggr", "handle"),
        excluded="undefined (empty) when handle is 0",
        sql="sum(ggr{c}) / nullif(sum(handle{c}), 0)",
    ),
    Metric(
        "rtp",
        "RTP actual vs theoretical",
        "ratio",
        "actual = Σ real_win ÷ Σ real_stake; theoretical = handle-weighted games.theoretical_rtp; "
        "z = (Σwin − θ·Σstake) ÷ √Σ(win − θ·stake)² over real-money rounds",
        components=("real_wins", "handle"),
        included="settled real-money rounds (real_stake > 0), with their count; a deviation is flagged "
        "only when |z| ≥ 3 and there are at least 30 rounds",
        computed_by="api.games_table",
    ),
    Metric(
        "deposits",
        "Deposits",
        "money",
        "Σ amount of approved deposits, including those later charged back, dated created_at",
        excluded="pending, declined and failed deposits; a later chargeback is deducted on its own day "
        "(chargebacks), not from the deposit's day",
        sql="sum(deposits{c})",
        version=2,
    ),
    Metric(
        "withdrawals",
        "Withdrawals",
        "money",
        "Σ amount of approved withdrawals, dated created_at",
        excluded="pending (see pending withdrawals), declined and failed withdrawals",
        sql="sum(withdrawals{c})",
        higher_is_better=False,
    ),
    Metric(
        "net_deposits",
        "Net deposits",
        "money",
        "deposits − withdrawals",
        components=("deposits", "withdrawals"),
        excluded="chargebacks (an NGR deduction, shown on their own)",
        sql="sum(deposits{c}) - sum(withdrawals{c})",
        version=2,
    ),
    Metric(
        "pending_withdrawals",
        "Pending withdrawals",
        "money",
        "count, Σ amount and oldest created_at of withdrawals in status pending now",
        included="current state, not limited by the date range",
        computed_by="api.pending_withdrawals / api.pending_summary",
        higher_is_better=False,
    ),
    Metric(
        "active_players",
        "Active players",
        "count",
        "count of distinct players with ≥ 1 settled real-money bet (real_stake > 0) in the window",
        excluded="test accounts, bonus-only rounds, void and open bets",
        computed_by="api.kpis (players counted on their first active day in the window, mart.player_day)",
    ),
    Metric(
        "registrations",
        "Registrations",
        "count",
        "count of players registered in the window (registered_at)",
        sql="sum(registrations)",
    ),
    Metric(
        "ftds",
        "FTDs",
        "count",
        "count of players whose first approved deposit falls in the window",
        included="fixed when it happens: a deposit later charged back stays the player's FTD, on its day "
        "(see ftds_charged_back)",
        excluded="declined, failed and pending deposits (a player whose first attempt failed is counted at their "
        "first approved one)",
        sql="sum(ftds)",
        version=2,
    ),
    Metric(
        "ftds_charged_back",
        "FTDs later charged back",
        "count",
        "count of the window's FTDs whose deposit has been charged back (by the data's as-of time)",
        components=("ftds",),
        included="dated by the FTD's day, like FTDs: the count of a closed period can grow as chargebacks arrive, "
        "the FTD count itself never changes",
        sql="sum(ftds_charged_back)",
        higher_is_better=False,
    ),
    Metric(
        "ftd_conversion",
        "FTD conversion",
        "ratio",
        "players registered in the window who have made an FTD (by the snapshot) ÷ registrations in the window",
        components=("registrations", "ftds"),
        included="cohort semantics: the FTD may fall after the window",
        computed_by="api.kpis",
        version=2,
    ),
    Metric(
        "depositing_players",
        "Depositing players",
        "count",
        "count of distinct players with ≥ 1 approved deposit in the window",
        included="deposits later charged back (they were approved)",
        computed_by="api.kpis",
        version=2,
    ),
    Metric(
        "arpu",
        "ARPU",
        "money",
        "NGR ÷ active players",
        components=("ngr", "active_players"),
        computed_by="api.kpis",
        version=2,
    ),
    Metric(
        "arppu",
        "ARPPU",
        "money",
        "NGR ÷ depositing players",
        components=("ngr", "depositing_players"),
        computed_by="api.kpis",
        version=2,
    ),
    Metric(
        "retention",
        "Retention by cohort",
        "ratio",
        "share of the cohort (registration or FTD week/month) with ≥ 1 settled real-money bet in period k "
        "(k = 0 is the cohort's own period)",
        computed_by="api.cohort_retention",
    ),
    Metric(
        "ltv",
        "LTV by cohort",
        "money",
        "cumulative NGR of the cohort's players up to period k ÷ cohort size",
        components=("ngr",),
        computed_by="api.ltv_curves",
        version=2,
    ),
)

BY_NAME: dict[str, Metric] = {m.name: m for m in CATALOGUE}


def definition_text(m: Metric) -> str:
    """The text a metric's version stands for: what it counts and how (not its label or where it is computed),
    with the versions of the metrics it is built from (a component's new version is a new definition)."""
    parts = [f"{c} v{BY_NAME[c].version}" for c in m.components]
    return "\n".join((m.name, m.unit, m.formula, ", ".join(parts), m.included, m.excluded, m.sql or ""))


def definition_hash(m: Metric) -> str:
    """A short hash of `definition_text` (pinned per version by the tests)."""
    return hashlib.sha256(definition_text(m).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Tile:
    """A KPI tile of the Overview: the metric it shows (`key`), its label, its unit (a "money" tile shows the
    currency of the figures read: EUR or the brands' own), its definition text and version, and whether a rise
    is good."""

    key: str
    label: str
    unit: Unit
    definition: str
    higher_is_better: bool
    version: int = 1

    @property
    def tag(self) -> str:
        """The definition's name and version, e.g. `ngr v2`."""
        return f"{self.key} v{self.version}"


def _tile(name: str) -> Tile:
    m = BY_NAME[name]
    return Tile(m.name, m.label, m.unit, m.formula, m.higher_is_better, m.version)


# The KPI tiles of the Overview (SPEC §4), in order.
KPI_TILES: tuple[Tile, ...] = tuple(
    _tile(name)
    for name in (
        "ggr",
        "ngr",
        "handle",
        "hold_pct",
        "active_players",
        "deposits",
        "withdrawals",
        "net_deposits",
        "ftds",
        "arpu",
    )
)


def metric(name: str) -> Metric:
    """The definition named `name` (ValueError naming the known ones otherwise)."""
    try:
        return BY_NAME[name]
    except KeyError:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(BY_NAME)}") from None


def additive_sql(name: str, currency_suffix: str) -> str:
    """The aggregate SQL of an additive metric over mart.daily_kpi, for `_eur` or '' (brand currency)."""
    m = metric(name)
    if m.sql is None:
        raise ValueError(f"metric {name!r} is not additive; it is computed by {m.computed_by}")
    if currency_suffix not in ("", "_eur"):
        raise ValueError("currency suffix must be '' or '_eur'")
    return m.sql.format(c=currency_suffix)


def catalogue_frame() -> pl.DataFrame:
    """The catalogue as a table for the Metrics page."""
    return pl.DataFrame(
        {
            "name": [m.name for m in CATALOGUE],
            "label": [m.label for m in CATALOGUE],
            "version": [f"v{m.version}" for m in CATALOGUE],
            "unit": [m.unit for m in CATALOGUE],
            "formula": [m.formula for m in CATALOGUE],
            "components": [", ".join(m.components) for m in CATALOGUE],
            "included": [m.included for m in CATALOGUE],
            "excluded": [m.excluded for m in CATALOGUE],
            "computed_by": [m.computed_by or "mart.daily_kpi: " + (m.sql or "") for m in CATALOGUE],
        }
    )
