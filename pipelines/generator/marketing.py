"""Marketing: affiliates and their campaigns, tracking configs for the 4 ad platforms, postbacks."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.generator.common import DAY, HOUR, MINUTE, SECOND, Clock, col, pick, ts

AFFILIATE_WORDS = (
    "Casino",
    "Slots",
    "Bonus",
    "Spin",
    "Bet",
    "Jackpot",
    "Ace",
    "Royal",
    "Nordic",
    "Maple",
    "Lucky",
    "Reel",
    "Odds",
    "Wager",
    "Vegas",
    "Star",
)
AFFILIATE_SUFFIX = ("Guru", "Hub", "Media", "Partners", "Insider", "Review", "Club", "Network", "Finder", "Hero")
CAMPAIGN_NAMES = (
    "welcome-100",
    "summer-spins",
    "black-friday",
    "sportsbook-launch",
    "vip-reload",
    "free-spins-50",
    "newsletter",
    "evergreen",
    "world-cup",
    "christmas",
    "app-install",
    "retargeting",
)


@dataclass
class Marketing:
    tables: dict[str, pl.DataFrame]
    campaign_affiliate: np.ndarray  # campaign index -> affiliate id
    campaign_ids: np.ndarray
    affiliate_url: list[str]  # by affiliate id - 1
    tracking_ids: dict[str, list[int]]  # platform -> config ids


def build_marketing(rng: np.random.Generator, clock: Clock, n_affiliates: int, n_brands: int) -> Marketing:
    names: list[str] = []
    while len(names) < n_affiliates:
        word = AFFILIATE_WORDS[rng.integers(len(AFFILIATE_WORDS))]
        name = f"{word}{AFFILIATE_SUFFIX[rng.integers(len(AFFILIATE_SUFFIX))]}"
        if name in names:
            name = f"{name} {len(names) + 1}"
        names.append(name)
    deal = rng.choice(3, size=n_affiliates, p=[0.45, 0.35, 0.20])  # cpa / revshare / hybrid
    cpa = np.where(deal != 1, rng.choice([50, 75, 100, 150, 200], size=n_affiliates), 0) * 100
    cpa_min = np.where(deal != 1, rng.choice([10, 20, 30], size=n_affiliates), 0) * 100
    rev = np.where(deal != 0, rng.choice([0.20, 0.25, 0.30, 0.35, 0.40], size=n_affiliates), 0.0)
    rev = np.where(deal == 2, rev / 2, rev)
    slugs = [n.lower().replace(" ", "") for n in names]
    urls = [f"https://track.{s}.example/postback?click_id={{click_id}}&event={{event}}" for s in slugs]
    has_url = rng.random(n_affiliates) < 0.9
    created = clock.start - rng.integers(30, 900, size=n_affiliates) * DAY
    affiliates = pl.DataFrame(
        {
            "id": np.arange(1, n_affiliates + 1),
            "name": names,
            "deal_type": pick(("cpa", "revshare", "hybrid"), deal),
            "cpa_amount": cpa / 100.0,
            "cpa_min_deposit": cpa_min / 100.0,
            "revshare_rate": rev,
            "postback_url": col(urls, ~has_url),
            "active": rng.random(n_affiliates) > 0.08,
            "created_at": ts(created),
            "updated_at": ts(created),
        }
    )
    n_camp = rng.integers(2, 6, size=n_affiliates)
    camp_aff = np.repeat(np.arange(1, n_affiliates + 1), n_camp)
    camp_names = []
    for k in n_camp:
        chosen = rng.choice(len(CAMPAIGN_NAMES), size=k, replace=False)
        camp_names.extend(CAMPAIGN_NAMES[c] for c in chosen)
    camp_ids = np.arange(1, len(camp_aff) + 1)
    camp_created = created[camp_aff - 1] + rng.integers(0, 60, size=len(camp_aff)) * DAY
    campaigns = pl.DataFrame(
        {"id": camp_ids, "affiliate_id": camp_aff, "name": camp_names, "created_at": ts(camp_created)}
    )
    tracking, tracking_ids = _tracking_configs(clock, n_brands)
    return Marketing(
        tables={"affiliates": affiliates, "campaigns": campaigns, "tracking_configs": tracking},
        campaign_affiliate=camp_aff,
        campaign_ids=camp_ids,
        affiliate_url=[u if h else "" for u, h in zip(urls, has_url, strict=True)],
        tracking_ids=tracking_ids,
    )


def _tracking_configs(clock: Clock, n_brands: int) -> tuple[pl.DataFrame, dict[str, list[int]]]:
    rows = [
        # operator (None: all brands), platform, name, settings, enabled
        (None, "meta", "Meta CAPI – all brands", {"pixel_id": "104857600123456", "test_event_code": None}, True),
        (
            None,
            "google_ads",
            "Google Ads offline conversions",
            {"customer_id": "123-456-7890", "conversion_action": "ftd_upload"},
            True,
        ),
        (1, "tiktok", "TikTok Events – Lucky Harbour", {"pixel_code": "CHB3K5JC77U4E1A2B3C4"}, True),
        (2, "tiktok", "TikTok Events – Crown & Anchor", {"pixel_code": "CHB3K5JC77U4E1A2B3C5"}, False),
        (1, "appsflyer", "AppsFlyer S2S – Lucky Harbour iOS", {"app_id": "id1234567890"}, True),
        (min(4, n_brands), "appsflyer", "AppsFlyer S2S – Maple Spins Android", {"app_id": "com.maplespins.app"}, True),
        (3, "meta", "Meta CAPI – Nordlys", {"pixel_id": "204857600123456", "test_event_code": "TEST4321"}, True),
    ]
    created = clock.start - 20 * DAY
    ids: dict[str, list[int]] = {}
    for i, r in enumerate(rows):
        ids.setdefault(r[1], []).append(i + 1)
    df = pl.DataFrame(
        {
            "id": list(range(1, len(rows) + 1)),
            "operator_id": pl.Series([r[0] for r in rows], dtype=pl.Int64),
            "platform": [r[1] for r in rows],
            "name": [r[2] for r in rows],
            "settings": [json.dumps(r[3]) for r in rows],
            "secret": [f"demo-secret-{r[1]}-{i + 1}" for i, r in enumerate(rows)],
            "enabled": [r[4] for r in rows],
            "created_at": ts(np.full(len(rows), created)),
            "updated_at": ts(np.full(len(rows), created)),
        }
    )
    return df, ids


def build_postbacks(
    rng: np.random.Generator,
    clock: Clock,
    mk: Marketing,
    players: pl.DataFrame,
    first_deposit: np.ndarray,
    ftd_amount_cents: np.ndarray,
) -> pl.DataFrame:
    """Registration and FTD postbacks for attributed players: mostly delivered, some failed or pending."""
    pid = players["id"].to_numpy()
    op = players["operator_id"].to_numpy()
    aff = players["affiliate_id"].fill_null(0).to_numpy()
    channel = players["channel"].to_numpy()
    click = players["click_id"].fill_null("").to_numpy()
    reg = players["registered_at"].cast(pl.Int64).to_numpy()
    is_test = players["is_test"].to_numpy()
    platform_of = {"paid_social": "meta", "paid_search": "google_ads"}
    ev_rows: dict[str, list] = {k: [] for k in ("type", "i", "t", "amount")}
    for i in np.flatnonzero((aff > 0) | np.isin(channel, list(platform_of))):
        ev_rows["type"].append("registration")
        ev_rows["i"].append(i)
        ev_rows["t"].append(reg[i] + 5 * SECOND)
        ev_rows["amount"].append(0)
        if first_deposit[i] > 0:
            ev_rows["type"].append("ftd")
            ev_rows["i"].append(i)
            ev_rows["t"].append(first_deposit[i] + 5 * SECOND)
            ev_rows["amount"].append(int(ftd_amount_cents[i]))
    n = len(ev_rows["i"])
    idx = np.array(ev_rows["i"], dtype=np.int64)
    t = np.array(ev_rows["t"], dtype=np.int64)
    etype = ev_rows["type"]
    age = clock.as_of - t
    u = rng.random(n)
    # recent events may still be pending; older ones delivered or failed after retries
    status = np.where(age < 2 * HOUR, 0, np.where(u < 0.06, 2, 1))  # 0 pending, 1 delivered, 2 failed
    status = np.where((status == 1) & (u > 0.985), 0, status)  # a few stuck in retry
    suppressed = is_test[idx]
    status = np.where(suppressed, 3, status)
    attempts = np.select([status == 0, status == 1, status == 2], [rng.integers(0, 3, n), 1 + (u > 0.9), 6], 0)
    http = np.select([status == 1, status == 2], [np.full(n, 200), rng.choice([500, 502, 404, 0], size=n)], 0)
    nulls_http = (status == 0) & (attempts == 0) | (status == 3)
    delivered = t + rng.integers(1, 90, size=n) * SECOND
    retry = clock.as_of + rng.integers(1, 120, size=n) * MINUTE
    platform_tc = []
    urls = []
    payloads = []
    for k in range(n):
        i = idx[k]
        a = aff[i]
        if a > 0:
            platform_tc.append(None)
            tmpl = (
                mk.affiliate_url[a - 1] or f"https://partners.example/aff{a}/pb?click_id={{click_id}}&event={{event}}"
            )
        else:
            plat = platform_of[channel[i]]
            platform_tc.append(mk.tracking_ids[plat][0])
            tmpl = f"https://{plat.replace('_', '')}.example/conversions?click_id={{click_id}}&event={{event}}"
        urls.append(tmpl.replace("{click_id}", click[i]).replace("{event}", etype[k]))
        body = {"click_id": click[i], "event": etype[k], "player_id": int(pid[i])}
        if etype[k] == "ftd":
            body["amount"] = ev_rows["amount"][k] / 100
        payloads.append(json.dumps(body))
    st_labels = ("pending", "delivered", "failed", "suppressed")
    last_resp = np.where(status == 2, "HTTP error after 6 attempts", np.where(status == 1, "OK", ""))
    updated = np.where(status == 1, delivered, np.where(status == 2, t + 26 * HOUR, t))
    updated = np.minimum(updated, clock.as_of - SECOND)
    delivered = np.minimum(delivered, clock.as_of - SECOND)
    return pl.DataFrame(
        {
            "id": np.arange(1, n + 1),
            "event_id": [f"{etype[k]}:{pid[idx[k]]}" for k in range(n)],
            "event_type": etype,
            "player_id": pid[idx],
            "operator_id": op[idx],
            "affiliate_id": col(aff[idx], aff[idx] == 0),
            "tracking_config_id": pl.Series(platform_tc, dtype=pl.Int64),
            "url": urls,
            "payload": payloads,
            "status": pick(st_labels, status),
            "attempts": attempts,
            "last_http_code": col(http, nulls_http),
            "last_response": col(last_resp, (status == 0) | (status == 3)),
            "next_retry_at": ts(retry, status != 0),
            "suppressed_reason": col(np.full(n, "test account"), status != 3),
            "created_at": ts(t),
            "delivered_at": ts(delivered, status != 1),
            "updated_at": ts(updated),
        }
    )
