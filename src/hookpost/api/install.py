"""The REST API's share of the app: its routers, its problem+json errors, its OpenAPI
document and its docs page, installed on the app the composition root (``hookpost.app``)
builds."""

from fastapi import FastAPI

from hookpost.api.docs import install_docs
from hookpost.api.errors import install_error_handlers
from hookpost.api.limits import BodySizeLimit
from hookpost.api.openapi import install_openapi
from hookpost.api.routes import (
    api_keys,
    deliveries,
    endpoints,
    event_types,
    events,
    health,
    tenants,
)
from hookpost.settings import Settings

DESCRIPTION = """
hookpost delivers your product's events to your customers' webhook endpoints: signed with the
[Standard Webhooks](https://www.standardwebhooks.com/) scheme, retried with exponential backoff,
and with every attempt logged.

Press **Authorize**, paste an API key (`hp_...`), and every route below can be tried from
here. The operator console is at [`/`](/).

* **tenants**: your customers. Name them by hookpost's id or by your own `uid`.
* **event types**: the kinds of event you emit, optionally with a JSON Schema.
* **endpoints**: your customers' URLs, their signing secrets and their subscriptions.
* **api keys**: admin keys see everything; tenant keys see one tenant.
* **events**: emit them (one, or batches of up to 1000); read them back with their deliveries.
* **delivery log**: every delivery and attempt; resend one, or recover an endpoint's failures.
"""

TAGS = [
    {"name": "events", "description": "Emit events; read them back with their deliveries."},
    {
        "name": "delivery log",
        "description": "Every delivery and attempt, filtered; resend one delivery.",
    },
    {"name": "tenants", "description": "The customers of your product."},
    {"name": "event types", "description": "The kinds of event, with optional payload schemas."},
    {"name": "endpoints", "description": "Receivers' URLs, secrets and subscriptions."},
    {"name": "api keys", "description": "Keys for this API, admin or tenant-scoped."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def install_api(app: FastAPI, settings: Settings) -> None:
    """Serve the API under ``/v1`` (and its probes, its docs at ``/docs``) on ``app``."""
    install_error_handlers(app)
    install_openapi(app)
    install_docs(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    for module in (events, deliveries, tenants, event_types, endpoints, api_keys, health):
        app.include_router(module.router)
