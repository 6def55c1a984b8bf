"""Reference data: brands, countries, providers and games, fx and tax rates.

Small tables built in Python; `Reference` also carries the arrays the vectorised stages need
(brand currency factors, country mixes per brand, game RTPs and popularity).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl

from pipelines.generator.common import DAY, HISTORY_DAYS, Clock, ts

# code, name, company, currency, jurisdiction, player share, money factor vs EUR, threshold (units)
BRANDS = (
    ("harbour", "Lucky Harbour", "Harbour Gaming Ltd", "EUR", "MT", 0.40, 1.0, 100),
    ("crown", "Crown & Anchor", "Crown Interactive plc", "GBP", "GB", 0.25, 0.85, 100),
    ("nordlys", "Nordlys Casino", "Nordlys Spel AB", "SEK", "SE", 0.20, 10.0, 1000),
    ("maple", "Maple Spins", "Maple Play Inc.", "CAD", "ON", 0.15, 1.5, 150),
)
FX_BASE = {"EUR": 1.0, "GBP": 1.16, "SEK": 0.088, "CAD": 0.66}

# ISO2, ISO3, name, region, high risk, dial code
COUNTRIES = (
    ("MT", "MLT", "Malta", "Europe", False, "356"),
    ("GB", "GBR", "United Kingdom", "Europe", False, "44"),
    ("IE", "IRL", "Ireland", "Europe", False, "353"),
    ("DE", "DEU", "Germany", "Europe", False, "49"),
    ("AT", "AUT", "Austria", "Europe", False, "43"),
    ("FI", "FIN", "Finland", "Europe", False, "358"),
    ("SE", "SWE", "Sweden", "Europe", False, "46"),
    ("NO", "NOR", "Norway", "Europe", False, "47"),
    ("DK", "DNK", "Denmark", "Europe", False, "45"),
    ("NL", "NLD", "Netherlands", "Europe", False, "31"),
    ("ES", "ESP", "Spain", "Europe", False, "34"),
    ("IT", "ITA", "Italy", "Europe", False, "39"),
    ("PT", "PRT", "Portugal", "Europe", False, "351"),
    ("PL", "POL", "Poland", "Europe", False, "48"),
    ("EE", "EST", "Estonia", "Europe", False, "372"),
    ("CY", "CYP", "Cyprus", "Europe", False, "357"),
    ("GR", "GRC", "Greece", "Europe", False, "30"),
    ("CA", "CAN", "Canada", "North America", False, "1"),
    ("US", "USA", "United States", "North America", False, "1"),
    ("MX", "MEX", "Mexico", "Latin America", False, "52"),
    ("BR", "BRA", "Brazil", "Latin America", False, "55"),
    ("CL", "CHL", "Chile", "Latin America", False, "56"),
    ("PE", "PER", "Peru", "Latin America", False, "51"),
    ("NZ", "NZL", "New Zealand", "Oceania", False, "64"),
    ("AU", "AUS", "Australia", "Oceania", False, "61"),
    ("JP", "JPN", "Japan", "Asia", False, "81"),
    ("IN", "IND", "India", "Asia", False, "91"),
    ("ZA", "ZAF", "South Africa", "Africa", True, "27"),
    ("NG", "NGA", "Nigeria", "Africa", True, "234"),
    ("AE", "ARE", "United Arab Emirates", "Middle East", True, "971"),
)
COUNTRY_CODES = tuple(c[0] for c in COUNTRIES)

# Where each brand's players live (weights over COUNTRY_CODES; unlisted = 0).
BRAND_COUNTRY_MIX = (
    {
        "DE": 18,
        "FI": 15,
        "IE": 10,
        "AT": 8,
        "NO": 8,
        "NL": 6,
        "PL": 5,
        "ES": 4,
        "IT": 4,
        "NZ": 4,
        "MT": 3,
        "DK": 3,
        "PT": 3,
        "EE": 2,
        "GR": 2,
        "CL": 2,
        "JP": 2,
        "IN": 2,
        "CY": 1,
        "PE": 1,
        "BR": 1,
        "MX": 1,
        "ZA": 1,
        "NG": 0.5,
        "AE": 0.5,
        "AU": 1,
    },
    {"GB": 95, "IE": 2, "MT": 0.5, "ZA": 1, "NG": 0.5, "AE": 0.5, "AU": 0.5},
    {"SE": 95, "FI": 2, "NO": 2, "DK": 0.5, "AE": 0.5},
    {"CA": 96, "US": 2, "MX": 1, "NG": 0.5, "AE": 0.5},
)

PROVIDERS = (
    # name, fee rate, main categories (weights: slots, live, table, crash, sports)
    ("NetEnt", 0.10, (8, 0, 2, 0, 0)),
    ("Pragmatic Play", 0.11, (8, 1, 1, 0, 0)),
    ("Evolution", 0.12, (0, 9, 1, 0, 0)),
    ("Play'n GO", 0.10, (9, 0, 1, 0, 0)),
    ("Microgaming", 0.09, (7, 0, 3, 0, 0)),
    ("Red Tiger", 0.10, (10, 0, 0, 0, 0)),
    ("Yggdrasil", 0.10, (10, 0, 0, 0, 0)),
    ("Push Gaming", 0.11, (10, 0, 0, 0, 0)),
    ("Hacksaw Gaming", 0.12, (9, 0, 0, 1, 0)),
    ("Nolimit City", 0.12, (10, 0, 0, 0, 0)),
    ("Spribe", 0.13, (0, 0, 0, 10, 0)),
    ("Kambi", 0.08, (0, 0, 0, 0, 10)),
)
PROVIDER_SHARE = np.array([12, 14, 12, 10, 8, 8, 6, 5, 6, 6, 4, 9], dtype=float)
CATEGORIES = ("slots", "live", "table", "crash", "sports")
RTP_RANGE = {
    "slots": (0.94, 0.97),
    "live": (0.97, 0.99),
    "table": (0.97, 0.995),
    "crash": (0.96, 0.99),
    "sports": (0.92, 0.95),
}
WORDS_A = (
    "Golden",
    "Wild",
    "Mega",
    "Lucky",
    "Book of",
    "Fire",
    "Starlight",
    "Viking",
    "Sweet",
    "Big",
    "Dragon",
    "Mystic",
    "Gates of",
    "Frozen",
    "Royal",
    "Pirate",
    "Neon",
    "Jungle",
    "Crystal",
    "Thunder",
)
WORDS_B = (
    "Riches",
    "Fortune",
    "Joker",
    "Gems",
    "Pharaoh",
    "Bonanza",
    "Wolves",
    "Reels",
    "Vault",
    "Quest",
    "Legends",
    "Fruits",
    "Treasure",
    "Blaze",
    "Empire",
    "Spins",
    "Kingdom",
    "Nights",
    "Ways",
    "Dynasty",
)
LIVE_NAMES = (
    "Lightning Roulette",
    "Blackjack",
    "Baccarat Squeeze",
    "Crazy Time",
    "Mega Ball",
    "Dream Catcher",
    "Speed Roulette",
    "Monopoly Live",
    "Dragon Tiger",
    "Sic Bo",
    "Football Studio",
    "Texas Hold'em",
)
TABLE_NAMES = (
    "European Roulette",
    "Classic Blackjack",
    "Punto Banco",
    "Casino Hold'em",
    "Three Card Poker",
    "French Roulette",
    "Jacks or Better",
    "Red Dog",
)
CRASH_NAMES = ("Aviator", "Mines", "Plinko", "Dice", "Goal", "Hilo", "Keno", "Mini Roulette")
SPORTS_NAMES = (
    "Football Pre-match",
    "Football Live",
    "Tennis",
    "Ice Hockey",
    "Basketball",
    "Horse Racing",
    "Esports",
    "American Football",
    "Cricket",
    "Golf",
)

TAX_RATES = (
    # jurisdiction, basis, rate, from (days before as_of, None = long ago), to
    ("MT", "ggr", 0.05, None),
    ("SE", "ggr", 0.22, None),
    ("ON", "ggr", 0.20, None),
    ("GB", "ggr", 0.21, None),
    ("GB", "ggr", 0.40, "change"),  # an effective-dated change inside the generated period
)


@dataclass
class Reference:
    """Reference tables (polars, ready to COPY) and the arrays the other stages draw from."""

    tables: dict[str, pl.DataFrame]
    brand_share: np.ndarray
    brand_factor: np.ndarray  # money of a brand's currency per EUR-like unit
    brand_currency: list[str]
    brand_country_p: np.ndarray  # (brands, countries)
    country_high_risk: np.ndarray
    country_dial: list[str]
    game_ids: np.ndarray
    game_category: np.ndarray  # index into CATEGORIES
    game_rtp: np.ndarray
    game_popularity: np.ndarray
    game_bias: np.ndarray  # the game's long-run actual RTP ÷ theoretical (close to 1)
    game_jackpot: np.ndarray  # bool: part of each stake feeds a progressive jackpot


def build_reference(rng: np.random.Generator, clock: Clock, n_games: int) -> Reference:
    """All reference tables for a period ending at `clock.as_of`."""
    period_start = dt.datetime.fromtimestamp(clock.start / 1e6, dt.UTC)
    as_of = dt.datetime.fromtimestamp(clock.as_of / 1e6, dt.UTC)
    tables: dict[str, pl.DataFrame] = {}
    launched = [period_start - dt.timedelta(days=d) for d in (2400, 1500, 900, 420)]
    tables["operators"] = pl.DataFrame(
        {
            "id": [i + 1 for i in range(len(BRANDS))],
            "code": [b[0] for b in BRANDS],
            "name": [b[1] for b in BRANDS],
            "company": [b[2] for b in BRANDS],
            "currency": [b[3] for b in BRANDS],
            "jurisdiction": [b[4] for b in BRANDS],
            "status": ["active"] * len(BRANDS),
            "launched_at": launched,
            "adjustment_threshold": [float(b[7]) for b in BRANDS],
            "created_at": launched,
            "updated_at": launched,
        }
    )
    tables["countries"] = pl.DataFrame(
        {
            "code": [c[0] for c in COUNTRIES],
            "iso3": [c[1] for c in COUNTRIES],
            "name": [c[2] for c in COUNTRIES],
            "region": [c[3] for c in COUNTRIES],
            "high_risk": [c[4] for c in COUNTRIES],
        }
    )
    tables["providers"] = pl.DataFrame(
        {
            "id": list(range(1, len(PROVIDERS) + 1)),
            "name": [p[0] for p in PROVIDERS],
            "fee_rate": [p[1] for p in PROVIDERS],
        }
    )
    games = _games(rng, clock, n_games)
    tables["games"] = games
    tables["fx_rates"] = _fx_rates(rng, period_start.date(), as_of.date())
    tables["tax_rates"] = _tax_rates(as_of.date())

    mix = np.zeros((len(BRANDS), len(COUNTRIES)))
    for b, weights in enumerate(BRAND_COUNTRY_MIX):
        for code, w in weights.items():
            mix[b, COUNTRY_CODES.index(code)] = w
    mix /= mix.sum(axis=1, keepdims=True)
    share = np.array([b[5] for b in BRANDS])
    cat = games["category"].to_numpy()
    return Reference(
        tables=tables,
        brand_share=share / share.sum(),
        brand_factor=np.array([b[6] for b in BRANDS]),
        brand_currency=[b[3] for b in BRANDS],
        brand_country_p=mix,
        country_high_risk=np.array([c[4] for c in COUNTRIES]),
        country_dial=[c[5] for c in COUNTRIES],
        game_ids=games["id"].to_numpy(),
        game_category=np.array([CATEGORIES.index(c) for c in cat]),
        game_rtp=games["theoretical_rtp"].to_numpy(),
        game_popularity=_popularity(rng, len(games)),
        game_bias=np.exp(rng.normal(0, 0.012, size=len(games))),
        game_jackpot=(cat == "slots") & (rng.random(len(games)) < 0.12),
    )


def _games(rng: np.random.Generator, clock: Clock, n_games: int) -> pl.DataFrame:
    share = PROVIDER_SHARE / PROVIDER_SHARE.sum()
    per_provider = np.maximum(2, np.round(share * n_games).astype(int))
    rows: dict[str, list] = {k: [] for k in ("id", "provider_id", "code", "name", "category", "theoretical_rtp")}
    rows |= {"enabled": [], "released_at": [], "updated_at": []}
    used: set[str] = set()
    gid = 0
    for p, (pname, _fee, cat_w) in enumerate(PROVIDERS):
        w = np.array(cat_w, dtype=float)
        for _ in range(per_provider[p]):
            gid += 1
            c = CATEGORIES[rng.choice(len(CATEGORIES), p=w / w.sum())]
            name = _game_name(rng, c, used)
            lo, hi = RTP_RANGE[c]
            released = clock.start - int(rng.integers(30, 2000)) * DAY
            if rng.random() < 0.15:  # recent releases inside the period
                released = clock.start + int(rng.integers(0, HISTORY_DAYS - 30)) * DAY
            rows["id"].append(gid)
            rows["provider_id"].append(p + 1)
            slug = "".join(ch if ch.isalnum() else "-" for ch in f"{pname}-{name}".lower())
            rows["code"].append(f"{slug}-{gid}")
            rows["name"].append(name)
            rows["category"].append(c)
            rows["theoretical_rtp"].append(round(float(rng.uniform(lo, hi)), 4))
            rows["enabled"].append(bool(rng.random() > 0.03))
            rows["released_at"].append(released)
            rows["updated_at"].append(released)
    df = pl.DataFrame({k: v for k, v in rows.items() if k not in ("released_at", "updated_at")})
    rel = np.array(rows["released_at"], dtype=np.int64)
    return df.with_columns(released_at=ts(rel), updated_at=ts(rel))


def _game_name(rng: np.random.Generator, category: str, used: set[str]) -> str:
    pools = {"live": LIVE_NAMES, "table": TABLE_NAMES, "crash": CRASH_NAMES, "sports": SPORTS_NAMES}
    for attempt in range(50):
        if category == "slots":
            name = f"{WORDS_A[rng.integers(len(WORDS_A))]} {WORDS_B[rng.integers(len(WORDS_B))]}"
        else:
            pool = pools[category]
            name = pool[rng.integers(len(pool))]
        if attempt > 5:
            name = f"{name} {attempt - 4}"
        if name not in used:
            used.add(name)
            return name
    name = f"{category.title()} {len(used) + 1}"
    used.add(name)
    return name


def _popularity(rng: np.random.Generator, n: int) -> np.ndarray:
    """Zipf-like popularity in a random order: a few hits, a long tail."""
    w = 1.0 / np.arange(1, n + 1) ** 0.9
    w = w[rng.permutation(n)]
    return w / w.sum()


def _fx_rates(rng: np.random.Generator, first: dt.date, last: dt.date) -> pl.DataFrame:
    """Daily rates to EUR for every brand currency (EUR = 1), a gentle random walk."""
    days = (last - first).days + 1
    dates = [first + dt.timedelta(days=i) for i in range(days)]
    frames = []
    for cur, base in FX_BASE.items():
        if cur == "EUR":
            rate = np.ones(days)
        else:
            walk = np.cumsum(rng.normal(0, 0.004, days))
            rate = base * np.exp(walk - walk.mean())
        frames.append(pl.DataFrame({"rate_date": dates, "currency": [cur] * days, "rate_to_eur": np.round(rate, 8)}))
    return pl.concat(frames)


def _tax_rates(as_of: dt.date) -> pl.DataFrame:
    change = dt.date(as_of.year, as_of.month, 1) - dt.timedelta(days=150)
    change = dt.date(change.year, change.month, 1)
    long_ago = dt.date(2015, 1, 1)
    rows = []
    for i, (jur, basis, rate, when) in enumerate(TAX_RATES):
        start = change if when == "change" else long_ago
        end = change if (jur == "GB" and when is None) else None
        rows.append(
            {
                "id": i + 1,
                "jurisdiction": jur,
                "basis": basis,
                "rate": rate,
                "effective_from": start,
                "effective_to": end,
            }
        )
    return pl.DataFrame(rows)
