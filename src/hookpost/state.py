"""What a running hookpost app holds for its lifetime (``AppState``), built by the composition
root (``hookpost.app``) and read by the API and both sites from the request."""

from dataclasses import dataclass

import asyncpg
from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from hookpost.access import Viewer
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


def app_state(request: Request) -> AppState:
    """The app's state, for a dependency or a route that takes the request itself."""
    state: AppState = request.app.state.hookpost
    return state
