"""The append-only, hash-chained audit log: writing one row, and verifying the whole chain.

Each row carries `seq` (gap-free, head + 1), `prev_hash` (the previous row's hash, 64 zeros for the first)
and `hash` = SHA-256 of a canonical JSON serialisation of the row's content plus `prev_hash`. A writer locks
the single `audit_chain_head` row (SELECT … FOR UPDATE), so concurrent writers queue and the chain stays
linear; the database refuses an insert that does not extend the head, and any UPDATE/DELETE/TRUNCATE.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine

from auth.identity import Actor

GENESIS_HASH = "0" * 64
OUTCOMES = ("ok", "denied", "failed")
MAX_TEXT = 4000  # longer reasons/messages are cut (the audit row must always be writable)

# The content that the hash covers, in this order (the order does not matter: keys are sorted).
HASHED_FIELDS = (
    "seq",
    "occurred_at",
    "actor_id",
    "actor_name",
    "actor_role",
    "action",
    "target_type",
    "target_id",
    "operator_id",
    "before",
    "after",
    "reason",
    "request_id",
    "outcome",
    "detail",
    "prev_hash",
)


class AuditWriteError(RuntimeError):
    """The audit row could not be written; the caller's transaction must not commit."""


# --------------------------------------------------------------------------- canonical form


def _clean_text(value: str) -> str:
    """PostgreSQL text and jsonb cannot hold NUL; replace it so the row is always storable."""
    return value.replace("\x00", "\ufffd")


def jsonable(value: Any) -> Any:
    """`value` as plain JSON whose jsonb round trip is exact: decimals/floats become strings, dates ISO."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _clean_text(value)
    if isinstance(value, Decimal | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise AuditWriteError(f"cannot audit a non-finite number: {value!r}")
        return str(value)
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, dict):
        return {_clean_text(str(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [jsonable(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    raise AuditWriteError(f"cannot audit a value of type {type(value).__name__}")


def _ts(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds")


def canonical(content: dict[str, Any]) -> bytes:
    """The bytes that are hashed: sorted keys, no spaces, UTF-8."""
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def row_hash(row: dict[str, Any]) -> str:
    """SHA-256 (hex) of a row's hashed fields, as stored (occurred_at a datetime)."""
    content = {name: row.get(name) for name in HASHED_FIELDS}
    content["occurred_at"] = _ts(row["occurred_at"])
    return hashlib.sha256(canonical(content)).hexdigest()


# --------------------------------------------------------------------------- writing

_JSON_FIELDS = ("before", "after", "detail")
_AUDIT = sa.table(
    "audit_log",
    *(sa.column(n, JSONB(none_as_null=True) if n in _JSON_FIELDS else None) for n in HASHED_FIELDS),
    sa.column("hash"),
)


def _short(value: str | None) -> str | None:
    if value is None:
        return None
    value = _clean_text(str(value))
    return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"


def write_audit(
    conn: Connection,
    *,
    actor: Actor | None,
    action: str,
    outcome: str,
    target_type: str | None = None,
    target_id: str | None = None,
    operator_id: int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    reason: str | None = None,
    request_id: str | None = None,
    detail: dict | None = None,
    actor_name: str | None = None,
) -> int:
    """Append one audit row inside the caller's transaction; return its seq.

    Raises AuditWriteError (or a database error) when the row cannot be written: the caller must then
    roll back, so that no change is ever committed without its audit row.
    """
    if outcome not in OUTCOMES:
        raise AuditWriteError(f"unknown audit outcome {outcome!r}")
    if not action:
        raise AuditWriteError("an audit row needs an action")
    name = actor_name or (actor.username if actor else None)
    if not name:
        raise AuditWriteError("an audit row needs an actor name")
    head = conn.execute(
        sa.text("SELECT seq, hash, clock_timestamp() AS now FROM audit_chain_head WHERE id = 1 FOR UPDATE")
    ).one_or_none()
    if head is None:
        raise AuditWriteError("the audit chain head is missing (is the database migrated?)")
    row: dict[str, Any] = {
        "seq": head.seq + 1,
        "occurred_at": head.now,
        "actor_id": actor.staff_id if actor else None,
        "actor_name": _short(name),
        "actor_role": ",".join(actor.roles) if actor and actor.roles else None,
        "action": _short(action)[:64],
        "target_type": _short(target_type)[:32] if target_type else None,
        "target_id": _short(None if target_id is None else str(target_id)),
        "operator_id": operator_id,
        "before": jsonable(before),
        "after": jsonable(after),
        "reason": _short(reason),
        "request_id": _short(request_id)[:64] if request_id else None,
        "outcome": outcome,
        "detail": jsonable(detail),
        "prev_hash": head.hash,
    }
    row["hash"] = row_hash(row)
    conn.execute(sa.insert(_AUDIT).values(**row))
    conn.execute(
        sa.text("UPDATE audit_chain_head SET seq = :seq, hash = :hash WHERE id = 1"),
        {"seq": row["seq"], "hash": row["hash"]},
    )
    return row["seq"]


# --------------------------------------------------------------------------- verifying


@dataclass
class VerifyResult:
    """The outcome of a chain check: `ok`, how many rows were checked, and the first problem found."""

    ok: bool
    rows_checked: int
    head_seq: int
    first_bad_seq: int | None = None
    problem: str | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.rows_checked} rows, head at seq {self.head_seq}"
        return f"audit chain BROKEN at seq {self.first_bad_seq}: {self.problem}"


def _rows(conn: Connection, batch: int = 2000) -> Iterator[dict[str, Any]]:
    last = 0
    cols = ", ".join((*HASHED_FIELDS, "hash"))
    while True:
        chunk = conn.execute(
            sa.text(f"SELECT {cols} FROM audit_log WHERE seq > :last ORDER BY seq LIMIT :n"),
            {"last": last, "n": batch},
        ).mappings()
        got = 0
        for r in chunk:
            got += 1
            last = r["seq"]
            yield dict(r)
        if got < batch:
            return


def verify_chain(conn: Connection | Engine, *, max_problems: int = 20) -> VerifyResult:
    """Check every row: seq gap-free from 1, prev_hash links, recomputed hash, and the chain head.

    Names the first row that was altered (hash mismatch), removed (a gap, or the head beyond the last row)
    or forged (a link that does not match, or a row past the recorded head).
    """
    if isinstance(conn, Engine):
        with conn.connect() as c, c.begin():
            c.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return verify_chain(c, max_problems=max_problems)
    head = conn.execute(sa.text("SELECT seq, hash FROM audit_chain_head WHERE id = 1")).one_or_none()
    head_seq = head.seq if head else 0
    problems: list[tuple[int, str]] = []

    def bad(seq: int, text: str) -> None:
        if len(problems) < max_problems:
            problems.append((seq, text))

    if head is None:
        bad(0, "the chain head row is missing")
    expected_seq, prev_hash, checked = 1, GENESIS_HASH, 0
    for row in _rows(conn):
        checked += 1
        seq = row["seq"]
        if seq != expected_seq:
            bad(expected_seq, f"row {expected_seq} is missing (removed); the next row is {seq}")
        if head is not None and seq > head.seq:
            bad(seq, f"row {seq} lies beyond the chain head ({head.seq}): forged or appended outside the chain")
        if row["prev_hash"] != prev_hash:
            bad(seq, f"row {seq} does not link to the previous row (prev_hash mismatch): forged or re-ordered")
        try:
            computed = row_hash(row)
        except (TypeError, ValueError, AuditWriteError) as exc:
            computed = f"unhashable: {exc}"
        if computed != row["hash"]:
            bad(seq, f"row {seq} was altered: its content no longer matches its hash")
        expected_seq, prev_hash = seq + 1, row["hash"]
    if head is not None:
        if head.seq >= expected_seq:
            bad(expected_seq, f"row {expected_seq} is missing (removed): the chain head is at {head.seq}")
        elif head.seq == expected_seq - 1 and head.seq > 0 and head.hash != prev_hash:
            bad(head.seq, f"row {head.seq} does not match the hash recorded in the chain head")
    if not problems:
        return VerifyResult(ok=True, rows_checked=checked, head_seq=head_seq)
    first_seq, first_text = min(problems, key=lambda p: p[0])
    return VerifyResult(
        ok=False,
        rows_checked=checked,
        head_seq=head_seq,
        first_bad_seq=first_seq,
        problem=first_text,
        problems=[t for _, t in sorted(problems, key=lambda p: p[0])],
    )
