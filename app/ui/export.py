"""Export buttons: the table as the viewer sees it, produced by the audited export service.

Two steps: "Export" calls `app.services.exports.export_table` (permission check, formula-safe file, audit
row); then a download button hands out exactly that file. st.dataframe's own download is switched off
(`.streamlit/config.toml`: client.disableDataExport), so this is the only way out of the app.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any

import polars as pl
import streamlit as st

from app.services.core import ServiceError, new_request_id
from app.services.exports import writes as exports
from app.ui import state
from auth.identity import Actor
from auth.permissions import Permission, has_permission

MIME = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
_KEY = "pitboss_export:"


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
