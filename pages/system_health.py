"""System health (admin, manager): pipeline runs, table freshness against the target, the last reconciliation,
PostgreSQL and warehouse reachability and size, versions; an admin can start an ingestion run and follow it."""

import time

import streamlit as st

from app.services.core import ServiceError
from app.services.health import reads as health
from app.services.health import writes as health_writes
from app.ui import fmt, state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import has_permission

actor = guard_page(__file__)
engine = state.engine()
settings = state.settings()
st.title("System health")
JOB_KEY = "pitboss_ingest_job"


def size(n: int | None) -> str:
    if n is None:
        return "–"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:,.0f} {unit}"
        n /= 1024
    return f"{n:,.1f} TB"


pg = health.postgres_status(engine)
wh = health.warehouse_status(settings.warehouse_target())  # the file, or the lake (DuckLake mode)
c1, c2 = st.columns(2)
with c1.container(border=True):
    st.markdown("**PostgreSQL**")
    if pg["reachable"]:
        st.success(f"reachable · {pg['latency_ms']} ms", icon=":material/check_circle:")
        st.write(
            f"Size {size(pg['size_bytes'])} · server {pg['server_version']} · schema revision "
            f"`{pg['schema_revision']}` · {pg['connections']} connections"
        )
    else:
        st.error(f"unreachable: {pg['error']}", icon=":material/error:")
with c2.container(border=True):
    st.markdown("**Warehouse (DuckLake)**" if wh.get("mode") == "ducklake" else "**Warehouse (DuckDB)**")
    if wh["reachable"]:
        st.success("reachable", icon=":material/check_circle:")
        st.write(
            f"Size {size(wh.get('size_bytes'))} · snapshot `{wh['snapshot_id']}` · built {wh['built_at']} UTC · "
            f"data as of {wh['source_as_of']} UTC"
        )
        if wh.get("standby_bytes"):
            st.caption(
                f"On disk also {size(wh['standby_bytes'])}: the previous snapshot, kept as the next "
                "incremental run's starting point."
            )
    else:
        st.error(wh["error"], icon=":material/error:")

st.subheader("Ingestion")
show_flash()
if has_permission(actor, health_writes.START_PERMISSION):
    job = st.session_state.get(JOB_KEY)
    form = action_form("ingest_start")
    col_a, col_b = st.columns([1, 3])
    full = col_b.checkbox("Full reload", value=False)
    running = job is not None and job.poll()["state"] == "running"
    if col_a.button(
        "Start ingestion run", type="primary", disabled=running, icon=":material/play_arrow:", key=f"{form.key}:submit"
    ):
        form.submit(
            lambda rid, _version: health_writes.start_ingest(engine, actor, settings, full=full, request_id=rid),
            after="flash",
            on_success=lambda started: st.session_state.update({JOB_KEY: started}),
        )
    if job is not None:
        with st.status("Ingestion run", expanded=True) as box:
            bar = st.progress(0.0, text="starting…")
            info = job.poll()
            while info["state"] == "running":
                # the run reports its tables at the end: show elapsed time against the last run's duration
                bar.progress(min(0.95, info["elapsed_s"] / 60), text=f"running… {info['elapsed_s']:.0f} s")
                time.sleep(0.5)
                info = job.poll()
            if info["state"] == "ok":
                bar.progress(1.0, text=f"done in {info['elapsed_s']:.0f} s")
                result = info["result"] or {}
                box.update(label="Ingestion run finished", state="complete")
                st.json(result, expanded=False)
            else:
                box.update(label="Ingestion run failed", state="error")
                st.error(info["error"])

summary, fresh, target = health.runs_and_freshness(engine, settings.warehouse_path)
if summary.is_empty():
    st.info("No ingestion runs recorded yet.", icon=":material/hourglass_empty:")
else:
    st.markdown("**Recent runs** (newest first)")
    show_table(summary, hide_index=True, width="stretch")
    st.markdown(f"**Freshness per table** (target: loaded within {target:g} min)")
    stale = fresh.filter(~fresh["within_target"]).height
    (st.warning if stale else st.success)(f"{stale} of {fresh.height} tables outside the freshness target")
    show_table(
        fresh,
        hide_index=True,
        width="stretch",
        column_config={"minutes_since_ok": st.column_config.NumberColumn("Minutes since last load", format="%.1f")},
    )

st.subheader("Reconciliation (source ↔ warehouse)")
last = health.last_reconcile(settings.warehouse_path)
if last is None:
    st.info("No reconciliation has been run from here yet.", icon=":material/info:")
else:
    shown, say = {"match": ("match", st.success), "mismatch": ("MISMATCH", st.error)}.get(
        last["verdict"], ("could not be run", st.warning)
    )
    say(f"Last result: {shown} · checked {fmt.when(last.get('checked_at'))} by {last.get('checked_by')}")
    for line in (last.get("mismatches") or [])[:50]:
        st.write(f"- {line}")
    if last.get("error"):
        st.code(last["error"])
if st.button("Run reconciliation now", icon=":material/rule:"):
    with st.spinner("Comparing PostgreSQL with the warehouse…"):
        try:
            health_writes.run_reconcile(actor, settings)
        except ServiceError as exc:
            st.error(exc.message)
    st.rerun()

st.subheader("Versions")
show_table([{"component": k, "version": v} for k, v in health.versions().items()], hide_index=True, width="content")
