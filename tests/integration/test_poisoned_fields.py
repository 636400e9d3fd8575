"""Every string of every request body the API takes, and every key of its objects, in turn
holding a value Postgres refuses (NUL, a lone surrogate): a 4xx problem whose errors name a
place, never a 5xx. The strings are found by walking a valid body, so a field added to a
body is poisoned the day it lands."""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from httpx import AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from tests.generated import generated
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok

ENDPOINT = {
    "tenant_id": "acme",
    "uid": "billing",
    "url": "https://example.com/hook",
    "description": "billing",
    "event_types": ["invoice.paid", "invoice.*"],
    "headers": {"x-customer": "acme"},
    "metadata": {"team": "billing"},
    "channels": ["eu"],
    "filters": {"invoice.paid": {"amount": {"$gt": 1}, "currency": {"$in": ["eur"]}}},
    "ordering": {"key": "customer_id"},
    "disabled_reason": "paused",
}
# (method, path, a valid body): every route with a JSON body
BODIES: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/v1/tenants", {"name": "Beta", "uid": "beta", "metadata": {"plan": {"x": ["pro"]}}}),
    ("PATCH", "/v1/tenants/acme", {"name": "Acme", "uid": "acme", "metadata": {"plan": "pro"}}),
    ("POST", "/v1/tenants/acme/portal-links", {"scope": "read"}),
    (
        "POST",
        "/v1/event-types",
        {"name": "user.signup", "description": "d", "schema": {"required": ["id"]}},
    ),
    ("PATCH", "/v1/event-types/invoice.paid", {"description": "d", "schema": {"title": "t"}}),
    ("POST", "/v1/api-keys", {"name": "backend", "tenant_id": "acme"}),
    (
        "POST",
        "/v1/events",
        {
            "tenant_id": "acme",
            "event_type": "invoice.paid",
            "payload": {"amount": 2, "lines": [{"sku": "a"}]},
            "idempotency_key": "k",
            "channels": ["eu"],
            "deliver_at": "2026-01-01T00:00:00Z",
        },
    ),
    (
        "POST",
        "/v1/events/batch",
        {"events": [{"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"a": "b"}}]},
    ),
    ("POST", "/v1/endpoints", ENDPOINT),
    ("PATCH", "/v1/endpoints/{endpoint}", {k: v for k, v in ENDPOINT.items() if k != "tenant_id"}),
    ("POST", "/v1/endpoints/{endpoint}/subscriptions", {"event_type": "user.*"}),
    ("POST", "/v1/endpoints/{endpoint}/secret/rotate", {"key": None}),
    ("POST", "/v1/endpoints/{endpoint}/recover", {"since": "2026-01-01T00:00:00Z"}),
    (
        "POST",
        "/v1/endpoints/{endpoint}/filter-test",
        {"event_type": "invoice.paid", "payload": {"amount": 2, "note": "n"}, "channels": ["eu"]},
    ),
]
POISONS = ["\x00", "\ud800", "\udc80", "\udfff"]


def _places(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], bool]]:
    """Where a string is in ``value``: each string value (False) and object key (True)."""
    if isinstance(value, str):
        yield path, False
    elif isinstance(value, dict):
        for key, inner in value.items():
            yield (*path, key), True
            yield from _places(inner, (*path, key))
    elif isinstance(value, list):
        for index, inner in enumerate(value):
            yield from _places(inner, (*path, index))


def _poisoned(value: Any, path: tuple[Any, ...], is_key: bool, text: str) -> Any:
    """``value`` with the string at ``path`` (or the key that ends it) become ``text``."""
    if not path:
        return text
    head, rest = path[0], path[1:]
    if isinstance(value, list):
        return [_poisoned(v, rest, is_key, text) if i == head else v for i, v in enumerate(value)]
    if is_key and not rest:
        return {(text if k == head else k): v for k, v in value.items()}
    return {k: (_poisoned(v, rest, is_key, text) if k == head else v) for k, v in value.items()}


@pytest.fixture
async def endpoint(admin: AsyncClient) -> str:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    made = await create_endpoint(admin, "acme", url="https://example.com/base", event_types=["*"])
    return str(made["id"])


@generated(600)
@given(data=st.data(), poison=st.sampled_from(POISONS), before=st.sampled_from(["", "a"]))
async def test_no_poisoned_string_in_a_body_is_a_server_error(
    admin: AsyncClient, endpoint: str, data: st.DataObject, poison: str, before: str
) -> None:
    method, path, body = data.draw(st.sampled_from(BODIES), label="route")
    place, is_key = data.draw(st.sampled_from(list(_places(body))), label="place")
    sent = _poisoned(body, place, is_key, before + poison)
    # as a client's JSON carries them: the escapes \u0000 and \ud800 (ensure_ascii)
    content = json.dumps(sent).encode()
    answer = await admin.request(
        method,
        path.format(endpoint=endpoint),
        content=content,
        headers={"content-type": "application/json"},
    )
    assert answer.status_code < 500, (method, path, place, answer.text)
    if answer.status_code >= 400:
        assert answer.headers["content-type"] == "application/problem+json", answer.text
    ok(await admin.get("/healthz"))
