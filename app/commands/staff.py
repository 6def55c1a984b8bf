"""`staff add|list|disable|enable|reset-password|2fa-reset`: staff accounts from the command line.

The CLI acts as `cli:<os user>` with the admin role (whoever runs it already controls the server and
its database); every change goes through the audited service layer like the Staff page.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys

from app import db
from app.services.core import ServiceError
from app.services.staff import reads, second_factor, writes
from app.settings import get_settings
from auth.identity import Actor
from auth.permissions import ROLES


def cli_actor() -> Actor:
    """The actor recorded in the audit log for command-line staff changes."""
    return Actor(staff_id=None, username=f"cli:{getpass.getuser()}", roles=("admin",), brand_scope=None, is_system=True)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise SystemExit("error: no terminal to prompt for the password; use --password-stdin")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat password: "):
        raise SystemExit("error: the passwords differ")
    return first


def _brand_ids(engine, codes: list[str] | None) -> list[int] | None:
    if not codes:
        return None
    known = {b["code"]: b["id"] for b in reads.list_brands(engine)}
    unknown = [c for c in codes if c not in known]
    if unknown:
        raise SystemExit(f"error: unknown brand code(s): {', '.join(unknown)} (known: {', '.join(known) or 'none'})")
    return [known[c] for c in codes]


def _staff_id(engine, username: str) -> int:
    staff_id = reads.find_staff_id(engine, username)
    if staff_id is None:
        raise SystemExit(f"error: no staff member named {username!r}")
    return staff_id


def _run(args: argparse.Namespace) -> int:
    engine = db.get_engine(get_settings())
    actor = cli_actor()
    try:
        if args.action == "list":
            return _list(engine, actor, args.json)
        if args.action == "add":
            result = writes.add_staff(
                engine, actor, username=args.username, display_name=args.name or args.username,
                email=args.email, password=_read_password(args), roles=args.role,
                brand_scope=_brand_ids(engine, args.brand),
            )  # fmt: skip
        elif args.action in ("disable", "enable"):
            result = writes.set_disabled(
                engine, actor, staff_id=_staff_id(engine, args.username), disabled=args.action == "disable",
                reason=args.reason,
            )  # fmt: skip
        elif args.action == "2fa-reset":
            result = second_factor.reset(
                engine, actor, staff_id=_staff_id(engine, args.username),
                reason=args.reason or f"second factor reset from the command line by {actor.username}",
            )  # fmt: skip
        else:  # reset-password
            staff_id = _staff_id(engine, args.username)
            result = writes.reset_password(
                engine, actor, staff_id=staff_id, new_password=_read_password(args), reason=args.reason
            )
    except ServiceError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    print(result.message)
    return 0


def _list(engine, actor: Actor, as_json: bool) -> int:
    users = reads.list_staff(engine, actor)
    codes = {b["id"]: b["code"] for b in reads.list_brands(engine)}
    rows = [
        {
            "username": u["username"],
            "name": u["display_name"],
            "roles": ",".join(u["roles"]),
            "brands": "all" if u["brand_scope"] is None else ",".join(codes.get(b, str(b)) for b in u["brand_scope"]),
            "status": "disabled" if u["disabled"] else "active",
            "demo": u["is_demo"],
            "2fa": "on" if u["second_factor"] else "off",
            "last_login": u["last_login_at"].isoformat(timespec="seconds") if u["last_login_at"] else None,
        }
        for u in users
    ]
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    header = ("username", "name", "roles", "brands", "status", "demo", "2fa", "last_login")
    widths = [max([len(h)] + [len(str(r[h])) for r in rows]) for h in header]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)))
    for r in rows:
        print("  ".join(str(r[h]).ljust(w) for h, w in zip(header, widths, strict=True)))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("staff", help="staff accounts: add, list, disable, enable, reset-password, 2fa-reset")
    actions = p.add_subparsers(dest="action", metavar="<action>", required=True)

    a = actions.add_parser("add", help="create a staff account")
    a.add_argument("username")
    a.add_argument("--name", help="display name (default: the username)")
    a.add_argument("--email", required=True)
    a.add_argument("--role", action="append", required=True, choices=ROLES, help="repeat for several roles")
    a.add_argument("--brand", action="append", help="brand code to scope to (repeat; default: all brands)")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    a = actions.add_parser("list", help="list staff accounts")
    a.add_argument("--json", action="store_true")

    for name, what in (
        ("disable", "disable an account (ends its sessions at once)"),
        ("enable", "re-enable an account"),
    ):
        a = actions.add_parser(name, help=what)
        a.add_argument("username")
        a.add_argument("--reason", required=True)

    a = actions.add_parser("reset-password", help="set a new password (clears a lockout, ends sessions)")
    a.add_argument("username")
    a.add_argument("--reason")
    a.add_argument("--password-stdin", action="store_true", help="read the password from stdin")

    a = actions.add_parser("2fa-reset", help="delete a second factor and its recovery codes (ends sessions)")
    a.add_argument("username")
    a.add_argument("--reason", help="why (default: a command-line reset)")

    p.set_defaults(func=_run)
