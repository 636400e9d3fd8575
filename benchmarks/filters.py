"""Batch ingest with payload filters: ``python -m benchmarks filters``.

Events per second through ``POST /v1/events/batch`` (100 events a request, 4 requests at a
time) on ``hookpost api`` with its defaults, into a tenant with ``ENDPOINTS`` endpoints
subscribed to the events' type: first without filters, then with ``FILTER`` on each
subscription (it passes every event, so both runs store the same deliveries and the
difference is the filters' cost alone). Each on a fresh database, alternately, ``ROUNDS``
times. Printed: the median of each and the filtered rate as a share of the plain one.
"""

import asyncio
import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import httpx

from benchmarks import processes, traffic

ROUNDS = 3
ENDPOINTS = 100
FAN_OUT = ENDPOINTS + 1  # deliveries per event: the prepared tenant's endpoint takes all too
BATCH = 100
# A product's filter: a bound on a number and a choice of strings, as in the README.
FILTER = {"amount": {"$gte": 100}, "currency": {"$in": ["eur", "usd"]}}


def _payload(i: int) -> dict[str, Any]:
    return {"invoice_id": f"in_{i}", "amount": 100 + i, "currency": "eur"}


def run(
    database: Callable[[], AbstractContextManager[str]],
    prepare: Callable[[str], None],
    *,
    admin_key: str,
    secret_key: str,
    batches: int,
) -> list[tuple[str, float, str]]:
    """The rows: (what, events/s median, the filtered rate against the plain one)."""
    rates: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(ROUNDS):
        for filtered in (False, True):
            with database() as url:
                prepare(url)
                with processes.api(url, admin_key=admin_key, secret_key=secret_key) as api:
                    _add_endpoints(api, admin_key, filtered=filtered)
                    rates[filtered].append(
                        asyncio.run(
                            traffic.ingest_batches(
                                api, admin_key, batches, size=BATCH, payload=_payload
                            )
                        )
                    )
    plain = statistics.median(rates[False])
    with_filters = statistics.median(rates[True])
    return [
        (f"{ENDPOINTS}, no filters", plain, ""),
        (f"{ENDPOINTS}, a filter on each", with_filters, f"{with_filters / plain:.0%}"),
    ]


def _add_endpoints(api: str, admin_key: str, *, filtered: bool) -> None:
    """``ENDPOINTS`` endpoints of the benchmark's tenant, through the API, as a user makes
    them (their URL is never called: no worker runs)."""
    with httpx.Client(base_url=api, headers={"authorization": f"Bearer {admin_key}"}) as client:
        for number in range(ENDPOINTS):
            body: dict[str, Any] = {
                "tenant_id": "bench",
                "url": f"http://127.0.0.1:9/endpoint-{number}",
                "event_types": ["invoice.paid"],
            }
            if filtered:
                body["filters"] = {"invoice.paid": FILTER}
            client.post("/v1/endpoints", json=body).raise_for_status()
