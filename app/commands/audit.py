"""`audit verify`: check the audit log's hash chain; exit 1 naming the first bad row."""

from __future__ import annotations

import argparse
import json

from app import db
from app.services.audit.chain import verify_chain


def _verify(args: argparse.Namespace) -> int:
    engine = db.create_engine(db.database_url())
    try:
        result = verify_chain(engine)
    finally:
        engine.dispose()
    if args.json:
        print(
            json.dumps(
                {
                    "ok": result.ok,
                    "rows_checked": result.rows_checked,
                    "head_seq": result.head_seq,
                    "first_bad_seq": result.first_bad_seq,
                    "problems": result.problems,
                }
            )
        )
    else:
        print(result.message)
        for extra in result.problems[1:]:
            print(f"  also: {extra}")
    return 0 if result.ok else 1


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="the audit log")
    audit_sub = p.add_subparsers(dest="audit_command", metavar="<action>", required=True)
    v = audit_sub.add_parser("verify", help="check the hash chain; exit 1 naming the first altered/removed/forged row")
    v.add_argument("--json", action="store_true", help="print the result as JSON")
    v.set_defaults(func=_verify)
