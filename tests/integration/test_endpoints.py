"""The /v1/endpoints routes: endpoints, subscriptions and secrets."""

from collections.abc import Callable

import asyncpg
from httpx import AsyncClient
from standardwebhooks.webhooks import Webhook

from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
    tenant_key,
)


async def test_create_with_every_field(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin, uid="acme")
    await create_event_type(admin, "user.signup")
    endpoint = await create_endpoint(
        admin,
        "acme",
        url="https://hooks.acme.test/in?x=1",
        description="main",
        event_types=["invoice.*", "user.signup", "*"],
        headers={"X-Customer": "acme"},
        rate_limit_per_s=5,
        max_in_flight=3,
    )
    assert endpoint["id"].startswith("ep_")
    assert endpoint["tenant_id"] == tenant["id"]
    assert endpoint["event_types"] == ["invoice.*", "user.signup", "*"]
    assert endpoint["headers"] == {"X-Customer": "acme"}
    assert (endpoint["rate_limit_per_s"], endpoint["max_in_flight"]) == (5, 3)
    assert endpoint["enabled"] is True
    assert endpoint["disabled_reason"] is None
    assert endpoint["warnings"] == [  # no event type starts with "invoice." yet
        "No event type matches 'invoice.*' today: the endpoint receives nothing for it until "
        "one is created"
    ]
    assert ok(await admin.get(f"/v1/endpoints/{endpoint['id']}")) == endpoint | {"warnings": []}


async def test_defaults(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    endpoint = await create_endpoint(admin, tenant["id"])
    assert endpoint["event_types"] == []
    assert endpoint["headers"] == {}
    assert endpoint["max_in_flight"] == 10
    assert endpoint["rate_limit_per_s"] is None
    disabled = await create_endpoint(admin, tenant["id"], enabled=False)
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "disabled when created"


async def test_url_validation(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    for url in (
        "ftp://example.com/x",
        "example.com/hook",
        "https://user:pass@example.com/",
        "https://user@example.com/",
        "https:///path",
        "https://example.com:99999/",
        "https://exa mple.com/",
        "",
        "https://example.com/" + "a" * 2048,
    ):
        body = problem(
            await admin.post("/v1/endpoints", json={"tenant_id": tenant["id"], "url": url}),
            422,
            "validation_error",
        )
        assert body["errors"][0]["loc"] == ["body", "url"], url


async def test_header_validation(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    for headers in (
        {"Content-Type": "text/plain"},
        {"content-length": "1"},
        {"Host": "evil"},
        {"User-Agent": "x"},
        {"Transfer-Encoding": "chunked"},
        {"webhook-signature": "v1,forged"},
        {"Webhook-Id": "x"},
        {"bad name": "x"},
        {"x-ok": "line\r\nbreak"},
    ):
        problem(
            await admin.post(
                "/v1/endpoints",
                json={"tenant_id": tenant["id"], "url": "https://a.test/", "headers": headers},
            ),
            422,
            "validation_error",
        )


async def test_other_validation(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    base = {"tenant_id": tenant["id"], "url": "https://a.test/"}
    for extra in (
        {"max_in_flight": 0},
        {"max_in_flight": 1001},
        {"rate_limit_per_s": 0},
        {"event_types": ["invoice.*.x"]},
        {"event_types": ["**"]},
        {"secret": "nope"},
        {"secret": "whsec_" + "A" * 8},
        {"secret": "whsec_!!!!"},
        {"enabled": "maybe"},
    ):
        problem(await admin.post("/v1/endpoints", json=base | extra), 422, "validation_error")
    problem(
        await admin.post("/v1/endpoints", json=base | {"event_types": ["no.such.type"]}),
        422,
        "unknown_event_type",
    )
    problem(
        await admin.post("/v1/endpoints", json={"url": "https://a.test/"}), 422, "validation_error"
    )
    problem(
        await admin.post("/v1/endpoints", json={"tenant_id": "ghost", "url": "https://a.test/"}),
        404,
        "tenant_not_found",
    )


async def test_update_disable_enable_delete(admin: AsyncClient, db: asyncpg.Connection) -> None:
    tenant = await create_tenant(admin)
    await create_event_type(admin, "a.b")
    endpoint = await create_endpoint(admin, tenant["id"], event_types=["a.b"], rate_limit_per_s=2)
    path = f"/v1/endpoints/{endpoint['id']}"

    changed = ok(
        await admin.patch(
            path,
            json={
                "url": "https://new.test/",
                "event_types": ["*"],
                "rate_limit_per_s": None,
                "headers": {"x-a": "1"},
            },
        )
    )
    assert changed["url"] == "https://new.test/"
    assert changed["event_types"] == ["*"]
    assert changed["rate_limit_per_s"] is None
    assert changed["headers"] == {"x-a": "1"}

    disabled = ok(
        await admin.patch(path, json={"enabled": False, "disabled_reason": "maintenance"})
    )
    assert disabled["enabled"] is False
    assert disabled["disabled_reason"] == "maintenance"
    assert disabled["disabled_at"] is not None
    enabled = ok(await admin.patch(path, json={"enabled": True}))
    assert (enabled["enabled"], enabled["disabled_reason"], enabled["disabled_at"]) == (
        True,
        None,
        None,
    )

    problem(await admin.patch(path, json={"url": None}), 422, "validation_error")
    problem(await admin.patch(path, json={"url": "ftp://x"}), 422, "validation_error")
    problem(await admin.patch(path, json={"event_types": ["x.y"]}), 422, "unknown_event_type")

    assert (await admin.delete(path)).status_code == 204
    problem(await admin.get(path), 404, "endpoint_not_found")
    problem(await admin.delete(path), 404, "endpoint_not_found")
    assert ok(await admin.get("/v1/endpoints"))["data"] == []
    # the row stays, so that its delivery log survives
    assert await db.fetchval("SELECT count(*) FROM endpoints WHERE deleted_at IS NOT NULL") == 1


async def test_tenant_isolation(
    admin: AsyncClient, client_for: Callable[[str], AsyncClient]
) -> None:
    mine = await create_tenant(admin, uid="mine")
    theirs = await create_tenant(admin, uid="theirs")
    their_endpoint = await create_endpoint(admin, theirs["id"])
    tenant = client_for(await tenant_key(admin, mine["id"]))

    own = await create_endpoint(tenant, None)  # a tenant key may leave tenant_id out
    assert own["tenant_id"] == mine["id"]
    problem(
        await tenant.post("/v1/endpoints", json={"tenant_id": "theirs", "url": "https://x.test/"}),
        404,
        "tenant_not_found",
    )
    assert [e["id"] for e in ok(await tenant.get("/v1/endpoints"))["data"]] == [own["id"]]
    problem(
        await tenant.get("/v1/endpoints", params={"tenant_id": "theirs"}), 404, "tenant_not_found"
    )
    path = f"/v1/endpoints/{their_endpoint['id']}"
    for response in (
        await tenant.get(path),
        await tenant.patch(path, json={"description": "x"}),
        await tenant.delete(path),
        await tenant.get(f"{path}/secret"),
        await tenant.post(f"{path}/secret/rotate", json={}),
        await tenant.get(f"{path}/subscriptions"),
        await tenant.post(f"{path}/subscriptions", json={"event_type": "*"}),
    ):
        problem(response, 404, "endpoint_not_found")
    problem(await tenant.get("/v1/endpoints/garbage"), 404, "endpoint_not_found")

    by_admin = ok(await admin.get("/v1/endpoints", params={"tenant_id": "theirs"}))
    assert [e["id"] for e in by_admin["data"]] == [their_endpoint["id"]]
    assert len(ok(await admin.get("/v1/endpoints"))["data"]) == 2


async def test_pagination(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    made = [(await create_endpoint(admin, tenant["id"]))["id"] for _ in range(5)]
    seen, cursor = [], None
    while True:
        params = {"limit": 2, "tenant_id": tenant["id"]} | ({"cursor": cursor} if cursor else {})
        page = ok(await admin.get("/v1/endpoints", params=params))
        seen += [e["id"] for e in page["data"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == list(reversed(made))


async def test_subscriptions(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(admin, tenant["id"])
    path = f"/v1/endpoints/{endpoint['id']}/subscriptions"

    first = ok(await admin.post(path, json={"event_type": "invoice.paid"}), 201)
    assert first["id"].startswith("sub_")
    assert first["endpoint_id"] == endpoint["id"]
    again = ok(await admin.post(path, json={"event_type": "invoice.paid"}), 200)
    assert again["id"] == first["id"]
    wildcard = ok(await admin.post(path, json={"event_type": "*"}), 201)
    prefix = ok(await admin.post(path, json={"event_type": "user.*"}), 201)
    listed = ok(await admin.get(path))
    assert [s["event_type"] for s in listed["data"]] == ["invoice.paid", "*", "user.*"]
    assert listed["next_cursor"] is None

    problem(await admin.post(path, json={"event_type": "nope.x"}), 422, "unknown_event_type")
    problem(await admin.post(path, json={"event_type": "a.*.b"}), 422, "validation_error")
    problem(await admin.post(path, json={}), 422, "validation_error")

    assert (await admin.delete(f"{path}/{wildcard['id']}")).status_code == 204
    problem(await admin.delete(f"{path}/{wildcard['id']}"), 404, "subscription_not_found")
    problem(await admin.delete(f"{path}/garbage"), 404, "subscription_not_found")
    other = await create_endpoint(admin, tenant["id"])
    problem(
        await admin.delete(f"/v1/endpoints/{other['id']}/subscriptions/{prefix['id']}"),
        404,
        "subscription_not_found",
    )
    endpoint_now = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))
    assert endpoint_now["event_types"] == ["invoice.paid", "user.*"]


async def test_secret_get_and_rotate(admin: AsyncClient, db: asyncpg.Connection) -> None:
    tenant = await create_tenant(admin)
    given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    endpoint = await create_endpoint(admin, tenant["id"], secret=given)
    path = f"/v1/endpoints/{endpoint['id']}/secret"
    assert ok(await admin.get(path))["key"] == given

    rotated = ok(await admin.post(f"{path}/rotate", json={"grace_period_s": 3600}))
    assert rotated["key"] != given
    assert ok(await admin.get(path)) == rotated
    Webhook(rotated["key"])  # the standardwebhooks package accepts the generated secret
    mine = ok(await admin.post(f"{path}/rotate", json={"key": given, "grace_period_s": 0}))
    assert mine["key"] == given
    assert [s["key"] for s in mine["secrets"]] == [given]  # no grace: the others stopped

    # the secrets are encrypted at rest: no column holds them in the clear
    rows = await db.fetch("SELECT ciphertext FROM endpoint_secrets")
    assert rows
    for row in rows:
        assert given.encode() not in row["ciphertext"]
        assert rotated["key"].encode() not in row["ciphertext"]

    problem(await admin.post(f"{path}/rotate", json={"key": "bad"}), 422, "validation_error")
    problem(
        await admin.post(f"{path}/rotate", json={"grace_period_s": -1}), 422, "validation_error"
    )


async def test_rotation_keeps_at_most_ten_secrets(
    admin: AsyncClient, db: asyncpg.Connection
) -> None:
    tenant = await create_tenant(admin)
    endpoint = await create_endpoint(admin, tenant["id"])
    for _ in range(14):
        ok(await admin.post(f"/v1/endpoints/{endpoint['id']}/secret/rotate", json={}))
    assert await db.fetchval("SELECT count(*) FROM endpoint_secrets") == 10


async def test_an_endpoint_that_will_receive_nothing_is_warned_about(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin)
    await create_event_type(admin, "invoice.paid")
    bare = await create_endpoint(admin, tenant["id"])
    [warning] = bare["warnings"]
    assert "receives nothing" in warning
    assert '["*"]' in warning
    typo = await create_endpoint(admin, tenant["id"], event_types=["invoce.*", "invoice.*"])
    assert typo["warnings"] == [
        "No event type matches 'invoce.*' today: the endpoint receives nothing for it until "
        "one is created"
    ]
    fine = await create_endpoint(admin, tenant["id"], event_types=["invoice.*", "*"])
    assert fine["warnings"] == []
    assert ok(await admin.get(f"/v1/endpoints/{fine['id']}"))["warnings"] == []

    emptied = ok(await admin.patch(f"/v1/endpoints/{fine['id']}", json={"event_types": []}))
    assert "receives nothing" in emptied["warnings"][0]
    added = await admin.post(
        f"/v1/endpoints/{fine['id']}/subscriptions", json={"event_type": "user.*"}
    )
    assert "'user.*'" in ok(added, 201)["warnings"][0]
    added = await admin.post(
        f"/v1/endpoints/{fine['id']}/subscriptions", json={"event_type": "invoice.*"}
    )
    assert ok(added, 201)["warnings"] == []
