"""The generator's seeded blacklist (tiny scale) holds values the blacklist rules accept, in every category,
and its e-mail entries match players through the same key as manual ones."""

from __future__ import annotations

import sqlalchemy as sa

from app.services.blacklist.rules import normalize, try_normalize


def test_seeded_values_normalise_to_what_is_stored(tiny_db: str) -> None:
    engine = sa.create_engine(tiny_db, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT category, value, normalized_value, source FROM blacklist_entries")
            ).all()
            matched = conn.execute(
                sa.text(
                    "SELECT count(*) FROM blacklist_entries e JOIN players p"
                    " ON pitboss_email_key(p.email) = e.normalized_value WHERE e.category = 'email'"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    by_category: dict[str, int] = {}
    for category, value, stored, source in rows:
        by_category[category] = by_category.get(category, 0) + 1
        if source == "self_exclusion" and try_normalize(category, value) is None:
            continue  # a test account's address (e.g. a .test domain): keyed like the database keys it
        assert normalize(category, value) == stored, (category, value)
    assert set(by_category) == {"email", "phone", "ip", "device", "document", "payment_account"}
    assert min(by_category.values()) > 0 and by_category["phone"] >= 3
    assert matched > 0
