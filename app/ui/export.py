"""Export buttons, produced by the audited export services.

- `export_buttons`: the table on screen. "Export" calls `app.services.exports.writes.export_table`
  (permission check, formula-safe file, audit row); then a download button hands out exactly that file.
- `export_whole`: the whole filtered set behind a list (Players, Audit log, payments), however many rows are
  on screen. "Export all rows" counts the set ("Export 123,456 rows as CSV?"); "Confirm export" writes the
  audit row and streams the set into a temporary file (`app.services.exports.stream`) with a progress bar
  updated per chunk; the download button then hands out that file. Streamlit keeps every download in
  memory while it is served, so the file is read from disk only when the viewer clicks Download (a deferred
  download), never kept in the session state.

st.dataframe's own download is switched off (`.streamlit/config.toml`: client.disableDataExport), so these
are the only ways out of the app.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import polars as pl
import streamlit as st

from app.services.core import ServiceError, Stale, new_request_id
from app.services.exports import stream
from app.services.exports import writes as exports
from app.ui import state
from app.ui.fmt import plural
from auth.identity import Actor
from auth.permissions import Permission, has_permission
from warehouse.api import FilterError, ScopeError
from warehouse.gateway import GatewayError

MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_KEY = "pitboss_export:"
log = logging.getLogger(__name__)


def _jsonable(filters: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in filters.items():
        if isinstance(v, dt.date | dt.datetime):
            v = v.isoformat()
        elif isinstance(v, frozenset | set | tuple):
            v = sorted(str(x) for x in v)
        out[k] = v
    return out


def export_buttons(actor: Actor, df: pl.DataFrame, *, name: str, filters: Mapping[str, Any]) -> None:
    """CSV / XLSX export of `df` (named `name`, with the `filters` that produced it) for roles that may export."""
    if not has_permission(actor, Permission.EXPORT):
        return
    key = _KEY + name
    signature = f"{sorted(_jsonable(filters).items())!r}:{df.height}:{df.columns!r}"
    if (st.session_state.get(key) or {}).get("sig") != signature:
        st.session_state.pop(key, None)  # the table changed since the file was made
    slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
    left, mid, right = st.columns([1, 1, 4], vertical_alignment="bottom")
    fmt = left.selectbox("Export format", ["csv", "xlsx"], key=f"{key}:fmt", format_func=str.upper)
    if mid.button("Export", key=f"{key}:go", icon=":material/download:", disabled=df.is_empty()):
        try:
            data = exports.export_table(
                state.engine(),
                actor,
                df,
                name=name,
                filters=_jsonable(filters),
                fmt=fmt,
                request_id=new_request_id(),
            )
        except ServiceError as exc:
            st.session_state.pop(key, None)
            st.error(exc.message, icon=":material/error:")
            return
        st.session_state[key] = {"fmt": fmt, "data": data, "rows": df.height, "sig": signature}
    ready = st.session_state.get(key)
    if ready:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d_%H%M")
        right.download_button(
            f"Download {ready['fmt'].upper()} ({ready['rows']:,} rows)",
            data=ready["data"],
            file_name=f"pitboss_{slug}_{stamp}.{ready['fmt']}",
            mime=MIME[ready["fmt"]],
            key=f"{key}:dl",
            on_click="ignore",
            icon=":material/file_download:",
            type="primary",
        )


def _read_file(path: str) -> bytes:
    return Path(path).read_bytes()


def _forget(key: str) -> None:
    """Drop the widget's state and remove a finished file it held."""
    held = st.session_state.pop(key, None) or {}
    if isinstance(held.get("file"), stream.ExportFile):
        held["file"].discard()


def _count(
    actor: Actor, source: stream.Source, key: str, sig: str, name: str, filters: dict, fmt: str, notice: str = ""
) -> None:
    try:
        rows = stream.count_export(state.engine(), actor, source, name=name, filters=filters, fmt=fmt)
    except ServiceError as exc:
        st.error(exc.message, icon=":material/error:")
        return
    except (FilterError, ScopeError) as exc:
        st.warning(str(exc), icon=":material/filter_alt:")
        return
    except GatewayError as exc:
        log.warning("export count failed: %s", exc)
        st.error("The data could not be counted for the export; try again in a moment.", icon=":material/error:")
        return
    if rows == 0:
        st.info("No rows match these filters: nothing to export.", icon=":material/info:")
        return
    st.session_state[key] = {"stage": "confirm", "rows": rows, "fmt": fmt, "sig": sig, "rid": new_request_id(),
                             "notice": notice}  # fmt: skip


def export_whole(actor: Actor, source: stream.Source, *, name: str, filters: Mapping[str, Any]) -> None:
    """Export of the whole set `source` yields (named `name`, with the `filters` that define it): count,
    confirm, stream with a progress bar, download. Shown only to roles that may export."""
    if not has_permission(actor, Permission.EXPORT):
        return
    key = _KEY + name
    jf = _jsonable(filters)
    left, mid, right = st.columns([1, 1.3, 3.7], vertical_alignment="bottom")
    fmt = left.selectbox("Export format", ["csv", "xlsx"], key=f"{key}:fmt", format_func=str.upper)
    sig = f"{sorted(jf.items())!r}:{fmt}"
    if (st.session_state.get(key) or {}).get("sig") != sig:
        _forget(key)  # the filters or the format changed since the count or the file
    if mid.button("Export all rows", key=f"{key}:go", icon=":material/download:",
                  help="Every row matching the filters, not only the rows on screen"):  # fmt: skip
        _forget(key)
        _count(actor, source, key, sig, name, jf, fmt)
    held = st.session_state.get(key)
    if held and held["stage"] == "confirm":
        box = st.container(border=True)
        box.markdown(f"**Export {plural(held['rows'], 'row')} as {held['fmt'].upper()}?** Every row matching the "
                     "filters is written, not only the rows on screen; the export is audited.")  # fmt: skip
        if held.get("notice"):
            box.warning(held["notice"], icon=":material/sync_problem:")
        yes, no, _ = box.columns([1.2, 1, 4])
        if no.button("Cancel", key=f"{key}:cancel"):
            _forget(key)
            st.rerun()
        if yes.button("Confirm export", key=f"{key}:confirm", type="primary", icon=":material/check:"):
            total = held["rows"]
            bar = box.progress(0.0, text=f"Exporting… 0 of {total:,} rows")

            def progress(done: int, total: int) -> None:
                bar.progress(min(1.0, done / max(total, 1)), text=f"Exporting… {done:,} of {total:,} rows")

            try:
                file = stream.export_stream(state.engine(), actor, source, name=name, filters=jf, fmt=held["fmt"],
                                            confirmed_rows=total, request_id=held["rid"],
                                            progress=progress)  # fmt: skip
            except Stale as exc:
                _forget(key)
                _count(actor, source, key, sig, name, jf, fmt, notice=exc.message)  # the new count, to confirm
                if st.session_state.get(key):
                    st.rerun()
                return
            except ServiceError as exc:
                bar.empty()
                _forget(key)
                st.error(exc.message, icon=":material/error:")
                return
            bar.progress(1.0, text=f"Exported {file.rows:,} rows")
            st.session_state[key] = {"stage": "ready", "file": file, "sig": sig}
            held = st.session_state[key]
    if held and held["stage"] == "ready":
        file: stream.ExportFile = held["file"]
        right.download_button(
            f"Download {file.fmt.upper()} ({plural(file.rows, 'row')})",
            data=functools.partial(_read_file, str(file.path)),  # read from disk only when clicked
            file_name=file.file_name,
            mime=file.mime,
            key=f"{key}:dl",
            on_click="ignore",
            icon=":material/file_download:",
            type="primary",
        )
