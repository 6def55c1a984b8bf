"""The operational vocabularies (statuses, categories, outcomes) that forms and filters offer.

Defined once in the schema (`app.models`); pages read them here, since pages do not import the schema.
"""

from app.models import (
    ACCOUNT_STATUSES,
    ADJUSTMENT_STATUSES,
    AUDIT_OUTCOMES,
    BLACKLIST_CATEGORIES,
    BLACKLIST_SOURCES,
    KYC_STATUSES,
    POSTBACK_EVENTS,
    POSTBACK_STATUSES,
)

__all__ = [
    "ACCOUNT_STATUSES",
    "ADJUSTMENT_STATUSES",
    "AUDIT_OUTCOMES",
    "BLACKLIST_CATEGORIES",
    "BLACKLIST_SOURCES",
    "KYC_STATUSES",
    "POSTBACK_EVENTS",
    "POSTBACK_STATUSES",
]
