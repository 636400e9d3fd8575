"""Every route of the Svix API, with a value Postgres refuses (NUL, a lone surrogate, a byte
that is not UTF-8) in one of its path segments or one field of its JSON body: an answer below
500, in Svix's shape. The routes and their fields are read off the routers, so a new route is
covered the day it lands."""

import json
import typing
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fastapi import FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from httpx import ASGITransport, AsyncClient
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from hookpost.svix import install
from tests.conftest import ADMIN_KEY
from tests.generated import generated
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok

PATH_POISONS = ["%00", "%FF", "%C0%80", "%ED%A0%80"]
# as they stand inside a JSON string of the body: NUL, a lone surrogate, a byte not UTF-8
BODY_POISONS = [b"\\u0000", b"\\ud800", b"\xff", b"\xed\xa0\x80"]


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: type[BaseModel] | None
    query: tuple[str, ...]


def _queries(dependant: Dependant) -> list[object]:
    """The query parameters of a route and of every dependency it has."""
    return [*dependant.query_params, *(q for sub in dependant.dependencies for q in _queries(sub))]


def _routes() -> list[Route]:
    found = []
    for module in (
        install.applications,
        install.event_types,
        install.endpoints,
        install.messages,
        install.attempts,
        install.portal_access,
    ):
        for route in module.router.routes:
            assert isinstance(route, APIRoute)
            body = route.body_field.field_info.annotation if route.body_field else None
            query = tuple(param.alias for param in _queries(route.dependant))  # type: ignore[attr-defined]
            for method in sorted(route.methods - {"HEAD"}):
                found.append(Route(method, route.path, body, query))
    return found


def _plain(annotation: object) -> object:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        return None
    if annotation is bool:
        return False
    if annotation is int:
        return 1
    if origin is dict:
        return {}
    if origin is list:
        return []
    return "x"


@pytest.fixture
async def svix(app: FastAPI, admin: AsyncClient) -> AsyncIterator[dict[str, object]]:
    await create_event_type(admin, "invoice.paid")
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme", event_types=["*"])
    event = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    emitted = ok(await admin.post("/v1/events", json=event), 202)
    known = {
        "app_id": "acme",
        "endpoint_id": endpoint["id"],
        "msg_id": emitted["id"],
        "event_type_name": "invoice.paid",
        "attempt_id": "x",
    }
    async with AsyncClient(
        transport=ASGITransport(app=app),
        base_url="http://test",
        headers={"authorization": f"Bearer {ADMIN_KEY}", "content-type": "application/json"},
    ) as client:
        yield {"client": client, "known": known, "routes": _routes()}


@generated(120)
@given(data=st.data())
async def test_no_poisoned_value_breaks_the_svix_api(
    svix: dict[str, object], data: st.DataObject
) -> None:
    routes = svix["routes"]
    known = svix["known"]
    client = svix["client"]
    assert isinstance(routes, list)
    assert isinstance(known, dict)
    assert isinstance(client, AsyncClient)
    route: Route = data.draw(st.sampled_from(routes), label="route")
    params = [part[1:-1] for part in route.path.split("/") if part.startswith("{")]
    fields = list(route.body.model_fields.items()) if route.body else []
    targets = [
        *(("path", name) for name in params),
        *(("query", name) for name in route.query),
        *(("body", name) for name, _ in fields),
    ]
    where, target = data.draw(st.sampled_from(targets), label="target")
    path = route.path
    for name in params:
        value = (
            data.draw(st.sampled_from(PATH_POISONS))
            if (where, name) == ("path", target)
            else known[name]
        )
        path = path.replace(f"{{{name}}}", str(value))
    body = None
    if route.body is not None:
        parts = []
        for name, field in fields:
            key = field.alias or name
            camel = route.body.model_config.get("alias_generator")
            key = camel(name) if callable(camel) else key
            if (where, name) == ("body", target):
                poison = data.draw(st.sampled_from(BODY_POISONS), label="poison")
                annotation = field.annotation
                origin = typing.get_origin(annotation)
                text = b'"a' + poison + b'"'
                if origin is dict or "dict" in str(annotation):
                    value = b"{" + text + b": " + text + b"}"
                elif "list" in str(annotation):
                    value = b"[" + text + b"]"
                else:
                    value = text
            elif field.is_required():
                value = json.dumps(_plain(field.annotation)).encode()
            else:
                continue
            parts.append(f'"{key}": '.encode() + value)
        body = b"{" + b", ".join(parts) + b"}"
    if where == "query":
        path += f"?{target}=a{data.draw(st.sampled_from(PATH_POISONS), label='poison')}"
    answer = await client.request(route.method, path, content=body)
    assert answer.status_code < 500 or answer.json().get("code") == "not_supported", (
        route.method,
        path,
        body,
        answer.text[:500],
    )
    if answer.status_code >= 400:  # in Svix's shape, not the native API's problem+json
        body_out = answer.json()
        shaped = set(body_out) == {"code", "detail"} or (
            set(body_out) == {"detail"} and isinstance(body_out["detail"], list)
        )
        assert shaped, (route.method, path, answer.text[:300])
