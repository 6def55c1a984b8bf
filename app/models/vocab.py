"""Allowed values, shared by the CHECK constraints, the generator, the services and the tests."""

# Allowed values, shared by the CHECK constraints, the generator, the services and the tests.
OPERATOR_STATUSES = ("active", "paused", "closed")
ACCOUNT_STATUSES = ("active", "suspended", "blocked", "self_excluded", "closed")
KYC_STATUSES = ("none", "pending", "verified", "rejected", "reupload_requested")
CHANNELS = ("organic", "affiliate", "paid_search", "paid_social", "email", "referral")
LOGIN_OUTCOMES = ("ok", "failed_password", "blocked")
PAYMENT_KINDS = ("deposit", "withdrawal")
PAYMENT_METHODS = ("card", "bank_transfer", "ewallet", "crypto", "voucher")
PAYMENT_STATUSES = ("pending", "approved", "declined", "failed", "chargeback")
LEDGER_KINDS = (
    "deposit",
    "withdrawal",
    "withdrawal_reversal",
    "bet",
    "win",
    "bet_void",
    "bonus_grant",
    "bonus_convert",
    "bonus_forfeit",
    "adjustment",
    "chargeback",
)
GAME_CATEGORIES = ("slots", "live", "table", "crash", "sports")
BET_STATUSES = ("open", "settled", "void")
BONUS_TYPES = ("welcome", "reload", "free_spins", "cashback", "loyalty")
BONUS_STATUSES = ("active", "converted", "forfeited", "expired", "cancelled")
KYC_CASE_STATUSES = ("pending", "approved", "rejected", "reupload_requested")
KYC_DECISIONS = ("approved", "rejected", "reupload_requested")
KYC_SUGGESTIONS = ("approve", "review", "reject")
KYC_DOC_TYPES = ("passport", "id_card", "driving_licence", "proof_of_address", "selfie", "payment_proof")
BLACKLIST_CATEGORIES = ("email", "phone", "ip", "device", "document", "payment_account")
BLACKLIST_SOURCES = ("manual", "csv_upload", "self_exclusion", "regulator", "system")
TICKET_STATUSES = ("open", "pending", "resolved", "closed")
TICKET_PRIORITIES = ("low", "normal", "high", "urgent")
# first-response SLA per priority, in hours (app/services/support/rules.py; migration 0010 stamps the due time)
TICKET_FIRST_RESPONSE_HOURS = {"urgent": 1, "high": 4, "normal": 24, "low": 72}
TICKET_NOTE_KINDS = ("reply", "internal", "status")  # an answer to the player, staff only, a status move's note
TICKET_LINK_KINDS = ("kyc_case", "balance_adjustment")
DEAL_TYPES = ("cpa", "revshare", "hybrid")
TRACKING_PLATFORMS = ("meta", "google_ads", "tiktok", "appsflyer")
POSTBACK_EVENTS = ("registration", "ftd", "deposit", "kyc_verified")
POSTBACK_STATUSES = ("pending", "delivered", "failed", "suppressed")
ADJUSTMENT_DIRECTIONS = ("credit", "debit")
ADJUSTMENT_REASONS = ("goodwill", "correction", "compensation", "chargeback_recovery", "fraud", "other")
ADJUSTMENT_STATUSES = ("pending", "approved", "rejected", "applied")
STAFF_ROLES = ("admin", "manager", "analyst", "compliance", "support", "finance")
WITHDRAWAL_DECISIONS = ("approved", "declined")
AUDIT_OUTCOMES = ("ok", "denied", "failed")
TAX_BASES = ("ggr", "handle")
ALERT_RULE_CODES = (
    "large_withdrawal",
    "ggr_drop",
    "postback_failures",
    "kyc_sla",
    "failed_logins",
    "blacklist_matches",
    "ingest_health",
    "rg_limit_hits",
    # raised at the moment of an action (app/services/alerts/actions.py), and self_exclusion_ended (migration 0012)
    "role_granted",
    "staff_2fa_reset",
    "large_adjustment_approved",
    "self_exclusion_ended",
    "chargeback_recorded",  # raised when a chargeback is recorded (migration 0013)
)
ALERT_SEVERITIES = ("info", "warning", "critical")
ALERT_STATUSES = ("open", "acknowledged", "resolved")
ALERT_CHANNELS = ("email", "webhook")  # how a critical alert reaches people (alert_deliveries, migration 0012)
ALERT_DELIVERY_STATUSES = ("pending", "sent", "failed")
RG_LIMIT_KINDS = ("deposit", "loss", "wager", "session_time")  # session_time: minutes per day
RG_PERIODS = ("day", "week", "month")  # calendar periods in UTC (the week starts on Monday)
RG_SOURCES = ("player", "staff")  # set by the player on the platform, or by staff in the back office
RG_HIT_ACTIONS = ("deposit", "bet")
RG_CHANNELS = ("phone", "email", "chat", "in_app")
RG_OUTCOMES = (
    "advice_given",
    "limit_agreed",
    "timeout_agreed",
    "self_exclusion_agreed",
    "referred_to_support_service",
    "no_response",
    "declined",
)
