"""blacklist: e-mail match keys, and self-exclusions that own their entry

Revision ID: 0006_blacklist_email_key
Revises: 0005_request_payload_keyed_audit

- `pitboss_email_key(text)`: the e-mail match key in SQL, the same rule as
  app/services/blacklist/rules.py (`email_key`): lower case, a plus-tag dropped, the dots of a Gmail
  local part dropped and googlemail.com folded into gmail.com (NULL unless there is exactly one @).
  An expression index on players makes the lookup of players by key cheap.
- The stored `normalized_value` of e-mail entries becomes that key (it was the lower-cased address,
  plus-tag kept). Entries that now share a key and a scope are merged: the one in force the longest stays,
  the others are ended with a removal reason saying which entry took them over.
- A self-exclusion owns its entry: the unique index on (category, value, scope) now leaves
  self-exclusion entries out, and those are unique per (category, value, player) instead, so a manual
  entry for the same address no longer stands in for the self-exclusion (ending it would have lifted the
  self-exclusion). A running self-exclusion left without its own entry gets one back.

Downgrade restores the old unique index: a manual or CSV entry that shares value and scope with a
self-exclusion entry is ended (the self-exclusion stays in force); e-mail values keep their key form.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_blacklist_email_key"
down_revision: str | None = "0005_request_payload_keyed_audit"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCOPE = sa.literal_column("coalesce(operator_id, 0)")

EMAIL_KEY_FUNCTION = """
CREATE FUNCTION pitboss_email_key(email text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    e text := lower(btrim(email));
    loc text;
    dom text;
BEGIN
    IF e !~ '^[^@]+@[^@]+$' THEN
        RETURN NULL;
    END IF;
    loc := split_part(e, '@', 1);
    dom := split_part(e, '@', 2);
    IF split_part(loc, '+', 1) <> '' THEN
        loc := split_part(loc, '+', 1);
    END IF;
    IF dom IN ('gmail.com', 'googlemail.com') THEN
        RETURN replace(loc, '.', '') || '@gmail.com';
    END IF;
    RETURN loc || '@' || dom;
END $$
"""

# Among not-ended entries sharing `partition`, the one in force the longest stays (running before run
# out, no expiry before the latest expiry, then the oldest); the others are ended, naming the keeper.
MERGE = """
WITH ranked AS (
    SELECT id, first_value(id) OVER w AS keeper, row_number() OVER w AS n
      FROM blacklist_entries
     WHERE removed_at IS NULL AND {where}
    WINDOW w AS (PARTITION BY {partition}
                 ORDER BY (expires_at IS NOT NULL AND expires_at <= now()), expires_at DESC NULLS FIRST, id)
)
UPDATE blacklist_entries b
   SET removed_at = now(),
       removal_reason = 'merged into entry #' || r.keeper || ': {why}'
  FROM ranked r
 WHERE b.id = r.id AND r.n > 1
"""


SAME_KEY = "the same address once e-mail matching ignores +tags and Gmail dots (migration 0006)"


def upgrade() -> None:
    op.execute(EMAIL_KEY_FUNCTION)
    op.drop_index("uq_blacklist_active_value", table_name="blacklist_entries")
    op.execute(
        "UPDATE blacklist_entries SET normalized_value = pitboss_email_key(normalized_value)"
        " WHERE category = 'email' AND pitboss_email_key(normalized_value) IS DISTINCT FROM normalized_value"
        " AND pitboss_email_key(normalized_value) IS NOT NULL"
    )
    op.execute(
        MERGE.format(
            where="source <> 'self_exclusion'",
            partition="category, normalized_value, coalesce(operator_id, 0)",
            why=SAME_KEY,
        )
    )
    op.execute(
        MERGE.format(
            where="source = 'self_exclusion' AND player_id IS NOT NULL",
            partition="category, normalized_value, player_id",
            why=SAME_KEY,
        )
    )
    op.create_index(
        "uq_blacklist_active_value",
        "blacklist_entries",
        ["category", "normalized_value", SCOPE],
        unique=True,
        postgresql_where="removed_at IS NULL AND source <> 'self_exclusion'",
    )
    op.create_index(
        "uq_blacklist_self_exclusion",
        "blacklist_entries",
        ["category", "normalized_value", "player_id"],
        unique=True,
        postgresql_where="removed_at IS NULL AND source = 'self_exclusion'",
    )
    # a running self-exclusion without its own entry (it had reused a manual one) gets it back
    op.execute(
        """
        INSERT INTO blacklist_entries (category, value, normalized_value, reason, source, operator_id, player_id,
                                       expires_at)
        SELECT 'email', btrim(p.email), pitboss_email_key(p.email),
               'self-exclusion (its own entry, restored by migration 0006)', 'self_exclusion', NULL, p.id,
               p.self_excluded_until
          FROM players p
         WHERE p.account_status = 'self_excluded' AND p.self_excluded_until > now()
           AND pitboss_email_key(p.email) IS NOT NULL
           AND NOT EXISTS (SELECT 1 FROM blacklist_entries e
                            WHERE e.player_id = p.id AND e.source = 'self_exclusion' AND e.category = 'email'
                              AND e.normalized_value = pitboss_email_key(p.email) AND e.removed_at IS NULL)
        """
    )
    op.execute("CREATE INDEX ix_players_email_key ON players (pitboss_email_key(email))")


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS ix_players_email_key")
    op.drop_index("uq_blacklist_self_exclusion", table_name="blacklist_entries")
    op.drop_index("uq_blacklist_active_value", table_name="blacklist_entries")
    op.execute(
        """
        UPDATE blacklist_entries b
           SET removed_at = now(),
               removal_reason = 'ended by the downgrade of migration 0006: self-exclusion entry #' || s.id
                                || ' has the same value and scope'
          FROM blacklist_entries s
         WHERE b.removed_at IS NULL AND b.source <> 'self_exclusion'
           AND s.removed_at IS NULL AND s.source = 'self_exclusion'
           AND s.category = b.category AND s.normalized_value = b.normalized_value
           AND coalesce(s.operator_id, 0) = coalesce(b.operator_id, 0)
        """
    )
    op.execute(
        MERGE.format(
            where="true",
            partition="category, normalized_value, coalesce(operator_id, 0)",
            why="one entry per value and scope again (downgrade of migration 0006)",
        )
    )
    op.create_index(
        "uq_blacklist_active_value",
        "blacklist_entries",
        ["category", "normalized_value", SCOPE],
        unique=True,
        postgresql_where="removed_at IS NULL",
    )
    op.execute("DROP FUNCTION pitboss_email_key(text)")
