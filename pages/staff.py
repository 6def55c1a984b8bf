"""Staff: accounts, roles, brand scope; add, disable/enable, reset password or second factor (admins only, all
audited)."""

import polars as pl
import streamlit as st

from app.services.core import ServiceError
from app.services.staff import reads as staff_reads
from app.services.staff import second_factor
from app.services.staff import writes as staff
from app.ui import fmt, state
from app.ui.forms import action_form
from app.ui.guard import guard_page
from app.ui.table import show_table
from auth.permissions import ROLES

PASSWORD_HINT = "at least 12 characters, not easy to guess: no common password, word, name, repeat or keyboard walk"

actor = guard_page(__file__)
engine = state.engine()
st.title("Staff")

try:
    users = staff_reads.list_staff(engine, actor)
except ServiceError as exc:
    st.error(exc.message)
    st.stop()
brands = staff_reads.list_brands(engine)
brand_label = {b["id"]: b["code"] for b in brands}


def scope_text(scope: list[int] | None) -> str:
    return "all" if scope is None else ", ".join(brand_label.get(b, str(b)) for b in scope) or "none"


def status_text(u: dict) -> str:
    if u["disabled"]:
        return "disabled"
    return "locked" if u["locked"] else "active"


show_table(
    pl.DataFrame(
        [
            {
                "username": u["username"],
                "name": u["display_name"],
                "roles": ", ".join(u["roles"]),
                "brands": scope_text(u["brand_scope"]),
                "status": status_text(u),
                "demo": u["is_demo"],
                "failed logins": u["failed_logins"],
                "last login (UTC)": u["last_login_at"],
                "live sessions": u["live_sessions"],
                "2FA": "on" if u["second_factor"] else "off",
            }
            for u in users
        ]
    ),
    hide_index=True,
    width="stretch",
)

by_name = {u["username"]: u for u in users}


def brand_picker(key: str, current: list[int] | None) -> list[int] | None:
    all_brands = st.checkbox("All brands", value=current is None, key=f"{key}_all")
    chosen = st.multiselect(
        "Brands (when not all)",
        options=[b["id"] for b in brands],
        default=current or [],
        format_func=lambda b: brand_label.get(b, str(b)),
        key=f"{key}_brands",
    )
    return None if all_brands else chosen


add, access, disable, reset, reset_2fa = st.tabs(
    ["Add", "Roles and brands", "Disable / enable", "Reset password", "Reset second factor"]
)

with add:
    form = action_form("staff_add")
    if not form.show_done("Add another"):
        with st.form(form.key):
            c1, c2 = st.columns(2)
            username = c1.text_input("Username", help="lowercase letters, digits, _ . - (3–32)")
            display_name = c2.text_input("Display name")
            email = c1.text_input("Email")
            password = c2.text_input("Initial password", type="password", help=PASSWORD_HINT)
            roles = st.multiselect("Roles", ROLES, key="add_roles")
            scope = brand_picker("add", None)
            if st.form_submit_button("Add staff member", type="primary", key=f"{form.key}:submit"):
                form.submit(
                    lambda rid, _version: staff.add_staff(
                        engine, actor, username=username, display_name=display_name, email=email,
                        password=password, roles=roles, brand_scope=scope, request_id=rid,
                    ),
                )  # fmt: skip

with access:
    who = st.selectbox("Staff member", list(by_name), key="access_user")
    if who:
        target = by_name[who]
        form = action_form("staff_access", f"staff:{target['id']}", version=target["version"])
        if not form.show_done("Another change"):
            with st.form(form.key):
                roles = st.multiselect("Roles", ROLES, default=target["roles"], key=f"access_roles_{who}")
                scope = brand_picker(f"access_{who}", target["brand_scope"])
                reason = st.text_input("Reason (required)", key=f"access_reason_{who}")
                st.caption("Saving ends this person's sessions: they sign in again with the new access.")
                if st.form_submit_button("Save roles and brands", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, version: staff.set_access(
                            engine, actor, staff_id=target["id"], roles=roles, brand_scope=scope, reason=reason,
                            expected_version=version, request_id=rid,
                        ),
                    )  # fmt: skip

with disable:
    who = st.selectbox("Staff member", list(by_name), key="disable_user")
    if who:
        target = by_name[who]
        verb = "Enable" if target["disabled"] else "Disable"
        form = action_form("staff_disable", f"staff:{target['id']}", version=target["version"])
        if not form.show_done("Another change"):
            with st.form(form.key):
                st.write(f"**{fmt.plain(who)}** is {'disabled' if target['disabled'] else 'enabled'}.")
                reason = st.text_input("Reason (required)", key=f"disable_reason_{who}")
                if st.form_submit_button(f"{verb} {who}", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, version: staff.set_disabled(
                            engine, actor, staff_id=target["id"], disabled=not target["disabled"], reason=reason,
                            expected_version=version, request_id=rid,
                        ),
                    )  # fmt: skip

with reset:
    who = st.selectbox("Staff member", list(by_name), key="reset_user")
    if who:
        target = by_name[who]
        form = action_form("staff_reset", f"staff:{target['id']}", version=target["version"])
        if not form.show_done("Another reset"):
            with st.form(form.key, clear_on_submit=True):
                new_password = st.text_input("New password", type="password", key=f"reset_pw_{who}")
                reason = st.text_input("Reason", key=f"reset_reason_{who}")
                st.caption("Also clears a lockout and ends this person's sessions.")
                if st.form_submit_button("Reset password", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, version: staff.reset_password(
                            engine, actor, staff_id=target["id"], new_password=new_password, reason=reason,
                            expected_version=version, request_id=rid,
                        ),
                    )  # fmt: skip

with reset_2fa:
    who = st.selectbox("Staff member", list(by_name), key="reset_2fa_user")
    if who:
        target = by_name[who]
        form = action_form("staff_reset_2fa", f"staff:{target['id']}", version=target["version"])
        if not form.show_done("Another reset"):
            with st.form(form.key):
                st.write(f"**{fmt.plain(who)}**: second factor {'on' if target['second_factor'] else 'off'}.")
                reason = st.text_input("Reason (required)", key=f"{form.key}:reason")
                st.caption(
                    "Deletes the second factor and its recovery codes and ends this person's sessions; they set "
                    "it up again (at their next sign-in where their role requires one)."
                )
                if st.form_submit_button("Reset second factor", type="primary", key=f"{form.key}:submit"):
                    form.submit(
                        lambda rid, version: second_factor.reset(
                            engine, actor, staff_id=target["id"], reason=reason, expected_version=version,
                            request_id=rid,
                        ),
                    )  # fmt: skip
