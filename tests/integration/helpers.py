"""Short ways to set up tenants, keys, event types and endpoints through the API."""

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

from httpx import ASGITransport, AsyncClient, Response

from hookpost.app import create_app
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY


def ok(response: Response, status: int = 200) -> Any:
    """The JSON of ``response``, after checking its status (the body is shown if it differs)."""
    assert response.status_code == status, response.text
    return response.json()


def problem(response: Response, status: int, code: str) -> dict[str, Any]:
    """The problem+json body of ``response``, after checking its status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    assert body["title"]
    assert body["detail"]
    assert body["type"].endswith(code)
    return body


async def create_tenant(admin: AsyncClient, **fields: Any) -> dict[str, Any]:
    return ok(await admin.post("/v1/tenants", json={"name": "Acme", **fields}), 201)


async def tenant_key(admin: AsyncClient, tenant_id: str) -> str:
    body = ok(await admin.post("/v1/api-keys", json={"name": "t", "tenant_id": tenant_id}), 201)
    return str(body["key"])


async def create_event_type(admin: AsyncClient, name: str, **fields: Any) -> dict[str, Any]:
    return ok(await admin.post("/v1/event-types", json={"name": name, **fields}), 201)


async def create_endpoint(
    client: AsyncClient, tenant_id: str | None, **fields: Any
) -> dict[str, Any]:
    body = {"url": "https://example.com/hook", **fields}
    if tenant_id is not None:
        body["tenant_id"] = tenant_id
    return ok(await client.post("/v1/endpoints", json=body), 201)


def plan_nodes(plan: Any) -> Iterator[dict[str, Any]]:
    """Every node of an ``EXPLAIN (FORMAT JSON)`` plan."""
    if isinstance(plan, dict):
        if "Node Type" in plan:
            yield plan
        for value in plan.values():
            yield from plan_nodes(value)
    elif isinstance(plan, list):
        for value in plan:
            yield from plan_nodes(value)


def index_scans(plan: Any) -> Iterator[dict[str, Any]]:
    """Every node of an ``EXPLAIN (FORMAT JSON)`` plan that reads an index."""
    return (node for node in plan_nodes(plan) if "Index Name" in node)


@contextlib.asynccontextmanager
async def admin_of(settings: Settings, base_url: str = "http://test") -> AsyncIterator[AsyncClient]:
    """An admin client of another app, on ``settings`` (the fixtures' app has its own)."""
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        AsyncClient(
            transport=ASGITransport(app=app),
            base_url=base_url,
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        yield client
