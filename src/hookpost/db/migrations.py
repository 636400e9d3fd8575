"""Applying Alembic migrations from code (``hookpost migrate``, ``hookpost run``, the tests)."""

from functools import cache
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

_PACKAGE_DIR = Path(__file__).resolve().parent.parent


def _script_location() -> Path:
    """``migrations/`` inside the installed package, or at the top of a source checkout."""
    for candidate in (_PACKAGE_DIR / "migrations", _PACKAGE_DIR.parent.parent / "migrations"):
        if (candidate / "env.py").exists():
            return candidate
    raise FileNotFoundError("hookpost's migrations/ folder is missing from this installation")


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_script_location()))
    config.attributes["database_url"] = database_url
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Bring the schema at ``database_url`` up to ``revision``. Call it outside an event loop."""
    command.upgrade(alembic_config(database_url), revision)


@cache
def head_revision() -> str | None:
    """The newest migration shipped with this installation (read once: it cannot change)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None when no migration ran. Read directly, not
    through Alembic's MigrationContext, which logs two lines each time: /readyz asks on every
    probe."""
    async with engine.connect() as connection:
        if await connection.scalar(text("SELECT to_regclass('alembic_version')")) is None:
            return None
        revision: str | None = await connection.scalar(
            text("SELECT version_num FROM alembic_version")
        )
        return revision
