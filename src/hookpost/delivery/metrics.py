"""The worker's Prometheus metrics, updated as it goes (counters once per flush); served by the
API's ``/metrics`` under ``hookpost run``, and on ``HOOKPOST_METRICS_PORT`` by
``hookpost worker``."""

from prometheus_client import Counter, Gauge, Histogram

ATTEMPTS = Counter(
    "hookpost_attempts",
    "Webhook attempts, by outcome (success, failure, gone) and error kind.",
    ["outcome", "error_kind"],
)
ATTEMPT_SECONDS = Histogram(
    "hookpost_attempt_duration_seconds",
    "Time from sending a webhook to its response (or error).",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30),
)
DELIVERIES_FINISHED = Counter(
    "hookpost_deliveries_finished",
    "Deliveries that reached a final state, by state (succeeded, failed, cancelled).",
    ["status"],
)
IN_FLIGHT = Gauge("hookpost_worker_in_flight", "Requests under way in this process's worker.")
ENDPOINT_CONCURRENCY_LIMIT = Gauge(
    "hookpost_endpoint_concurrency_limit",
    "Requests this process's worker lets be open to an endpoint at once: earned up to its "
    "max_in_flight by successes, halved by timeouts, connection errors, 429 and 502-504.",
    ["endpoint_id"],
)
