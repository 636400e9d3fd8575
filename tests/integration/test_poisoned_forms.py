"""Every route of the console and the portal, with a value Postgres refuses (NUL, a byte
that is not UTF-8) in one of its path, query or form fields: an answer below 500, whatever
the field. The routes and their fields are read off the sites' routers, so a new route is
covered the day it lands."""

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from fastapi import FastAPI
from fastapi._compat import ModelField
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from hookpost.console import site as console_site
from hookpost.portal import site as portal_site
from tests.conftest import ADMIN_KEY
from tests.generated import generated
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok

# percent-encoded, as a browser would send them: NUL, a lone continuation byte, an overlong
# NUL, a surrogate encoded as UTF-8, and the JSON escapes of NUL and of a lone surrogate
POISONS = ["%00", "%FF", "%C0%80", "%ED%A0%80", "%5Cu0000", "%5Cud800"]


@dataclass(frozen=True)
class Field:
    where: str  # "path", "query" or "form"
    name: str


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    fields: tuple[Field, ...]

    @property
    def portal(self) -> bool:
        return self.path.startswith("/portal")


def _names(param: ModelField) -> list[str]:
    """The form fields of a body parameter: its own name, or each field of its form model."""
    model = param.field_info.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [field.alias or name for name, field in model.model_fields.items()]
    return [param.alias]


def _routes() -> list[Route]:
    """The sites' routes that take a value (beside the form token)."""
    found: list[Route] = []
    for route in [*console_site.router.routes, *portal_site.router.routes]:
        assert isinstance(route, APIRoute)
        dependant = route.dependant
        fields = (
            *(Field("path", param.name) for param in dependant.path_params),
            *(Field("query", param.alias) for param in dependant.query_params),
            *(Field("form", name) for param in dependant.body_params for name in _names(param)),
        )
        if any(field.name != "csrf" for field in fields):
            found.extend(Route(m, route.path, fields) for m in sorted(route.methods - {"HEAD"}))
    return found


@pytest.fixture
async def sites(app: FastAPI, admin: AsyncClient) -> AsyncIterator[dict[str, object]]:
    """A console session and a portal session, on a tenant with an endpoint and a delivery."""
    await create_event_type(admin, "invoice.paid")
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(
        admin, "acme", url="https://example.com/hook", event_types=["*"]
    )
    event = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": 1}}
    ok(await admin.post("/v1/events", json=event), 202)
    [delivery] = ok(await admin.get("/v1/deliveries"))["data"]
    link = ok(await admin.post("/v1/tenants/acme/portal-links", json={"scope": "manage"}), 201)
    transport = ASGITransport(app=app)
    async with (
        AsyncClient(transport=transport, base_url="http://test") as console,
        AsyncClient(transport=transport, base_url="http://test") as portal,
    ):
        assert (await console.post("/sign-in", data={"key": ADMIN_KEY})).status_code == 303
        assert (await portal.get(str(link["url"]).removeprefix("http://test"))).status_code == 303
        yield {
            "console": console,
            "portal": portal,
            "console_csrf": _csrf((await console.get("/")).text),
            "portal_csrf": _csrf((await portal.get("/portal")).text),
            "known": {"endpoint_id": endpoint["id"], "delivery_id": delivery["id"]},
            "routes": _routes(),
        }


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has no form token"
    return found.group(1)


def _plain(field: Field, known: dict[str, str]) -> str:
    """A harmless value for a field that is not the poisoned one."""
    if field.name in known:
        return known[field.name]
    if field.name in {"since", "until"}:
        return "2026-01-01T00:00"
    if field.name in {"enabled", "confirm"}:
        return "true"
    if field.name == "payload":
        return "{}"
    return "invoice.paid" if "type" in field.name else "x"


@generated(150)
@given(data=st.data(), poison=st.sampled_from(POISONS), around=st.sampled_from(["", "ep_", "a"]))
async def test_no_poisoned_field_breaks_a_page(
    sites: dict[str, object], data: st.DataObject, poison: str, around: str
) -> None:
    routes = sites["routes"]
    assert isinstance(routes, list)
    route: Route = data.draw(st.sampled_from(routes), label="route")
    fields = [f for f in route.fields if f.name != "csrf"]
    target = data.draw(st.sampled_from(fields), label="field")
    known = sites["known"]
    assert isinstance(known, dict)
    site = "portal" if route.portal else "console"
    client = sites[site]
    assert isinstance(client, AsyncClient)

    def value(field: Field) -> str:
        if field == target and field.name == "payload":  # inside a string of a JSON object
            return quote('{"s": "', safe="") + around + poison + quote('"}', safe="")
        if field == target:
            return around + poison + around
        return quote(_plain(field, known), safe="")

    path = route.path
    query, form = [], []
    for field in fields:
        if field.where == "path":
            path = path.replace(f"{{{field.name}}}", value(field))
        elif field.where == "query":
            query.append(f"{field.name}={value(field)}")
        else:
            form.append(f"{field.name}={value(field)}")
    if any(f.name == "csrf" for f in route.fields):
        form.append(f"csrf={sites[f'{site}_csrf']}")
    url = path + ("?" + "&".join(query) if query else "")
    answer = await client.request(
        route.method,
        url,
        content="&".join(form) if route.method == "POST" else None,
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert answer.status_code < 500, (route.method, url, form, answer.text[:500])
