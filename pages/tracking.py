"""Tracking: ad-platform configurations (Meta, Google Ads, TikTok, AppsFlyer) — list with masked secrets,
"add tracking" dialog with each platform's fields, edit, enable/disable. Every change is audited."""

import polars as pl
import streamlit as st

from app.services.staff import reads as staff
from app.services.tracking import reads as tracking_reads
from app.services.tracking import writes as tracking
from app.services.tracking.rules import PLATFORMS
from app.ui import state
from app.ui.forms import action_form, show_flash
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import AccessDenied

actor = guard_page(__file__)
engine = state.engine()
st.title("Tracking")
st.caption("Server-side conversion tracking per ad platform. Secrets are stored once and shown masked (last 4).")
show_flash()

brands = {b["id"]: b["code"] for b in staff.list_brands(engine)}
scopes: list[int | None] = ([None] if actor.brand_scope is None else []) + [b for b in brands if actor.sees_brand(b)]


def scope_label(operator_id: int | None) -> str:
    return "all brands" if operator_id is None else brands.get(operator_id, f"#{operator_id}")


OPEN_KEY = "trk_add_open"  # the dialog stays open across reruns until saved or dismissed


def close_add() -> None:
    st.session_state.pop(OPEN_KEY, None)


@st.dialog("Add tracking", width="large", on_dismiss=close_add)
def add_dialog() -> None:
    platform = st.selectbox(
        "Platform", list(PLATFORMS), format_func=lambda p: PLATFORMS[p].label, key="trk_add_platform"
    )
    form = action_form("trk_add")
    with st.form(form.key, border=False):
        name = st.text_input("Name", max_chars=80, placeholder="e.g. Meta – main pixel")
        scope = st.selectbox("Brand", scopes, format_func=scope_label)
        values = {}
        for f in tracking.platform_form(platform):
            label = f["label"] + ("" if f["required"] else " (optional)")
            values[f["key"]] = st.text_input(
                label,
                type="password" if f["secret"] else "default",
                help=f["hint"],
                key=f"trk_add_{platform}_{f['key']}",
            )
        enabled = st.checkbox("Enabled", value=True)
        if st.form_submit_button("Save", type="primary", key=f"{form.key}:submit"):
            form.submit(
                lambda rid, _version: tracking.add_config(
                    engine, actor, platform=platform, name=name, values=values, operator_id=scope, enabled=enabled,
                    request_id=rid,
                ),
                after="flash",  # the dialog closes: the result is shown on the page
                on_success=lambda _result: close_add(),
            )  # fmt: skip


if st.button("Add tracking", icon=":material/add:", type="primary"):
    st.session_state[OPEN_KEY] = True
if st.session_state.get(OPEN_KEY):
    add_dialog()

try:
    configs = tracking_reads.list_configs(engine, actor)
except AccessDenied as exc:
    st.error(str(exc))
    st.stop()

if not configs:
    st.info("No tracking configurations yet. Use **Add tracking** to connect a platform.", icon=":material/info:")
    st.stop()

show_table(
    pl.DataFrame(
        [
            {
                "id": c["id"],
                "name": c["name"],
                "platform": c["platform_label"],
                "brand": scope_label(c["operator_id"]),
                "settings": ", ".join(f"{k}={v}" for k, v in c["settings"].items()),
                "secrets": ", ".join(f"{k}: {v}" for k, v in c["secrets_masked"].items()),
                "enabled": c["enabled"],
                "updated": c["updated_at"],
            }
            for c in configs
        ]
    ),
    hide_index=True,
    width="stretch",
)

st.subheader("Manage")
by_id = {c["id"]: c for c in configs}
chosen = st.selectbox(
    "Configuration",
    list(by_id),
    format_func=lambda i: (
        f"#{i} {by_id[i]['name']} ({by_id[i]['platform_label']}, {scope_label(by_id[i]['operator_id'])})"
    ),
)
cfg = by_id[chosen]
col1, col2 = st.columns([1, 3])
with col1:
    toggle = action_form("trk_toggle", f"tracking:{chosen}", version=cfg["version"])
    label = "Disable" if cfg["enabled"] else "Enable"
    if not toggle.show_done("OK") and st.button(
        label, key=f"{toggle.key}:submit", icon=":material/power_settings_new:"
    ):
        toggle.submit(
            lambda rid, version: tracking.set_enabled(
                engine, actor, config_id=chosen, enabled=not cfg["enabled"], expected_version=version, request_id=rid
            )
        )
with col2.expander("Edit fields (leave a secret empty to keep it)"):
    edit = action_form("trk_edit", f"tracking:{chosen}", version=cfg["version"])
    if not edit.show_done("Edit again"):
        with st.form(edit.key):
            new_name = st.text_input("Name", value=cfg["name"], max_chars=80, key=f"{edit.key}:name")
            values = {}
            for f in tracking.platform_form(cfg["platform"]):
                if f["secret"]:
                    values[f["key"]] = st.text_input(
                        f"{f['label']} (now {cfg['secrets_masked'].get(f['key'], 'not set')})",
                        type="password",
                        key=f"{edit.key}:{f['key']}",
                    )
                else:
                    values[f["key"]] = st.text_input(
                        f["label"],
                        value=str(cfg["settings"].get(f["key"], "")),
                        help=f["hint"],
                        key=f"{edit.key}:{f['key']}",
                    )
            if st.form_submit_button("Save changes", key=f"{edit.key}:submit"):
                edit.submit(
                    lambda rid, version: tracking.edit_config(
                        engine, actor, config_id=chosen, name=new_name, values=values, expected_version=version,
                        request_id=rid,
                    )
                )  # fmt: skip
