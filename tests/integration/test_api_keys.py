"""The /v1/api-keys routes, and that the keys they make work."""

from collections.abc import Callable

import asyncpg
from httpx import AsyncClient

from tests.integration.helpers import create_tenant, ok, problem


async def test_admin_key_lifecycle(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient], db: asyncpg.Connection
) -> None:
    created = ok(await admin.post("/v1/api-keys", json={"name": "ops"}), 201)
    assert created["id"].startswith("key_")
    assert created["tenant_id"] is None
    assert created["key"].startswith("hp_")
    assert created["key_hint"] == created["key"][:7]
    new_admin = client_for(created["key"])
    listed = ok(await new_admin.get("/v1/api-keys"))
    assert [k["id"] for k in listed["data"]] == [created["id"]]
    assert "key" not in listed["data"][0]

    assert (await admin.delete(f"/v1/api-keys/{created['id']}")).status_code == 204
    problem(await new_admin.get("/v1/api-keys"), 401, "unauthorized")
    problem(await admin.delete(f"/v1/api-keys/{created['id']}"), 404, "api_key_not_found")
    problem(await admin.delete("/v1/api-keys/garbage"), 404, "api_key_not_found")


async def test_keys_are_stored_hashed(admin: AsyncClient, db: asyncpg.Connection) -> None:
    created = ok(await admin.post("/v1/api-keys", json={"name": "ops"}), 201)
    stored = await db.fetchval("SELECT key_hash FROM api_keys")
    assert created["key"].encode() not in bytes(stored)
    assert len(stored) == 32


async def test_tenant_scoped_keys(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    mine = await create_tenant(admin, uid="mine")
    theirs = await create_tenant(admin, uid="theirs")
    key = ok(await admin.post("/v1/api-keys", json={"name": "a", "tenant_id": "mine"}), 201)
    assert key["tenant_id"] == mine["id"]
    other = ok(await admin.post("/v1/api-keys", json={"name": "b", "tenant_id": "theirs"}), 201)
    tenant = client_for(key["key"])

    # a tenant key makes keys for its own tenant only, never admin keys
    own = ok(await tenant.post("/v1/api-keys", json={"name": "c", "tenant_id": mine["id"]}), 201)
    problem(await tenant.post("/v1/api-keys", json={"name": "d"}), 403, "admin_only")
    problem(
        await tenant.post("/v1/api-keys", json={"name": "e", "tenant_id": theirs["id"]}),
        404,
        "tenant_not_found",
    )
    listed = ok(await tenant.get("/v1/api-keys"))
    assert {k["id"] for k in listed["data"]} == {key["id"], own["id"]}
    problem(
        await tenant.get("/v1/api-keys", params={"tenant_id": "theirs"}), 404, "tenant_not_found"
    )
    problem(await tenant.delete(f"/v1/api-keys/{other['id']}"), 404, "api_key_not_found")
    admin_key = ok(await admin.post("/v1/api-keys", json={"name": "adm"}), 201)
    problem(await tenant.delete(f"/v1/api-keys/{admin_key['id']}"), 404, "api_key_not_found")
    assert (await tenant.delete(f"/v1/api-keys/{own['id']}")).status_code == 204

    by_tenant = ok(await admin.get("/v1/api-keys", params={"tenant_id": "theirs"}))
    assert [k["id"] for k in by_tenant["data"]] == [other["id"]]
    problem(
        await admin.post("/v1/api-keys", json={"name": "x", "tenant_id": "nobody"}),
        404,
        "tenant_not_found",
    )
    problem(await admin.post("/v1/api-keys", json={"name": ""}), 422, "validation_error")


async def test_pagination(admin: AsyncClient) -> None:
    ids = [
        ok(await admin.post("/v1/api-keys", json={"name": f"k{i}"}), 201)["id"] for i in range(4)
    ]
    first = ok(await admin.get("/v1/api-keys", params={"limit": 3}))
    second = ok(
        await admin.get("/v1/api-keys", params={"limit": 3, "cursor": first["next_cursor"]})
    )
    assert [k["id"] for k in first["data"] + second["data"]] == list(reversed(ids))
    assert second["next_cursor"] is None
