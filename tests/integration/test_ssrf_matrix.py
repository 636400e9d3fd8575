"""A generated SSRF matrix: every spelling of a refused address that a URL parser, the UTS 46
mapping or the resolver can turn into it (``tests/spellings.py``) is refused when an endpoint
is made, through the API's and the sites' one check, and if a URL got past that (stored before
a check existed, say), nothing reaches a listener on the address when it is sent to."""

import asyncio
import ipaddress
import re
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from httpx import ASGITransport, AsyncClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from pydantic import ValidationError

from hookpost.admin.schemas.endpoints import EndpointCreate
from hookpost.app import create_app
from hookpost.delivery.attempt import USER_AGENT
from hookpost.delivery.sender import AiohttpSender, SenderLimits
from hookpost.delivery.ssrf import BlockedDestination, DestinationPolicy
from hookpost.settings import Settings
from hookpost.sites.actions import checked_url
from tests.conftest import ADMIN_KEY
from tests.integration.helpers import admin_of, create_event_type, create_tenant
from tests.spellings import LOOPBACK_V4, REFUSED_V4, host_spelling

LIMITS = SenderLimits(
    connections=4, total_timeout_s=2, connect_timeout_s=1, read_timeout_s=1, body_cap_bytes=100
)
NOTHING_OPENED = Settings(allowed_networks="")


class NumericResolver(AbstractResolver):
    """The system resolver for numeric hosts only (``AI_NUMERICHOST``: the C library's reading
    of ``127.1`` or ``2130706433``, no query leaves the machine); a name is not found."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        infos = socket.getaddrinfo(
            host, port, family, socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
        return [
            {
                "hostname": host,
                "host": str(sockaddr[0]),
                "port": port,
                "family": info_family,
                "proto": proto,
                "flags": 0,
            }
            for info_family, _, proto, _, sockaddr in infos
        ]

    async def close(self) -> None:
        pass


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts, in a thread of its
    own so that it outlives each example's event loop."""

    def __init__(self) -> None:
        self._socket = socket.create_server(("127.0.0.1", 0))
        self._socket.settimeout(0.2)
        self.port: int = self._socket.getsockname()[1]
        self.accepted = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            connection.close()

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._socket.close()


@pytest.fixture(scope="module")
def listener() -> Iterator[Listener]:
    serving = Listener()
    yield serving
    serving.close()


def _refused_at_creation(url: str) -> str | None:
    """Why the API refuses ``url`` with nothing opened (its schema, then its policy), or None."""
    try:
        EndpointCreate(url=url)
    except ValidationError as error:
        return str(error.errors()[0]["msg"])
    try:
        DestinationPolicy.from_settings(NOTHING_OPENED).check_url(url)
    except BlockedDestination as error:
        return str(error)
    return None


@hypothesis_settings(max_examples=400, deadline=None)
@given(address=REFUSED_V4, data=st.data())
def test_every_spelling_of_a_refused_address_is_refused_at_creation(
    address: ipaddress.IPv4Address, data: st.DataObject
) -> None:
    host = data.draw(host_spelling(address), label="host")
    url = f"http://{host}:8080/hook"
    assert _refused_at_creation(url) is not None, url
    stored, reason = checked_url(NOTHING_OPENED, url)  # the console's and the portal's check
    assert stored is None, url
    assert reason is not None


@pytest.mark.parametrize(
    "url",
    [
        "http://127。0。0。1/",
        "http://１２７.０.０.１/",  # noqa: RUF001  (the spelling is the point)
        "http://①②⑦.0.0.1/",
        "http://127．0．0．1/",  # noqa: RUF001  (the spelling is the point)
        "http://169。254。169。254/latest/meta-data/",
        "http://2130706433/",
        "http://127.1/",
        "http://0/",
        "http://127.0.0.1./",
        "http://0x7f.0.0.1/",
        "http://0177.0.0.1/",
        "http://[::ffff:7f00:1]/",
        "http://[64:ff9b::7f00:1]/",
        "http://[::7f00:1]/",
        "http://[2002:7f00:1::]/",
    ],
)
async def test_the_api_refuses_each_form(admin: AsyncClient, settings: Settings, url: str) -> None:
    """Through the API itself, with nothing opened: 422, the reason naming the URL."""
    tenant = await create_tenant(admin)
    async with admin_of(settings.model_copy(update={"allowed_networks": ""})) as client:
        answer = await client.post("/v1/endpoints", json={"tenant_id": tenant["id"], "url": url})
        assert answer.status_code == 422, (url, answer.text)
        assert answer.headers["content-type"] == "application/problem+json"
        body = answer.json()
        assert body["code"] in {"blocked_destination", "validation_error"}, body


async def _send(url: str) -> Any:
    sender = AiohttpSender(
        LIMITS,
        user_agent=USER_AGENT,
        policy=DestinationPolicy.from_settings(NOTHING_OPENED),
        resolver=NumericResolver(),
    )
    try:
        return await sender.send(url, {"content-type": "application/json"}, b"{}")
    finally:
        await sender.close()


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(address=LOOPBACK_V4, data=st.data())
def test_no_spelling_of_loopback_reaches_a_listener_there(
    listener: Listener, address: ipaddress.IPv4Address, data: st.DataObject
) -> None:
    """What the sender is handed, however spelled, is judged by the address it would connect
    to: the attempt fails (blocked, or a URL no parser sends) and the listener accepts
    nothing."""
    host = data.draw(host_spelling(address), label="host")
    url = f"http://{host}:{listener.port}/hook"
    result = asyncio.run(_send(url))
    assert result.status_code is None, (url, result)
    assert result.error_kind in {"blocked_destination", "invalid_url", "dns", "connect"}, (
        url,
        result,
    )
    assert listener.accepted == 0, url


async def test_a_literal_the_guard_allows_is_still_sent(listener: Listener) -> None:
    """The matrix's counterpart: with loopback opened, the same listener is reached, so a
    refusal above is the guard's and not a listener that cannot be reached."""
    sender = AiohttpSender(
        LIMITS,
        user_agent=USER_AGENT,
        policy=DestinationPolicy.from_settings(Settings(allowed_networks="127.0.0.0/8")),
    )
    before = listener.accepted
    try:
        await sender.send(f"http://127。0。0。1:{listener.port}/", {}, b"{}")
    finally:
        await sender.close()
    for _ in range(50):
        if listener.accepted > before:
            break
        await asyncio.sleep(0.02)
    assert listener.accepted == before + 1


async def test_the_portal_refuses_a_metadata_address_spelled_in_unicode(
    admin: AsyncClient, settings: Settings
) -> None:
    """The portal's own form, as a tenant's customer uses it, with nothing opened: the URL of
    the issue's report is refused on the page and no endpoint is stored."""
    closed = create_app(settings.model_copy(update={"allowed_networks": ""}))
    async with (
        closed.router.lifespan_context(closed),
        AsyncClient(
            transport=ASGITransport(app=closed),
            base_url="http://test",
            headers={"authorization": f"Bearer {ADMIN_KEY}"},
        ) as api,
        AsyncClient(transport=ASGITransport(app=closed), base_url="http://test") as browser,
    ):
        tenant = await create_tenant(api, uid="acme")
        await create_event_type(api, "invoice.paid")
        link = (
            await api.post(f"/v1/tenants/{tenant['id']}/portal-links", json={"scope": "manage"})
        ).json()
        await browser.get(str(link["url"]).removeprefix("http://test"))
        page = await browser.get("/portal")
        token = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert token is not None
        for url in ("http://169。254。169。254/latest/meta-data/", "http://2130706433/"):
            answer = await browser.post(
                "/portal/endpoints",
                data={"url": url, "event_types": "invoice.paid", "csrf": token.group(1)},
            )
            assert "The endpoint was not added" in answer.text, url
        listed = (await api.get("/v1/endpoints", params={"tenant_id": "acme"})).json()
        assert listed["data"] == []
