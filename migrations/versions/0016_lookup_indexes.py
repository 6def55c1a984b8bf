"""indexes for the pages' lookups at scale: blacklist match keys, KYC documents by player, postbacks newest first

Revision ID: 0016_lookup_indexes
Revises: 0015_month_close

- Blacklist matching (app/services/blacklist/matching.py) normalises stored identifiers in SQL; an expression
  index per identifier lets the match counts of the Blacklist page look values up instead of normalising
  every phone, device, document, payment account and IP (players, sessions, kyc_documents, payments):
  phone, device (players and sessions), document number, payment account, and the host of an address.
- `pitboss_payment_key(text)`: the payment-account normalisation as a function (what matching.py wrote inline),
  so that its index reflects back as written (a CASE expression does not).
- `pitboss_inet(text)`: a stored address as inet, NULL when it is not one (what `pg_input_is_valid` guarded
  before), so the IP host lookup can be indexed without a bad stored address failing the index.
- `kyc_documents (player_id)`: a player's documents (Player 360, the withdrawal queue's blacklist flags) were
  found by scanning every document.
- `postbacks (created_at, id)`: the Postbacks list is newest first with a limit.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0016_lookup_indexes"
down_revision: str | None = "0015_month_close"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PHONE = r"regexp_replace(regexp_replace(phone, '[\s\-./()]', '', 'g'), '^00', '+')"
DOCUMENT = r"upper(regexp_replace(doc_number, '[\s\-./]', '', 'g'))"
PAYMENT_KEY = (  # rules.py's payment-account normalisation (an IBAN shape: upper case without spaces)
    "CREATE FUNCTION pitboss_payment_key(ref text) RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE"
    r" RETURN CASE WHEN btrim(ref) ~ '^[A-Za-z]{2}[0-9]{2}' THEN upper(regexp_replace(ref, '\s', '', 'g'))"
    " ELSE btrim(ref) END"
)
INDEXES = {  # name: (table, indexed expressions) — the expressions exactly as matching.py writes them
    "ix_players_phone_key": ("players", PHONE),
    "ix_players_device_key": ("players", "lower(btrim(device_id))"),
    "ix_sessions_device_key": ("sessions", "lower(btrim(device_id))"),
    "ix_kyc_documents_number_key": ("kyc_documents", DOCUMENT),
    "ix_payments_account_key": ("payments", "pitboss_payment_key(account_ref)"),
    "ix_players_ip_host": ("players", "host(pitboss_inet(registration_ip))"),
    "ix_sessions_ip_host": ("sessions", "host(pitboss_inet(ip))"),
    "ix_kyc_documents_player": ("kyc_documents", "player_id"),
    "ix_postbacks_created": ("postbacks", "created_at, id"),
}


def upgrade() -> None:
    op.execute(  # plpgsql: an inlined CASE would fold a constant's cast (and fail) before testing it
        "CREATE FUNCTION pitboss_inet(addr text) RETURNS inet LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE"
        " AS $$ BEGIN IF pg_input_is_valid(addr, 'inet') THEN RETURN addr::inet; END IF; RETURN NULL; END $$"
    )
    op.execute(PAYMENT_KEY)
    for name, (table, expr) in INDEXES.items():
        op.execute(f"CREATE INDEX {name} ON {table} (({expr}))" if "(" in expr else
                   f"CREATE INDEX {name} ON {table} ({expr})")  # fmt: skip


def downgrade() -> None:
    for name in INDEXES:
        op.execute(f"DROP INDEX IF EXISTS {name}")
    op.execute("DROP FUNCTION IF EXISTS pitboss_inet(text)")
    op.execute("DROP FUNCTION IF EXISTS pitboss_payment_key(text)")
