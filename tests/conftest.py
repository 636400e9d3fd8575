"""Test fixtures: a real Postgres with the migrations applied, the app on it, API clients.

The database is ``HOOKPOST_TEST_DATABASE_URL`` when set (a fresh database is created on that
server for the run and dropped after), or else an embedded Postgres in a temporary folder.
"""

import os
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import asyncpg
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient

from hookpost.app import create_app
from hookpost.db.engine import plain_dsn
from hookpost.settings import Settings
from tests.scratch import scratch_database

ADMIN_KEY = "hp_test_admin_key"
LOCAL_NETWORKS = "127.0.0.0/8,::1/128"
TABLES = (
    "attempts, deliveries, events, subscriptions, endpoint_secrets, endpoints, event_types, "
    "api_keys, tenants, attempt_minutes, workers"
)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server_url = os.environ.get("HOOKPOST_TEST_DATABASE_URL")
    with scratch_database(server_url, tmp_path_factory.mktemp("embedded"), label="test") as url:
        yield url


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        admin_api_key=ADMIN_KEY,
        secret_key=Fernet.generate_key().decode(),
        allowed_networks=LOCAL_NETWORKS,  # the test receivers listen on 127.0.0.1
    )


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    """A raw connection for checks behind the API's back; every table is emptied after."""
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        yield connection
    finally:
        await connection.execute(f"TRUNCATE {TABLES} CASCADE")
        await connection.close()


@pytest.fixture
async def app(settings: Settings, db: asyncpg.Connection) -> AsyncIterator[FastAPI]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


def _client(app: FastAPI, key: str | None) -> AsyncClient:
    headers = {"authorization": f"Bearer {key}"} if key else {}
    return AsyncClient(transport=ASGITransport(app=app), base_url="http://test", headers=headers)


@pytest.fixture
async def admin(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client with the admin key."""
    async with _client(app, ADMIN_KEY) as client:
        yield client


@pytest.fixture
async def anonymous(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A client with no key."""
    async with _client(app, None) as client:
        yield client


@pytest.fixture
async def client_for(app: FastAPI) -> AsyncIterator[Callable[[str], AsyncClient]]:
    """Make clients with a given key: ``client_for(key)``; all are closed after the test."""
    clients: list[AsyncClient] = []

    def make(key: str) -> AsyncClient:
        clients.append(_client(app, key))
        return clients[-1]

    yield make
    for client in clients:
        await client.aclose()
