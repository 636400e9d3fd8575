"""Ingest with and without a payload schema: ``python -m benchmarks schemas``.

Events per second through ``POST /v1/events`` (32 clients) and ``/v1/events/batch`` (1000 a
request) on ``hookpost api`` with its defaults, the event type first without a schema, then
with ``SCHEMA``; each on a fresh database, alternately, ``ROUNDS`` times. Printed: the median
of each and the schema's cost as a share of the plain rate.
"""

import asyncio
import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager

import httpx

from benchmarks import processes, traffic

ROUNDS = 3
# What a product's schema for an event looks like: types, bounds, a pattern, required fields.
SCHEMA = {
    "type": "object",
    "properties": {
        "amount": {"type": "integer", "minimum": 0},
        "i": {"type": "integer", "minimum": 0},
        "currency": {"type": "string", "pattern": "^[a-z]{3}$"},
        "customer": {"type": "object", "properties": {"email": {"type": "string"}}},
    },
    "anyOf": [{"required": ["amount"]}, {"required": ["i"]}],
    "additionalProperties": False,
}


def run(
    database: Callable[[], AbstractContextManager[str]],
    prepare: Callable[[str], None],
    *,
    admin_key: str,
    secret_key: str,
    single_events: int,
    batches: int,
) -> list[tuple[str, float, str]]:
    """The rows: (what, events/s median, the schema's rate against the plain one)."""
    rates: dict[tuple[str, bool], list[float]] = {}
    for _ in range(ROUNDS):
        for with_schema in (False, True):
            with database() as url:
                prepare(url)
                with processes.api(url, admin_key=admin_key, secret_key=secret_key) as api:
                    if with_schema:
                        _set_schema(api, admin_key)
                    single = asyncio.run(traffic.ingest_single(api, admin_key, single_events))
                    batched = asyncio.run(traffic.ingest_batches(api, admin_key, batches))
            rates.setdefault(("single", with_schema), []).append(single)
            rates.setdefault(("batch", with_schema), []).append(batched)
    rows = []
    for kind, name in (("single", "POST /v1/events"), ("batch", "POST /v1/events/batch")):
        plain = statistics.median(rates[(kind, False)])
        schema = statistics.median(rates[(kind, True)])
        rows.append((f"{name}, no schema (events/s)", plain, ""))
        rows.append((f"{name}, with a schema (events/s)", schema, f"{schema / plain:.0%}"))
    return rows


def _set_schema(api: str, admin_key: str) -> None:
    answer = httpx.patch(
        f"{api}/v1/event-types/invoice.paid",
        json={"schema": SCHEMA},
        headers={"authorization": f"Bearer {admin_key}"},
    )
    answer.raise_for_status()
