"""The tenant portal over HTTP: links made by admins only, a link's session confined to its
tenant (every route of another tenant's objects is not found), read-only links change
nothing, forms need the session's token, test events reach one endpoint, and the product's
brand and framing settings apply."""

import html
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from pydantic import ValidationError
from standardwebhooks.webhooks import Webhook

from hookpost import ids
from hookpost.admin.portal_links import portal_link_token
from hookpost.app import create_app
from hookpost.encryption import load_secret_box
from hookpost.settings import Settings
from tests.integration.delivery_helpers import running_worker
from tests.integration.helpers import (
    admin_of,
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    problem,
    tenant_key,
)
from tests.receiver import receiver


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


@asynccontextmanager
async def _browser_for(settings: Settings) -> AsyncIterator[AsyncClient]:
    """A browser of another hookpost started with ``settings``, over the same database."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = ASGITransport(app=app)
        async with AsyncClient(transport=transport, base_url="http://test") as client:
            yield client


async def _link(admin: AsyncClient, tenant: str, scope: str = "manage") -> str:
    made = ok(await admin.post(f"/v1/tenants/{tenant}/portal-links", json={"scope": scope}), 201)
    assert made["scope"] == scope
    return str(made["url"]).removeprefix("http://test")


async def _open(browser: AsyncClient, link: str) -> Response:
    answer = await browser.get(link)
    assert (answer.status_code, answer.headers["location"]) == (303, "/portal")
    return answer


def _csrf(page: Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no form token"
    return found.group(1)


async def _two_tenants(admin: AsyncClient) -> tuple[dict[str, Any], dict[str, Any]]:
    await create_event_type(admin, "invoice.paid")
    mine = await create_tenant(admin, uid="mine")
    await create_tenant(admin, uid="theirs")
    await create_endpoint(admin, "mine", url="https://example.com/mine", event_types=["*"])
    other = await create_endpoint(
        admin, "theirs", url="https://example.com/theirs", event_types=["*"]
    )
    body = {"tenant_id": "theirs", "event_type": "invoice.paid", "payload": {"n": 1}}
    ok(await admin.post("/v1/events", json=body), 202)
    return mine, other


async def test_links_are_made_by_admins_for_one_tenant(admin: AsyncClient) -> None:
    tenant = await create_tenant(admin, uid="acme")
    made = ok(await admin.post(f"/v1/tenants/{tenant['id']}/portal-links", json={}), 201)
    assert made["scope"] == "read"
    assert made["url"].startswith("http://test/portal/open?token=")
    key = await tenant_key(admin, tenant["id"])
    async with AsyncClient(
        transport=admin._transport,
        base_url="http://test",
        headers={"authorization": f"Bearer {key}"},
    ) as own:
        problem(
            await own.post(f"/v1/tenants/{tenant['id']}/portal-links", json={}), 403, "admin_only"
        )
    unknown = await admin.post("/v1/tenants/nobody/portal-links", json={})
    problem(unknown, 404, "tenant_not_found")
    refused = await admin.post(
        f"/v1/tenants/{tenant['id']}/portal-links", json={"expires_in_s": 10**6}
    )
    problem(refused, 422, "validation_error")


async def test_a_link_opens_a_strict_session_and_a_bad_one_does_not(
    admin: AsyncClient, browser: AsyncClient, settings: Settings
) -> None:
    tenant = await create_tenant(admin, uid="acme")
    opened = await _open(browser, await _link(admin, tenant["id"]))
    cookie = opened.headers["set-cookie"].lower()
    assert "hookpost_portal=" in cookie
    for flag in ("httponly", "samesite=strict"):
        assert flag in cookie
    assert (await browser.get("/portal")).status_code == 200
    stranger = AsyncClient(transport=browser._transport, base_url="http://test")
    async with stranger:
        assert (await stranger.get("/portal/open?token=forged")).status_code == 403
        expired = portal_link_token(
            load_secret_box(settings), uuid.UUID(int=1), "manage", time.time() - 1
        )
        assert (await stranger.get(f"/portal/open?token={expired}")).status_code == 403
        assert (await stranger.get("/portal")).status_code == 403
        # the operator console's session is not the portal's, nor the other way round
        assert (await browser.get("/endpoints")).status_code == 303


async def test_another_tenants_objects_are_not_found_on_any_route(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    mine, other = await _two_tenants(admin)
    await _open(browser, await _link(admin, mine["id"]))
    token = _csrf(await browser.get("/portal"))
    delivery = await db.fetchval("SELECT id FROM deliveries")
    theirs = ids.encode(ids.Prefix.DELIVERY, delivery)
    endpoint = other["id"]
    for path in (f"/portal/endpoints/{endpoint}", f"/portal/deliveries/{theirs}"):
        assert (await browser.get(path)).status_code == 404, path
    for action in ("url", "secret", "rotate", "test", "delete"):
        path = f"/portal/endpoints/{endpoint}/{action}"
        form = {"csrf": token, "url": "https://example.com/taken"}
        assert (await browser.post(path, data=form)).status_code == 404, path
    resend = await browser.post(f"/portal/deliveries/{theirs}/resend", data={"csrf": token})
    assert resend.status_code == 404
    listed = await browser.get(f"/portal/deliveries?endpoint={endpoint}")
    assert theirs not in listed.text
    assert "No deliveries yet" in listed.text
    assert "example.com/theirs" not in listed.text  # not even as the filter's name
    page = await browser.get("/portal")
    assert "example.com/mine" in page.text
    assert "example.com/theirs" not in page.text
    row = await db.fetchrow("SELECT url, deleted_at FROM endpoints WHERE url LIKE '%theirs'")
    assert tuple(row) == ("https://example.com/theirs", None)
    assert await db.fetchval("SELECT count(*) FROM events") == 1  # no test event was sent


async def test_a_read_only_link_changes_nothing(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    tenant = await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme", url="https://example.com/a")
    await _open(browser, await _link(admin, tenant["id"], scope="read"))
    page = await browser.get(f"/portal/endpoints/{endpoint['id']}")
    assert page.status_code == 200
    assert "read-only" in page.text
    actions = re.findall(r'<form method="post" action="([^"]+)"', page.text)
    assert actions == [f"/portal/endpoints/{endpoint['id']}/filter-test"]  # it changes nothing
    for action in ("secret", "rotate", "test", "delete"):
        answer = await browser.post(f"/portal/endpoints/{endpoint['id']}/{action}", data={})
        assert answer.status_code == 403
    assert await db.fetchval("SELECT deleted_at FROM endpoints") is None


async def test_forms_need_the_sessions_token(admin: AsyncClient, browser: AsyncClient) -> None:
    tenant = await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme", url="https://example.com/a")
    await _open(browser, await _link(admin, tenant["id"]))
    forged = await browser.post(f"/portal/endpoints/{endpoint['id']}/secret", data={})
    assert forged.status_code == 403
    assert "whsec_" not in forged.text


async def test_a_test_event_reaches_that_endpoint_alone_signed(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    async with receiver() as target:
        tenant = await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        endpoint = await create_endpoint(
            admin, "acme", url=f"{target.url}/one", event_types=["invoice.paid"]
        )
        await create_endpoint(admin, "acme", url=f"{target.url}/two", event_types=["*"])
        await _open(browser, await _link(admin, tenant["id"]))
        path = f"/portal/endpoints/{endpoint['id']}"
        token = _csrf(await browser.get(path))
        revealed = await browser.post(f"{path}/secret", data={"csrf": token})
        secret = re.search(r'<code id="secret">(whsec_[^<]+)</code>', revealed.text)
        assert secret
        async with running_worker(settings):
            sent = await browser.post(f"{path}/test", data={"csrf": token})
            assert sent.status_code == 303
            [request] = await target.wait_for(1)
    assert request.path == "/one"
    Webhook(secret.group(1)).verify(request.body, request.headers)
    assert b'"type":"hookpost.test"' in request.body
    assert await db.fetchval("SELECT count(*) FROM deliveries") == 1


async def test_the_portal_carries_the_brand_and_its_framing_policy(
    admin: AsyncClient, settings: Settings, db: asyncpg.Connection
) -> None:
    branded = settings.model_copy(
        update={
            "portal_name": "Acme Billing <b>",
            "portal_color": "#aa3300",
            "portal_logo_url": "https://cdn.example.com/logo.png",
            "portal_frame_ancestors": "https://app.example.com",
        }
    )
    async with _browser_for(branded) as client:
        tenant = await create_tenant(admin, uid="acme")
        await _open(client, await _link(admin, tenant["id"]))
        page = await client.get("/portal")
        assert "Acme Billing &lt;b&gt;" in page.text
        policy = page.headers["content-security-policy"]
        assert "frame-ancestors https://app.example.com" in policy
        assert "img-src 'self' data: https://cdn.example.com" in policy
        css = await client.get("/portal/brand.css")
        assert "--accent: #aa3300" in css.text
    with pytest.raises(ValidationError, match="portal_color"):
        Settings(portal_color="red;}body{display:none")


async def test_links_carry_the_public_url_not_the_address_asked(
    admin: AsyncClient, settings: Settings
) -> None:
    """A backend that asks on an internal name (http://api:8000) hands its customers the
    address they can reach: HOOKPOST_PUBLIC_URL; without it, the address that was asked."""
    await create_tenant(admin, uid="acme")
    asked = ok(await admin.post("/v1/tenants/acme/portal-links", json={}), 201)
    assert asked["url"].startswith("http://test/portal/open?token=")
    public = Settings.model_validate(
        settings.model_dump() | {"public_url": "https://webhooks.example.com/"}
    )
    async with admin_of(public, base_url="http://api:8000") as backend:
        made = ok(await backend.post("/v1/tenants/acme/portal-links", json={}), 201)
    assert made["url"].startswith("https://webhooks.example.com/portal/open?token=")


@pytest.mark.parametrize(
    "url", ["webhooks.example.com", "ftp://example.com", "https://", "https://x.com/?a=1"]
)
def test_a_public_url_that_is_no_base_address_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="public_url"):
        Settings(public_url=url)


async def test_revoking_ends_the_tenants_links_and_sessions_at_once(
    app: FastAPI, admin: AsyncClient, browser: AsyncClient, client_for: Any
) -> None:
    """A leaked link need not wait for its expiry: after a revocation, the tenant's open
    sessions end at their next request and its unopened links do not open; a link made
    afterwards works, and another tenant's sessions are untouched."""
    await create_tenant(admin, uid="acme")
    await create_tenant(admin, uid="other")
    unopened = await _link(admin, "acme")
    await _open(browser, await _link(admin, "acme", scope="manage"))
    assert (await browser.get("/portal")).status_code == 200
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as other:
        await _open(other, await _link(admin, "other"))

        acme_key = client_for(await tenant_key(admin, "acme"))
        problem(await acme_key.post("/v1/tenants/acme/portal-links/revoke"), 403, "admin_only")
        assert (await admin.post("/v1/tenants/acme/portal-links/revoke")).status_code == 204
        problem(await admin.post("/v1/tenants/nobody/portal-links/revoke"), 404, "tenant_not_found")

        assert (await browser.get("/portal")).status_code == 403  # the open session ended
        refused = await browser.get(unopened)
        assert refused.status_code == 403
        assert "revoked" in refused.text
        assert (await other.get("/portal")).status_code == 200
    await _open(browser, await _link(admin, "acme"))
    assert (await browser.get("/portal")).status_code == 200


async def test_a_deleted_tenants_portal_session_ends(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    await create_tenant(admin, uid="acme")
    await _open(browser, await _link(admin, "acme"))
    assert (await browser.get("/portal")).status_code == 200
    assert (await admin.delete("/v1/tenants/acme")).status_code == 204
    assert (await browser.get("/portal")).status_code == 403


async def test_hookposts_own_event_types_are_not_offered_to_tenants(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    """hookpost's operational types are the operator's: the portal neither lists them nor
    lets a crafted form subscribe to one."""
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    await db.execute(  # as hookpost makes its own types for the operations tenant
        "INSERT INTO event_types (id, name, description, archived) "
        "VALUES (gen_random_uuid(), 'hookpost.endpoint.disabled', '', false) "
        "ON CONFLICT (name) DO NOTHING"
    )
    await _open(browser, await _link(admin, "acme", scope="manage"))
    page = await browser.get("/portal")
    assert 'value="invoice.paid"' in page.text
    assert "hookpost.endpoint.disabled" not in page.text
    answer = await browser.post(
        "/portal/endpoints",
        data={
            "url": "https://example.com/hook",
            "event_types": "hookpost.endpoint.disabled",
            "csrf": _csrf(page),
        },
    )
    assert "not known" in answer.text
    assert await db.fetchval("SELECT count(*) FROM endpoints") == 0


async def test_deliveries_show_their_endpoint_and_filter_by_endpoint_and_state(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    await create_event_type(admin, "invoice.paid")
    await create_tenant(admin, uid="acme")
    first = await create_endpoint(admin, "acme", url="https://example.com/first", event_types=["*"])
    await create_endpoint(admin, "acme", url="https://example.com/second", event_types=["*"])
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": 1}}
    ok(await admin.post("/v1/events", json=body), 202)
    await db.execute(
        "UPDATE deliveries SET status = 'failed' WHERE endpoint_id = $1",
        ids.decode(ids.Prefix.ENDPOINT, first["id"]),
    )
    await _open(browser, await _link(admin, "acme"))
    every = (await browser.get("/portal/deliveries")).text
    assert "example.com/first" in every
    assert "example.com/second" in every
    failed = (await browser.get("/portal/deliveries?status=failed")).text
    assert failed.count('class="badge failed"') == 1
    assert "example.com/second" not in failed
    only = (await browser.get(f"/portal/deliveries?endpoint={first['id']}")).text
    assert 'To <span class="url">https://example.com/first</span> only' in only
    assert "badge pending" not in only
    nonsense = await browser.get("/portal/deliveries?status=nonsense&endpoint=nonsense")
    assert nonsense.status_code == 200
    assert "example.com/second" in nonsense.text  # ignored, as an empty filter


async def test_a_customer_tests_a_sample_event_as_the_operator_does(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    """The portal's filter test is the console's: the same action, the same words, and a
    read-only link may ask (nothing is stored or sent)."""
    await create_event_type(admin, "invoice.paid")
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(
        admin,
        "acme",
        event_types=["invoice.paid"],
        filters={"invoice.paid": {"amount": {"$gt": 10}}},
    )
    await _open(browser, await _link(admin, "acme", scope="read"))
    path = f"/portal/endpoints/{endpoint['id']}"
    token = _csrf(await browser.get(path))

    async def verdict(payload: str) -> Response:
        form = {"event_type": "invoice.paid", "payload": payload, "csrf": token}
        return await browser.post(f"{path}/filter-test", data=form)

    passed = await verdict('{"amount": 20}')
    assert "A invoice.paid event like this would be delivered" in passed.text
    assert "would not be delivered: the filters" in (await verdict('{"amount": 5}')).text
    repeated = await verdict('{"amount": 20, "amount": 5}')
    assert repeated.status_code == 422
    assert "not strict JSON" in repeated.text
    forged = await browser.post(
        f"{path}/filter-test", data={"event_type": "x", "payload": "{}", "csrf": "nope"}
    )
    assert forged.status_code == 403


async def test_the_endpoint_list_is_paged(admin: AsyncClient, browser: AsyncClient) -> None:
    """A tenant with many endpoints gets them a page at a time, newest first, every one once."""
    await create_tenant(admin, uid="acme")
    for n in range(120):
        await create_endpoint(admin, "acme", url=f"https://example.com/{n}", event_types=["*"])
    await _open(browser, await _link(admin, "acme", scope="read"))
    seen: list[str] = []
    page = await browser.get("/portal")
    while True:
        assert page.status_code == 200
        seen += re.findall(r'<td class="url">https://example.com/(\d+)</td>', page.text)
        older = re.search(r'href="(/portal\?cursor=[^"]+)"', page.text)
        if older is None:
            break
        page = await browser.get(older.group(1))
    assert seen == [str(n) for n in reversed(range(120))]


async def test_the_catalog_describes_each_type_a_tenant_may_subscribe_to(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """Each offered type with its description, its schema and a payload shaped like it;
    hookpost's own types only once the operator offers them, in the catalog and the form."""
    schema = {
        "type": "object",
        "properties": {"invoice_id": {"type": "string", "examples": ["in_42"]}},
    }
    await create_tenant(admin, uid="acme")
    ok(
        await admin.post(
            "/v1/event-types",
            json={"name": "invoice.paid", "description": "An invoice was paid.", "schema": schema},
        ),
        201,
    )
    await create_event_type(admin, "build.finished")
    await db.execute(
        "INSERT INTO event_types (id, name, description, archived) "
        "VALUES (gen_random_uuid(), 'hookpost.endpoint.disabled', 'An endpoint was disabled.',"
        " false) ON CONFLICT (name) DO NOTHING"
    )
    await _open(browser, await _link(admin, "acme"))
    page = await browser.get("/portal/event-types")
    assert page.status_code == 200
    assert "An invoice was paid." in page.text
    assert html.unescape(page.text).count('"invoice_id": "in_42"') == 1  # the example
    assert "build.finished" in page.text
    assert "Any JSON payload is accepted" in page.text
    assert "hookpost.endpoint.disabled" not in page.text

    offering = settings.model_copy(update={"portal_offers_own_types": True})
    async with _browser_for(offering) as other:
        await _open(other, await _link(admin, "acme", scope="manage"))
        catalog = await other.get("/portal/event-types")
        assert "An endpoint was disabled." in catalog.text
        form = await other.get("/portal")
        assert 'value="hookpost.endpoint.disabled"' in form.text
        added = await other.post(
            "/portal/endpoints",
            data={
                "url": "https://example.com/ops",
                "event_types": "hookpost.endpoint.disabled",
                "csrf": _csrf(form),
            },
        )
        assert added.status_code == 303
