"""Every migration's revision id fits alembic_version.version_num (varchar(32)) and the chain has one head."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from tests.conftest import PROJECT_ROOT


def test_revision_ids_fit_and_one_head():
    script = ScriptDirectory.from_config(Config(str(PROJECT_ROOT / "alembic.ini")))
    revisions = list(script.walk_revisions())
    too_long = [r.revision for r in revisions if len(r.revision) > 32]
    assert not too_long, f"revision ids longer than alembic_version's 32 characters: {too_long}"
    assert len(script.get_heads()) == 1, script.get_heads()
