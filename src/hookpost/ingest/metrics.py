"""Ingest's Prometheus counters, updated by the intake as events are stored."""

from prometheus_client import Counter

EVENTS_INGESTED = Counter(
    "hookpost_events_ingested",
    "Events accepted through the API, by result (created, duplicate).",
    ["result"],
)
DELIVERIES_QUEUED = Counter(
    "hookpost_deliveries_queued", "Deliveries created by the fan-out of ingested events."
)
