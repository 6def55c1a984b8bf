"""Metrics: the catalogue of every metric definition (the one the KPI tiles link to), each with its version and
a worked example drawn from the data the viewer may see."""

import streamlit as st

from app.ui import data, fmt
from app.ui.freshness import header
from app.ui.guard import guard_page
from warehouse import api, metrics

actor = guard_page(__file__)

with data.shown_errors():
    header("Metrics", "Every figure in Pitboss comes from one of these definitions (SPEC §3).")
    examples = dict(data.read("metric_examples", scope=actor.brand_scope).iter_rows())

catalogue = api.metric_catalogue()
chosen = st.query_params.get("metric")
if chosen and chosen not in metrics.BY_NAME:
    st.warning(f"There is no metric called {fmt.plain(chosen)}; showing them all.", icon=":material/search_off:")
    chosen = None

with st.expander("Rules that apply to every metric", expanded=chosen is None):
    st.markdown(metrics.__doc__.split("Decisions that apply to every metric:", 1)[-1])
st.caption(
    "Each definition names its version (e.g. `ngr v2`): a change of a definition, or of one it is built from, "
    "gives it a new version. The examples are computed from the data you can see."
)

names = [chosen] + [n for n in catalogue["name"].to_list() if n != chosen] if chosen else catalogue["name"].to_list()
rows = {r["name"]: r for r in catalogue.iter_rows(named=True)}
for name in names:
    r = rows[name]
    with st.container(border=True):
        st.subheader(r["label"], anchor=name)
        if name == chosen:
            st.badge("the definition you asked for", icon=":material/arrow_forward:", color="primary")
        st.markdown(f"**Formula:** {r['formula']}  \n**Unit:** {r['unit']} · **definition:** `{name} {r['version']}`")
        if r["components"]:
            st.markdown(f"**Components:** {r['components']}")
        if r["included"]:
            st.markdown(f"**Included:** {r['included']}")
        if r["excluded"]:
            st.markdown(f"**Excluded:** {r['excluded']}")
        example = examples.get(name)
        if example:
            st.markdown(f"**Worked example:** {fmt.plain(example)}")
        st.caption(f"Computed by: {r['computed_by']}")
