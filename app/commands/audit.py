"""`audit verify`: check the audit log's keyed hash chain; exit 1 naming the first bad row.

`--checkpoint FILE` (kept outside the database, e.g. on another machine): the last verified head is read
from FILE first (a missing file starts one) and must still be in the chain, unchanged; after a clean
check the new head is written back. This detects what the chain alone cannot: a cut tail (see
app/services/audit/chain.py).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from app import db
from app.services.audit.chain import Checkpoint, audit_key, verify_chain
from app.settings import SettingsError


def _read_checkpoint(path: Path) -> Checkpoint | None:
    if not path.exists():
        return None
    return Checkpoint.from_json(path.read_text())


def _write_checkpoint(path: Path, checkpoint: Checkpoint) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(checkpoint.to_json() + "\n")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _verify(args: argparse.Namespace) -> int:
    try:
        key = audit_key()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    path = Path(args.checkpoint) if args.checkpoint else None
    try:
        checkpoint = _read_checkpoint(path) if path else None
    except (ValueError, KeyError, TypeError) as exc:  # evidence of tampering: a failed verification (exit 1)
        problem = f"the checkpoint file {path} is unreadable ({type(exc).__name__}): it was edited or damaged"
        if args.json:
            print(json.dumps(_json_result(False, 0, None, None, [problem])))
        else:
            print(f"error: {problem}")
        return 1
    except OSError as exc:  # a directory, no permission: nothing verified yet
        print(f"error: cannot read the checkpoint file {path}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    engine = db.create_engine(db.database_url())
    try:
        result = verify_chain(engine, key=key, checkpoint=checkpoint)
    finally:
        engine.dispose()
    unwritten = None
    if path is not None and result.ok:
        try:
            _write_checkpoint(path, Checkpoint.of(key, result.head_seq, result.head_hash or ""))
        except OSError as exc:  # a missing directory, a directory named like the file: say so, exit 2
            unwritten = f"error: the checkpoint file {path} cannot be written: {exc.strerror or exc}"
    if args.json:
        fields = (result.ok, result.rows_checked, result.head_seq, result.first_bad_seq, result.problems)
        print(json.dumps(_json_result(*fields)))
    else:
        print(result.message)
        for extra in result.problems[1:]:
            print(f"  also: {extra}")
    if unwritten:
        print(unwritten, file=sys.stderr)
        return 2
    return 0 if result.ok else 1


def _json_result(
    ok: bool, rows_checked: int, head_seq: int | None, first_bad_seq: int | None, problems: list[str]
) -> dict:
    return {
        "ok": ok,
        "rows_checked": rows_checked,
        "head_seq": head_seq,
        "first_bad_seq": first_bad_seq,
        "problems": problems,
    }


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="the audit log")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="<action>", required=True)
    v = audit_sub.add_parser("verify", help="check the hash chain; exit 1 naming the first altered/removed/forged row")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="a file outside the database holding the last verified head: detects a cut tail (updated when OK)",
    )
    v.set_defaults(func=_verify)
