"""The async SQLAlchemy engine and session factory on asyncpg, waiting for the database, the
one retry policy for database work that a lost connection interrupts, and the one judgment of
a database error: an outage (retry) or a value or statement refused (never retried as is)."""

import logging
from collections.abc import Callable, Iterator

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from tenacity import (
    AsyncRetrying,
    before_sleep_log,
    retry_if_exception,
    stop_after_delay,
    wait_exponential,
)

logger = logging.getLogger(__name__)

# What a database that is down, restarting or unreachable raises, through either stack.
# asyncpg's InternalClientError is what a pooled connection whose backend was terminated
# while idle raises on its next use ("cannot switch to state 12", MagicStack/asyncpg#1069).
DATABASE_ERRORS = (
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    DBAPIError,
)

# What a database that is going away, restarting, overloaded or coming back raises: a
# connection lost or refused, "shutting down" or "starting up", too many connections, a pool
# or connection closed under the caller, a serialization failure or deadlock (the same work
# succeeds when tried again).
_OUTAGES = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)


def _chain(error: BaseException) -> Iterator[BaseException]:
    """``error`` and what it wraps: SQLAlchemy's ``orig``, a ``__cause__``."""
    seen: BaseException | None = error
    while seen is not None:
        yield seen
        seen = getattr(seen, "orig", None) or seen.__cause__


def is_outage(error: BaseException) -> bool:
    """Whether ``error`` says the database could not do the work now (it may later), as
    opposed to refusing what it was asked (a value, a statement), which no retry mends."""
    for seen in _chain(error):
        if isinstance(seen, DBAPIError) and seen.connection_invalidated:
            return True
        if isinstance(seen, _OUTAGES) and not isinstance(seen, ValueError):
            return True
    return False


def is_refused_value(error: BaseException) -> bool:
    """Whether the database, or the driver on its way there, refused a value: NUL or a lone
    surrogate in text, a number out of range, a string too long (SQLSTATE class 22)."""
    return any(isinstance(seen, asyncpg.DataError | UnicodeEncodeError) for seen in _chain(error))


def is_database_error(error: BaseException) -> bool:
    return isinstance(error, DATABASE_ERRORS)


def database_retrying(
    *,
    within_s: float,
    longest_wait_s: float = 2.0,
    retry_if: Callable[[BaseException], bool] = is_outage,
) -> AsyncRetrying:
    """Retry database work that failed for an outage (or what ``retry_if`` says), with
    exponential backoff up to ``longest_wait_s`` between tries, for ``within_s`` at most; then
    raise the last error. An error that is not an outage is raised at once."""
    return AsyncRetrying(
        retry=retry_if_exception(retry_if),
        wait=wait_exponential(multiplier=0.1, max=longest_wait_s),
        stop=stop_after_delay(within_s),
        before_sleep=before_sleep_log(logger, logging.WARNING),
        reraise=True,
    )


def async_url(url: str) -> str:
    """``url`` with the asyncpg driver, whatever driver (or none) it named."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise ValueError(f"hookpost needs a postgresql:// URL, got {parsed.drivername}://")
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


def rows_affected(status: str) -> int:
    """The row count of a command's status as asyncpg answers it (``UPDATE 3``, ``DELETE 0``)."""
    return int(status.rsplit(" ", 1)[-1])


def plain_dsn(url: str) -> str:
    """``url`` as a libpq-style DSN for asyncpg itself (no SQLAlchemy driver name)."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


async def keep_session_state(_connection: asyncpg.Connection) -> None:
    """The reset for hookpost's asyncpg pools on release: nothing beyond asyncpg's own (an open
    transaction rolled back, listeners dropped). hookpost's queries leave no session state
    behind, and the default reset (RESET ALL, UNLISTEN, CLOSE, unlocking advisory locks) cost
    a round trip and four statements on every release: per claim, flush and ingest request."""


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """An engine on ``url``: asyncpg and a pool of at most ``pool_size`` connections (no
    overflow: the budget is what it says). Connections are not pinged before each use (a
    round trip on every request): one broken by a database restart is dropped by the pool
    when it fails, and that request answers 503."""
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=0, pool_recycle=3600
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def wait_for_database(engine: AsyncEngine, *, timeout_s: float) -> None:
    """Return once ``SELECT 1`` succeeds; retry with backoff until ``timeout_s`` has passed."""
    async for retrying in database_retrying(within_s=timeout_s, retry_if=is_database_error):
        with retrying:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))


async def driver_connection_of(connection: AsyncConnection) -> asyncpg.Connection:
    """The asyncpg connection under a SQLAlchemy one, for hand-written SQL."""
    raw = (await connection.get_raw_connection()).driver_connection
    assert isinstance(raw, asyncpg.Connection)
    return raw


async def driver_connection(session: AsyncSession) -> asyncpg.Connection:
    """The asyncpg connection under ``session``, inside its transaction, for the queue's
    hand-written SQL."""
    return await driver_connection_of(await session.connection())
