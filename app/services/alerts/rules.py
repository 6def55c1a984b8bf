"""Alert rules, the pure part: what each rule decides from the rows it was given, the rule parameters and their
bounds, who may see and act on alerts. No database access here (`evaluate.py` fetches the rows).

A finding is identified by (rule code, subject) — e.g. `payment:42`, `brand:1:2026-01-04`, `kyc_case:7`.
Subjects that describe a period (a day, an hour) let a condition that persists fire again in the next period.

The rules (thresholds in `alert_rules.params`, editable by an admin):
- large_withdrawal: a pending/approved withdrawal ≥ threshold_eur (converted with the latest fx rate);
- ggr_drop: a brand's GGR (EUR) on the last complete day below its trailing average of `trailing_days` days by
  more than drop_pct %, only when that average is ≥ min_avg_ggr_eur (quiet brands and days do not fire);
- postback_failures: per brand, failed ÷ finished (delivered + failed) postbacks updated in the window
  > max_failed_pct, with at least min_postbacks finished;
- kyc_sla: pending KYC cases whose due time (+ grace_minutes) has passed, one alert per brand and day;
- failed_logins: more than max_failed `failed_password` logins on a brand within window_minutes;
- blacklist_matches: an existing player (not blocked/closed) matching a blacklist entry added within
  lookback_days (the player's own self-exclusion entry excluded);
- ingest_health: a failed or crashed ingestion run, or no successful run within max_staleness_minutes;
- rg_limit_hits: a player whose deposits or bets were refused by a responsible-gambling limit at least min_hits
  times within window_days (hits already counted by an earlier alert for the player do not count again);
- self_exclusion_ended: a player's self-exclusion reached the end of its term within lookback_days.

Raised at the moment of the action instead (`actions.py`, ACTION_RULE_CODES): role_granted, staff_2fa_reset,
large_adjustment_approved, chargeback_recorded (a deposit charged back: `chargeback.record`). A critical alert
is also sent by e-mail to its rule's recipients and to the webhook (`delivery.py`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import polars as pl
from email_validator import EmailNotValidError, validate_email

from app.models import ALERT_SEVERITIES
from app.services.alerts.masking import split_match
from app.services.core import Invalid
from auth.permissions import Permission

P = Permission
VIEW_PERMISSIONS = (P.VIEW_DASHBOARDS, P.VIEW_AUDIT)  # who sees the Alerts page and the badge
ACT_PERMISSION = P.VIEW_AUDIT  # admin, manager, compliance acknowledge / resolve
RULE_PERMISSION = P.MANAGE_STAFF  # admin edits thresholds

FAILED_RUN_STATUSES = ("failed", "crashed", "error")

# An alert only moves forward (open → acknowledged → resolved, never back), so its place in that lifecycle is
# its version: a form opened on an open alert is stale once someone else acknowledged or resolved it.
STATUS_VERSION = {"open": 1, "acknowledged": 2, "resolved": 3}

# Allowed parameters of each rule and their bounds (used to validate rule edits).
PARAM_BOUNDS: dict[str, dict[str, tuple[float, float]]] = {
    "large_withdrawal": {"threshold_eur": (1, 1e9), "lookback_hours": (1, 24 * 90)},
    "ggr_drop": {"drop_pct": (1, 100), "trailing_days": (2, 90), "min_avg_ggr_eur": (0, 1e12)},
    "postback_failures": {"max_failed_pct": (0, 100), "window_hours": (1, 24 * 30), "min_postbacks": (1, 1e6)},
    "kyc_sla": {"grace_minutes": (0, 60 * 24 * 30)},
    "failed_logins": {"max_failed": (1, 1e7), "window_minutes": (1, 60 * 24)},
    "blacklist_matches": {"lookback_days": (1, 365)},
    "ingest_health": {"max_staleness_minutes": (1, 60 * 24 * 30), "lookback_runs": (1, 1000)},
    "rg_limit_hits": {"min_hits": (2, 1000), "window_days": (1, 90)},
    # raised at the moment of the action (`actions.py`), not by the evaluator
    "role_granted": {"admin_only": (0, 1)},
    "staff_2fa_reset": {},
    "large_adjustment_approved": {"threshold_multiple": (0.01, 1000)},
    "self_exclusion_ended": {"lookback_days": (1, 365)},
    "chargeback_recorded": {},
}
ACTION_RULE_CODES = ("role_granted", "staff_2fa_reset", "large_adjustment_approved", "chargeback_recorded")
MAX_RECIPIENTS = 20  # e-mail addresses per rule (a CHECK in the database too)


@dataclass(frozen=True)
class Finding:
    """What a rule found: one alert candidate."""

    subject: str
    title: str
    operator_id: int | None = None
    detail: dict = field(default_factory=dict)


@dataclass
class Context:
    """What the rules may read besides PostgreSQL."""

    now: dt.datetime
    warehouse: Any = None  # a path to the served DuckDB file, or a warehouse.gateway.Gateway
    runs: pl.DataFrame | None = None  # warehouse.runlog.recent_runs(...) rows
    notes: list[str] = field(default_factory=list)  # how each rule was evaluated (e.g. the GGR source)


def clean_recipients(recipients: str | Iterable[str] | None) -> list[str]:
    """The e-mail addresses of a rule, validated and normalized (one per line or comma; duplicates dropped).

    Invalid names the line and why, not the address. No DNS lookups: the SMTP server says if it cannot deliver.
    """
    if recipients is None:
        return []
    items = recipients.replace(",", "\n").splitlines() if isinstance(recipients, str) else list(recipients)
    out: list[str] = []
    for n, raw in enumerate(items, start=1):
        text = str(raw).strip()
        if not text:
            continue
        try:
            address = validate_email(text, check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise Invalid(f"recipient {n} is not a valid e-mail address: {exc}") from None
        if address.lower() not in {a.lower() for a in out}:
            out.append(address)
    if len(out) > MAX_RECIPIENTS:
        raise Invalid(f"at most {MAX_RECIPIENTS} recipients per rule ({len(out)} given)")
    return out


def check_rule_edit(code: str, params: dict[str, float] | None, severity: str | None) -> None:
    """Invalid unless `code` is a rule, `severity` a severity and every parameter known and within its bounds."""
    if code not in PARAM_BOUNDS:
        raise Invalid(f"unknown rule {code!r}")
    if severity is not None and severity not in ALERT_SEVERITIES:
        raise Invalid(f"severity must be one of {', '.join(ALERT_SEVERITIES)}")
    for key, value in (params or {}).items():
        if key not in PARAM_BOUNDS[code]:
            raise Invalid(f"{key!r} is not a parameter of {code} (allowed: {', '.join(PARAM_BOUNDS[code])})")
        lo, hi = PARAM_BOUNDS[code][key]
        if isinstance(value, bool) or not isinstance(value, int | float) or not lo <= value <= hi:
            raise Invalid(f"{key} must be a number between {lo:g} and {hi:g}")


# --------------------------------------------------------------------------- the rules' decisions


def large_withdrawals(rows: Iterable[Any], p: dict) -> list[Finding]:
    """Withdrawals (rows with id, operator_id, player_id, amount, currency, status, amount_eur) ≥ threshold_eur."""
    threshold = float(p.get("threshold_eur", 5000))
    out = []
    for r in rows:
        if r.amount_eur is None or float(r.amount_eur) < threshold:
            continue
        out.append(
            Finding(
                f"payment:{r.id}",
                f"Withdrawal of {r.amount:,.2f} {r.currency} (≈ {float(r.amount_eur):,.0f} EUR)"
                f" by player {r.player_id}",
                r.operator_id,
                {
                    "payment_id": r.id,
                    "player_id": r.player_id,
                    "amount": r.amount,
                    "currency": r.currency,
                    "amount_eur": round(float(r.amount_eur), 2),
                    "status": r.status,
                    "threshold_eur": threshold,
                },
            )  # fmt: skip
        )
    return out


def ggr_window(p: dict, now: dt.datetime) -> tuple[dt.date, dt.date]:
    """(first, last) day of the daily GGR the ggr_drop rule needs; the last is the last complete UTC day."""
    yesterday = now.astimezone(dt.UTC).date() - dt.timedelta(days=1)
    return yesterday - dt.timedelta(days=int(p.get("trailing_days", 7)) + 30), yesterday


def ggr_drops(daily: pl.DataFrame, brands: Sequence[int], p: dict, last_day: dt.date, source: str) -> list[Finding]:
    """Brands whose GGR on the last day fell below their trailing average (daily: day, brand_id, ggr)."""
    n = int(p.get("trailing_days", 7))
    drop_pct = float(p.get("drop_pct", 50))
    min_avg = float(p.get("min_avg_ggr_eur", 1000))
    if daily.height == 0:
        return []
    # a warehouse that lags judges its own last day (staleness is the ingest_health rule's business)
    day = min(last_day, daily["day"].max())
    first = day - dt.timedelta(days=n)
    out = []
    for brand in brands:
        rows = daily.filter(pl.col("brand_id") == brand)
        by_day = {d: float(g or 0) for d, g in zip(rows["day"].to_list(), rows["ggr"].to_list(), strict=True)}
        avg = sum(by_day.get(first + dt.timedelta(days=i), 0.0) for i in range(n)) / n
        today = by_day.get(day, 0.0)
        if avg < min_avg or today >= avg * (1 - drop_pct / 100):
            continue
        pct = 100 * (avg - today) / avg
        out.append(
            Finding(
                f"brand:{brand}:{day.isoformat()}",
                f"GGR on {day} was {today:,.0f} EUR, {pct:.0f} % below the {n}-day average of {avg:,.0f} EUR",
                brand,
                {
                    "day": day,
                    "ggr_eur": round(today, 2),
                    "trailing_avg_eur": round(avg, 2),
                    "drop_pct": round(pct, 1),
                    "threshold_pct": drop_pct,
                    "source": source,
                },
            )  # fmt: skip
        )
    return out


def postback_failures(rows: Iterable[Any], p: dict, now: dt.datetime) -> list[Finding]:
    """Brands whose failed share of finished postbacks (rows: operator_id, failed, finished) is too high."""
    max_pct, minimum = float(p.get("max_failed_pct", 20)), int(p.get("min_postbacks", 10))
    out = []
    for r in rows:
        pct = 100 * r.failed / r.finished
        if r.finished < minimum or pct <= max_pct:
            continue
        out.append(
            Finding(
                f"brand:{r.operator_id}:{now.astimezone(dt.UTC):%Y-%m-%d}",
                f"{pct:.0f} % of postbacks failed in the last {int(p.get('window_hours', 24))} h "
                f"({r.failed} of {r.finished})",
                r.operator_id,
                {"failed": r.failed, "finished": r.finished, "failed_pct": round(pct, 1), "threshold_pct": max_pct},
            )
        )
    return out


def kyc_sla_breaches(rows: Iterable[Any], now: dt.datetime) -> list[Finding]:
    """One finding per brand and day with late cases (a backlog is one alert, not 1000)."""
    day = now.astimezone(dt.UTC).date()
    return [
        Finding(
            f"brand:{r.operator_id}:{day}",
            f"{r.late} KYC case(s) past their SLA; the oldest by {float(r.max_hours_late):.1f} h",
            r.operator_id,
            {
                "late_cases": r.late,
                "oldest_due_at": r.oldest_due,
                "case_ids": list(r.case_ids),
                "max_hours_late": round(float(r.max_hours_late), 1),
            },  # fmt: skip
        )
        for r in rows
    ]


def failed_login_spikes(rows: Iterable[Any], p: dict, now: dt.datetime) -> list[Finding]:
    """Brands with more than max_failed failed logins in the window (rows: operator_id, failed, players, ips)."""
    window = int(p.get("window_minutes", 60))
    limit = int(p.get("max_failed", 50))
    bucket = now.astimezone(dt.UTC).replace(minute=0, second=0, microsecond=0)  # one alert per brand-hour
    return [
        Finding(
            f"brand:{r.operator_id}:{bucket:%Y-%m-%dT%H:%M}",
            f"{r.failed} failed logins in {window} min ({r.players} players, {r.ips} IPs)",
            r.operator_id,
            {"failed": r.failed, "players": r.players, "ips": r.ips, "window_minutes": window, "threshold": limit},
        )
        for r in rows
        if r.failed > limit
    ]


def blacklist_match(entry: Any, match: Any) -> Finding | None:
    """The finding for a player matching a new blacklist entry (None when it does not count)."""
    if not match.in_entry_scope or match.player_id == entry.player_id or match.account_status in ("blocked", "closed"):
        return None
    kind, identifier = split_match(match.matched_on)  # the title names no personal data (SPEC §5)
    return Finding(
        f"entry:{entry.id}:player:{match.player_id}",
        f"Player {match.username} ({match.brand_code}) matches blacklist entry #{entry.id} on {kind}",
        match.operator_id,
        {
            "entry_id": entry.id,
            "category": entry.category,
            "player_id": match.player_id,
            "matched_on": kind,
            "identifier": identifier,  # masked on read for masked roles (alerts/masking.py)
            "account_status": match.account_status,
            "entry_reason": entry.reason,
            "entry_source": entry.source,
        },
    )


def ingest_problems(runs: pl.DataFrame, p: dict, now: dt.datetime) -> list[Finding]:
    """Failed runs in the run log, and a warehouse whose last successful run is too old."""
    out = []
    summary = runs.filter(pl.col("table") == "*")
    for r in summary.iter_rows(named=True):
        if r["status"] in FAILED_RUN_STATUSES:
            failed_tables = runs.filter(
                (pl.col("run_id") == r["run_id"]) & (pl.col("table") != "*") & (pl.col("status") != "ok")
            )["table"].to_list()
            out.append(
                Finding(
                    f"run:{r['run_id']}",
                    f"Ingestion run {r['run_id']} {r['status']}: {(r['error'] or 'no error message')[:200]}",
                    None,
                    {
                        "run_id": r["run_id"],
                        "status": r["status"],
                        "error": r["error"],
                        "tables": failed_tables,
                        "started_at": r["started_at"],
                    },
                )  # fmt: skip
            )
    ok = summary.filter(pl.col("status") == "ok").sort("finished_at", descending=True, nulls_last=True)
    max_age = dt.timedelta(minutes=float(p.get("max_staleness_minutes", 30)))
    now_naive = now.astimezone(dt.UTC).replace(tzinfo=None)
    if ok.height == 0:
        if summary.height:
            out.append(Finding("stale:never", "No ingestion run has succeeded yet", None, {}))
        return out
    last = ok.row(0, named=True)
    finished = last["finished_at"] or last["started_at"]
    if finished is not None and now_naive - finished > max_age:
        age_min = (now_naive - finished).total_seconds() / 60
        out.append(
            Finding(
                f"stale:{last['run_id']}",
                f"The warehouse is stale: the last successful ingestion finished {age_min:.0f} min ago",
                None,
                {
                    "last_ok_run": last["run_id"],
                    "finished_at": finished,
                    "age_minutes": round(age_min, 1),
                    "max_staleness_minutes": max_age.total_seconds() / 60,
                },
            )  # fmt: skip
        )
    return out


def rg_limit_hit_findings(rows: Iterable[Any], p: dict) -> list[Finding]:
    """Players with at least min_hits new limit hits in the window (rows: player_id, operator_id, hits,
    last_hit_id, first_hit, last_hit, limits). The subject names the last hit counted, so the next alert for
    the player needs min_hits hits after it; the title names no personal data."""
    minimum, days = int(p.get("min_hits", 3)), int(p.get("window_days", 7))
    return [
        Finding(
            f"player:{r.player_id}:hit:{r.last_hit_id}",
            f"Player #{r.player_id} hit responsible-gambling limits {r.hits} times in {days} days ({r.limits})",
            r.operator_id,
            {
                "player_id": r.player_id,
                "hits": r.hits,
                "last_hit_id": r.last_hit_id,
                "first_hit_at": r.first_hit,
                "last_hit_at": r.last_hit,
                "limits": r.limits,
                "min_hits": minimum,
                "window_days": days,
            },
        )
        for r in rows
        if r.hits >= minimum
    ]


def self_exclusion_endings(rows: Iterable[Any]) -> list[Finding]:
    """Players whose self-exclusion reached its end (rows: player_id, operator_id, until, account_status).

    The subject names the end, so a later self-exclusion of the same player that ends fires again; the title
    names no personal data.
    """
    return [
        Finding(
            f"player:{r.player_id}:until:{r.until.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%S}",
            f"Self-exclusion of player #{r.player_id} ended on {r.until.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC",
            r.operator_id,
            {"player_id": r.player_id, "ended_at": r.until, "account_status": r.account_status},
        )
        for r in rows
    ]
