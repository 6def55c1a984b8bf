"""An honest placeholder for a page a later issue builds."""

from __future__ import annotations

import streamlit as st


def not_built_yet(title: str, issue: int, what: str) -> None:
    """Say plainly that the page is not built yet, which issue builds it and what it will show."""
    st.title(title)
    st.info(
        f"Not built yet: this page arrives with issue {issue}. It will show {what}.",
        icon=":material/construction:",
    )
