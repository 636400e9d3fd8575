"""The /v1/event-types routes."""

from collections.abc import Callable

from httpx import AsyncClient

from tests.integration.helpers import create_event_type, create_tenant, ok, problem, tenant_key

SCHEMA = {"type": "object", "required": ["invoice_id"]}


async def test_crud(admin: AsyncClient) -> None:
    created = await create_event_type(
        admin, "invoice.paid", description="Paid in full", schema=SCHEMA
    )
    assert created["id"].startswith("et_")
    assert created["schema"] == SCHEMA
    assert created["archived"] is False
    assert ok(await admin.get("/v1/event-types/invoice.paid")) == created

    changed = ok(
        await admin.patch("/v1/event-types/invoice.paid", json={"schema": None, "archived": True})
    )
    assert changed["schema"] is None
    assert changed["archived"] is True
    assert changed["description"] == "Paid in full"

    assert ok(await admin.get("/v1/event-types"))["data"] == []
    listed = ok(await admin.get("/v1/event-types", params={"include_archived": True}))
    assert [t["name"] for t in listed["data"]] == ["invoice.paid"]

    assert (await admin.delete("/v1/event-types/invoice.paid")).status_code == 204
    problem(await admin.get("/v1/event-types/invoice.paid"), 404, "event_type_not_found")


async def test_validation(admin: AsyncClient) -> None:
    for name in ("", "invoice..paid", "invoice.", "in voice", "invoice.*", "ü"):
        problem(await admin.post("/v1/event-types", json={"name": name}), 422, "validation_error")
    problem(
        await admin.post("/v1/event-types", json={"name": "a", "schema": {"type": "nonsense"}}),
        422,
        "invalid_schema",
    )
    await create_event_type(admin, "a")
    problem(await admin.post("/v1/event-types", json={"name": "a"}), 409, "event_type_exists")
    problem(
        await admin.patch("/v1/event-types/a", json={"schema": {"type": 5}}), 422, "invalid_schema"
    )
    problem(
        await admin.patch("/v1/event-types/a", json={"archived": None}), 422, "validation_error"
    )
    problem(await admin.patch("/v1/event-types/zzz", json={}), 404, "event_type_not_found")
    problem(await admin.delete("/v1/event-types/zzz"), 404, "event_type_not_found")


async def test_tenant_keys_read_but_do_not_write(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    await create_event_type(admin, "user.signup")
    tenant = client_for(await tenant_key(admin, (await create_tenant(admin))["id"]))
    assert ok(await tenant.get("/v1/event-types/user.signup"))["name"] == "user.signup"
    assert len(ok(await tenant.get("/v1/event-types"))["data"]) == 1
    problem(await tenant.post("/v1/event-types", json={"name": "x"}), 403, "admin_only")
    problem(await tenant.patch("/v1/event-types/user.signup", json={}), 403, "admin_only")
    problem(await tenant.delete("/v1/event-types/user.signup"), 403, "admin_only")


async def test_pagination(admin: AsyncClient) -> None:
    for i in range(5):
        await create_event_type(admin, f"type.n{i}")
    first = ok(await admin.get("/v1/event-types", params={"limit": 2}))
    assert [t["name"] for t in first["data"]] == ["type.n4", "type.n3"]
    second = ok(
        await admin.get("/v1/event-types", params={"limit": 2, "cursor": first["next_cursor"]})
    )
    assert [t["name"] for t in second["data"]] == ["type.n2", "type.n1"]
    third = ok(
        await admin.get("/v1/event-types", params={"limit": 2, "cursor": second["next_cursor"]})
    )
    assert [t["name"] for t in third["data"]] == ["type.n0"]
    assert third["next_cursor"] is None
