"""The staff service tests use the login/sessions fixtures of tests/auth (a fresh database with two brands)."""

from tests.auth.conftest import authdb, demo_settings, fast_bcrypt, prod_settings  # noqa: F401
