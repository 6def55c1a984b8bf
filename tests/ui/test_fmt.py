"""One look: labels, times, empty values, plurals, and player/staff text that stays text."""

from __future__ import annotations

import datetime as dt

import pytest
from markdown_it import MarkdownIt

from app.ui import fmt


@pytest.mark.parametrize(
    ("column", "header"),
    [
        ("username", "Username"),
        ("account_status", "Account status"),
        ("occurred_at", "Occurred at"),
        ("operator_id", "Operator ID"),
        ("kyc_status", "KYC status"),
        ("ftds", "FTDs"),
        ("ggr_eur", "GGR EUR"),
        ("Already Title", "Already title"),
        ("Submitted (utc)", "Submitted (UTC)"),
        ("due_at_(UTC)", "Due at (UTC)"),
    ],
)
def test_labels_are_sentence_case_with_acronyms(column, header):
    assert fmt.label(column) == header


def test_times_dates_and_empty_values_have_one_form():
    aware = dt.datetime(2026, 12, 2, 14, 57, 38, 3223, tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert fmt.cell(aware) == "2026-12-02 13:57:38"
    assert fmt.cell("2026-12-02T13:57:38.003223+00:00") == "2026-12-02 13:57:38"  # audit diff JSON values
    assert fmt.cell(dt.date(2026, 11, 2)) == "2026-11-02"
    assert fmt.cell(None) == fmt.cell("") == fmt.DASH == "—"
    assert fmt.when(None) == fmt.money(None) == fmt.DASH
    assert fmt.day(aware) == "2026-12-02"
    assert fmt.cell("not a 2026-12-02 time") == "not a 2026-12-02 time"


def test_plurals():
    assert fmt.plural(1, "row") == "1 row"
    assert fmt.plural(0, "row") == "0 rows"
    assert fmt.plural(1234, "entry", "entries") == "1,234 entries"


HOSTILE = [
    "![pixel](https://tracker.example/p.png?u=1)",
    "[Verify your account](https://phish.example/login)",
    "<img src=x onerror=alert(1)>",
    "**bold** _it_ `code` # heading",
    ":red[alarm] :material/warning: $x^2$",
    "line one\n\n- a list item\n> quote",
    "https://autolink.example/x",
    "www.autolink.example",
    "john.doe@autolink.example",
    "1. numbered",
    "- dash start",
]


@pytest.mark.parametrize("text", HOSTILE)
def test_plain_text_is_never_markdown(text):
    """A player's name or a staff note rendered through `plain` gives no link, image, HTML or formatting."""
    html = MarkdownIt("commonmark", {"html": True}).enable("linkify").render(fmt.plain(text))
    for tag in ("<a ", "<img", "<strong", "<em", "<code", "<h1", "<ul", "<blockquote", "<script", "<ol", "<li"):
        assert tag not in html, (text, html)
    # the words are all still there, in order
    visible = MarkdownIt("commonmark").render(fmt.plain(text))
    for word in ("pixel", "Verify", "bold", "alarm", "line"):
        if word in text:
            assert word in visible
