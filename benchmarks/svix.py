"""Ingest through the Svix API against the native API: ``python -m benchmarks svix``.

Single events through ``POST /v1/events`` and through ``POST /api/v1/app/bench/msg`` (the
Svix body, and the ``idempotency-key`` header the Svix SDKs send on every POST), 32 clients,
on ``hookpost api`` with its defaults; each on a fresh database, alternately, ``ROUNDS``
times. Printed: the median of each, their spread, and the Svix rate as a share of the native
one.
"""

import asyncio
import statistics
from collections.abc import Callable
from contextlib import AbstractContextManager

from benchmarks import processes, traffic

ROUNDS = 3
SVIX_EVENT = {"eventType": "invoice.paid", "payload": {"amount": 4200}}


def run(
    database: Callable[[], AbstractContextManager[str]],
    prepare: Callable[[str], None],
    *,
    admin_key: str,
    secret_key: str,
    single_events: int,
) -> list[tuple[str, float, str, str]]:
    """The rows: (what, events/s median, min-max, the rate against the native one)."""
    rates: dict[str, list[float]] = {"native": [], "svix": []}
    for _ in range(ROUNDS):
        for face in ("native", "svix"):
            with database() as url:
                prepare(url)
                with processes.api(url, admin_key=admin_key, secret_key=secret_key) as api:
                    if face == "native":
                        rate = asyncio.run(traffic.ingest_single(api, admin_key, single_events))
                    else:
                        rate = asyncio.run(
                            traffic.ingest_single(
                                api,
                                admin_key,
                                single_events,
                                path="/api/v1/app/bench/msg",
                                event=SVIX_EVENT,
                                headers=b"idempotency-key: auto_bench\r\n",
                            )
                        )
            rates[face].append(rate)
    native = statistics.median(rates["native"])
    rows = []
    for face, name in (("native", "POST /v1/events"), ("svix", "POST /api/v1/app/{app}/msg")):
        median = statistics.median(rates[face])
        spread = f"{min(rates[face]):,.0f}-{max(rates[face]):,.0f}"
        rows.append((f"{name} (events/s)", median, spread, f"{median / native:.0%}"))
    return rows
