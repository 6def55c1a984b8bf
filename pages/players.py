"""Players: a multi-filter list (warehouse) with row selection into Player 360 and export."""

import datetime as dt

import streamlit as st

from app.services.exports import sources as export_sources
from app.services.players import masking as masking
from app.services.vocabulary import ACCOUNT_STATUSES, KYC_STATUSES
from app.ui import data, fmt
from app.ui.export import export_whole
from app.ui.filters import bind, brand_select, country_select, publish
from app.ui.freshness import header
from app.ui.guard import guard_page
from app.ui.links import player_url_expr
from app.ui.navigation import spec_for
from app.ui.table import show_table
from warehouse.api import PlayerFilters

actor = guard_page(__file__)
scope = actor.brand_scope
masked = masking.masks_personal_data(actor)
LIMIT = 500


def _list_param(qp: str, key: str, options: list, label: str, column, fmt_fn=str) -> list:
    bind(key, qp, [], lambda raw: [v for v in raw.split(",") if v in options])
    chosen = column.multiselect(label, options, key=key, format_func=fmt_fn, placeholder="Any")
    publish(qp, ",".join(str(v) for v in chosen))
    return chosen


def _number(qp: str, key: str, label: str, column, **kwargs):
    bind(key, qp, None, float)
    value = column.number_input(label, key=key, value=None, min_value=0.0, step=50.0, **kwargs)
    publish(qp, None if value is None else f"{value:g}")
    return value


with data.shown_errors():
    header("Players", "Find players by brand, status, KYC, registration, deposits, risk or affiliate.")
    with st.container(border=True):
        r1 = st.columns([2.5, 1.4, 1.4, 1.4, 1.6])
        bind("pf_players_q", "q", "", str)
        search = r1[0].text_input(
            "Search",
            key="pf_players_q",
            placeholder="player id or username" if masked else "player id, username or email",
            max_chars=200,
            help="Your role searches by player id or username only." if masked else None,
        )
        publish("q", search.strip())
        statuses = _list_param("status", "pf_players_status", list(ACCOUNT_STATUSES), "Account status", r1[1])
        kyc = _list_param("kyc", "pf_players_kyc", list(KYC_STATUSES), "KYC status", r1[2])
        bind("pf_players_risk", "risk", (0, 100), lambda raw: tuple(int(v) for v in raw.split("-", 1)))
        risk = r1[3].slider("Risk score", 0, 100, key="pf_players_risk")
        publish("risk", None if tuple(risk) == (0, 100) else f"{risk[0]}-{risk[1]}")
        affiliates = data.read("affiliates_list", scope=scope)
        names = dict(zip(affiliates["affiliate_id"].to_list(), affiliates["affiliate"].to_list(), strict=True))
        bind("pf_players_aff", "affiliate", [], lambda raw: [int(a) for a in raw.split(",") if int(a) in names])
        aff = r1[4].multiselect("Affiliate", list(names), key="pf_players_aff", format_func=names.get,
                                placeholder="Any")  # fmt: skip
        publish("affiliate", ",".join(str(a) for a in aff))
        r2 = st.columns([2.5, 2.5, 1.4, 1.4, 1.4])
        brand_ids, codes, chosen = brand_select(actor, r2[0])
        countries = country_select(actor, r2[1])
        reg_initial: tuple = ()
        if "pf_players_reg" not in st.session_state and st.query_params.get("registered"):
            try:
                reg_initial = tuple(dt.date.fromisoformat(p) for p in st.query_params["registered"].split("..")[:2])
            except ValueError:
                reg_initial = ()
        reg = r2[2].date_input("Registered (UTC)", value=reg_initial, key="pf_players_reg", format="YYYY-MM-DD")
        reg = tuple(reg) if isinstance(reg, list | tuple) else ((reg,) if reg else ())
        publish("registered", "..".join(d.isoformat() for d in reg))
        dep_min = _number("dep_min", "pf_players_dep_min", "Deposits from (EUR)", r2[3])
        dep_max = _number("dep_max", "pf_players_dep_max", "Deposits up to (EUR)", r2[4])
    if dep_min is not None and dep_max is not None and dep_max < dep_min:
        st.warning("The deposit range ends below its start: swap the two amounts.", icon=":material/filter_alt:")
        st.stop()
    pf = PlayerFilters(
        brands=brand_ids,
        countries=countries,
        statuses=frozenset(statuses) or None,
        kyc_statuses=frozenset(kyc) or None,
        registered_from=reg[0] if reg else None,
        registered_to=reg[-1] if reg else None,
        min_deposits_eur=dep_min,
        max_deposits_eur=dep_max,
        min_risk=risk[0] if risk[0] > 0 else None,
        max_risk=risk[1] if risk[1] < 100 else None,
        affiliate_ids=frozenset(aff) or None,
    )
    with st.spinner("Finding players…"):
        players = data.read("players_list", pf, scope=scope, search=search.strip() or None, limit=LIMIT,
                            mask_personal=masked)  # fmt: skip
    if masked:
        players = masking.mask_frame(players)

note = " Personal data is masked for your role." if masked else ""
more = f" (the first {LIMIT:,}; narrow the filters to see others)" if players.height >= LIMIT else ""
st.caption(
    f"{players.height:,} players{more}, newest registrations first. Lifetime money in EUR, balances in the "
    f"brand's currency. Test accounts excluded. Select a row to open Player 360.{note}"
)
if players.is_empty():
    st.info("No players match these filters.", icon=":material/person_off:")
    st.stop()

shown = players.select(
    player_url_expr().alias("open"),
    "player_id", "brand_code", "username", "email", "phone", "country_code", "registered_at", "account_status",
    "kyc_status", "risk_score", "affiliate", "channel", "cash_balance", "bonus_balance", "currency",
    "deposit_count", "lifetime_deposits_eur", "lifetime_withdrawals_eur", "lifetime_ngr_eur", "last_activity_at",
)  # fmt: skip
table_key = f"players_table_{st.session_state.setdefault('players_table_n', 0)}"
event = show_table(
    shown,
    hide_index=True,
    width="stretch",
    height=520,
    key=table_key,
    on_select="rerun",
    selection_mode="single-row",
    column_config={
        "open": st.column_config.LinkColumn("Open", display_text="360 ›", width="small"),
        "player_id": st.column_config.NumberColumn("Id", format="%d"),
        "brand_code": "Brand",
        "country_code": "Country",
        "registered_at": st.column_config.DatetimeColumn("Registered (UTC)", format="YYYY-MM-DD HH:mm"),
        "last_activity_at": st.column_config.DatetimeColumn("Last activity (UTC)", format="YYYY-MM-DD HH:mm"),
        "risk_score": fmt.count_col("Risk"),
        "cash_balance": fmt.money_col("Cash"),
        "bonus_balance": fmt.money_col("Bonus"),
        "deposit_count": fmt.count_col("Deposits"),
        "lifetime_deposits_eur": fmt.money_col("Deposited (EUR)"),
        "lifetime_withdrawals_eur": fmt.money_col("Withdrawn (EUR)"),
        "lifetime_ngr_eur": fmt.money_col("NGR (EUR)"),
    },
)
selected = event.selection.rows if event is not None else []
if selected:
    pid = int(shown["player_id"][selected[0]])
    st.session_state["players_table_n"] += 1  # a fresh table (no selection) when the user comes back
    st.switch_page(str(spec_for("player_360").path), query_params={"player": str(pid)})

export_whole(
    actor,
    export_sources.players(data.gateway(), pf, search=search.strip() or None, columns=shown.drop("open").columns),
    name="players",
    filters={
        "search": search.strip() or None,
        "brands": list(codes) or "all",
        "countries": sorted(countries) if countries else "all",
        "statuses": statuses,
        "kyc": kyc,
        "registered": [d.isoformat() for d in reg],
        "deposits_eur": [dep_min, dep_max],
        "risk": list(risk),
        "affiliates": aff,
        "masked": masked,
    },
)
