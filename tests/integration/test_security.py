"""Security: the SSRF guard in the sender and at endpoint creation, secrets at rest and out
of logs and errors, and tenant isolation on every route of the OpenAPI spec."""

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from cryptography.fernet import Fernet
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook

from hookpost.app import create_app
from hookpost.delivery.attempt import USER_AGENT
from hookpost.delivery.sender import AiohttpSender, SenderLimits
from hookpost.delivery.ssrf import DestinationPolicy
from hookpost.delivery.worker import Worker
from hookpost.encryption import InvalidToken, SecretBox
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.fake_dns import FakeResolver
from tests.integration.delivery_helpers import FAST, eventually, running_worker
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
    tenant_key,
)
from tests.receiver import receiver

HOSTILE_DNS = {
    "evil.test": ["10.0.0.1"],
    "metadata.test": ["169.254.169.254"],
    "rebind.test": ["93.184.216.34", "127.0.0.1"],
    "mapped.test": ["::ffff:192.168.0.1"],
}
LIMITS = SenderLimits(
    connections=4, total_timeout_s=2, connect_timeout_s=1, read_timeout_s=1, body_cap_bytes=100
)


async def test_the_sender_refuses_blocked_destinations_without_sending(settings: Settings) -> None:
    sender = AiohttpSender(
        LIMITS,
        user_agent=USER_AGENT,
        policy=DestinationPolicy.from_settings(Settings()),  # nothing opened: public addresses only
        resolver=FakeResolver(HOSTILE_DNS),
    )
    try:
        for url in [f"http://{host}/hook" for host in HOSTILE_DNS] + [
            "http://127.0.0.1:1/",
            "http://[::1]:1/",
            "http://[::ffff:169.254.169.254]/",
        ]:
            result = await sender.send(url, {"content-type": "application/json"}, b"{}")
            assert result.error_kind == "blocked_destination", (url, result)
            assert result.status_code is None
            assert "not a public address" in (result.error_message or "")
    finally:
        await sender.close()


async def test_blocked_attempts_are_logged_and_retried(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    await create_endpoint(admin, "acme", url="http://rebind.test/hook", event_types=["*"])
    ok(
        await admin.post(
            "/v1/events", json={"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
        ),
        202,
    )
    worker_settings = settings.model_copy(update=FAST | {"allowed_networks": ""})
    sender = AiohttpSender(
        LIMITS,
        user_agent=USER_AGENT,
        policy=DestinationPolicy.from_settings(worker_settings),
        resolver=FakeResolver(HOSTILE_DNS),
    )
    stop = asyncio.Event()
    task = asyncio.create_task(Worker(worker_settings, sender=sender).run(stop))
    try:

        async def two_attempts() -> bool:
            return bool(await db.fetchval("SELECT count(*) FROM attempts") >= 2)

        await eventually(two_attempts)
    finally:
        stop.set()
        await task
        await sender.close()
    attempts = await db.fetch("SELECT * FROM attempts ORDER BY attempt_number")
    assert {a["error_kind"] for a in attempts} == {"blocked_destination"}
    assert "rebind.test resolves to 127.0.0.1" in attempts[0]["error_message"]


async def test_endpoint_urls_with_blocked_literals_are_refused(
    admin: AsyncClient, settings: Settings
) -> None:
    tenant = await create_tenant(admin)
    for url in (
        "http://10.0.0.1/x",
        "http://169.254.169.254/latest",
        "http://[fd00::1]/",
        "http://0.0.0.0/",
    ):
        body = problem(
            await admin.post("/v1/endpoints", json={"tenant_id": tenant["id"], "url": url}),
            422,
            "blocked_destination",
        )
        assert body["detail"].startswith("url: ")
    endpoint = await create_endpoint(admin, tenant["id"], url="http://127.0.0.1:9/")  # opened
    problem(
        await admin.patch(f"/v1/endpoints/{endpoint['id']}", json={"url": "http://192.168.0.1/"}),
        422,
        "blocked_destination",
    )

    https_only = create_app(settings.model_copy(update={"https_only": True}))
    async with (
        https_only.router.lifespan_context(https_only),
        AsyncClient(
            transport=ASGITransport(app=https_only),
            base_url="http://test",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ) as client,
    ):
        problem(
            await client.post(
                "/v1/endpoints", json={"tenant_id": tenant["id"], "url": "http://example.com/"}
            ),
            422,
            "blocked_destination",
        )
        ok(
            await client.post(
                "/v1/endpoints", json={"tenant_id": tenant["id"], "url": "https://example.com/"}
            ),
            201,
        )


async def test_the_encryption_key_can_be_rotated(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        endpoint = await create_endpoint(admin, "acme", url=target.url, event_types=["*"])
        secret = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
        old_key = settings.secret_key.get_secret_value()  # type: ignore[union-attr]
        new_key = Fernet.generate_key().decode()
        stored = await db.fetchval("SELECT ciphertext FROM endpoint_secrets")
        assert secret.encode() not in stored
        assert SecretBox([new_key, old_key]).decrypt(stored) == secret
        with pytest.raises(InvalidToken):
            SecretBox([new_key]).decrypt(stored)
        # a worker whose key list puts a new key first still reads the old secrets
        rotated = settings.model_copy(update={"secret_key": SecretStr(f"{new_key},{old_key}")})
        async with running_worker(rotated):
            ok(
                await admin.post(
                    "/v1/events",
                    json={"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}},
                ),
                202,
            )
            [request] = await target.wait_for(1)
    Webhook(secret).verify(request.body, request.headers)


async def test_secrets_and_keys_stay_out_of_errors_and_logs(
    admin: AsyncClient,
    anonymous: AsyncClient,
    db: asyncpg.Connection,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenant = await create_tenant(admin)
    short = "whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ="  # too short: 21 bytes
    body = problem(
        await admin.post(
            "/v1/endpoints",
            json={"tenant_id": tenant["id"], "url": "https://a.test/", "secret": short},
        ),
        422,
        "validation_error",
    )
    assert short not in str(body)
    assert "c2VjcmV0" not in str(body)
    wrong = "hp_this-is-a-guessed-key"
    unauthorized = await anonymous.get("/v1/tenants", headers={"authorization": f"Bearer {wrong}"})
    assert wrong not in unauthorized.text
    async with receiver() as target:
        endpoint = await create_endpoint(
            admin,
            tenant["id"],
            url=target.url,
            event_types=["*"],
            headers={"authorization": "Bearer t0k"},
        )
        await create_event_type(admin, "a.b")
        secret = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
        async with running_worker(settings, log_level="debug"):
            ok(
                await admin.post(
                    "/v1/events",
                    json={"tenant_id": tenant["id"], "event_type": "a.b", "payload": {}},
                ),
                202,
            )
            await target.wait_for(1)

            async def logged() -> bool:
                return bool(await db.fetchval("SELECT count(*) FROM attempts"))

            await eventually(logged)
    row = await db.fetchrow("SELECT * FROM attempts")
    assert "t0k" not in row["request_headers"]
    everything = caplog.text + str(dict(row))
    for leaked in (secret, secret.removeprefix("whsec_"), ADMIN_KEY, "t0k"):
        assert leaked not in everything


# The route walk: every operation of the spec, called with a tenant key on another tenant's
# objects, answers 404 (the object does not exist for it) or 403 (an admin-only action).

SAMPLE_BODIES: dict[tuple[str, str], dict[str, Any]] = {
    ("post", "/v1/tenants"): {"name": "x"},
    ("post", "/v1/api-keys"): {"name": "x", "tenant_id": "theirs"},
    ("post", "/v1/event-types"): {"name": "x.y"},
    ("post", "/v1/endpoints"): {"tenant_id": "theirs", "url": "https://a.test/"},
    ("post", "/v1/events"): {"tenant_id": "theirs", "event_type": "invoice.paid", "payload": {}},
    ("post", "/v1/events/batch"): {
        "events": [{"tenant_id": "theirs", "event_type": "invoice.paid", "payload": {}}]
    },
    ("post", "/v1/endpoints/{endpoint_id}/recover"): {"since": "2026-01-01T00:00:00Z"},
    ("post", "/v1/endpoints/{endpoint_id}/subscriptions"): {"event_type": "*"},
    ("post", "/v1/endpoints/{endpoint_id}/secret/rotate"): {},
    ("post", "/v1/tenants/{tenant_id}/portal-links"): {},
    ("patch", "/v1/tenants/{tenant_id}"): {"name": "x"},
    ("patch", "/v1/endpoints/{endpoint_id}"): {"description": "x"},
    ("patch", "/v1/event-types/{name}"): {"description": "x"},
}
# Shared by every tenant by design: the catalogue of event types is readable by all.
PUBLIC_READS = {("get", "/v1/event-types"), ("get", "/v1/event-types/{name}")}
# Lists asked for another tenant's objects answer 404, or, where they take no tenant filter,
# only the caller's own objects.
LIST_FILTERS = {"tenant_id": "theirs"}


async def test_every_route_is_sealed_between_tenants(
    admin: AsyncClient,
    db: asyncpg.Connection,
    client_for: Callable[[str], AsyncClient],
    app: FastAPI,
) -> None:
    mine = await create_tenant(admin, uid="mine")
    theirs = await create_tenant(admin, uid="theirs")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(admin, "theirs", event_types=["*"])
    subscription = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/subscriptions"))["data"][0]
    event = ok(
        await admin.post(
            "/v1/events", json={"tenant_id": "theirs", "event_type": "invoice.paid", "payload": {}}
        ),
        202,
    )
    delivery = ok(await admin.get("/v1/deliveries", params={"tenant_id": "theirs"}))["data"][0]
    key = ok(await admin.post("/v1/api-keys", json={"name": "k", "tenant_id": "theirs"}), 201)
    objects = {
        "tenant_id": theirs["id"],
        "endpoint_id": endpoint["id"],
        "subscription_id": subscription["id"],
        "event_id": event["id"],
        "delivery_id": delivery["id"],
        "key_id": key["id"],
        "name": "invoice.paid",
    }
    tenant = client_for(await tenant_key(admin, mine["id"]))
    spec = app.openapi()
    walked = 0
    for path, item in spec["paths"].items():
        if not path.startswith("/v1/"):
            continue
        for method in item:
            if (method, path) in PUBLIC_READS:
                continue
            url = re.sub(r"\{(\w+)\}", lambda m: objects[m.group(1)], path)
            params = LIST_FILTERS if method == "get" and "{" not in path else None
            response = await tenant.request(
                method, url, json=SAMPLE_BODIES.get((method, path)), params=params
            )
            walked += 1
            if params is not None and response.status_code == 200:
                # a list that takes no tenant filter answers with the caller's own objects
                assert not any(value in response.text for value in objects.values())
                continue
            assert response.status_code in (403, 404), (method, path, response.text)
            if response.status_code == 404:
                assert response.json()["code"].endswith("_not_found"), (method, path)
    assert walked >= 30
    # and nothing of theirs changed
    assert ok(await admin.get(f"/v1/tenants/{theirs['id']}"))["name"] == "Acme"
    assert ok(await admin.get(f"/v1/endpoints/{endpoint['id']}"))["enabled"] is True
