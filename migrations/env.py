"""Alembic environment: runs hookpost's migrations on an async (asyncpg) engine.

The URL comes from ``config.attributes["database_url"]`` (set by ``hookpost.db.migrations``)
or, when alembic is run by hand, from ``HOOKPOST_DATABASE_URL``.
"""

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from hookpost.db.engine import async_url
from hookpost.db.models import Base
from hookpost.settings import Settings

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url") or Settings().database_url
    if not url:
        raise SystemExit("Set HOOKPOST_DATABASE_URL, or run `hookpost migrate`.")
    return async_url(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


async def _run_online() -> None:
    engine = create_async_engine(_database_url())
    async with engine.connect() as connection:
        await connection.run_sync(_run)
    await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_database_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    asyncio.run(_run_online())
