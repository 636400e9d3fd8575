"""The edges a hostile or unlucky request meets before any tenant's data: console sessions
end with the key they were signed in with, ``/metrics`` behind its own key when one is set,
readiness through a database restart, and no session made from another site's page (the
console's sign-in, the portal's links)."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient
from pydantic import SecretStr, ValidationError

from hookpost.app import create_app
from hookpost.settings import Settings
from hookpost.sites import session as console_session
from tests.conftest import ADMIN_KEY
from tests.integration.helpers import ok

TERMINATE_OTHERS = (
    "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
)
TERMINATED_GONE = "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = ANY($1))"


async def _terminate_other_backends(db: asyncpg.Connection) -> None:
    """As a database restart does: every other connection's server side goes away."""
    terminated = [row["pid"] for row in await db.fetch(TERMINATE_OTHERS)]
    assert terminated, "the app holds no connection to break"
    for _ in range(100):  # pg_terminate_backend only signals; wait for the backends to exit
        if await db.fetchval(TERMINATED_GONE, terminated):
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the backends did not exit")


async def test_the_first_readiness_probe_after_a_database_restart_is_ready(
    anonymous: AsyncClient, db: asyncpg.Connection
) -> None:
    assert (await anonymous.get("/readyz")).status_code == 200  # a connection is now pooled
    await _terminate_other_backends(db)
    first = await anonymous.get("/readyz")
    assert (first.status_code, first.json()) == (200, {"status": "ok", "detail": None})


@asynccontextmanager
async def _browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A cookie-keeping client with no API key, as a browser is."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


@asynccontextmanager
async def _restarted(settings: Settings, **changes: object) -> AsyncIterator[FastAPI]:
    """The app started again on the same database and secret, with ``changes`` to its
    settings: a process restarted with a new configuration."""
    application = create_app(settings.model_copy(update=changes))
    async with application.router.lifespan_context(application):
        yield application


async def _console_cookie(app: FastAPI, key: str = ADMIN_KEY) -> str:
    async with _browser(app) as browser:
        signed_in = await browser.post("/sign-in", data={"key": key})
        assert (signed_in.status_code, signed_in.headers["location"]) == (303, "/")
        return browser.cookies[console_session.CONSOLE]


async def _overview_with(app: FastAPI, cookie: str) -> int:
    async with _browser(app) as browser:
        browser.cookies.set(console_session.CONSOLE, cookie)
        return (await browser.get("/")).status_code


async def test_a_session_of_the_configured_key_ends_when_the_key_changes(
    app: FastAPI, settings: Settings
) -> None:
    cookie = await _console_cookie(app)
    assert await _overview_with(app, cookie) == 200
    async with _restarted(settings) as same_key:  # a restart alone keeps the session
        assert await _overview_with(same_key, cookie) == 200
    rotated_key = "hp_rotated_admin_key"
    async with _restarted(settings, admin_api_key=SecretStr(rotated_key)) as rotated:
        assert await _overview_with(rotated, cookie) == 303  # to the sign-in page
        assert await _overview_with(rotated, await _console_cookie(rotated, rotated_key)) == 200
    async with _restarted(settings, admin_api_key=None) as unset:
        assert await _overview_with(unset, cookie) == 303


async def test_a_session_does_not_carry_the_configured_key(app: FastAPI) -> None:
    """The cookie holds a salted HMAC of the key, not the key, and a new salt each time."""
    first, second = await _console_cookie(app), await _console_cookie(app)
    box = app.state.hookpost.secret_box
    sealed = [box.decrypt(cookie.strip('"').encode()) for cookie in (first, second)]
    assert all(ADMIN_KEY not in payload for payload in sealed)
    assert sealed[0] != sealed[1]


METRICS_KEY = "metrics-scrape-token-0123456789"


async def test_metrics_are_open_unless_a_metrics_key_is_set(anonymous: AsyncClient) -> None:
    assert (await anonymous.get("/metrics")).status_code == 200


async def test_a_metrics_key_is_required_when_set(settings: Settings) -> None:
    async with (
        _restarted(settings, metrics_api_key=SecretStr(METRICS_KEY)) as app,
        _browser(app) as client,
    ):
        for headers in (
            {},
            {"authorization": "Bearer wrong-token-0123456789"},
            {"authorization": f"Basic {METRICS_KEY}"},
            {"authorization": f"Bearer {ADMIN_KEY}"},  # the admin key is not the metrics key
        ):
            refused = await client.get("/metrics", headers=headers)
            assert refused.status_code == 401, headers
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.headers["www-authenticate"] == "Bearer"
            assert refused.json()["code"] == "unauthorized"
            assert "hookpost_" not in refused.text
        scraped = await client.get("/metrics", headers={"authorization": f"Bearer {METRICS_KEY}"})
        assert scraped.status_code == 200
        assert "hookpost_queue_due" in scraped.text
        # the probes stay open: an orchestrator asks them without a key
        assert (await client.get("/readyz")).status_code == 200
        assert (await client.get("/healthz")).status_code == 200


def test_a_short_metrics_key_is_refused_at_start(settings: Settings) -> None:
    with pytest.raises(ValidationError, match="metrics_api_key"):
        Settings(**{**settings.model_dump(), "metrics_api_key": "short"})


SAME_ORIGIN_SIGN_INS = [
    {},  # not a browser: a script posts the form
    {"origin": "http://test"},
    {"sec-fetch-site": "same-origin", "origin": "http://test"},
    {"sec-fetch-site": "same-origin", "origin": "http://127.0.0.1:8000"},  # Host rewritten
    {"origin": "https://console.example.com", "x-forwarded-host": "console.example.com"},
    {"referer": "http://test/sign-in"},
]
CROSS_ORIGIN_SIGN_INS = [
    {"origin": "https://evil.example"},
    {"origin": "null"},  # a sandboxed frame or a data: page
    {"origin": "http://test.evil.example"},
    {"sec-fetch-site": "cross-site"},
    {"sec-fetch-site": "same-site", "origin": "http://other.test"},  # a sibling subdomain
    {"sec-fetch-site": "cross-site", "origin": "http://test"},  # the browser's verdict wins
    {"referer": "https://evil.example/login-csrf.html"},
]


@pytest.mark.parametrize("headers", SAME_ORIGIN_SIGN_INS)
async def test_a_sign_in_from_the_consoles_own_page_is_accepted(
    app: FastAPI, headers: dict[str, str]
) -> None:
    async with _browser(app) as browser:
        answer = await browser.post("/sign-in", data={"key": ADMIN_KEY}, headers=headers)
        assert (answer.status_code, answer.headers["location"]) == (303, "/")


@pytest.mark.parametrize("headers", CROSS_ORIGIN_SIGN_INS)
async def test_a_sign_in_from_another_origin_is_refused(
    app: FastAPI, headers: dict[str, str]
) -> None:
    """Login CSRF: another site's form must not sign the browser in, even with a good key."""
    async with _browser(app) as browser:
        answer = await browser.post("/sign-in", data={"key": ADMIN_KEY}, headers=headers)
        assert answer.status_code == 403
        assert "set-cookie" not in answer.headers
        assert "sent from another website" in answer.text
        assert "default-src 'self'" in answer.headers["content-security-policy"]
        assert (await browser.get("/")).status_code == 303  # nobody signed in


async def test_forwarded_headers_count_only_from_trusted_proxies(settings: Settings) -> None:
    """A proxy's X-Forwarded-Host vouches for the Origin of a sign-in only when the proxy is
    one the deployment trusts; the same headers straight from a client count for nothing."""
    forwarded = {"origin": "https://console.example.com", "x-forwarded-host": "console.example.com"}
    for trusted, status in [("127.0.0.1", 303), ("10.0.0.0/8", 403), ("*", 303)]:
        async with _restarted(settings, forwarded_allow_ips=trusted) as app, _browser(app) as b:
            answer = await b.post("/sign-in", data={"key": ADMIN_KEY}, headers=forwarded)
            assert answer.status_code == status, trusted


async def _portal_link(admin: AsyncClient) -> str:
    tenant = ok(await admin.post("/v1/tenants", json={"name": "Acme"}), 201)
    made = ok(await admin.post(f"/v1/tenants/{tenant['id']}/portal-links", json={}), 201)
    return str(made["url"]).removeprefix("http://test")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"sec-fetch-site": "none", "sec-fetch-mode": "navigate"},  # pasted into the address bar
        {"sec-fetch-site": "same-site", "sec-fetch-mode": "navigate"},  # the product's own page
        {"sec-fetch-site": "same-origin", "sec-fetch-mode": "navigate"},
    ],
)
async def test_a_portal_link_opened_from_the_same_site_signs_in(
    app: FastAPI, admin: AsyncClient, headers: dict[str, str]
) -> None:
    link = await _portal_link(admin)
    async with _browser(app) as browser:
        opened = await browser.get(link, headers=headers)
        assert (opened.status_code, opened.headers["location"]) == (303, "/portal")
        assert (await browser.get("/portal")).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"sec-fetch-site": "cross-site", "sec-fetch-mode": "navigate"},  # another site's link
        {"sec-fetch-site": "same-site", "sec-fetch-mode": "no-cors"},  # an <img> of a sibling
        {"sec-fetch-site": "same-origin", "sec-fetch-mode": "cors"},  # a fetch()
    ],
)
async def test_a_portal_link_from_another_site_or_fetched_makes_no_session(
    app: FastAPI, admin: AsyncClient, headers: dict[str, str]
) -> None:
    """Login CSRF: another page must not sign the browser in to a tenant of its choosing."""
    link = await _portal_link(admin)
    async with _browser(app) as browser:
        refused = await browser.get(link, headers=headers)
        assert refused.status_code == 403
        assert "set-cookie" not in refused.headers
        assert "opened from another website" in refused.text
        assert (await browser.get("/portal")).status_code == 403  # no session
