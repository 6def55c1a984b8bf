"""Players: registration growth with weekly and yearly seasonality, brands, countries, channels,
lifetimes (most churn within weeks, a few stay), whales and casuals, account statuses.

The arrays in `Players` drive the activity stage; `players_frame` turns them into the table.
Balances, KYC status and risk score are filled in after the activity (see `seed`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.generator.common import DAY, HISTORY_DAYS, HOUR, HOUR_WEIGHTS, MINUTE, SECOND, Clock, col, pick, ts
from pipelines.generator.marketing import Marketing
from pipelines.generator.names import EMAIL_DOMAINS, FIRST, GROUP_OF_COUNTRY, GROUPS, LAST, ascii_slug
from pipelines.generator.reference import COUNTRY_CODES, Reference

CHANNELS = ("organic", "affiliate", "paid_search", "paid_social", "email", "referral")
CHANNEL_P = np.array([0.35, 0.30, 0.12, 0.12, 0.05, 0.06])
METHODS = ("card", "bank_transfer", "ewallet", "crypto", "voucher")
# account statuses (index into app.models.ACCOUNT_STATUSES order)
ACTIVE, SUSPENDED, BLOCKED, SELF_EXCLUDED, CLOSED = range(5)
STATUS_LABELS = ("active", "suspended", "blocked", "self_excluded", "closed")


@dataclass
class Players:
    n: int
    id: np.ndarray
    operator: np.ndarray  # 0-based brand index
    country: np.ndarray  # index into COUNTRY_CODES
    registered: np.ndarray  # µs
    active_until: np.ndarray  # µs: end of the playing life (churn, status change, or as_of)
    depositor: np.ndarray  # bool: will deposit when playing
    stake_cents: np.ndarray  # typical real stake (brand currency, cents): whales have a heavy tail
    intensity: np.ndarray  # relative number of bets per session
    visit_rate: np.ndarray  # sessions per day of life
    sports_fan: np.ndarray  # bool
    method: np.ndarray  # index into METHODS
    status: np.ndarray  # ACTIVE … CLOSED
    status_at: np.ndarray  # µs of the status change (0 when active)
    self_excluded_until: np.ndarray  # µs (0 when not self-excluded)
    is_test: np.ndarray
    ip: np.ndarray  # registration IP as an integer
    device: np.ndarray  # device id as an integer
    frame: pl.DataFrame  # the identity columns (names, contacts, attribution)


def registration_times(rng: np.random.Generator, clock: Clock, n: int) -> np.ndarray:
    """Growth over the year × weekly (weekend) and yearly (December high, summer low) seasonality."""
    day = np.arange(HISTORY_DAYS)
    t_days = clock.start // DAY + day  # days since epoch
    weekday = (t_days + 3) % 7  # 0 = Monday
    doy = (t_days % 365.25) / 365.25
    weight = (1 + 1.6 * day / HISTORY_DAYS) * np.where(weekday >= 4, 1.25, 1.0)
    weight *= 1 + 0.18 * np.cos(2 * np.pi * (doy - 0.96)) * 1.0
    weight /= weight.sum()
    d = rng.choice(HISTORY_DAYS, size=n, p=weight)
    hour = rng.choice(24, size=n, p=HOUR_WEIGHTS)
    t = clock.start + d * DAY + hour * HOUR + rng.integers(0, HOUR, size=n)
    return np.minimum(t, clock.as_of - HOUR - rng.integers(0, HOUR, size=n))


def build_players(rng: np.random.Generator, clock: Clock, ref: Reference, mk: Marketing, n: int) -> Players:
    pid = np.arange(1, n + 1, dtype=np.int64)
    reg = np.sort(registration_times(rng, clock, n))  # ids follow registration order
    op = rng.choice(len(ref.brand_share), size=n, p=ref.brand_share)
    country = np.empty(n, dtype=np.int64)
    for b in range(len(ref.brand_share)):
        m = op == b
        country[m] = rng.choice(len(COUNTRY_CODES), size=int(m.sum()), p=ref.brand_country_p[b])

    # lifetime: most churn within days or weeks, a loyal minority stays for months
    kind = rng.choice(3, size=n, p=[0.5, 0.32, 0.18])
    mean_days = np.array([3.0, 40.0, 260.0])[kind]
    life = (rng.exponential(mean_days) * DAY).astype(np.int64) + HOUR
    active_until = np.minimum(reg + life, clock.as_of - MINUTE)
    visit_rate = np.clip(rng.beta(1.6, 5, size=n) * np.array([1.6, 1.0, 0.8])[kind], 0.02, 1.2)
    channel = rng.choice(len(CHANNELS), size=n, p=CHANNEL_P)
    dep_p = np.where(channel == 1, 0.68, np.where(channel == 0, 0.6, 0.58))
    depositor = rng.random(n) < dep_p
    factor = ref.brand_factor[op]
    # typical stake: log-normal with a heavy tail (whales); in brand currency cents
    stake = np.exp(rng.normal(np.log(1.5), 1.05, size=n)) * factor * 100
    stake = np.maximum(10, np.round(stake / 10) * 10).astype(np.int64)
    intensity = np.exp(rng.normal(0, 0.8, size=n))
    sports = rng.random(n) < 0.18
    method_p = np.array(
        [
            [0.5, 0.12, 0.25, 0.08, 0.05],
            [0.6, 0.15, 0.2, 0.0, 0.05],
            [0.45, 0.35, 0.15, 0.0, 0.05],
            [0.55, 0.2, 0.2, 0.0, 0.05],
        ]
    )
    method = np.empty(n, dtype=np.int64)
    for b in range(len(ref.brand_share)):
        m = op == b
        method[m] = rng.choice(len(METHODS), size=int(m.sum()), p=method_p[b])

    status, status_at, sx_until = _statuses(rng, clock, reg, active_until, depositor)
    active_until = np.where(status != ACTIVE, np.minimum(active_until, status_at - MINUTE), active_until)
    active_until = np.maximum(active_until, reg + 10 * MINUTE)
    is_test = rng.random(n) < 0.005

    ip = random_ips(rng, n)
    device = rng.integers(0, 10**12, size=n)
    frame = _identity_frame(rng, clock, ref, mk, pid, op, country, reg, channel, is_test, ip, device)
    return Players(
        n=n,
        id=pid,
        operator=op,
        country=country,
        registered=reg,
        active_until=active_until,
        depositor=depositor,
        stake_cents=stake,
        intensity=intensity,
        visit_rate=visit_rate,
        sports_fan=sports,
        method=method,
        status=status,
        status_at=status_at,
        self_excluded_until=sx_until,
        is_test=is_test,
        ip=ip,
        device=device,
        frame=frame,
    )


def _statuses(
    rng: np.random.Generator, clock: Clock, reg: np.ndarray, until: np.ndarray, depositor: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(reg)
    u = rng.random(n)
    status = np.full(n, ACTIVE)
    status[(u < 0.014) & depositor] = SELF_EXCLUDED
    status[(u >= 0.014) & (u < 0.022)] = BLOCKED
    status[(u >= 0.022) & (u < 0.028)] = SUSPENDED
    status[(u >= 0.028) & (u < 0.040)] = CLOSED
    # the change happens during the player's life (suspensions are recent: still being looked at)
    span = np.maximum(until - reg, 2 * HOUR)
    at = reg + HOUR + (rng.random(n) * (span - HOUR)).astype(np.int64)
    recent = clock.as_of - rng.integers(1, 30 * 24, size=n) * HOUR
    at = np.where(status == SUSPENDED, np.maximum(recent, reg + HOUR), at)
    at = np.minimum(at, clock.as_of - MINUTE)
    at = np.where(status == ACTIVE, 0, at)
    length = rng.choice(np.array([182, 365, 1825]) * DAY, size=n)
    sx = at + length
    sx = np.where(sx <= clock.as_of, at + 1825 * DAY, sx)
    sx = np.where(status == SELF_EXCLUDED, sx, 0)
    return status, at, sx


def _identity_frame(
    rng: np.random.Generator,
    clock: Clock,
    ref: Reference,
    mk: Marketing,
    pid: np.ndarray,
    op: np.ndarray,
    country: np.ndarray,
    reg: np.ndarray,
    channel: np.ndarray,
    is_test: np.ndarray,
    ip: np.ndarray,
    device: np.ndarray,
) -> pl.DataFrame:
    n = len(pid)
    group = np.array([GROUPS.index(GROUP_OF_COUNTRY.get(c, "other")) for c in COUNTRY_CODES])[country]
    first = np.empty(n, dtype=object)
    last = np.empty(n, dtype=object)
    for g, gname in enumerate(GROUPS):
        m = group == g
        k = int(m.sum())
        first[m] = np.array(FIRST[gname], dtype=object)[rng.integers(0, len(FIRST[gname]), size=k)]
        last[m] = np.array(LAST[gname], dtype=object)[rng.integers(0, len(LAST[gname]), size=k)]
    domain = np.array(EMAIL_DOMAINS, dtype=object)[rng.integers(0, len(EMAIL_DOMAINS), size=n)]
    first_s = [ascii_slug(f) for f in first]
    last_s = [ascii_slug(x) for x in last]
    username = [f"{f}{x[:3]}{i}" for f, x, i in zip(first_s, last_s, pid, strict=True)]
    email = [f"{f}.{x}{i}@{d}" for f, x, i, d in zip(first_s, last_s, pid, domain, strict=True)]
    for i in np.flatnonzero(is_test):
        username[i] = f"test_{pid[i]}"
        email[i] = f"qa+{pid[i]}@pitboss.test"
    dial = np.array(ref.country_dial, dtype=object)[country]
    number = rng.integers(10_000_000, 999_999_999, size=n)
    phone = [f"+{d}{x}" for d, x in zip(dial, number, strict=True)]
    no_phone = rng.random(n) < 0.08
    age_days = (np.clip(rng.gamma(4.0, 3.2, size=n) + 18.2, 18.1, 80) * 365.25).astype(np.int64)
    dob_us = reg - age_days * DAY
    # a few players share a device or an IP with another (multi-accounting, households)
    share = np.flatnonzero(rng.random(n) < 0.01)
    other = rng.integers(0, n, size=len(share))
    device[share] = device[other]
    ip[share] = ip[other]
    affiliate = np.zeros(n, dtype=np.int64)
    campaign = np.zeros(n, dtype=np.int64)
    aff_mask = channel == 1
    ci = rng.integers(0, len(mk.campaign_ids), size=int(aff_mask.sum()))
    campaign[aff_mask] = mk.campaign_ids[ci]
    affiliate[aff_mask] = mk.campaign_affiliate[ci]
    click = np.full(n, "", dtype=object)
    tracked = np.isin(channel, [1, 2, 3])
    prefixes = np.array(["", "aff_", "gclid_", "fbclid_", "", ""], dtype=object)
    for i in np.flatnonzero(tracked):
        click[i] = f"{prefixes[channel[i]]}{pid[i]:x}{int(reg[i] // SECOND) % 1_000_000:06d}"
    return pl.DataFrame(
        {
            "id": pid,
            "operator_id": op + 1,
            "username": username,
            "email": email,
            "phone": col(phone, no_phone),
            "first_name": first.tolist(),
            "last_name": last.tolist(),
            "country_code": pick(COUNTRY_CODES, country),
            "date_of_birth": ts(dob_us).dt.date(),
            "registered_at": ts(reg),
            "registration_ip": ip_strings(ip),
            "device_id": device_strings(device),
            "affiliate_id": col(affiliate, affiliate == 0),
            "campaign_id": col(campaign, campaign == 0),
            "click_id": col(click.tolist(), ~tracked),
            "channel": pick(CHANNELS, channel),
            "is_test": is_test,
        }
    )


def random_ips(rng: np.random.Generator, n: int) -> np.ndarray:
    """Public-looking IPv4 addresses as integers."""
    a = rng.integers(0, 2**32, size=n, dtype=np.int64)
    first = np.clip((a >> 24) & 255, 11, 223)
    return (first << 24) | (a & 0xFFFF00) | np.maximum(a & 255, 1)


def ip_strings(ip: np.ndarray) -> pl.Series:
    """Integers as dotted IPv4 strings."""
    parts = [pl.Series((ip >> s) & 255).cast(pl.String) for s in (24, 16, 8, 0)]
    return pl.select(pl.concat_str(parts, separator=".")).to_series()


def device_strings(dev: np.ndarray) -> pl.Series:
    """Integers as device ids (dev-000123456789)."""
    return pl.select(pl.concat_str([pl.lit("dev-"), pl.Series(dev).cast(pl.String).str.zfill(12)])).to_series()


REF_PREFIX = ("card-fp-", "iban-", "wallet-", "btc-", "voucher-")


def account_refs(pid: np.ndarray, method: np.ndarray) -> pl.Series:
    """A player's payment account reference for a method (card fingerprint, IBAN, wallet, …)."""
    h = (pid.astype(np.int64) * 2654435761 + method * 97) % 10**12
    return pl.select(pl.concat_str([pick(REF_PREFIX, method), pl.Series(h).cast(pl.String).str.zfill(12)])).to_series()


def players_frame(p: Players, extra: dict[str, pl.Series]) -> pl.DataFrame:
    """The full players table: identity columns + statuses + activity-derived columns in `extra`."""
    sx = p.status == SELF_EXCLUDED
    return p.frame.with_columns(
        account_status=pick(STATUS_LABELS, p.status),
        self_excluded_until=ts(p.self_excluded_until, ~sx),
        **extra,
    )
