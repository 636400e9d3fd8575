"""Real servers on 127.0.0.1 for tests that need a real client: the app under uvicorn
(schemathesis, a browser), and ``hookpost run`` as a process (the CLI, the walk-through)."""

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import uvicorn
from cryptography.fernet import Fernet
from fastapi import FastAPI

from hookpost.app import create_app
from hookpost.db.engine import plain_dsn
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY, TABLES

HOOKPOST = [sys.executable, "-m", "hookpost"]


@contextlib.contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """``app`` on an ephemeral port; yields its base URL, and stops it after."""
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


@contextlib.contextmanager
def serving_hookpost(database_url: str, data_dir: Path, **settings: str) -> Iterator[str]:
    """The API with the tests' admin key under uvicorn, for tests that share it across
    examples (module-scoped); what they made is removed after."""
    app = create_app(
        Settings(
            database_url=database_url,
            data_dir=data_dir,
            admin_api_key=ADMIN_KEY,
            secret_key=Fernet.generate_key().decode(),
            **settings,
        )
    )
    try:
        with serving(app) as url:
            yield url
    finally:
        asyncio.run(_empty_tables(database_url))


async def _empty_tables(database_url: str) -> None:
    connection = await asyncpg.connect(plain_dsn(database_url))
    try:
        await connection.execute(f"TRUNCATE {TABLES} CASCADE")
    finally:
        await connection.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_run(port: int, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*HOOKPOST, "run", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_ready(url: str, process: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read() if process.stdout else ""
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise AssertionError("hookpost run did not become ready")
