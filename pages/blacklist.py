"""Blacklist: six category tabs (entries, manual add, entry detail with matching players, end, bulk block)
and a CSV upload with a dry-run preview and a confirmed all-or-nothing commit."""

import streamlit as st

from app.services.blacklist import reads as blacklist_reads
from app.services.blacklist import writes as blacklist
from app.services.blacklist.csv_upload import MAX_BYTES, MAX_ROWS, TEMPLATE, CsvRejected
from app.services.blacklist.rules import CATEGORY_LABELS
from app.services.core import ServiceError
from app.services.vocabulary import BLACKLIST_CATEGORIES, BLACKLIST_SOURCES
from app.ui import fmt
from app.ui import state as ui_state
from app.ui.forms import action_form
from app.ui.guard import guard_page
from app.ui.table import show_table

actor = guard_page(__file__)
engine = ui_state.engine()
ALL = "all brands"
HINTS = {
    "email": "e.g. name@example.com (also blocks its +tag variants, and Gmail addresses with other dots)",
    "phone": "E.164 with country code, e.g. +44 7400 900123",
    "ip": "an address or a CIDR network, e.g. 203.0.113.7 or 203.0.113.0/24",
    "device": "the device id, e.g. dev-000123456789",
    "document": "document number, e.g. AB123456 (spaces and dashes are ignored)",
    "payment_account": "IBAN (checked), card fingerprint or wallet id",
}

st.title("Blacklist")
brands = blacklist_reads.brand_codes(engine)
brand_names = {v: k for k, v in brands.items()}
scopes: list[int | None] = ([None] if actor.brand_scope is None else []) + [
    b for b in brands.values() if actor.sees_brand(b)
]


def scope_label(operator_id: int | None) -> str:
    return ALL if operator_id is None else brand_names.get(operator_id, f"#{operator_id}")


def render_add(category: str) -> None:
    form = action_form("bl:add", category)
    key = form.key
    if form.show_done("Add another"):
        return
    with st.form(f"form:{key}", clear_on_submit=False):
        value = st.text_input("Value", help=HINTS[category], key=f"{key}:value")
        reason = st.text_input("Reason (required)", max_chars=500, key=f"{key}:reason")
        c1, c2 = st.columns(2)
        scope = c1.selectbox("Scope", scopes, format_func=scope_label, key=f"{key}:scope")
        expires = c2.date_input(
            "Expires on (optional, 00:00 UTC)", value=None, key=f"{key}:expires", format="YYYY-MM-DD"
        )
        if st.form_submit_button("Add to blacklist", type="primary", key=f"{key}:submit"):
            form.submit(
                lambda rid, _v: blacklist.add_entry(
                    engine,
                    actor,
                    category=category,
                    value=value,
                    reason=reason,
                    operator_id=scope,
                    expires_at=expires,
                    request_id=rid,
                ),
            )


def render_detail(entry_id: int) -> None:
    try:
        detail = blacklist_reads.entry_detail(engine, actor, entry_id)
    except ServiceError as exc:
        st.error(exc.message)
        return
    e = detail.entry
    st.markdown(
        f"**Entry #{e.id}** · {fmt.plain(e.normalized_value)} · {e.scope_label} · {e.status} · version {e.version}"
    )
    st.caption(
        f"Entered as '{fmt.plain(e.value)}' · source {e.source} · reason: {fmt.plain(e.reason)}"
        f" · added {fmt.when(e.created_at)} by {fmt.plain(e.created_by_name or 'system')}"
        + (f" · expires {e.expires_at:%Y-%m-%d %H:%M} UTC" if e.expires_at else " · no expiry")
        + (
            f" · ended {fmt.when(e.removed_at)} by {fmt.plain(e.removed_by_name or '?')}: {fmt.plain(e.removal_reason)}"
            if e.removed_at
            else ""
        )
    )
    if e.removed_at is None:
        if e.locked_until is not None:
            st.info(
                f"Self-exclusion entry: it cannot be ended before {e.locked_until:%Y-%m-%d %H:%M} UTC.",
                icon=":material/lock_clock:",
            )
        elif actor.sees_brand(e.operator_id):
            end = action_form("bl:end", e.id, version=e.version)
            if not end.show_done("Close"):
                with st.form(f"form:{end.key}"):
                    why = st.text_input(  # keyed with the version the form was opened on
                        "Reason for ending this entry (required)", key=f"{end.key}:{end.version}:reason"
                    )
                    if st.form_submit_button("End entry", key=f"{end.key}:submit"):
                        end.submit(
                            lambda rid, version: blacklist.end_entry(
                                engine, actor, entry_id=e.id, reason=why, expected_version=version, request_id=rid
                            ),
                        )
    st.markdown(f"**Existing players this entry matches** ({len(detail.players)})")
    if not detail.players:
        st.caption("No existing player matches this entry.")
        return
    table = [
        {
            "block": m.in_entry_scope and m.account_status not in ("blocked", "closed", "self_excluded"),
            "player": m.player_id,
            "brand": m.brand_code,
            "username": m.username,
            "email": m.email,
            "matched on": m.matched_on,
            "account": m.account_status,
            "KYC": m.kyc_status,
            "in entry scope": m.in_entry_scope,
        }
        for m in detail.players
    ]
    edited = st.data_editor(
        table,
        hide_index=True,
        width="stretch",
        disabled=[c for c in table[0] if c != "block"],
        key=f"bl:players:{e.id}",
    )
    chosen = [row["player"] for row in edited if row["block"]]
    versions = {m.player_id: m.version for m in detail.players}
    block = action_form("bl:block", e.id, version=versions)  # the players' versions as first shown
    key = block.key
    if block.show_done("Done"):
        show_table(st.session_state.get(f"{key}:outcomes", []), hide_index=True, width="stretch")
        return
    with st.form(f"form:{key}"):
        why = st.text_input("Reason for blocking (required)", key=f"{key}:reason")
        if st.form_submit_button(f"Block {len(chosen)} selected player(s)", disabled=not chosen, key=f"{key}:submit"):
            block.submit(
                lambda rid, shown: blacklist.block_players(
                    engine,
                    actor,
                    entry_id=e.id,
                    player_versions={p: shown.get(p, versions[p]) for p in chosen},
                    reason=why,
                    request_id=rid,
                ),
                describe=lambda outcomes: f"{sum(o.ok for o in outcomes)} of {len(outcomes)} player(s) blocked",
                on_success=lambda outcomes: st.session_state.update(
                    {f"{key}:outcomes": [o.__dict__ for o in outcomes]}
                ),
            )


def render_category(category: str) -> None:
    c1, c2, c3 = st.columns([1, 1, 2])
    status = c1.selectbox("Show", ["active", "expired", "removed", "all"], key=f"bl:status:{category}")
    source = c2.selectbox(
        "Source", [None, *BLACKLIST_SOURCES], format_func=lambda s: s or "any", key=f"bl:src:{category}"
    )
    search = c3.text_input("Search value or reason", key=f"bl:search:{category}")
    rows = blacklist_reads.list_entries(engine, actor, category=category, status=status, search=search, source=source)
    if rows:
        show_table(
            [
                {
                    "id": r.id,
                    "value": r.normalized_value,
                    "entered as": r.value,
                    "scope": r.scope_label,
                    "matches": r.matches,
                    "source": r.source,
                    "reason": r.reason,
                    "expires (UTC)": f"{r.expires_at:%Y-%m-%d %H:%M}" if r.expires_at else "",
                    "added (UTC)": f"{r.created_at:%Y-%m-%d %H:%M}",
                    "added by": r.created_by_name or "system",
                    "status": r.status,
                }
                for r in rows
            ],
            hide_index=True,
            width="stretch",
        )
        labels = {r.id: f"#{r.id} · {r.normalized_value} · {r.scope_label}" for r in rows}
        picked = st.selectbox(
            "Open an entry (details, matching players, end, bulk block)",
            list(labels),
            index=None,
            format_func=labels.__getitem__,
            key=f"bl:pick:{category}",
        )
        if picked is not None:
            render_detail(picked)
    else:
        st.caption("No entries.")
    with st.expander(f"Add an entry ({CATEGORY_LABELS[category].lower()})"):
        render_add(category)


counts = blacklist_reads.category_counts(engine, actor)
tabs = st.tabs([f"{CATEGORY_LABELS[c]} ({counts[c]})" for c in BLACKLIST_CATEGORIES])
for tab, category in zip(tabs, BLACKLIST_CATEGORIES, strict=True):
    with tab:
        render_category(category)

# --------------------------------------------------------------------------- CSV upload
st.divider()
st.subheader("Upload a CSV")
st.caption(
    f"UTF-8, comma-separated, at most {MAX_BYTES // 1024 // 1024} MB and {MAX_ROWS:,} rows. Columns: "
    "category, value, reason (required), brand (a brand code; empty = all brands), expires_at (YYYY-MM-DD). "
    "Nothing is added until you have checked the preview and confirmed; then every new row is added "
    "in one step, or none."
)
st.download_button("Download a template", TEMPLATE, file_name="blacklist_template.csv", mime="text/csv")
upload = st.file_uploader("CSV file", type=["csv"], key="bl:upload")
if upload is not None:
    data = upload.getvalue()
    try:
        preview = blacklist_reads.dry_run(engine, actor, data)
    except CsvRejected as exc:
        st.error(f"The file was not accepted: {fmt.plain(exc)}", icon=":material/error:")
    except ServiceError as exc:
        st.error(exc.message)
    else:
        st.markdown(f"**Dry run:** {preview.summary()}")
        show_table(
            [
                {
                    "line": r.line,
                    "status": r.status,
                    "message": r.message,
                    "category": r.category,
                    "value": r.value,
                    "normalised": r.normalized_value or "",
                    "scope": scope_label(r.operator_id) if r.status != "invalid" else r.brand,
                    "expires": f"{r.expires_at:%Y-%m-%d %H:%M}" if r.expires_at else r.expires_at_raw,
                    "reason": r.reason,
                }
                for r in preview.rows
            ],
            hide_index=True,
            width="stretch",
        )
        commit = action_form("bl:csv", preview.digest)
        key = commit.key
        if preview.invalid:
            st.error(
                f"{len(preview.invalid)} invalid row(s): fix them in the file and upload it again. Nothing was added."
            )
        elif not preview.new:
            st.info("Every row is already on the list; nothing to add.")
        elif not commit.show_done("Upload another file"):
            confirmed = st.checkbox(
                f"I have checked the preview: add {len(preview.new)} new entries "
                f"(skip {preview.count('duplicate')} duplicates)",
                key=f"{key}:confirm",
            )
            if st.button("Commit upload", type="primary", disabled=not confirmed, key=f"{key}:commit"):
                commit.submit(
                    lambda rid, _v: blacklist.commit_csv(
                        engine,
                        actor,
                        data=data,
                        confirmed=confirmed,
                        expected_digest=preview.digest,
                        request_id=rid,
                        file_name=upload.name,
                    ),
                )
