"""Migrations build the schema from empty on SQLite and PostgreSQL, agree with the models, one head."""

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy import inspect, text

from gateway.app import create_app
from gateway.database import MIGRATIONS_DIR
from gateway.extensions import db
from tests.conftest import base_config, temporary_postgres_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request, tmp_path):
    """A database with no tables at all."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrated.db'}"
        return
    with temporary_postgres_database("dominion_mig") as url:
        yield url


def test_upgrade_from_empty_matches_models(empty_database):
    app = create_app(base_config(empty_database))
    with app.app_context():
        upgrade(directory=MIGRATIONS_DIR)
        tables = set(inspect(db.engine).get_table_names())
        assert {"users", "api_keys", "usage_records", "usage_counters", "alembic_version"} <= tables
        with db.engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, db.metadata) == []
        db.engine.dispose()


def test_single_head():
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", MIGRATIONS_DIR)
    assert len(ScriptDirectory.from_config(config).get_heads()) == 1


def test_sqlite_runs_in_wal_mode(tmp_path):
    app = create_app(base_config(f"sqlite:///{tmp_path / 'wal.db'}"))
    with app.app_context():
        with db.engine.connect() as connection:
            assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 30000
