"""Ordered lanes against unordered delivery: ``python -m benchmarks ordering``.

On the peers' protocol (``peers.py``): ``hookpost api`` and one ``hookpost worker`` with their
defaults, one tenant with one endpoint on the fast receiver, events through
``POST /v1/events/batch`` while the worker runs, the clock from the first event handed over to
the last received. The endpoint is unordered, or ordered by the payload's ``customer`` with
``KEYS`` customers (each lane one delivery at a time). Each on a fresh database,
alternately, ``ROUNDS`` times; printed: the medians and the ordered rate's share.
"""

import asyncio
import statistics
import sys
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import aiohttp
import httpx
import orjson

from benchmarks import peers, processes

ROUNDS = 3
KEYS = 100
BATCH = 1000


async def _setup(api: str, admin_key: str, receiver: str, kind: str, ordered: bool) -> None:
    headers = {"authorization": f"Bearer {admin_key}"}
    async with httpx.AsyncClient(base_url=api, headers=headers) as client:
        for path, body in (
            ("/v1/event-types", {"name": "invoice.paid"}),
            ("/v1/tenants", {"name": "bench", "uid": "bench"}),
            (
                "/v1/endpoints",
                {
                    "tenant_id": "bench",
                    "url": f"{receiver}/{kind}/",
                    "event_types": ["invoice.paid"],
                    "ordering": {"key": "customer"} if ordered else None,
                },
            ),
        ):
            (await client.post(path, json=body)).raise_for_status()


async def _send(api: str, admin_key: str, start: int, count: int) -> None:
    headers = {"authorization": f"Bearer {admin_key}", "content-type": "application/json"}
    async with aiohttp.ClientSession(base_url=api, headers=headers) as session:
        for first in range(start, start + count, BATCH):
            events: list[dict[str, Any]] = [
                {
                    "tenant_id": "bench",
                    "event_type": "invoice.paid",
                    "payload": {"n": n, "customer": f"c{n % KEYS}"},
                }
                for n in range(first, min(first + BATCH, start + count))
            ]
            async with session.post(
                "/v1/events/batch", data=orjson.dumps({"events": events})
            ) as answer:
                assert answer.status == 202, await answer.text()


def _rate(
    database_url: str, receiver: str, count: int, *, ordered: bool, admin_key: str, secret_key: str
) -> float:
    kind = "ordered" if ordered else "unordered"
    env = processes.hookpost_env(database_url, admin_key=admin_key, secret_key=secret_key)
    with processes.api(database_url, admin_key=admin_key, secret_key=secret_key) as api:
        asyncio.run(_setup(api, admin_key, receiver, kind, ordered))
        with peers.process([sys.executable, "-m", "hookpost", "worker"], env=env):

            async def run() -> float:
                await _send(api, admin_key, 0, 10)  # warm-up
                await peers.received(receiver, kind, 10, timeout_s=60)
                return await peers.timed(
                    receiver, kind, count, lambda: _send(api, admin_key, 10, count)
                )

            return asyncio.run(run())


def run(
    database: Callable[[], AbstractContextManager[str]],
    *,
    admin_key: str,
    secret_key: str,
    count: int,
) -> list[tuple[str, float, str]]:
    """The rows: (what, deliveries/s median, share of the unordered rate)."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    with processes.receiver() as receiver:
        for _ in range(ROUNDS):
            for ordered in (False, True):
                with database() as url:
                    rates[ordered].append(
                        _rate(
                            url,
                            receiver,
                            count,
                            ordered=ordered,
                            admin_key=admin_key,
                            secret_key=secret_key,
                        )
                    )
    plain = statistics.median(rates[False])
    ordered = statistics.median(rates[True])
    return [
        ("one endpoint, unordered", plain, ""),
        (f"one endpoint, ordered by {KEYS} keys", ordered, f"{ordered / plain:.0%}"),
    ]
