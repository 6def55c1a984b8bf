"""The append-only, keyed hash-chained audit log: writing one row, and verifying the whole chain.

Each row carries `seq` (gap-free, head + 1), `prev_hash` (the previous row's hash, 64 zeros for the first)
and `hash` = HMAC-SHA256, under the audit key, of a canonical JSON serialisation of the row's content plus
`prev_hash`. A writer locks the single `audit_chain_head` row (SELECT … FOR UPDATE), so concurrent writers
queue and the chain stays linear; the database refuses an insert that does not extend the head, and any
UPDATE/DELETE/TRUNCATE.

The key (`PITBOSS_AUDIT_KEY` or `audit_key` in .streamlit/secrets.toml; see app/settings.py) lives outside
the database. Rows written before the chain was keyed keep their plain SHA-256 hashes: migration 0005
sealed them (`audit_chain_seal`: the last plain row's seq and hash, HMAC'd under the key). `verify_chain`
checks rows up to the seal with plain SHA-256 and every later row with the HMAC; with no seal, every row
must be keyed. A plain (unkeyed) row after the seal fails, and so does a moved or forged seal.

What the database owner (who can RESET ROLE, disable the triggers and rewrite rows) can and cannot hide:
- cannot: alter, insert, remove or re-order any row, even recomputing every later hash (plain SHA-256 or
  under another key): the first rewritten row no longer matches its HMAC; nor move the end of the sealed
  plain prefix or rewrite a row inside it (the seal's HMAC covers the prefix's last hash);
- can: delete the newest rows (the tail) and move the chain head back, or drop/restore the whole database
  to an earlier state: what is left is a valid, shorter chain. To detect that, keep a checkpoint outside
  the database: `python -m app audit verify --checkpoint FILE` records the verified head (seq, hash, HMAC)
  in FILE and, on the next run, fails if that row is gone or changed. Between checkpoints, a cut tail goes
  unnoticed; run it often (e.g. from cron on another machine) to bound what can be lost;
- can, with the key: anything. Keep the key out of the database host's reach where possible.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
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

from app.settings import get_settings
from auth.identity import Actor

GENESIS_HASH = "0" * 64
SEAL_CONTEXT = b"pitboss-audit-seal-v1"  # the seal of the plain prefix (migration 0005 computes the same)
CHECKPOINT_CONTEXT = b"pitboss-audit-checkpoint-v1"
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


def audit_key() -> bytes:
    """The audit chain's key from the settings (SettingsError in production when missing or weak)."""
    return get_settings().effective_audit_key()


def row_hash(row: dict[str, Any], key: bytes | None = None) -> str:
    """The hash (hex) of a row's hashed fields, as stored (occurred_at a datetime).

    With `key`: HMAC-SHA256 under it (every row written now). Without: plain SHA-256 (rows written before
    the chain was keyed, up to the seal).
    """
    content = {name: row.get(name) for name in HASHED_FIELDS}
    content["occurred_at"] = _ts(row["occurred_at"])
    data = canonical(content)
    if key is None:
        return hashlib.sha256(data).hexdigest()
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def _mac(key: bytes, context: bytes, seq: int, hash_hex: str) -> str:
    return hmac.new(key, b"|".join((context, str(seq).encode(), hash_hex.encode())), hashlib.sha256).hexdigest()


def seal_mac(key: bytes, legacy_until: int, legacy_hash: str) -> str:
    """The HMAC that seals the plain-hashed rows 1…legacy_until (whose last hash is legacy_hash)."""
    return _mac(key, SEAL_CONTEXT, legacy_until, legacy_hash)


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
    row["hash"] = row_hash(row, audit_key())
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
    head_hash: str | None = None

    @property
    def message(self) -> str:
        if self.ok:
            return f"audit chain OK: {self.rows_checked} rows, head at seq {self.head_seq}"
        return f"audit chain BROKEN at seq {self.first_bad_seq}: {self.problem}"


@dataclass(frozen=True)
class Checkpoint:
    """A verified chain head kept outside the database (a file): detects a cut tail on the next check."""

    seq: int
    hash: str
    mac: str

    @classmethod
    def of(cls, key: bytes, seq: int, hash_hex: str) -> Checkpoint:
        return cls(seq, hash_hex, _mac(key, CHECKPOINT_CONTEXT, seq, hash_hex))

    def genuine(self, key: bytes) -> bool:
        return hmac.compare_digest(self.mac, _mac(key, CHECKPOINT_CONTEXT, self.seq, self.hash))

    def to_json(self) -> str:
        return json.dumps({"seq": self.seq, "hash": self.hash, "mac": self.mac})

    @classmethod
    def from_json(cls, text: str) -> Checkpoint:
        data = json.loads(text)
        return cls(int(data["seq"]), str(data["hash"]), str(data["mac"]))


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


def _seal(conn: Connection, key: bytes, bad) -> tuple[int, str | None]:
    """The end of the plain-hashed prefix (0: none) and its sealed hash; a seal that fails its HMAC is reported."""
    seal = conn.execute(
        sa.text("SELECT legacy_until, legacy_hash, mac FROM audit_chain_seal WHERE id = 1")
    ).one_or_none()
    if seal is None:
        return 0, None
    if not hmac.compare_digest(seal.mac, seal_mac(key, seal.legacy_until, seal.legacy_hash)):
        bad(1, f"the seal of the unkeyed rows 1…{seal.legacy_until} does not verify under the audit key: the seal "
               "was forged or moved (or the audit key is not the one the chain was sealed with)")  # fmt: skip
        return 0, None  # an untrusted seal vouches for nothing: every row must then be keyed
    return seal.legacy_until, seal.legacy_hash


def verify_chain(
    conn: Connection | Engine, *, max_problems: int = 20, key: bytes | None = None, checkpoint: Checkpoint | None = None
) -> VerifyResult:
    """Check every row: seq gap-free from 1, prev_hash links, the recomputed hash (plain SHA-256 up to the
    seal, HMAC under the audit key after it), the seal, the chain head and, if given, a checkpoint.

    Names the first row that was altered (hash mismatch), removed (a gap, the head beyond the last row, or
    the checkpoint's row gone) or forged (a link that does not match, or a row past the recorded head).
    """
    if isinstance(conn, Engine):
        with conn.connect() as c, c.begin():
            c.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            return verify_chain(c, max_problems=max_problems, key=key, checkpoint=checkpoint)
    key = audit_key() if key is None else key
    head = conn.execute(sa.text("SELECT seq, hash FROM audit_chain_head WHERE id = 1")).one_or_none()
    head_seq = head.seq if head else 0
    problems: list[tuple[int, str]] = []

    def bad(seq: int, text: str) -> None:
        if len(problems) < max_problems:
            problems.append((seq, text))

    if head is None:
        bad(0, "the chain head row is missing")
    legacy_until, legacy_hash = _seal(conn, key, bad)
    if checkpoint is not None and not checkpoint.genuine(key):
        bad(0, "the checkpoint file does not verify under the audit key: it was edited or belongs to another chain")
        checkpoint = None
    expected_seq, prev_hash, checked, keyed, keyed_bad = 1, GENESIS_HASH, 0, 0, 0
    for row in _rows(conn):
        checked += 1
        seq = row["seq"]
        if seq != expected_seq:
            bad(expected_seq, f"row {expected_seq} is missing (removed); the next row is {seq}")
        if head is not None and seq > head.seq:
            bad(seq, f"row {seq} lies beyond the chain head ({head.seq}): forged or appended outside the chain")
        if row["prev_hash"] != prev_hash:
            bad(seq, f"row {seq} does not link to the previous row (prev_hash mismatch): forged or re-ordered")
        plain = seq <= legacy_until
        try:
            computed = row_hash(row, None if plain else key)
        except (TypeError, ValueError, AuditWriteError) as exc:
            computed = f"unhashable: {exc}"
        if computed != row["hash"]:
            bad(seq, f"row {seq} was altered: its content no longer matches its {'plain' if plain else 'keyed'} hash")
            keyed_bad += not plain
        elif seq == legacy_until and row["hash"] != legacy_hash:
            bad(
                seq, f"row {seq} (the last unkeyed row) does not match the sealed hash: the unkeyed rows were rewritten"
            )
        if checkpoint is not None and seq == checkpoint.seq and row["hash"] != checkpoint.hash:
            bad(seq, f"row {seq} no longer has the hash recorded in the checkpoint: rewritten since")
        keyed += not plain
        expected_seq, prev_hash = seq + 1, row["hash"]
    if head is not None:
        if head.seq >= expected_seq:
            bad(expected_seq, f"row {expected_seq} is missing (removed): the chain head is at {head.seq}")
        elif head.seq == expected_seq - 1 and head.seq > 0 and head.hash != prev_hash:
            bad(head.seq, f"row {head.seq} does not match the hash recorded in the chain head")
    if legacy_until > expected_seq - 1:
        bad(expected_seq, f"the seal covers rows up to {legacy_until} but the chain ends at {expected_seq - 1}")
    if checkpoint is not None and checkpoint.seq > expected_seq - 1:
        bad(expected_seq, f"the chain was cut: the checkpoint recorded row {checkpoint.seq} (hash "
                          f"{checkpoint.hash[:12]}…) but the chain now ends at {expected_seq - 1}")  # fmt: skip
    if keyed and keyed_bad == keyed:
        bad(head_seq + 1, "no keyed row matches its hash: is the audit key the one this chain was written with?")
    if not problems:
        return VerifyResult(ok=True, rows_checked=checked, head_seq=head_seq, head_hash=prev_hash)
    first_seq, first_text = min(problems, key=lambda p: p[0])
    return VerifyResult(
        ok=False,
        rows_checked=checked,
        head_seq=head_seq,
        first_bad_seq=first_seq,
        problem=first_text,
        problems=[t for _, t in sorted(problems, key=lambda p: p[0])],
        head_hash=prev_hash,
    )
