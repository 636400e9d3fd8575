"""A problem's detail is a sentence a person acts on: where, what was wrong, and the allowed
values or an example; ``errors`` keeps the machine-readable list."""

from httpx import AsyncClient

from tests.integration.helpers import create_tenant, problem


async def test_a_bad_field_says_what_is_wrong(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    body = problem(
        await admin.post("/v1/endpoints", json={"tenant_id": "acme", "url": "ftp://x"}),
        422,
        "validation_error",
    )
    assert body["detail"].startswith("body.url: ")
    assert "Value error" not in body["detail"]
    assert body["errors"][0]["loc"] == ["body", "url"]


async def test_a_missing_field_is_named(admin: AsyncClient) -> None:
    body = problem(await admin.post("/v1/tenants", json={}), 422, "validation_error")
    assert body["detail"] == "body.name is required"


async def test_a_body_without_json_says_how_to_send_it(admin: AsyncClient) -> None:
    answer = await admin.post(
        "/v1/tenants", content=b"name=acme", headers={"content-type": "text/plain"}
    )
    body = problem(answer, 422, "validation_error")
    assert "content-type: application/json" in body["detail"]


async def test_a_time_without_a_zone_gets_an_example(admin: AsyncClient) -> None:
    answer = await admin.get("/v1/deliveries", params={"since": "2026-11-22T08:00:00"})
    body = problem(answer, 422, "validation_error")
    assert body["detail"] == "query.since needs a time zone, such as 2026-11-22T08:00:00Z"


async def test_a_wrong_choice_lists_the_allowed_values(admin: AsyncClient) -> None:
    body = problem(
        await admin.get("/v1/deliveries", params={"status": "failing"}), 422, "validation_error"
    )
    assert body["detail"].startswith("query.status: ")
    for value in ("pending", "in_flight", "succeeded", "failed", "cancelled"):
        assert value in body["detail"]
