"""What a running hookpost app holds for its lifetime (``AppState``), built by the composition
root (``hookpost.app``) and read by the API and both sites from the request."""

import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hookpost.access import Viewer
from hookpost.admin import api_keys
from hookpost.cache import TtlCache
from hookpost.encryption import SecretBox
from hookpost.ingest.emit import EventTypeCache
from hookpost.ingest.intake import Intake
from hookpost.ingest.validation import Validator
from hookpost.settings import Settings

# API keys already checked, so that a busy client does not cost a query per request.
KeyCache = TtlCache[bytes, Viewer]


@dataclass(frozen=True)
class AppState:
    """What the app holds for its lifetime; built in the app's lifespan. ``pool`` serves the
    hot paths (authentication, ingest) with hand-written SQL and no ORM."""

    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    pool: asyncpg.Pool
    secret_box: SecretBox
    keys: KeyCache
    event_types: EventTypeCache
    validator: Validator  # schemas and payloads, in child processes under a time bound
    intake: Intake  # events in

    async def viewer_of(self, key: str) -> Viewer | None:
        """Who an API key is (the configured admin key, or a stored one), or None for a key
        hookpost does not know; every face that takes a bearer key asks here."""
        configured = self.settings.admin_api_key
        if configured is not None and hmac.compare_digest(
            key.encode(), configured.get_secret_value().encode()
        ):
            return Viewer(tenant_id=None)
        key_hash = api_keys.hash_key(key)
        viewer = self.keys.get(key_hash)
        if viewer is None:
            row = await self.pool.fetchrow(api_keys.FIND_BY_HASH, key_hash)
            if row is None:
                return None
            viewer = Viewer(tenant_id=row["tenant_id"], key_id=row["id"])
            self.keys.put(key_hash, viewer)
        return viewer


def app_state(request: Request) -> AppState:
    """The app's state, for a dependency or a route that takes the request itself."""
    state: AppState = request.app.state.hookpost
    return state


async def request_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One database session for a request, in one transaction: committed when the route
    returns, rolled back when it raises (the dependency of the API and the Svix API)."""
    async with app_state(request).sessions() as session, session.begin():
        yield session
