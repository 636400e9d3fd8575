"""Throw-away databases for the test suite and the benchmarks (not part of the package): a
fresh database on a given server, migrated, dropped afterwards; or, with no server, an
embedded Postgres in a folder."""

import asyncio
import contextlib
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from hookpost.db import migrations
from hookpost.db.embedded import embedded_postgres
from hookpost.db.engine import plain_dsn


async def _execute(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(plain_dsn(server_url))
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def scratch_database(server_url: str | None, folder: Path, *, label: str) -> Iterator[str]:
    """The URL of a new, migrated database: on ``server_url`` (named ``hookpost_<label>_...``
    and dropped on exit), or in an embedded Postgres under ``folder`` when it is None."""
    if not server_url:
        with embedded_postgres(folder) as url:
            migrations.upgrade(url)
            yield url
        return
    name = f"hookpost_{label}_{secrets.token_hex(4)}"
    asyncio.run(_execute(server_url, f'CREATE DATABASE "{name}"'))
    try:
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        migrations.upgrade(url)
        yield url
    finally:
        asyncio.run(_execute(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
