"""Hostile input: schemathesis generates requests from the app's own OpenAPI spec and checks
that none gets a 5xx and every answer matches its documented schema. Bounded, so CI stays
fast; the API runs as a real server on 127.0.0.1 and no worker runs, so nothing is sent."""

import asyncio
import threading
import time
from collections.abc import Iterator

import asyncpg
import pytest
import schemathesis
import uvicorn
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from hookpost.api.app import create_app
from hookpost.db.engine import plain_dsn
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY, TABLES

EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def live_api(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    app = create_app(
        Settings(
            database_url=database_url,
            data_dir=tmp_path_factory.mktemp("fuzz"),
            admin_api_key=ADMIN_KEY,
            secret_key=Fernet.generate_key().decode(),
        )
    )
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the API did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        _empty_tables(database_url)


def _empty_tables(database_url: str) -> None:
    """What the fuzzing made (endpoints with random URLs among it) must not outlive it."""

    async def truncate() -> None:
        connection = await asyncpg.connect(plain_dsn(database_url))
        try:
            await connection.execute(f"TRUNCATE {TABLES} CASCADE")
        finally:
            await connection.close()

    asyncio.run(truncate())


def test_no_input_breaks_the_api(live_api: str) -> None:
    api = schemathesis.openapi.from_url(f"{live_api}/openapi.json")
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 30
    for operation in operations:

        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def no_server_error_and_documented_answers(case: schemathesis.Case) -> None:
            response = case.call(base_url=live_api, headers=headers)
            case.validate_response(
                response, checks=[not_a_server_error, response_schema_conformance]
            )

        no_server_error_and_documented_answers()
