"""Endpoint uid and metadata: the product's own id for an endpoint, unique per tenant and
usable wherever an endpoint is named, and a small string map kept with it."""

from collections.abc import Callable

from httpx import AsyncClient

from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
    tenant_key,
)


async def test_a_uid_names_the_endpoint_everywhere(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    acme = await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(
        admin, "acme", uid="billing", metadata={"team": "payments"}, event_types=["*"]
    )
    assert (endpoint["uid"], endpoint["metadata"]) == ("billing", {"team": "payments"})
    tenant = client_for(await tenant_key(admin, acme["id"]))

    # a tenant key looks in its own tenant; an admin key names the tenant
    assert ok(await tenant.get("/v1/endpoints/billing"))["id"] == endpoint["id"]
    scoped = {"tenant_id": "acme"}
    assert ok(await admin.get("/v1/endpoints/billing", params=scoped))["id"] == endpoint["id"]
    body = problem(await admin.get("/v1/endpoints/billing"), 422, "tenant_required")
    assert "tenant_id" in body["detail"]

    # every route under the endpoint, and the logs' filters
    assert ok(await tenant.get("/v1/endpoints/billing/secret"))["key"].startswith("whsec_")
    changed = ok(
        await admin.patch("/v1/endpoints/billing", params=scoped, json={"description": "x"})
    )
    assert changed["description"] == "x"
    tested = ok(
        await tenant.post(
            "/v1/endpoints/billing/filter-test",
            json={"event_type": "invoice.paid", "payload": {}},
        )
    )
    assert tested["delivered"] is True
    emitted = ok(
        await admin.post(
            "/v1/events",
            json={"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}},
        ),
        202,
    )
    listed = ok(await admin.get("/v1/deliveries", params=scoped | {"endpoint_id": "billing"}))
    assert [item["event_id"] for item in listed["data"]] == [emitted["id"]]
    assert ok(await tenant.get("/v1/attempts", params={"endpoint_id": "billing"}))["data"] == []
    problem(
        await admin.get("/v1/deliveries", params={"endpoint_id": "billing"}),
        422,
        "tenant_required",
    )


async def test_a_uid_is_unique_per_tenant_and_private_to_it(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    await create_tenant(admin, uid="acme")
    globex = await create_tenant(admin, uid="globex")
    first = await create_endpoint(admin, "acme", uid="main")
    await create_endpoint(admin, "globex", uid="main")  # another tenant: allowed
    taken = problem(
        await admin.post(
            "/v1/endpoints",
            json={"tenant_id": "acme", "url": "https://example.com", "uid": "main"},
        ),
        409,
        "endpoint_uid_taken",
    )
    assert "'main'" in taken["detail"]
    other = await create_endpoint(admin, "acme", uid="other")
    problem(
        await admin.patch(f"/v1/endpoints/{other['id']}", json={"uid": "main"}),
        409,
        "endpoint_uid_taken",
    )
    # another tenant's key and another tenant's name find nothing of acme's
    globex_key = client_for(await tenant_key(admin, globex["id"]))
    assert ok(await globex_key.get("/v1/endpoints/main"))["id"] != first["id"]
    problem(await globex_key.get(f"/v1/endpoints/{first['id']}"), 404, "endpoint_not_found")
    problem(
        await admin.get(f"/v1/endpoints/{first['id']}", params={"tenant_id": "globex"}),
        404,
        "endpoint_not_found",
    )
    # a deleted endpoint frees its uid; a uid can be cleared
    assert ok(await admin.patch(f"/v1/endpoints/{other['id']}", json={"uid": None}))["uid"] is None
    await admin.delete(f"/v1/endpoints/{first['id']}")
    again = await create_endpoint(admin, "acme", uid="main")
    assert again["id"] != first["id"]


async def test_metadata_is_replaced_and_checked(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme", metadata={"a": "1", "b": "2"})
    path = f"/v1/endpoints/{endpoint['id']}"
    assert ok(await admin.patch(path, json={"metadata": {"c": "3"}}))["metadata"] == {"c": "3"}
    assert ok(await admin.patch(path, json={"description": "x"}))["metadata"] == {"c": "3"}
    cases = [
        ({"metadata": {"n": 1}}, ["body", "metadata", "n"]),
        ({"metadata": {f"k{i}": "v" for i in range(33)}}, ["body", "metadata"]),
        ({"metadata": None}, ["body"]),
        ({"uid": "ep_mine"}, ["body", "uid"]),
        ({"uid": "has space"}, ["body", "uid"]),
        ({"uid": ""}, ["body", "uid"]),
    ]
    for change, loc in cases:
        body = problem(await admin.patch(path, json=change), 422, "validation_error")
        assert body["errors"][0]["loc"][: len(loc)] == loc, (change, body)
