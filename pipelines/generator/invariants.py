"""Consistency checks of the operational data (what the generator and live mode promise).

`check_invariants(url)` returns one message per violated rule (empty list: all hold). Every rule is
a query counting offending rows, so it runs unchanged on a seeded or a live-updated database.
"""

from __future__ import annotations

import psycopg

from pipelines.generator.load import connect

RULES: dict[str, str] = {
    "cash balance = sum of ledger cash": """
        SELECT count(*) FROM players p LEFT JOIN (
            SELECT player_id, sum(cash_amount) c, sum(bonus_amount) b FROM ledger GROUP BY player_id) l
        ON l.player_id = p.id WHERE p.cash_balance <> coalesce(l.c, 0)""",
    "bonus balance = sum of ledger bonus": """
        SELECT count(*) FROM players p LEFT JOIN (
            SELECT player_id, sum(bonus_amount) b FROM ledger GROUP BY player_id) l
        ON l.player_id = p.id WHERE p.bonus_balance <> coalesce(l.b, 0)""",
    "balances are not negative": "SELECT count(*) FROM players WHERE cash_balance < 0 OR bonus_balance < 0",
    "settled bets have settled_at >= placed_at": """
        SELECT count(*) FROM bets WHERE status = 'settled' AND (settled_at IS NULL OR settled_at < placed_at)""",
    "open bets have no settle time and no win": """
        SELECT count(*) FROM bets WHERE status = 'open' AND (settled_at IS NOT NULL OR real_win + bonus_win > 0)""",
    "no bet before registration": """
        SELECT count(*) FROM bets b JOIN players p ON p.id = b.player_id WHERE b.placed_at < p.registered_at""",
    "no payment before registration": """
        SELECT count(*) FROM payments x JOIN players p ON p.id = x.player_id WHERE x.created_at < p.registered_at""",
    "no session before registration": """
        SELECT count(*) FROM sessions x JOIN players p ON p.id = x.player_id WHERE x.started_at < p.registered_at""",
    "no bonus before registration": """
        SELECT count(*) FROM bonuses x JOIN players p ON p.id = x.player_id WHERE x.granted_at < p.registered_at""",
    "no ledger row before registration": """
        SELECT count(*) FROM ledger x JOIN players p ON p.id = x.player_id WHERE x.created_at < p.registered_at""",
    "approved deposits have their deposit ledger row": """
        SELECT count(*) FROM payments x WHERE x.kind = 'deposit' AND x.status IN ('approved', 'chargeback')
        AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'payment' AND l.ref_id = x.id
                        AND l.kind = 'deposit' AND l.cash_amount = x.amount)""",
    "other deposits move no money": """
        SELECT count(*) FROM payments x WHERE x.kind = 'deposit' AND x.status IN ('pending', 'declined', 'failed')
        AND EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'payment' AND l.ref_id = x.id)""",
    "chargebacks reverse their deposit": """
        SELECT count(*) FROM payments x WHERE x.status = 'chargeback'
        AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'payment' AND l.ref_id = x.id
                        AND l.kind = 'chargeback' AND l.cash_amount = -x.amount)""",
    "withdrawals have their ledger row": """
        SELECT count(*) FROM payments x WHERE x.kind = 'withdrawal'
        AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'payment' AND l.ref_id = x.id
                        AND l.kind = 'withdrawal' AND l.cash_amount = -x.amount)""",
    "declined or failed withdrawals are reversed": """
        SELECT count(*) FROM payments x WHERE x.kind = 'withdrawal' AND x.status IN ('declined', 'failed')
        AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'payment' AND l.ref_id = x.id
                        AND l.kind = 'withdrawal_reversal' AND l.cash_amount = x.amount)""",
    "open and settled bets have their bet ledger row": """
        SELECT count(*) FROM bets b WHERE b.status IN ('open', 'settled')
        AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'bet' AND l.ref_id = b.id AND l.kind = 'bet'
                        AND l.cash_amount = -b.real_stake AND l.bonus_amount = -b.bonus_stake)""",
    "settled bets with a win have their win ledger row": """
        SELECT count(*) FROM bets b WHERE b.status = 'settled' AND b.real_win + b.bonus_win > 0
        AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.ref_type = 'bet' AND l.ref_id = b.id AND l.kind = 'win'
                        AND l.cash_amount = b.real_win AND l.bonus_amount = b.bonus_win)""",
    "void bets move no money": """
        SELECT count(*) FROM (
            SELECT b.id FROM bets b JOIN ledger l ON l.ref_type = 'bet' AND l.ref_id = b.id
            WHERE b.status = 'void' GROUP BY b.id HAVING sum(l.cash_amount) + sum(l.bonus_amount) <> 0) x""",
    "payments are in the brand's currency": """
        SELECT count(*) FROM payments x JOIN operators o ON o.id = x.operator_id WHERE x.currency <> o.currency""",
    "rows carry their player's brand": """
        SELECT (SELECT count(*) FROM bets x JOIN players p ON p.id = x.player_id WHERE x.operator_id <> p.operator_id)
             + (SELECT count(*) FROM payments x JOIN players p ON p.id = x.player_id
                WHERE x.operator_id <> p.operator_id)
             + (SELECT count(*) FROM ledger x JOIN players p ON p.id = x.player_id WHERE x.operator_id <> p.operator_id)
             + (SELECT count(*) FROM sessions x JOIN players p ON p.id = x.player_id
                WHERE x.operator_id <> p.operator_id)""",
    "self-excluded players have an active self-exclusion entry": """
        SELECT count(*) FROM players p WHERE p.account_status = 'self_excluded' AND NOT EXISTS (
            SELECT 1 FROM blacklist_entries e WHERE e.player_id = p.id AND e.source = 'self_exclusion'
            AND e.removed_at IS NULL)""",
}

FK_QUERY = """
SELECT c.conrelid::regclass::text, a.attname, c.confrelid::regclass::text, af.attname
FROM pg_constraint c
JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1]
JOIN pg_attribute af ON af.attrelid = c.confrelid AND af.attnum = c.confkey[1]
WHERE c.contype = 'f' AND c.connamespace = 'public'::regnamespace AND cardinality(c.conkey) = 1
ORDER BY 1, 2
"""


def foreign_key_violations(conn: psycopg.Connection) -> list[str]:
    """Rows whose foreign key points nowhere (anti-joins: holds even when loaded with triggers off)."""
    problems = []
    for table, column, parent, pcol in conn.execute(FK_QUERY).fetchall():
        n = conn.execute(
            f'SELECT count(*) FROM {table} c WHERE c."{column}" IS NOT NULL AND NOT EXISTS '
            f'(SELECT 1 FROM {parent} p WHERE p."{pcol}" = c."{column}")'
        ).fetchone()[0]
        if n:
            problems.append(f"{table}.{column} → {parent}.{pcol}: {n} orphan rows")
    return problems


def check_invariants(url: str) -> list[str]:
    """Messages for every violated rule (empty: the data is consistent)."""
    problems = []
    with connect(url) as conn:
        for rule, query in RULES.items():
            n = conn.execute(query).fetchone()[0]
            if n:
                problems.append(f"{rule}: {n} violations")
        problems.extend(foreign_key_violations(conn))
    return problems
