"""Child processes of the DuckLake tests (`python -m tests.pipelines.ingest.lake_children …`).

- `read SETTING DATA_PATH STOP_FILE`: an app replica — reads the lake through the read API (`open_gateway`)
  in a loop until STOP_FILE exists; prints one JSON line {answers, errors}.
- `ingest URL WORKING SETTING DATA_PATH`: ingest runs in a loop; prints `commit <run_id>` as a run enters its
  lake transaction and `ok <run_id>` once it is published (the test kills it with SIGKILL meanwhile).
- `ingest-and-die URL WORKING SETTING DATA_PATH POINT`: one run that kills itself (SIGKILL) at POINT.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

# The two reads an ingest changes together (each added player has BETS_PER_PLAYER settled bets).
PAIR_SQL = (
    "SELECT (SELECT count(*) FROM {players}) AS players, (SELECT coalesce(sum(rounds), 0) FROM {game_day}) AS rounds"
)


def lake_of(setting: str, data_path: str):
    from warehouse.lake import parse_setting

    return parse_setting(setting, {"PITBOSS_LAKE_DATA_PATH": data_path}, Path(data_path).parent)


def manifest_check(gw) -> tuple[str | None, bool]:
    """(run id of the served snapshot, whether every table holds the rows that run's manifest says)."""
    with gw.cursor() as cur:
        run = cur.execute("SELECT run_id FROM meta.snapshot").fetchone()[0]
        rows = cur.execute("SELECT run_id, schema_name, table_name, rows FROM meta.lake_manifest").fetchall()
        ok = bool(rows) and all(r[0] == run for r in rows)
        for _, schema, table, n in rows:
            if schema in ("raw", "mart") and table in ("players", "bets", "game_day_base"):
                ok = ok and cur.execute(f'SELECT count(*) FROM {schema}."{table}"').fetchone()[0] == n
    return run, ok


def read_until(setting: str, data_path: str, stop_file: str) -> None:
    from warehouse import api
    from warehouse.gateway import open_gateway

    gw = open_gateway(lake_of(setting, data_path))
    answers, errors = [], []
    print("ready", flush=True)
    while not Path(stop_file).exists():
        try:
            pair = gw.query(PAIR_SQL, brands=None)
            run, ok = manifest_check(gw)
            kpis = api.kpis(gw, api.Filters(*_window()), scope=None)  # the read API itself, over the lake
            answers.append([run, ok, int(pair["players"][0]), int(pair["rounds"][0]), kpis.height])
        except Exception as exc:  # every error is a test failure; keep going to count them
            errors.append(f"{type(exc).__name__}: {exc}")
        time.sleep(0.01)
    print(json.dumps({"answers": answers, "errors": errors}), flush=True)


def _window():
    import datetime as dt

    return dt.date(2026, 3, 1), dt.date(2026, 3, 31)


def ingest_loop(url: str, working: str, setting: str, data_path: str) -> None:
    from pipelines.ingest import lake_publish, run_ingest

    original = lake_publish.LakeWriter._write

    def announced(self, *args):  # (con, src, tables, views, rows, in_lake, paths, run_id, snapshot_id)
        print("commit", args[-2], flush=True)
        return original(self, *args)

    lake_publish.LakeWriter._write = announced
    lake = lake_of(setting, data_path)
    print("ready", flush=True)
    while True:
        res = run_ingest(url, working, lake=lake)
        print(res.status, res.run_id, res.error or "", flush=True)


def ingest_and_die(url: str, working: str, setting: str, data_path: str, point: str) -> None:
    """One in-place ingest run that SIGKILLs itself at `point`: `marts` (inside the working file's transaction),
    `before_lake_commit` (the working file committed, the lake not), `after_lake_commit` (the lake committed,
    the working file not told). Prints `run <run_id>` when the run id is known."""
    import os
    import signal

    import warehouse.build as wb
    from pipelines.ingest import lake_publish, run_ingest

    def die() -> None:
        sys.stdout.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    if point == "marts":
        real_build = wb.build_marts

        def build_then_die(con, changed):
            real_build(con, changed)
            die()

        wb.build_marts = build_then_die
    else:
        original = lake_publish.LakeWriter._write

        def hooked(self, *args):
            print("run", args[-2], flush=True)
            if point == "after_lake_commit":
                original(self, *args)
            die()

        lake_publish.LakeWriter._write = hooked
    print("ready", flush=True)
    res = run_ingest(url, working, lake=lake_of(setting, data_path))
    print("survived", res.status, res.error or "", flush=True)


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "read":
        read_until(sys.argv[2], sys.argv[3], sys.argv[4])
    elif cmd == "ingest":
        ingest_loop(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
    elif cmd == "ingest-and-die":
        ingest_and_die(*sys.argv[2:7])
