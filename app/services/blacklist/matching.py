"""Blacklist matching (reads): which active entries an identifier or a player hits, which players an entry matches.

An entry is *active* when it is not removed and not expired. It is *in scope* for a brand when it is
that brand's entry or an all-brand entry (operator_id NULL). Player identifiers are normalised in SQL the
same way `rules` normalises entries: e-mails by `pitboss_email_key()` (migration 0006: lower case, plus-tag
dropped, Gmail dots dropped; an expression index on players makes the lookup by key cheap), phones without
separators, 00 → +; device ids lower-cased; document numbers upper-case without separators; IBAN-shaped
payment refs upper-case without spaces; IP entries match an address equal to them or inside their CIDR.

Reads for staff take the viewer's `brand_scope` (None: every brand): players of other brands are then
neither listed nor counted.
"""

from __future__ import annotations

import datetime as dt
import re
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from psycopg.rows import namedtuple_row
from sqlalchemy.engine import Connection, Engine

from app.services.blacklist.rules import email_key_variants, try_normalize

ACTIVE_SQL = "e.removed_at IS NULL AND (e.expires_at IS NULL OR e.expires_at > now())"
SCOPE_SQL = "(e.operator_id IS NULL OR e.operator_id = :op)"

# SQL expressions that normalise a stored identifier `x` like `rules` does.
EMAIL_SQL = "pitboss_email_key({x})"  # the same function backs the index ix_players_email_key
PHONE_SQL = r"regexp_replace(regexp_replace({x}, '[\s\-./()]', '', 'g'), '^00', '+')"
DEVICE_SQL = "lower(btrim({x}))"
DOCUMENT_SQL = r"upper(regexp_replace({x}, '[\s\-./]', '', 'g'))"
PAYMENT_SQL = "pitboss_payment_key({x})"  # migration 0016: IBAN shape → upper case without spaces, else trimmed


def ip_in_sql(ip: str, net: str) -> str:
    """SQL: text address `ip` lies in the normalised ip entry `net` (invalid stored addresses never match)."""
    return (
        f"CASE WHEN pg_input_is_valid({ip}, 'inet') AND pg_input_is_valid({net}, 'cidr')"
        f" THEN {ip}::inet <<= {net}::cidr ELSE false END"
    )


@dataclass(frozen=True)
class Hit:
    """An active blacklist entry that an identifier hits."""

    entry_id: int
    category: str
    entry_value: str  # the entry's normalised value (an IP entry may be a network)
    identifier: str  # the identifier as given / stored that hit it
    operator_id: int | None  # the entry's scope (None: all brands)
    source: str
    reason: str
    expires_at: dt.datetime | None

    @property
    def self_exclusion(self) -> bool:
        return self.source == "self_exclusion"

    def describe(self) -> str:
        scope = "all brands" if self.operator_id is None else f"brand #{self.operator_id}"
        return f"{self.category} {self.identifier} (entry #{self.entry_id}, {scope}: {self.reason})"


def _conn(conn_or_engine: Connection | Engine | Any):
    """A context manager yielding a connection (the engine's own, or the caller's unchanged)."""
    if isinstance(conn_or_engine, Engine):
        return conn_or_engine.connect()
    return nullcontext(conn_or_engine)


_HIT_COLS = "e.id, e.category, e.normalized_value, e.operator_id, e.source, e.reason, e.expires_at"
_NAMED_PARAM = re.compile(r"(?<![:\w]):([a-z_]+)\b")


def _rows(conn: Connection | Any, sql: str, params: dict) -> list:
    """Run `sql` (with :name parameters) on a SQLAlchemy connection or a raw psycopg connection."""
    if isinstance(conn, Connection):
        return list(conn.execute(sa.text(sql), params).all())
    with conn.cursor(row_factory=namedtuple_row) as cur:  # psycopg (the generator's live mode)
        cur.execute(_NAMED_PARAM.sub(r"%(\1)s", sql), params)
        return cur.fetchall()


def _hits(conn: Connection | Any, sql: str, params: dict, identifier: str) -> list[Hit]:
    rows = _rows(conn, sql, params)
    return [
        Hit(r.id, r.category, r.normalized_value, identifier, r.operator_id, r.source, r.reason, r.expires_at)
        for r in rows
    ]


def check_registration(
    conn_or_engine: Connection | Engine | Any,
    *,
    email: str | None,
    phone: str | None = None,
    ip: str | None = None,
    device_id: str | None = None,
    operator_id: int | None,
) -> list[Hit]:
    """The active entries in scope for brand `operator_id` that these registration identifiers hit.

    `conn_or_engine`: a SQLAlchemy engine or connection, or a raw psycopg connection (the generator's).
    Identifiers that are empty or malformed are skipped (they cannot equal a normalised entry).
    `operator_id` None checks all-brand entries only. An empty list means the registration may proceed.
    """
    base = f"SELECT {_HIT_COLS} FROM blacklist_entries e WHERE {ACTIVE_SQL} AND {SCOPE_SQL}"
    hits: list[Hit] = []
    with _conn(conn_or_engine) as conn:
        key = try_normalize("email", email) if email else None
        if key:
            sql = base + " AND e.category = 'email' AND e.normalized_value = :v"
            hits += _hits(conn, sql, {"op": operator_id, "v": key}, email)
        for category, raw in (("phone", phone), ("device", device_id)):
            value = try_normalize(category, raw) if raw else None
            if value:
                sql = base + " AND e.category = :c AND e.normalized_value = :v"
                hits += _hits(conn, sql, {"op": operator_id, "c": category, "v": value}, raw)
        if ip and try_normalize("ip", ip) and "/" not in ip:
            sql = base + " AND e.category = 'ip' AND " + ip_in_sql("CAST(:ip AS text)", "e.normalized_value")
            hits += _hits(conn, sql, {"op": operator_id, "ip": ip.strip()}, ip)
    return sorted(hits, key=lambda h: h.entry_id)


# --------------------------------------------------------------------------- a player's hits

# For each category: SQL yielding (identifier) rows of player :pid, normalised.
_PLAYER_IDENTIFIERS = {
    "email": (  # keyed in SQL and (for an internationalised domain) in Python: :email_keys
        "SELECT k AS v, email AS shown FROM players, unnest(CAST(:email_keys AS text[])) AS k WHERE id = :pid"
    ),
    "phone": (
        f"SELECT {PHONE_SQL.format(x='phone')} AS v, phone AS shown FROM players WHERE id = :pid AND phone IS NOT NULL"
    ),
    "device": (
        f"SELECT {DEVICE_SQL.format(x='device_id')} AS v, device_id AS shown FROM players"
        " WHERE id = :pid AND device_id IS NOT NULL"
        f" UNION SELECT {DEVICE_SQL.format(x='device_id')}, device_id FROM sessions"
        " WHERE player_id = :pid AND device_id IS NOT NULL"
    ),
    "document": (
        f"SELECT {DOCUMENT_SQL.format(x='doc_number')} AS v, doc_number AS shown FROM kyc_documents"
        " WHERE player_id = :pid AND doc_number IS NOT NULL"
    ),
    "payment_account": (
        f"SELECT {PAYMENT_SQL.format(x='account_ref')} AS v, account_ref AS shown FROM payments"
        " WHERE player_id = :pid AND account_ref IS NOT NULL"
    ),
}
_PLAYER_IPS = (
    "SELECT registration_ip AS ip FROM players WHERE id = :pid AND registration_ip IS NOT NULL"
    " UNION SELECT ip FROM sessions WHERE player_id = :pid AND ip IS NOT NULL"
)


def player_hits(conn: Connection, player_id: int, *, all_scopes: bool = False) -> list[Hit]:
    """Active entries that any identifier of the player hits (email, phone, IPs, devices, documents,
    payment accounts), in the scope of the player's brand (or of every brand with `all_scopes`)."""
    player = conn.execute(
        sa.text(f"SELECT operator_id, email, {EMAIL_SQL.format(x='email')} AS sql_key FROM players WHERE id = :pid"),
        {"pid": player_id},
    ).one_or_none()
    if player is None:
        return []
    op = player.operator_id
    email_keys = sorted({k for k in (player.sql_key, try_normalize("email", player.email)) if k})
    scope = "true" if all_scopes else SCOPE_SQL
    hits: list[Hit] = []
    for category, ident_sql in _PLAYER_IDENTIFIERS.items():
        sql = (
            f"SELECT DISTINCT ON (e.id) {_HIT_COLS}, i.shown FROM blacklist_entries e JOIN ({ident_sql}) i"
            f" ON e.normalized_value = i.v WHERE e.category = :c AND {ACTIVE_SQL} AND {scope}"
        )
        params = {"pid": player_id, "c": category, "op": op, "email_keys": email_keys}
        for r in conn.execute(sa.text(sql), params):
            hits.append(Hit(r.id, r.category, r.normalized_value, r.shown, r.operator_id, r.source, r.reason,
                            r.expires_at))  # fmt: skip
    sql = (
        f"SELECT DISTINCT ON (e.id) {_HIT_COLS}, i.ip AS shown FROM blacklist_entries e JOIN ({_PLAYER_IPS}) i"
        f" ON {ip_in_sql('i.ip', 'e.normalized_value')} WHERE e.category = 'ip' AND {ACTIVE_SQL} AND {scope}"
    )
    for r in conn.execute(sa.text(sql), {"pid": player_id, "op": op}):
        hits.append(Hit(r.id, r.category, r.normalized_value, r.shown, r.operator_id, r.source, r.reason, r.expires_at))
    return sorted(hits, key=lambda h: h.entry_id)


# --------------------------------------------------------------------------- players an entry matches


@dataclass(frozen=True)
class MatchedPlayer:
    player_id: int
    operator_id: int
    brand_code: str
    username: str
    email: str
    account_status: str
    kyc_status: str
    version: int
    matched_on: str  # which identifier matched, e.g. "session ip 203.0.113.9"
    in_entry_scope: bool  # the entry applies to this player's brand


def _matching_sql(category: str) -> str:
    """SQL yielding (player_id, matched_on) for entry value :v of `category` (:keys: an email's variants)."""
    if category == "email":
        return (
            "SELECT id AS player_id, 'email ' || email AS matched_on FROM players"
            f" WHERE {EMAIL_SQL.format(x='email')} = ANY(CAST(:keys AS text[]))"
        )
    if category == "phone":
        return (
            f"SELECT id, 'phone ' || phone FROM players WHERE phone IS NOT NULL AND {PHONE_SQL.format(x='phone')} = :v"
        )
    if category == "device":
        return (
            f"SELECT id, 'device ' || device_id FROM players WHERE {DEVICE_SQL.format(x='device_id')} = :v"
            f" UNION SELECT player_id, 'session device ' || device_id FROM sessions"
            f" WHERE {DEVICE_SQL.format(x='device_id')} = :v"
        )
    if category == "document":
        return (
            "SELECT player_id, 'document ' || doc_number FROM kyc_documents"
            f" WHERE doc_number IS NOT NULL AND {DOCUMENT_SQL.format(x='doc_number')} = :v"
        )
    if category == "payment_account":
        return (
            "SELECT player_id, 'payment account ' || account_ref FROM payments"
            f" WHERE account_ref IS NOT NULL AND {PAYMENT_SQL.format(x='account_ref')} = :v"
        )
    if category == "ip":
        return (
            "SELECT id, 'registration ip ' || registration_ip FROM players"
            f" WHERE registration_ip IS NOT NULL AND {ip_in_sql('registration_ip', 'CAST(:v AS text)')}"
            " UNION SELECT player_id, 'session ip ' || ip FROM sessions"
            f" WHERE ip IS NOT NULL AND {ip_in_sql('ip', 'CAST(:v AS text)')}"
        )
    raise ValueError(f"unknown category {category!r}")


def _scope_sql(brand_scope: frozenset[int] | None, player: str = "p") -> str:
    """SQL condition keeping players of the viewer's brands (`:scope`), or nothing to add for every brand."""
    return "" if brand_scope is None else f" AND {player}.operator_id = ANY(CAST(:scope AS integer[]))"


def _scope_param(brand_scope: frozenset[int] | None) -> dict:
    return {} if brand_scope is None else {"scope": sorted(brand_scope)}


def players_matching(
    conn: Connection,
    category: str,
    normalized_value: str,
    entry_operator_id: int | None,
    *,
    brand_scope: frozenset[int] | None = None,
    limit: int = 500,
) -> list[MatchedPlayer]:
    """Existing players whose identifiers match an entry; one row per player (first match).

    With `brand_scope`, only players of those brands (a scoped viewer learns nothing about the others)."""
    sql = (
        f"SELECT DISTINCT ON (p.id) p.id, p.operator_id, o.code, p.username, p.email, p.account_status,"
        f" p.kyc_status, p.version, m.matched_on FROM ({_matching_sql(category)}) AS m(player_id, matched_on)"
        " JOIN players p ON p.id = m.player_id JOIN operators o ON o.id = p.operator_id"
        f" WHERE true{_scope_sql(brand_scope)} ORDER BY p.id, m.matched_on LIMIT :limit"
    )
    keys = sorted(email_key_variants(normalized_value)) if category == "email" else []
    params = {"v": normalized_value, "keys": keys, "limit": limit, **_scope_param(brand_scope)}
    rows = conn.execute(sa.text(sql), params).all()
    return [
        MatchedPlayer(
            r.id,
            r.operator_id,
            r.code,
            r.username,
            r.email,
            r.account_status,
            r.kyc_status,
            r.version,
            r.matched_on,
            entry_operator_id is None or entry_operator_id == r.operator_id,
        )  # fmt: skip
        for r in rows
    ]


# --------------------------------------------------------------------------- match counts for a list of entries

# (player_id, normalised identifier) rows of every player, per category; a condition on the identifier is
# pushed into each source table and answered by its expression index (migration 0016); e-mails by the key index.
_ALL_IDENTIFIERS = {
    "phone": f"SELECT id, {PHONE_SQL.format(x='phone')} FROM players WHERE phone IS NOT NULL",
    "device": (
        f"SELECT id, {DEVICE_SQL.format(x='device_id')} FROM players WHERE device_id IS NOT NULL"
        f" UNION SELECT player_id, {DEVICE_SQL.format(x='device_id')} FROM sessions WHERE device_id IS NOT NULL"
    ),
    "document": (
        f"SELECT player_id, {DOCUMENT_SQL.format(x='doc_number')} FROM kyc_documents WHERE doc_number IS NOT NULL"
    ),
    "payment_account": (
        f"SELECT player_id, {PAYMENT_SQL.format(x='account_ref')} FROM payments WHERE account_ref IS NOT NULL"
    ),
}
_ALL_IPS = (
    "SELECT id, registration_ip::inet FROM players WHERE pg_input_is_valid(registration_ip, 'inet')"
    " UNION SELECT player_id, ip::inet FROM sessions WHERE pg_input_is_valid(ip, 'inet')"
)
# (player_id, host of a valid address): single-address entries are looked up through the host indexes (migration 0016)
_ALL_IP_HOSTS = (
    "SELECT id, host(pitboss_inet(registration_ip)) FROM players"
    " UNION SELECT player_id, host(pitboss_inet(ip)) FROM sessions"
)


def match_counts(
    conn: Connection, category: str, values: list[str], *, brand_scope: frozenset[int] | None = None
) -> dict[str, int]:
    """For normalised entry values of one category: how many existing players each matches
    (players of every brand, or with `brand_scope` only of those brands).

    E-mails, phones, devices, documents, payment accounts and single addresses through the expression
    indexes on the normalised identifiers (migrations 0006 and 0016); IP networks by containment in one
    pass over every address."""
    values = sorted(set(values))
    if not values:
        return {}
    counts: dict[str, int] = {}
    scope, scope_param = _scope_sql(brand_scope), _scope_param(brand_scope)
    players = "" if brand_scope is None else "JOIN players p ON p.id = i.player_id" + scope
    if category == "email":
        key_of = {variant: v for v in values for variant in email_key_variants(v)}
        sql = (
            f"SELECT {EMAIL_SQL.format(x='p.email')}, count(*) FROM players p"
            f" WHERE {EMAIL_SQL.format(x='p.email')} = ANY(CAST(:vals AS text[])){scope} GROUP BY 1"
        )
        for variant, n in conn.execute(sa.text(sql), {"vals": sorted(key_of), **scope_param}):
            counts[key_of[variant]] = counts.get(key_of[variant], 0) + n
    elif category != "ip":
        sql = (
            f"SELECT i.v, count(DISTINCT i.player_id) FROM ({_ALL_IDENTIFIERS[category]}) AS i(player_id, v)"
            f" {players} WHERE i.v = ANY(:vals) GROUP BY i.v"
        )
        counts.update({r[0]: r[1] for r in conn.execute(sa.text(sql), {"vals": values, **scope_param})})
    else:
        singles = [v for v in values if "/" not in v]
        networks = [v for v in values if "/" in v]
        if singles:
            sql = (
                f"SELECT i.host, count(DISTINCT i.player_id) FROM ({_ALL_IP_HOSTS}) AS i(player_id, host)"
                f" {players} WHERE i.host = ANY(:vals) GROUP BY i.host"
            )
            counts.update({r[0]: r[1] for r in conn.execute(sa.text(sql), {"vals": singles, **scope_param})})
        if networks:
            sql = (
                f"SELECT n.v, count(DISTINCT i.player_id) FROM unnest(CAST(:vals AS text[])) AS n(v)"
                f" JOIN ({_ALL_IPS}) AS i(player_id, ip) ON i.ip <<= CAST(n.v AS cidr) {players} GROUP BY n.v"
            )
            counts.update({r[0]: r[1] for r in conn.execute(sa.text(sql), {"vals": networks, **scope_param})})
    return {v: counts.get(v, 0) for v in values}
