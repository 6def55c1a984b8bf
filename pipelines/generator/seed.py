"""`seed()`: generate a scale of data for a period ending at `as_of` and load it in one transaction.

Deterministic: the same seed, scale and `as_of` give identical rows (every random draw comes from
numpy PCG64 streams spawned from the seed; nothing reads the clock except the default `as_of`).
Rows are bulk-loaded with COPY; as a superuser the load runs with `session_replication_role =
replica` (no triggers, no FK checks: the generator sets `updated_at` itself and the tests check the
foreign keys with anti-joins), otherwise with triggers on.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import numpy as np
import polars as pl
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from pipelines.generator import load
from pipelines.generator.activity import Ids, simulate_chunk
from pipelines.generator.common import Clock, default_as_of, ts
from pipelines.generator.compliance import Activity, build_compliance
from pipelines.generator.marketing import build_marketing, build_postbacks
from pipelines.generator.platform import PlatformRules
from pipelines.generator.players import build_players, players_frame
from pipelines.generator.reference import build_reference
from pipelines.generator.rg import build_rg
from pipelines.generator.scales import get_scale

log = logging.getLogger(__name__)
ACTIVITY_TABLES = ("sessions", "bets", "bonuses", "payments", "ledger")


class AlreadySeeded(RuntimeError):
    """The database already has players (seed with force=True / --force to replace them)."""


def is_seeded(url: str) -> bool:
    """True when the operational database has at least one player."""
    with load.connect(url) as conn:
        return load.has_players(conn)


def _as_of(value: dt.datetime | dt.date | None) -> dt.datetime:
    if value is None:
        return default_as_of()
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)


def seed(
    url: str,
    scale: str,
    seed: int = 42,
    progress: bool = True,
    *,
    rules: PlatformRules,
    as_of: dt.datetime | dt.date | None = None,
    force: bool = False,
) -> dict[str, int]:
    """Fill the (migrated) database at `url` with `scale` data; returns row counts per table.

    Refuses a database that already has players unless `force` (which empties the generated tables,
    and the balance adjustments and audit rows that point at them, first).
    """
    sc = get_scale(scale)
    clock = Clock.ending(_as_of(as_of))
    streams = np.random.SeedSequence(seed).spawn(7)  # the 7th (responsible gambling) leaves the others unchanged
    rng_ref, rng_mk, rng_players, rng_comp, rng_pb = (np.random.Generator(np.random.PCG64(s)) for s in streams[:5])
    n_chunks = -(-sc.players // sc.chunk_players)
    chunk_streams = streams[5].spawn(n_chunks)
    started = time.perf_counter()
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    )
    with load.connect(url) as conn:
        if load.has_players(conn) and not force:
            raise AlreadySeeded("the database already has players: use --force to replace them")
    with load.connect(url) as conn, Progress(*columns, disable=not progress) as bar:
        task = bar.add_task(f"seeding {sc.name}", total=n_chunks + 4)
        bulk = load.try_bulk_mode(conn)
        if force or conn.execute("SELECT EXISTS (SELECT 1 FROM operators)").fetchone()[0]:
            try:
                load.empty_generated_tables(conn, bulk)
            except load.CannotReplace as exc:
                raise AlreadySeeded(f"cannot replace the data: {exc}") from None

        ref = build_reference(rng_ref, clock, sc.games)
        mk = build_marketing(rng_mk, clock, sc.affiliates, len(ref.brand_share))
        for name, df in (*ref.tables.items(), *mk.tables.items()):
            load.copy_frame(conn, name, df)
        players = build_players(rng_players, clock, ref, mk, sc.players)
        load.copy_frame(conn, "players", players_frame(players, {"updated_at": ts(players.registered)}))
        bar.advance(task)

        n = players.n
        summary = {
            k: np.zeros(n, dtype=np.int64)
            for k in ("cash", "bonus", "ftd", "ftd_amount", "first_day", "deposited", "last")
        }
        chargeback = np.zeros(n, dtype=bool)
        bets_per_depositor = sc.bets / max(1, int(players.depositor.sum()))
        ids = Ids()
        indexes = load.drop_secondary_indexes(conn, ACTIVITY_TABLES) if bulk else []
        loader = load.BackgroundLoader(conn)
        try:
            for k in range(n_chunks):
                lo, hi = k * sc.chunk_players, min(n, (k + 1) * sc.chunk_players)
                rng = np.random.Generator(np.random.PCG64(chunk_streams[k]))
                res = simulate_chunk(rng, clock, ref, players, lo, hi, bets_per_depositor, ids)
                for name in ACTIVITY_TABLES:
                    loader.put(name, res.tables[name], binary=name in ("bets", "ledger"))
                _collect(summary, chargeback, res, lo, hi)
                bar.advance(task)
            # compliance and postbacks are generated while the last chunks are still being copied
            act = Activity(summary["ftd"], summary["first_day"], summary["deposited"], summary["last"], chargeback)
            comp_tables, comp_cols = build_compliance(rng_comp, clock, ref, players, act, sc.blacklist, rules)
            for name, df in comp_tables.items():
                loader.put(name, df)
            pb = build_postbacks(rng_pb, clock, mk, players.frame, summary["ftd"], summary["ftd_amount"])
            loader.put("postbacks", pb)
            for name, df in build_rg(np.random.Generator(np.random.PCG64(streams[6])), clock, players).items():
                loader.put(name, df)
        finally:
            loader.close()
        load.create_indexes(conn, indexes)
        bar.advance(task)

        kyc_updated = (
            comp_tables["kyc_cases"]
            .group_by("player_id")
            .agg(pl.col("updated_at").max().cast(pl.Int64))
            .sort("player_id")
        )
        touched = np.maximum.reduce([players.registered, summary["last"], players.status_at])
        touched[kyc_updated["player_id"].to_numpy() - 1] = np.maximum(
            touched[kyc_updated["player_id"].to_numpy() - 1], kyc_updated["updated_at"].to_numpy()
        )
        final = pl.DataFrame(
            {
                "id": players.id,
                "cash_balance": summary["cash"] / 100.0,
                "bonus_balance": summary["bonus"] / 100.0,
                "kyc_status": comp_cols["kyc_status"],
                "risk_score": comp_cols["risk_score"],
                "updated_at": ts(np.minimum(touched, clock.as_of)),
            }
        )
        _update_players(conn, final)
        load.reset_sequences(conn)
        bar.advance(task)
        counts = load.table_counts(conn)
        conn.commit()
        conn.autocommit = True
        conn.execute("ANALYZE")
        bar.advance(task)
    log.info("seeded %s (seed %s, bulk=%s) in %.1fs: %s", sc.name, seed, bulk, time.perf_counter() - started, counts)
    return counts


def _collect(summary: dict[str, np.ndarray], chargeback: np.ndarray, res, lo: int, hi: int) -> None:
    """Keep what later stages need from a chunk's result."""
    summary["cash"][lo:hi] = res.cash
    summary["bonus"][lo:hi] = res.bonus
    summary["ftd"][lo:hi] = res.first_deposit
    summary["ftd_amount"][lo:hi] = res.ftd_amount
    summary["first_day"][lo:hi] = res.deposits_first_day
    summary["deposited"][lo:hi] = res.deposited_total
    summary["last"][lo:hi] = res.last_activity
    cb_players = res.tables["payments"].filter(pl.col("status") == "chargeback")["player_id"].to_numpy()
    chargeback[cb_players - 1] = True


def _update_players(conn, final: pl.DataFrame) -> None:
    """Set the activity-derived player columns (balances, KYC status, risk, updated_at) in one UPDATE."""
    conn.execute(
        "CREATE TEMP TABLE seed_players (id bigint PRIMARY KEY, cash_balance numeric(18,2), "
        "bonus_balance numeric(18,2), kyc_status text, risk_score smallint, updated_at timestamptz) ON COMMIT DROP"
    )
    load.copy_frame(conn, "seed_players", final)
    conn.execute(
        "UPDATE players p SET cash_balance = s.cash_balance, bonus_balance = s.bonus_balance, "
        "kyc_status = s.kyc_status, risk_score = s.risk_score, updated_at = s.updated_at "
        "FROM seed_players s WHERE p.id = s.id"
    )


seed_database = seed  # the name `app.commands.demo` uses
