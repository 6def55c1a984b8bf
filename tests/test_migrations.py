"""Migrations upgrade from empty, downgrade cleanly, and match the models."""

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from app import migrate
from app.models import Base


def _tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_from_empty_then_downgrade_cleanly(empty_db):
    migrate.upgrade(empty_db)
    assert set(Base.metadata.tables) <= _tables(empty_db)
    assert migrate.current(empty_db) is not None
    migrate.downgrade(empty_db, "base")
    assert _tables(empty_db) <= {"alembic_version"}
    engine = sa.create_engine(empty_db, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        functions = conn.scalars(sa.text("SELECT proname FROM pg_proc WHERE proname LIKE 'pitboss_%'")).all()
    engine.dispose()
    assert functions == []
    migrate.upgrade(empty_db)  # and up again
    assert set(Base.metadata.tables) <= _tables(empty_db)


def test_models_and_migrations_agree(fresh_db):
    engine = sa.create_engine(fresh_db, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert diff == []


def test_database_maintains_updated_at_and_version(fresh_db):
    engine = sa.create_engine(fresh_db, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO staff_users (username, display_name, email, password_hash, roles, version, updated_at)"
                " VALUES ('x', 'X', 'x@example.com', 'h', ARRAY['admin'], 41, '2000-01-01')"
            )
        )
    with engine.begin() as conn:
        v1, u1 = conn.execute(sa.text("SELECT version, updated_at FROM staff_users")).one()
        assert v1 == 1 and u1.year > 2000  # the writer cannot forge them
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE staff_users SET display_name = 'Y'"))
        v2, u2 = conn.execute(sa.text("SELECT version, updated_at FROM staff_users")).one()
    engine.dispose()
    assert v2 == 2 and u2 >= u1
