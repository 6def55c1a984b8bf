"""How every page writes values: money, counts, rates, times, dates, empty values, column labels, text.

One look across the app (see README "UI conventions"): money with thousands separators and 2 decimals and
its currency; times as `2026-11-21 06:05 UTC` (tables: `2026-11-21 06:05`, the header says UTC); dates
as `2026-11-21`; an empty value as an em dash; column labels in sentence case with acronyms upper-case;
text typed by players or staff shown as text (`plain`), never interpreted as Markdown or HTML.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

DASH = "—"
DATE_INPUT_FORMAT = "YYYY-MM-DD"  # st.date_input(format=...) on every page
ACRONYMS = {
    "id": "ID",
    "ids": "IDs",
    "kyc": "KYC",
    "ggr": "GGR",
    "ngr": "NGR",
    "ftd": "FTD",
    "ftds": "FTDs",
    "ip": "IP",
    "rtp": "RTP",
    "url": "URL",
    "utc": "UTC",
    "sla": "SLA",
    "arpu": "ARPU",
    "arppu": "ARPPU",
    "ltv": "LTV",
    "fx": "FX",
    "eur": "EUR",
    "http": "HTTP",
    "iban": "IBAN",
    "cdd": "CDD",
    "rg": "RG",
    "2fa": "2FA",
}
_MARKUP = re.compile(r"([\\`*_{}\[\]<>!#|~$:@&=^])")
_WWW = re.compile(r"(?i)\b(www)\.")
_LINE_START = re.compile(r"^(\d*)([-+.)])")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([+-]\d{2}:?\d{2}|Z)?$")


def money(value: float | None, currency: str | None = None) -> str:
    """`1234.5` → `1,234.50 EUR` (no currency: just the number)."""
    if value is None:
        return DASH
    text = f"{value:,.2f}"
    return f"{text} {currency}" if currency else text


def count(value: float | None) -> str:
    return DASH if value is None else f"{int(round(value)):,}"


def pct(value: float | None, decimals: int = 2) -> str:
    """A fraction as a percentage: `0.1234` → `12.34 %`."""
    return DASH if value is None else f"{value * 100:,.{decimals}f} %"


def change(value: float | None) -> str | None:
    """A relative change for st.metric's delta: `0.052` → `+5.2 %` (None: no delta shown)."""
    return None if value is None else f"{value * 100:+,.1f} %"


def value(unit: str, v: float | None, currency: str | None = None) -> str:
    """Format `v` by the metric unit (money, count, ratio)."""
    if unit == "money":
        return money(v, currency)
    if unit == "ratio":
        return pct(v)
    return count(v)


def when(value: Any) -> str:
    """A (naive UTC or aware) datetime, or its ISO text (as stored in JSON), as `2026-11-21 06:05 UTC`."""
    if value is None:
        return DASH
    if isinstance(value, str) and "T" in value:
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.strftime("%Y-%m-%d %H:%M UTC")
    return str(value)


def age(hours: float | None) -> str:
    """`30.5` → `1 d 6 h`."""
    if hours is None:
        return DASH
    days, rest = divmod(int(hours), 24)
    return f"{days} d {rest} h" if days else f"{rest} h"


# Column formats for st.dataframe (sprintf-js: "%,.2f" → "1,234.50").
MONEY_FMT = "%,.2f"
COUNT_FMT = "%,d"


def money_col(label: str) -> Any:
    import streamlit as st

    return st.column_config.NumberColumn(label, format=MONEY_FMT)


def count_col(label: str) -> Any:
    import streamlit as st

    return st.column_config.NumberColumn(label, format=COUNT_FMT)


def pct_col(label: str) -> Any:
    import streamlit as st

    return st.column_config.NumberColumn(label, format="percent")


def label(column: str) -> str:
    """A column name as a header: `account_status` → `Account status`, `operator_id` → `Operator ID`."""
    words = [w for w in re.split(r"[_\s]+", column.strip()) if w]
    if not words:
        return column
    out = [_word(w) for w in words]
    first = out[0]
    out[0] = first if first in ACRONYMS.values() else first[:1].upper() + first[1:]
    return " ".join(out)


def _word(word: str) -> str:
    """One header word in lower case, or its acronym (`(utc)` → `(UTC)`)."""
    core = word.strip("()[],.:")
    lead, trail = word[: word.find(core)] if core else "", word[word.find(core) + len(core) :] if core else ""
    return lead + ACRONYMS.get(core.lower(), core.lower()) + trail if core else word


def plural(n: int, noun: str, plural_form: str | None = None) -> str:
    """`1 row`, `2 rows`, `1,234 rows`."""
    return f"{n:,} {noun if n == 1 else (plural_form or noun + 's')}"


def day(value: Any) -> str:
    """A date (or datetime) as `2026-11-21`."""
    if value is None:
        return DASH
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value
        return value.strftime("%Y-%m-%d")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def cell(value: Any) -> str:
    """Any value as table or diff text: times as `2026-11-21 06:05:07`, ISO strings too, empty as a dash."""
    if value is None or value == "":
        return DASH
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC) if value.tzinfo else value
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, str) and _ISO_TIME.match(value):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
        return cell(parsed)
    return str(value)


def plain(text: Any) -> str:
    """`text` safe inside Streamlit Markdown: markup characters escaped, line breaks as spaces.

    Player- and staff-typed strings (names, e-mails, reasons, notes, URLs) go through this before they
    are put into st.markdown / st.caption / st.info …, so `![x](http://…)`, `[click](…)`, `<b>`, `:red[…]`,
    `$…$`, bare URLs and e-mail autolinks stay text. Plain punctuation (`, . ( ) - '`) is left alone.
    """
    if text is None:
        return DASH
    flat = " ".join(str(text).split())
    escaped = _MARKUP.sub(r"\\\1", flat)
    escaped = _WWW.sub(r"\1\\.", escaped)  # GFM autolinks `www.` literals
    return _LINE_START.sub(r"\1\\\2", escaped)  # a leading `-`, `+` or `1.` would start a list
