"""The processes a benchmark starts beside itself, on 127.0.0.1: the fast receiver and the
hookpost API. Each is stopped when its block ends."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def receiver() -> Iterator[str]:
    """The benchmark receiver (``benchmarks/receiver.py``); yields its base URL."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.receiver", str(port)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "ready"
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def hookpost_env(database_url: str, *, admin_key: str, secret_key: str) -> dict[str, str]:
    """The environment of a benchmark's hookpost process: its defaults, but for where the
    database is, its keys, quiet logs and the local receiver allowed."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HOOKPOST_")} | {
        "HOOKPOST_DATABASE_URL": database_url,
        "HOOKPOST_ADMIN_API_KEY": admin_key,
        "HOOKPOST_SECRET_KEY": secret_key,
        "HOOKPOST_LOG_LEVEL": "warning",
        "HOOKPOST_ALLOWED_NETWORKS": "127.0.0.0/8",
    }


@contextlib.contextmanager
def api(database_url: str, *, admin_key: str, secret_key: str) -> Iterator[str]:
    """``hookpost api`` (one uvicorn process) on the database; yields its base URL."""
    port = free_port()
    env = hookpost_env(database_url, admin_key=admin_key, secret_key=secret_key)
    process = subprocess.Popen(
        [sys.executable, "-m", "hookpost", "api", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, "hookpost api exited"
            assert time.monotonic() < deadline, "hookpost api did not become ready"
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)
