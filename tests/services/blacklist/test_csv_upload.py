"""The CSV dry run on its own (pure): every malformed file gets a clear error or a precise row report."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.services.blacklist.csv_upload import ActiveEntry, CsvRejected, build_preview
from tests.services.blacklist.csv_battery import BATTERY

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
BRANDS = {"alpha": 1, "beta": 2}
ACTIVE = [ActiveEntry(id=7, category="email", normalized_value="listed@example.com", operator_id=None)]


def preview(data: bytes, *, scope=None, active=ACTIVE):
    return build_preview(data, brands=BRANDS, active=active, brand_scope=scope, now=NOW)


def test_battery_has_at_least_20_files() -> None:
    assert len(BATTERY) >= 20


@pytest.mark.parametrize(("name", "data", "expect"), BATTERY, ids=[b[0] for b in BATTERY])
def test_battery(name: str, data: bytes, expect: tuple) -> None:
    kind, spec = expect
    if kind == "rejected":
        with pytest.raises(CsvRejected) as err:
            preview(data)
        assert re.search(spec, str(err.value)), str(err.value)
        return
    result = preview(data)
    by_line = {r.line: r for r in result.rows}
    for line, (status, pattern) in spec.items():
        row = by_line[line]
        assert row.status == status, (line, row.status, row.message)
        assert re.search(pattern, row.message), (line, row.message)


def test_valid_rows_are_normalised_and_scoped() -> None:
    data = (
        b"category,value,reason,brand,expires_at\n"
        b"phone,0044 7400 900123,multi-accounting,BETA,2027-01-01\n"
        b"ip,203.0.113.0/24,proxy,,2027-01-01T10:00:00\n"
    )
    result = preview(data)
    assert [r.status for r in result.rows] == ["new", "new"]
    phone, ip = result.rows
    assert (phone.normalized_value, phone.operator_id) == ("+447400900123", 2)
    assert phone.expires_at == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert (ip.operator_id, ip.expires_at) == (None, dt.datetime(2027, 1, 1, 10, tzinfo=dt.UTC))
    assert result.committable and result.summary() == "2 rows: 2 new, 0 duplicate, 0 invalid"


def test_brand_scoped_actor_cannot_upload_outside_scope_or_all_brand() -> None:
    data = (
        b"category,value,reason,brand\n"
        b"email,a@example.com,r,alpha\nemail,b@example.com,r,\nemail,c@example.com,r,beta\n"
    )
    rows = preview(data, scope=frozenset({2})).rows
    assert rows[0].status == "invalid" and "outside your brand scope" in rows[0].message
    assert rows[1].status == "invalid" and "all-brand entries need" in rows[1].message
    assert rows[2].status == "new"


def test_all_brand_entry_makes_a_brand_row_duplicate_and_expired_entry_is_replaced() -> None:
    active = [
        ActiveEntry(1, "device", "dev1", None),
        ActiveEntry(2, "device", "dev2", 1, expired=True),
    ]
    data = b"category,value,reason,brand\ndevice,DEV1,r,alpha\ndevice,dev2,r,alpha\n"
    rows = preview(data, active=active).rows
    assert rows[0].status == "duplicate" and "all brands (entry #1)" in rows[0].message
    assert rows[1].status == "new" and rows[1].replaces_expired_id == 2


def test_digest_changes_when_statuses_change() -> None:
    data = b"category,value,reason\nemail,x@example.com,r\n"
    first = preview(data, active=[])
    second = preview(data, active=[ActiveEntry(3, "email", "x@example.com", None)])
    assert first.sha256 == second.sha256 and first.digest != second.digest
    assert not second.committable  # nothing new to add


def test_brand_row_covered_by_an_all_brand_row_of_the_same_file() -> None:
    data = b"category,value,reason,brand\ndevice,dev7,r,alpha\ndevice,DEV7,r,\n"
    rows = preview(data, active=[]).rows
    assert [(r.status, r.message) for r in rows] == [
        ("duplicate", "covered by the all-brand row on line 3"),
        ("new", ""),
    ]
