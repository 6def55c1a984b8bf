"""The operational schema (SPEC §2) as SQLAlchemy 2 models; Alembic migrations are made from these.

Money is numeric(18,2) in the brand's currency; times are timestamptz (UTC). `updated_at` and
`version` are maintained by database triggers (see the migrations), never by the app.

One module per domain (`reference`, `activity`, `staff`, `compliance`, `payments`, `marketing`, `audit`,
`alerts`, `ingest`, `rg`, `support`, `finance`); the allowed values in `vocab`; the base and column
helpers in `base`. A new table goes into the module of its domain and is re-exported here.
"""

from __future__ import annotations

# Indexes on the updated_at watermark columns, the blacklist match keys and page lookups (migrations 0004, 0006, 0016).
from sqlalchemy import Index, func, text

from app.models.activity import Bet, Bonus, Ledger, Payment, Player, Session
from app.models.alerts import Alert, AlertDelivery, AlertRule
from app.models.audit import ActionRequest, AuditChainHead, AuditChainSeal, AuditLog
from app.models.base import NAMING, TZ, Base, Money, created_col, one_of, updated_col, version_col
from app.models.compliance import BalanceAdjustment, BlacklistEntry, KycCase, KycDocument, SupportTicket
from app.models.finance import MonthClose, Restatement
from app.models.ingest import IngestTombstone, IngestTombstoneHorizon
from app.models.marketing import Postback, TrackingConfig
from app.models.payments import BrandPaymentSettings, WithdrawalReview
from app.models.reference import Affiliate, Campaign, Country, FxRate, Game, Operator, Provider, TaxRate
from app.models.rg import RgInteraction, RgLimit, RgLimitHit, RgProfile, RgTimeout
from app.models.staff import LoginFailure, StaffRecoveryCode, StaffSecondFactor, StaffSession, StaffUser
from app.models.support import PlayerNote, TicketLink, TicketNote
from app.models.vocab import (
    ACCOUNT_STATUSES,
    ADJUSTMENT_DIRECTIONS,
    ADJUSTMENT_REASONS,
    ADJUSTMENT_STATUSES,
    ALERT_CHANNELS,
    ALERT_DELIVERY_STATUSES,
    ALERT_RULE_CODES,
    ALERT_SEVERITIES,
    ALERT_STATUSES,
    AUDIT_OUTCOMES,
    BET_STATUSES,
    BLACKLIST_CATEGORIES,
    BLACKLIST_SOURCES,
    BONUS_STATUSES,
    BONUS_TYPES,
    CHANNELS,
    DEAL_TYPES,
    GAME_CATEGORIES,
    KYC_CASE_STATUSES,
    KYC_DECISIONS,
    KYC_DOC_TYPES,
    KYC_STATUSES,
    KYC_SUGGESTIONS,
    LEDGER_KINDS,
    LOGIN_OUTCOMES,
    OPERATOR_STATUSES,
    PAYMENT_KINDS,
    PAYMENT_METHODS,
    PAYMENT_STATUSES,
    POSTBACK_EVENTS,
    POSTBACK_STATUSES,
    RG_CHANNELS,
    RG_HIT_ACTIONS,
    RG_LIMIT_KINDS,
    RG_OUTCOMES,
    RG_PERIODS,
    RG_SOURCES,
    STAFF_ROLES,
    TAX_BASES,
    TICKET_FIRST_RESPONSE_HOURS,
    TICKET_LINK_KINDS,
    TICKET_NOTE_KINDS,
    TICKET_PRIORITIES,
    TICKET_STATUSES,
    TRACKING_PLATFORMS,
    WITHDRAWAL_DECISIONS,
)

# The ingest reads every incremental table by `updated_at` (migration 0004 adds the indexes that were missing).
Index("ix_kyc_cases_updated_at", KycCase.updated_at)
Index("ix_kyc_documents_updated_at", KycDocument.updated_at)
Index("ix_blacklist_entries_updated_at", BlacklistEntry.updated_at)
Index("ix_support_tickets_updated_at", SupportTicket.updated_at)
Index("ix_balance_adjustments_updated_at", BalanceAdjustment.updated_at)
Index("ix_postbacks_updated_at", Postback.updated_at)
# Blacklist matching looks players up by their e-mail's match key (function and index: migration 0006).
Index("ix_players_email_key", func.pitboss_email_key(Player.email))
# ... and by the other normalised identifiers, the host of an address (`pitboss_inet`), a player's KYC documents,
# postbacks newest first (migration 0016; the expressions as app/services/blacklist/matching.py writes them).
Index(
    "ix_players_phone_key",
    text(r"regexp_replace(regexp_replace(phone, '[\s\-./()]', '', 'g'), '^00', '+')"),
    _table=Player.__table__,
)
Index("ix_players_device_key", func.lower(func.btrim(Player.device_id)))
Index("ix_sessions_device_key", func.lower(func.btrim(Session.device_id)))
Index(
    "ix_kyc_documents_number_key",
    text(r"upper(regexp_replace(doc_number, '[\s\-./]', '', 'g'))"),
    _table=KycDocument.__table__,
)
Index("ix_payments_account_key", func.pitboss_payment_key(Payment.account_ref))
Index("ix_players_ip_host", func.host(func.pitboss_inet(Player.registration_ip)))
Index("ix_sessions_ip_host", func.host(func.pitboss_inet(Session.ip)))
Index("ix_kyc_documents_player", KycDocument.player_id)
Index("ix_postbacks_created", Postback.created_at, Postback.id)

__all__ = [
    "ACCOUNT_STATUSES",
    "ADJUSTMENT_DIRECTIONS",
    "ADJUSTMENT_REASONS",
    "ADJUSTMENT_STATUSES",
    "ALERT_CHANNELS",
    "ALERT_DELIVERY_STATUSES",
    "ALERT_RULE_CODES",
    "ALERT_SEVERITIES",
    "ALERT_STATUSES",
    "AUDIT_OUTCOMES",
    "ActionRequest",
    "Affiliate",
    "Alert",
    "AlertDelivery",
    "AlertRule",
    "AuditChainHead",
    "AuditChainSeal",
    "AuditLog",
    "BET_STATUSES",
    "BLACKLIST_CATEGORIES",
    "BLACKLIST_SOURCES",
    "BONUS_STATUSES",
    "BONUS_TYPES",
    "BalanceAdjustment",
    "Base",
    "Bet",
    "BlacklistEntry",
    "Bonus",
    "BrandPaymentSettings",
    "CHANNELS",
    "Campaign",
    "Country",
    "DEAL_TYPES",
    "FxRate",
    "GAME_CATEGORIES",
    "Game",
    "IngestTombstone",
    "IngestTombstoneHorizon",
    "KYC_CASE_STATUSES",
    "KYC_DECISIONS",
    "KYC_DOC_TYPES",
    "KYC_STATUSES",
    "KYC_SUGGESTIONS",
    "KycCase",
    "KycDocument",
    "LEDGER_KINDS",
    "LOGIN_OUTCOMES",
    "Ledger",
    "LoginFailure",
    "Money",
    "MonthClose",
    "NAMING",
    "OPERATOR_STATUSES",
    "Operator",
    "PAYMENT_KINDS",
    "PAYMENT_METHODS",
    "PAYMENT_STATUSES",
    "POSTBACK_EVENTS",
    "POSTBACK_STATUSES",
    "Payment",
    "Player",
    "PlayerNote",
    "Postback",
    "Provider",
    "RG_CHANNELS",
    "RG_HIT_ACTIONS",
    "RG_LIMIT_KINDS",
    "RG_OUTCOMES",
    "RG_PERIODS",
    "RG_SOURCES",
    "Restatement",
    "RgInteraction",
    "RgLimit",
    "RgLimitHit",
    "RgProfile",
    "RgTimeout",
    "STAFF_ROLES",
    "Session",
    "StaffRecoveryCode",
    "StaffSecondFactor",
    "StaffSession",
    "StaffUser",
    "SupportTicket",
    "TAX_BASES",
    "TICKET_FIRST_RESPONSE_HOURS",
    "TICKET_LINK_KINDS",
    "TICKET_NOTE_KINDS",
    "TICKET_PRIORITIES",
    "TICKET_STATUSES",
    "TRACKING_PLATFORMS",
    "TZ",
    "TaxRate",
    "TicketLink",
    "TicketNote",
    "TrackingConfig",
    "WITHDRAWAL_DECISIONS",
    "WithdrawalReview",
    "created_col",
    "one_of",
    "updated_col",
    "version_col",
]
