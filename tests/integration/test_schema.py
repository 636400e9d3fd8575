"""The ORM models and the migrations describe one schema: the tables, columns, indexes and
constraints the models would create equal those the migrations created."""

from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from hookpost.db.engine import async_url
from hookpost.db.models import Base

MODELS = "hookpost_models_check"  # a schema of the test database, made from the models

COLUMNS = """
SELECT table_name, column_name, data_type, character_maximum_length, is_nullable
FROM information_schema.columns
WHERE table_schema = $1 AND table_name <> 'alembic_version' AND table_name NOT LIKE 'attempts\\_%'
"""
INDEXES = """
SELECT tablename, indexname, replace(replace(indexdef, $1 || '.', ''), ' ON ONLY ', ' ON ')
FROM pg_indexes
WHERE schemaname = $1 AND tablename <> 'alembic_version' AND tablename NOT LIKE 'attempts\\_%'
"""
CONSTRAINTS = """
SELECT rel.relname, c.conname, c.contype,
       replace(pg_get_constraintdef(c.oid), $1 || '.', '')
FROM pg_constraint c
JOIN pg_class rel ON rel.oid = c.conrelid
JOIN pg_namespace n ON n.oid = rel.relnamespace
WHERE n.nspname = $1 AND rel.relname <> 'alembic_version' AND rel.relname NOT LIKE 'attempts\\_%'
"""


@pytest.fixture
async def models_schema(database_url: str, db: asyncpg.Connection) -> AsyncIterator[str]:
    """The models' schema, created with ``create_all`` beside the migrated one."""
    await db.execute(f"DROP SCHEMA IF EXISTS {MODELS} CASCADE; CREATE SCHEMA {MODELS}")
    engine = create_async_engine(async_url(database_url))
    try:
        async with engine.begin() as connection:
            translated = await connection.execution_options(schema_translate_map={None: MODELS})
            await translated.run_sync(Base.metadata.create_all)
        yield MODELS
    finally:
        await engine.dispose()
        await db.execute(f"DROP SCHEMA {MODELS} CASCADE")


async def _schema(db: asyncpg.Connection, name: str) -> dict[str, set[tuple[object, ...]]]:
    return {
        what: {tuple(row) for row in await db.fetch(query, name)}
        for what, query in (
            ("columns", COLUMNS),
            ("indexes", INDEXES),
            ("constraints", CONSTRAINTS),
        )
    }


async def test_the_models_match_the_migrations(db: asyncpg.Connection, models_schema: str) -> None:
    migrated = await _schema(db, "public")
    modelled = await _schema(db, models_schema)
    for what in migrated:
        assert migrated[what] - modelled[what] == set(), f"{what} only the migrations make"
        assert modelled[what] - migrated[what] == set(), f"{what} only the models make"
