"""The console's create and change forms for tenants, event types and endpoints, over HTTP:
what a form saves is what the API then answers, what it refuses is refused with a sentence
naming the field, and (generated) the console takes a tenant or an endpoint exactly when the
API takes the same values."""

import html
import re
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response
from hypothesis import given
from hypothesis import strategies as st

from tests.conftest import ADMIN_KEY
from tests.generated import generated
from tests.integration.helpers import create_event_type, create_tenant, ok


@pytest.fixture
async def console(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A signed-in operator's browser."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        assert (await client.post("/sign-in", data={"key": ADMIN_KEY})).status_code == 303
        yield client


async def _csrf(console: AsyncClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', (await console.get("/tenants")).text)
    assert found, "the page has no form token"
    return found.group(1)


async def _post(console: AsyncClient, path: str, **fields: str) -> Response:
    return await console.post(path, data={"csrf": await _csrf(console), **fields})


def _problems(page: Response) -> list[str]:
    """The sentences of a refused form, as the page shows them."""
    found = re.search(r'id="form-problems">(.*?)</div>', page.text, re.S)
    assert found, page.text[:2000]
    items = re.findall(r"<li>(.*?)</li>", found[1], re.S)
    return [html.unescape(re.sub(r"<[^>]+>", "", item)).strip() for item in items]


async def test_a_tenant_made_and_changed_in_the_console_is_the_apis_tenant(
    console: AsyncClient, admin: AsyncClient
) -> None:
    made = await _post(
        console, "/tenants", name="Acme Corp", uid="acme", metadata='{"plan": "pro"}'
    )
    assert made.status_code == 303
    assert "Saved the tenant Acme Corp" in (await console.get(made.headers["location"])).text
    tenant = ok(await admin.get("/v1/tenants/acme"))
    assert (tenant["name"], tenant["metadata"]) == ("Acme Corp", {"plan": "pro"})

    form = await console.get(f"/tenants/{tenant['id']}/edit")
    assert 'value="Acme Corp"' in form.text
    assert "&#34;plan&#34;" in form.text
    changed = await _post(
        console, f"/tenants/{tenant['id']}/edit", name="Acme", uid="", metadata=""
    )
    assert changed.status_code == 303
    tenant = ok(await admin.get(f"/v1/tenants/{tenant['id']}"))
    assert (tenant["name"], tenant["uid"], tenant["metadata"]) == ("Acme", None, {})


async def test_a_refused_tenant_form_names_each_field_and_keeps_what_was_typed(
    console: AsyncClient, admin: AsyncClient
) -> None:
    await create_tenant(admin, uid="taken")
    refused = await _post(console, "/tenants", name="", uid="ten_x", metadata='{"a": NaN}')
    assert refused.status_code == 422
    problems = _problems(refused)
    assert any(p.startswith("Name:") for p in problems), problems
    assert any(p.startswith("Uid:") and "ten_" in p for p in problems), problems
    assert any(p.startswith("Metadata: not strict JSON") for p in problems), problems
    assert 'value="ten_x"' in refused.text  # what was typed is still there
    taken = await _post(console, "/tenants", name="Other", uid="taken")
    assert taken.status_code == 409
    assert _problems(taken) == ["Uid: another tenant has the uid 'taken'"]
    assert len(ok(await admin.get("/v1/tenants"))["data"]) == 1  # nothing was saved


async def test_an_event_type_made_in_the_console_validates_payloads_and_archives(
    console: AsyncClient, admin: AsyncClient
) -> None:
    schema = '{"type": "object", "required": ["invoice_id"]}'
    bad = await _post(console, "/event-types", name="invoice.paid", schema='{"type": 12}')
    assert bad.status_code == 422
    assert _problems(bad)[0].startswith("Schema: cannot be used")
    made = await _post(
        console, "/event-types", name="invoice.paid", description="Paid.", schema=schema
    )
    assert made.status_code == 303
    assert "Saved the event type invoice.paid" in (await console.get(made.headers["location"])).text
    await create_tenant(admin, uid="acme")
    event = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    assert (await admin.post("/v1/events", json=event)).status_code == 422  # the schema holds
    again = await _post(console, "/event-types", name="invoice.paid")
    assert (again.status_code, _problems(again)) == (
        409,
        ["Name: an event type named 'invoice.paid' exists"],
    )

    form = await console.get("/event-types/invoice.paid/edit")
    assert "readonly" in form.text
    assert "Paid." in form.text
    archived = await _post(
        console, "/event-types/invoice.paid/edit", description="Paid in full.", archived="on"
    )
    assert archived.status_code == 303
    body = ok(await admin.get("/v1/event-types/invoice.paid"))
    assert (body["description"], body["schema"], body["archived"]) == ("Paid in full.", None, True)
    missing = await console.get("/event-types/no.such/edit")
    assert missing.status_code == 404


ENDPOINT_FORM = {
    "url": "https://example.com/hooks",
    "description": "Billing",
    "uid": "billing",
    "event_types": "invoice.*, user.signup",
    "channels": "eu, us",
    "filters": '{"invoice.*": {"amount": {"$gt": 100}}}',
    "headers": '{"x-customer": "acme"}',
    "metadata": '{"team": "billing"}',
    "rate_limit_per_s": "5",
    "max_in_flight": "3",
    "ordered": "on",
    "ordering.key": "customer_id",
    "ordering.on_exhausted": "hold",
    "body_format": "payload",
    "signature_headers": "both",
    "policy.retry_max_attempts": "4",
    "policy.timeout_s": "2.5",
}


async def test_an_endpoint_made_in_the_console_has_its_routing_and_policy(
    console: AsyncClient, admin: AsyncClient
) -> None:
    await create_event_type(admin, "invoice.paid")
    await create_event_type(admin, "user.signup")
    tenant = await create_tenant(admin, uid="acme")
    assert "Add an endpoint" in (await console.get("/tenants")).text
    made = await _post(console, f"/tenants/{tenant['id']}/endpoints", **ENDPOINT_FORM)
    assert made.status_code == 303, made.text[:2000]
    endpoint_id = made.headers["location"].removeprefix("/endpoints/")
    body = ok(await admin.get(f"/v1/endpoints/{endpoint_id}"))
    assert body["tenant_id"] == tenant["id"]
    assert (body["url"], body["uid"], body["description"]) == (
        "https://example.com/hooks",
        "billing",
        "Billing",
    )
    assert body["event_types"] == ["invoice.*", "user.signup"]
    assert body["channels"] == ["eu", "us"]
    assert body["filters"] == {"invoice.*": {"amount": {"$gt": 100}}}
    assert (body["headers"], body["metadata"]) == ({"x-customer": "acme"}, {"team": "billing"})
    assert (body["rate_limit_per_s"], body["max_in_flight"]) == (5, 3)
    assert body["ordering"] == {"key": "customer_id", "on_exhausted": "hold"}
    assert body["policy"] == {"retry_max_attempts": 4, "timeout_s": 2.5}
    assert (body["body_format"], body["signature_headers"]) == ("payload", "both")

    # the change form shows it all, and saving it unchanged changes nothing
    form = await console.get(f"/endpoints/{endpoint_id}/edit")
    assert 'value="invoice.*, user.signup"' in form.text
    assert 'name="ordered" type="checkbox" checked' in form.text
    assert 'value="2.5"' in form.text
    unchanged = await _post(console, f"/endpoints/{endpoint_id}/edit", **ENDPOINT_FORM)
    assert unchanged.status_code == 303
    again = ok(await admin.get(f"/v1/endpoints/{endpoint_id}"))
    assert {k: v for k, v in again.items() if k != "updated_at"} == {
        k: v for k, v in body.items() if k != "updated_at"
    }

    # blanks follow the settings again; an unticked ordering is unordered
    plain = {**ENDPOINT_FORM, "ordered": "", "policy.timeout_s": "", "channels": "", "filters": ""}
    changed = await _post(console, f"/endpoints/{endpoint_id}/edit", **plain)
    assert changed.status_code == 303
    after = ok(await admin.get(f"/v1/endpoints/{endpoint_id}"))
    assert (after["ordering"], after["channels"], after["filters"]) == (None, None, {})
    assert after["policy"] == {"retry_max_attempts": 4}


@pytest.mark.parametrize(
    ("field", "value", "starts"),
    [
        ("url", "ftp://example.com/", "URL: the URL must start with http"),
        ("url", "https://10.1.2.3/hook", "URL:"),  # a destination the policy blocks
        ("event_types", "no.such", "Event types: no event type named no.such"),
        ("event_types", "invoice..paid", "Event types: 'invoice..paid'"),
        ("filters", '{"user.*": {"a": 1}}', "Filters: the endpoint does not subscribe"),
        ("filters", '{"invoice.*": {"$gt": []}}', "Filters:"),
        ("headers", '{"host": "x"}', "Headers:"),
        ("policy.timeout_s", "9999", "Timeout of a request (s):"),
        ("policy.timeout_s", "119", "Timeout of a request (s): must be below the workers' lease"),
        ("policy.retry_factor", "fast", "Each retry waits longer by:"),
        ("max_in_flight", "0", "In flight at most:"),
        ("ordering.on_exhausted", "drop", "When a delivery runs out:"),
        ("body_format", "xml", "Body:"),
    ],
)
async def test_a_refused_endpoint_form_says_which_field_and_why(
    console: AsyncClient, admin: AsyncClient, field: str, value: str, starts: str
) -> None:
    await create_event_type(admin, "invoice.paid")
    await create_event_type(admin, "user.signup")
    tenant = await create_tenant(admin, uid="acme")
    refused = await _post(
        console,
        f"/tenants/{tenant['id']}/endpoints",
        **{**ENDPOINT_FORM, "channels": "", field: value},
    )
    assert refused.status_code == 422
    problems = _problems(refused)
    assert any(p.startswith(starts) for p in problems), problems
    assert ok(await admin.get("/v1/endpoints"))["data"] == []  # nothing was saved


async def test_the_new_forms_need_the_sessions_token(
    console: AsyncClient, admin: AsyncClient
) -> None:
    tenant = await create_tenant(admin, uid="acme")
    for path in ("/tenants", f"/tenants/{tenant['id']}/edit", "/event-types"):
        assert (await console.post(path, data={"name": "x"})).status_code == 403, path
    made = await console.post(f"/tenants/{tenant['id']}/endpoints", data=ENDPOINT_FORM)
    assert made.status_code == 403
    assert ok(await admin.get("/v1/tenants/acme"))["name"] == "Acme"


# generated: the console and the API agree on what a tenant and an endpoint may be

TEXT = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]) | st.sampled_from("\x00._:@+-/ "),
    max_size=12,
)


@generated(40)
@given(name=TEXT, uid=TEXT | st.sampled_from(["ten_x", ".", "..", "a/b", "ok-uid"]))
async def test_the_console_takes_a_tenant_exactly_when_the_api_does(
    console: AsyncClient, admin: AsyncClient, name: str, uid: str
) -> None:
    body: dict[str, Any] = {"name": name.strip()}
    if uid.strip():
        body["uid"] = uid.strip()
    api = await admin.post("/v1/tenants", json=body)
    assert api.status_code in (201, 422), api.text
    if api.status_code == 201:
        await admin.delete(f"/v1/tenants/{api.json()['id']}")
    page = await _post(console, "/tenants", name=name, uid=uid)
    assert page.status_code in (303, 422), page.text[:500]
    assert (page.status_code == 303) == (api.status_code == 201), (body, api.text)
    if page.status_code == 303:
        await admin.delete("/v1/tenants/" + page.headers["location"].split("saved=")[1])


URLS = st.one_of(
    st.sampled_from(
        [
            "https://example.com/hook",
            "https://例え.jp/hook",
            "https://xn--r8jz45g.jp/hook",
            "http://127.0.0.1:9/hook",
            "https://10.0.0.1/",
            "https://[::1]/",
            "https://user:pw@example.com/",
            "https://example.com:99999/",
            "https://example.com/a b",
        ]
    ),
    st.builds(lambda tail: "https://example.com/" + tail, TEXT),
)


@generated(40)
@given(url=URLS, event_types=st.sampled_from(["invoice.paid", "*", "no.such", "a..b", ""]))
async def test_the_console_takes_an_endpoint_exactly_when_the_api_does(
    console: AsyncClient, admin: AsyncClient, url: str, event_types: str
) -> None:
    tenants = ok(await admin.get("/v1/tenants"))["data"]
    tenant = tenants[0] if tenants else await create_tenant(admin, uid="acme")
    if not ok(await admin.get("/v1/event-types"))["data"]:
        await create_event_type(admin, "invoice.paid")
    body = {"tenant_id": tenant["id"], "url": url.strip(), "event_types": event_types.split()}
    api = await admin.post("/v1/endpoints", json=body)
    assert api.status_code in (201, 422), api.text
    page = await _post(
        console, f"/tenants/{tenant['id']}/endpoints", url=url, event_types=event_types
    )
    assert page.status_code in (303, 422), page.text[:500]
    assert (page.status_code == 303) == (api.status_code == 201), (url, event_types, api.text)


async def test_a_refused_change_leaves_the_tenant_and_the_endpoint_as_they_were(
    console: AsyncClient, admin: AsyncClient
) -> None:
    await create_event_type(admin, "invoice.paid")
    await create_event_type(admin, "user.signup")
    await create_tenant(admin, uid="other")
    tenant = await create_tenant(admin, name="Acme", uid="acme")
    taken = await _post(console, f"/tenants/{tenant['id']}/edit", name="Renamed", uid="other")
    assert taken.status_code == 409
    assert _problems(taken) == ["Uid: another tenant has the uid 'other'"]
    assert "Change the tenant Acme" in taken.text
    assert ok(await admin.get("/v1/tenants/acme"))["name"] == "Acme"

    made = await _post(console, f"/tenants/{tenant['id']}/endpoints", **ENDPOINT_FORM)
    endpoint_id = made.headers["location"].removeprefix("/endpoints/")
    before = ok(await admin.get(f"/v1/endpoints/{endpoint_id}"))
    refused = await _post(
        console,
        f"/endpoints/{endpoint_id}/edit",
        **{**ENDPOINT_FORM, "description": "changed", "event_types": "invoice.paid, no.such"},
    )
    assert refused.status_code == 422
    assert _problems(refused) == ["Event types: no event type named no.such; create it first"]
    assert 'value="changed"' in refused.text  # what was typed is still there
    assert ok(await admin.get(f"/v1/endpoints/{endpoint_id}")) == before
