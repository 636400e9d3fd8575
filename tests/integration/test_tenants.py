"""The /v1/tenants routes against a real Postgres."""

from collections.abc import Callable
from urllib.parse import quote

import asyncpg
import pytest
from httpx import AsyncClient
from hypothesis import given
from hypothesis import strategies as st

from tests.generated import generated
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
    tenant_key,
)


async def test_create_get_update_delete(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin, uid="acme-corp", metadata={"plan": "pro"})
    assert tenant["id"].startswith("ten_")
    assert tenant["uid"] == "acme-corp"
    assert tenant["metadata"] == {"plan": "pro"}

    assert ok(await admin.get(f"/v1/tenants/{tenant['id']}")) == tenant
    assert ok(await admin.get("/v1/tenants/acme-corp"))["id"] == tenant["id"]

    changed = ok(await admin.patch("/v1/tenants/acme-corp", json={"name": "Acme Inc"}))
    assert changed["name"] == "Acme Inc"
    assert changed["uid"] == "acme-corp"
    assert changed["metadata"] == {"plan": "pro"}
    cleared = ok(await admin.patch(f"/v1/tenants/{tenant['id']}", json={"uid": None}))
    assert cleared["uid"] is None

    assert (await admin.delete(f"/v1/tenants/{tenant['id']}")).status_code == 204
    problem(await admin.get(f"/v1/tenants/{tenant['id']}"), 404, "tenant_not_found")


async def test_deleting_a_tenant_deletes_its_attempts(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    """The attempt log has no foreign keys: deleting a tenant deletes its attempts itself."""
    await create_event_type(admin, "invoice.paid")
    for uid in ("gone", "kept"):
        await create_tenant(admin, uid=uid)
        await create_endpoint(admin, uid, event_types=["*"])
        body = {"tenant_id": uid, "event_type": "invoice.paid", "payload": {}}
        ok(await admin.post("/v1/events", json=body), 202)
    await db.execute("SELECT hookpost_create_attempt_partitions(current_date, current_date + 1)")
    await db.execute(
        "INSERT INTO attempts (id, delivery_id, endpoint_id, tenant_id, attempt_number, "
        "started_at, duration_ms, request_headers, worker_id) "
        "SELECT hookpost_uuid7(), id, endpoint_id, tenant_id, 1, now(), 1, '{}', 'w' "
        "FROM deliveries"
    )
    assert await db.fetchval("SELECT count(*) FROM attempts") == 2
    assert (await admin.delete("/v1/tenants/gone")).status_code == 204
    left = await db.fetch("SELECT t.uid FROM attempts a JOIN tenants t ON t.id = a.tenant_id")
    assert [row["uid"] for row in left] == ["kept"]
    assert await db.fetchval("SELECT count(*) FROM attempts") == 1


async def test_uid_is_unique(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="dup")
    problem(
        await admin.post("/v1/tenants", json={"name": "x", "uid": "dup"}), 409, "tenant_uid_taken"
    )
    other = await create_tenant(admin, uid="other")
    problem(
        await admin.patch(f"/v1/tenants/{other['id']}", json={"uid": "dup"}),
        409,
        "tenant_uid_taken",
    )


@pytest.mark.parametrize("uid", ["a/b", "/", ".", "..", "a b", "a%2Fb", "../x"])
async def test_a_uid_that_cannot_name_the_tenant_in_a_path_is_refused(
    admin: AsyncClient, uid: str
) -> None:
    answer = await admin.post("/v1/tenants", json={"name": "x", "uid": uid})
    assert answer.status_code == 422, (uid, answer.text)
    assert answer.json()["errors"][0]["loc"] == ["body", "uid"]


@generated(60)
@given(uid=st.text(alphabet="abZ09._:@+-/%", min_size=1, max_size=6))
async def test_every_accepted_uid_names_its_tenant(admin: AsyncClient, uid: str) -> None:
    """A uid is a path segment: whatever the tenant was created with, it can be read back by."""
    answer = await admin.post("/v1/tenants", json={"name": "x", "uid": uid})
    if answer.status_code == 409:  # made by an earlier example
        return
    if answer.status_code == 422:
        return
    assert answer.status_code == 201, answer.text
    found = await admin.get(f"/v1/tenants/{quote(uid, safe='')}")
    assert found.status_code == 200, (uid, found.text)
    assert found.json()["id"] == answer.json()["id"]


async def test_validation_errors_name_the_field(admin: AsyncClient) -> None:
    body = problem(await admin.post("/v1/tenants", json={}), 422, "validation_error")
    assert body["errors"][0]["loc"] == ["body", "name"]
    problem(await admin.post("/v1/tenants", json={"name": ""}), 422, "validation_error")
    problem(
        await admin.post("/v1/tenants", json={"name": "x", "uid": "ten_x"}), 422, "validation_error"
    )
    problem(
        await admin.post("/v1/tenants", json={"name": "x", "uid": "a b"}), 422, "validation_error"
    )
    problem(
        await admin.post("/v1/tenants", json={"name": "x", "extra": 1}), 422, "validation_error"
    )
    problem(
        await admin.post("/v1/tenants", json={"name": "x", "metadata": []}), 422, "validation_error"
    )
    problem(await admin.patch("/v1/tenants/nope", json={"name": "x"}), 404, "tenant_not_found")
    tenant = await create_tenant(admin)
    body = problem(
        await admin.patch(f"/v1/tenants/{tenant['id']}", json={"name": None}),
        422,
        "validation_error",
    )
    assert "name cannot be null" in body["errors"][0]["message"]


async def test_malformed_json_is_400(admin: AsyncClient) -> None:
    response = await admin.post(
        "/v1/tenants", content=b"{not json", headers={"content-type": "application/json"}
    )
    problem(response, 400, "malformed_json")


async def test_auth(
    anonymous: AsyncClient, admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    response = await anonymous.get("/v1/tenants")
    problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    problem(await client_for("hp_wrong").get("/v1/tenants"), 401, "unauthorized")

    mine = await create_tenant(admin, uid="mine")
    theirs = await create_tenant(admin, uid="theirs")
    tenant = client_for(await tenant_key(admin, mine["id"]))
    listed = ok(await tenant.get("/v1/tenants"))
    assert [t["id"] for t in listed["data"]] == [mine["id"]]
    assert ok(await tenant.get("/v1/tenants/mine"))["id"] == mine["id"]
    problem(await tenant.get(f"/v1/tenants/{theirs['id']}"), 404, "tenant_not_found")
    problem(await tenant.get("/v1/tenants/theirs"), 404, "tenant_not_found")
    problem(await tenant.post("/v1/tenants", json={"name": "x"}), 403, "admin_only")
    problem(await tenant.patch("/v1/tenants/mine", json={"name": "x"}), 403, "admin_only")
    problem(await tenant.delete("/v1/tenants/theirs"), 403, "admin_only")


async def test_pagination_walks_every_page_newest_first(admin: AsyncClient) -> None:
    created = [(await create_tenant(admin, name=f"t{i}"))["id"] for i in range(7)]
    seen: list[str] = []
    cursor = None
    while True:
        params = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = ok(await admin.get("/v1/tenants", params=params))
        seen += [t["id"] for t in page["data"]]
        # a row created mid-walk is newer than every cursor: it never shifts the pages
        await create_tenant(admin, name="late")
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(created))


async def test_bad_pagination_parameters(admin: AsyncClient) -> None:
    problem(await admin.get("/v1/tenants", params={"limit": 0}), 422, "validation_error")
    problem(await admin.get("/v1/tenants", params={"limit": 501}), 422, "validation_error")
    problem(await admin.get("/v1/tenants", params={"cursor": "garbage"}), 422, "invalid_cursor")
    problem(
        await admin.get("/v1/tenants", params={"cursor": "ep_" + "0" * 26}), 422, "invalid_cursor"
    )


async def test_unknown_route_and_method(admin: AsyncClient) -> None:
    problem(await admin.get("/v1/nothing"), 404, "not_found")
    problem(await admin.put("/v1/tenants"), 405, "method_not_allowed")
