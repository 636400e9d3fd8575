"""The operator console over HTTP: the session (sign-in, cookie flags, expiry with its key),
CSRF on every form, the Content-Security-Policy, escaping of what receivers and backends
send, and the pages' actions on a real queue and worker."""

import html
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from fastapi import FastAPI
from httpx import ASGITransport, AsyncClient, Response

from hookpost import ids
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import (
    create_endpoint,
    create_event_type,
    create_tenant,
    ok,
    tenant_key,
)
from tests.receiver import Reply, receiver

HOSTILE = "<script>alert('x')</script>"


@pytest.fixture
async def browser(app: FastAPI) -> AsyncIterator[AsyncClient]:
    """A cookie-keeping client with no API key, as a browser is."""
    async with AsyncClient(transport=ASGITransport(app=app), base_url="http://test") as client:
        yield client


async def _sign_in(browser: AsyncClient, key: str = ADMIN_KEY) -> Response:
    return await browser.post("/sign-in", data={"key": key})


def _csrf(page: Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, "the page has no form token"
    return found.group(1)


async def test_every_page_needs_a_session(browser: AsyncClient) -> None:
    for path in ("/", "/endpoints", "/deliveries", "/overview/figures"):
        answer = await browser.get(path)
        assert (answer.status_code, answer.headers["location"]) == (303, "/sign-in"), path
    page = await browser.get("/sign-in")
    assert page.status_code == 200
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text  # no inline script: the policy allows none


async def test_an_admin_key_signs_in_to_a_strict_cookie(browser: AsyncClient) -> None:
    answer = await _sign_in(browser)
    assert (answer.status_code, answer.headers["location"]) == (303, "/")
    cookie = answer.headers["set-cookie"].lower()
    for flag in ("httponly", "samesite=strict", "path=/"):
        assert flag in cookie
    max_age = re.search(r"max-age=(\d+)", cookie)
    assert max_age
    assert 8 * 3600 - 60 < int(max_age.group(1)) <= 8 * 3600  # eight hours
    assert ADMIN_KEY.lower() not in cookie  # the key is exchanged, not stored
    overview = await browser.get("/")
    assert overview.status_code == 200
    assert "Endpoints in trouble" in overview.text


async def test_unknown_and_tenant_keys_do_not_sign_in(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    unknown = await _sign_in(browser, "hp_nope")
    assert unknown.status_code == 401
    assert "not known" in unknown.text
    tenant = await create_tenant(admin, uid="acme")
    refused = await _sign_in(browser, await tenant_key(admin, tenant["id"]))
    assert refused.status_code == 403
    assert "set-cookie" not in refused.headers
    assert (await browser.get("/")).status_code == 303


async def test_a_session_ends_with_its_key(admin: AsyncClient, browser: AsyncClient) -> None:
    made = ok(await admin.post("/v1/api-keys", json={"name": "ops"}), 201)
    assert (await _sign_in(browser, made["key"])).status_code == 303
    assert (await browser.get("/endpoints")).status_code == 200
    assert (await admin.delete(f"/v1/api-keys/{made['id']}")).status_code == 204
    assert (await browser.get("/endpoints")).status_code == 303


async def test_a_forged_cookie_signs_nobody_in(browser: AsyncClient) -> None:
    browser.cookies.set("hookpost_session", "gAAAAA-forged")
    assert (await browser.get("/")).status_code == 303


async def test_forms_need_the_sessions_token(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme", url="https://example.com/hook")
    await _sign_in(browser)
    path = f"/endpoints/{endpoint['id']}"
    page = await browser.get(path)
    forged = await browser.post(f"{path}/enabled", data={"enabled": "false"})
    assert forged.status_code == 403
    assert await db.fetchval("SELECT enabled FROM endpoints") is True
    done = await browser.post(f"{path}/enabled", data={"enabled": "false", "csrf": _csrf(page)})
    assert (done.status_code, done.headers["location"]) == (303, path)
    assert await db.fetchval("SELECT disabled_reason FROM endpoints") == "disabled in the console"


async def test_what_receivers_and_backends_send_is_shown_inert(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """A payload, a response body and response headers carrying markup and script appear as
    text: escaped, never as elements."""
    reply = Reply(status=500, body=HOSTILE.encode(), headers={"x-evil": HOSTILE})
    async with receiver(lambda n, r: reply) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(admin, "acme", url=target.url, event_types=["*"])
        body = {
            "tenant_id": "acme",
            "event_type": "invoice.paid",
            "payload": {"note": HOSTILE},
            "channels": ["project_1"],
        }
        ok(await admin.post("/v1/events", json=body), 202)
        async with running_worker(settings, retry_max_attempts=1):
            [sent] = await target.wait_for(1)

            async def failed() -> bool:
                return bool(await db.fetchval("SELECT status = 'failed' FROM deliveries"))

            await eventually(failed)
    await _sign_in(browser)
    listed = await browser.get("/deliveries?status=failed")
    [delivery_id] = re.findall(r'href="/deliveries/(dlv_[0-9a-z]+)"', listed.text)
    page = await browser.get(f"/deliveries/{delivery_id}")
    assert page.status_code == 200
    assert HOSTILE not in page.text
    assert "&lt;script&gt;alert(" in page.text  # the body and the header, as text
    assert page.text.count("&lt;script&gt;") >= 2
    shown = re.search(r'<pre class="body" id="body-sent">(.*?)</pre>', page.text, re.S)
    assert shown
    assert html.unescape(shown.group(1)).encode() == sent.body  # the very bytes sent
    event_link = re.search(r'href="/events/(evt_[0-9a-z]+)"', page.text)
    assert event_link
    event = await browser.get(f"/events/{event_link.group(1)}")
    assert event.status_code == 200
    assert HOSTILE not in event.text
    assert f'href="/deliveries/{delivery_id}"' in event.text
    assert "failed" in event.text
    assert '<dd id="channels">project_1</dd>' in event.text
    assert (await browser.get("/events/evt_nope")).status_code == 404


async def test_recovery_counts_first_then_queues(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(
        admin, "acme", url="http://127.0.0.1:9/hook", event_types=["*"]
    )
    events = [
        {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": n}} for n in range(3)
    ]
    ok(await admin.post("/v1/events/batch", json={"events": events}), 202)
    await db.execute("UPDATE deliveries SET status = 'failed', finished_at = now()")
    await _sign_in(browser)
    path = f"/endpoints/{endpoint['id']}"
    page = await browser.get(path)
    now = datetime.now(UTC)
    window = {
        "since": (now - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        "until": (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"),
        "csrf": _csrf(page),
    }
    counted = await browser.post(f"{path}/recover", data=window)
    assert counted.status_code == 200
    assert "3 failed deliveries in this window" in counted.text
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'failed'") == 3
    queued = await browser.post(f"{path}/recover", data=window | {"confirm": "true"})
    assert "3 deliveries queued again" in queued.text
    assert await db.fetchval("SELECT count(*) FROM deliveries WHERE status = 'pending'") == 3
    backwards = await browser.post(
        f"{path}/recover", data=window | {"since": window["until"], "until": window["since"]}
    )
    assert backwards.status_code == 422
    assert "must end after it starts" in backwards.text


async def test_filters_live_in_the_url_and_bad_ones_say_why(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    await create_tenant(admin, uid="acme")
    await create_tenant(admin, uid="other")
    await create_event_type(admin, "invoice.paid")
    await create_event_type(admin, "user.created")
    for uid in ("acme", "other"):
        await create_endpoint(
            admin, uid, url=f"https://example.com/{uid}", event_types=["*"], uid="main"
        )
        for event_type in ("invoice.paid", "user.created"):
            body = {"tenant_id": uid, "event_type": event_type, "payload": {}}
            ok(await admin.post("/v1/events", json=body), 202)
    await _sign_in(browser)

    def shown(page: Response) -> int:
        return len(re.findall(r'href="/deliveries/dlv_', page.text))

    assert shown(await browser.get("/deliveries")) == 4
    assert shown(await browser.get("/deliveries?tenant=acme")) == 2
    assert shown(await browser.get("/deliveries?tenant=acme&type=user.created")) == 1
    assert shown(await browser.get("/deliveries?tenant=acme&endpoint=main")) == 2
    unscoped = await browser.get("/deliveries?endpoint=main")
    assert "to find it by uid, name its tenant" in unscoped.text
    assert (
        "has no endpoint &#39;nope&#39;"
        in (await browser.get("/deliveries?tenant=acme&endpoint=nope")).text
    )
    now = datetime.now(UTC)
    later = (now + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    earlier = (now - timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M")
    assert shown(await browser.get(f"/deliveries?since={later}")) == 0
    assert shown(await browser.get(f"/deliveries?since={earlier}&until={later}")) == 4
    page = await browser.get("/deliveries?endpoint=nope&status=lost&tenant=ghost&since=soon")
    assert page.status_code == 200
    assert "endpoint &#39;nope&#39; is not an ep_ id" in page.text
    assert "status &#39;lost&#39; is not one of" in page.text
    assert "no tenant &#39;ghost&#39;" in page.text
    assert "since &#39;soon&#39; is not a time" in page.text
    missing = await browser.get("/deliveries/dlv_0000000000000000000000000")
    assert missing.status_code == 404


async def test_the_configuration_pages_list_tenants_event_types_and_keys(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    await create_tenant(admin, uid="acme", name="Acme <Corp>")
    schema = {
        "type": "object",
        "properties": {
            "amount": {"type": "integer"},
            "currency": {"enum": ["eur", "usd"]},
            "lines": {"type": "array", "items": {"type": "string"}},
        },
    }
    await create_event_type(admin, "invoice.paid", schema=schema, description="Paid.")
    await create_event_type(admin, "user.created")
    made = ok(await admin.post("/v1/api-keys", json={"name": "ops"}), 201)
    await _sign_in(browser)
    tenants = await browser.get("/tenants")
    assert "Acme &lt;Corp&gt;" in tenants.text
    types = await browser.get("/event-types")
    assert "Any JSON payload is accepted" in types.text  # user.created has no schema
    sample = '"amount": 0,\n  "currency": "eur",\n  "lines": [\n    "string"\n  ]'
    assert sample.replace('"', "&#34;") in types.text or sample in types.text
    keys = await browser.get("/api-keys")
    assert made["id"] in keys.text
    assert made["key"] not in keys.text  # only its first characters
    assert made["key"][:7] in keys.text


async def test_the_operator_rotates_a_secret_and_sends_a_test_event(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(admin, "acme", url="https://example.com/hook")
    before = ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
    await _sign_in(browser)
    path = f"/endpoints/{endpoint['id']}"
    token = _csrf(await browser.get(path))
    rotated = await browser.post(f"{path}/rotate", data={"csrf": token})
    shown = re.search(r'<code id="secret">(whsec_[^<]+)</code>', rotated.text)
    assert shown
    assert shown.group(1) == ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
    assert shown.group(1) != before
    sent = await browser.post(f"{path}/test", data={"csrf": token})
    assert sent.status_code == 303
    assert sent.headers["location"].startswith("/deliveries/dlv_")
    row = await db.fetchrow("SELECT event_type, status FROM deliveries")
    assert tuple(row) == ("hookpost.test", "pending")


async def test_the_endpoint_page_shows_its_routing_and_policy(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    await create_tenant(admin, uid="acme")
    endpoint = await create_endpoint(
        admin,
        "acme",
        policy={"retry_max_attempts": 3},
        channels=["project_1", "team:ops"],
        event_types=["user.*", "*"],
        filters={"user.*": {"plan": HOSTILE}},
        uid="billing",
        metadata={"team": HOSTILE},
        ordering={"key": "customer", "on_exhausted": "hold"},
    )
    await _sign_in(browser)
    page = (await browser.get(f"/endpoints/{endpoint['id']}")).text
    assert '<dd id="channels">only events on project_1, team:ops</dd>' in page
    assert '<dd id="uid">billing</dd>' in page
    assert "by the payload's customer); a delivery out of attempts holds its lane" in page
    assert "<dt>team</dt><dd>&lt;script&gt;" in page
    assert "<tr><td>*</td><td>none: every payload</td></tr>" in page
    assert HOSTILE not in page  # a filter's values are shown as text
    assert "\\u003cscript\\u003e" in page
    rows = dict(
        (name, (value, source))
        for name, value, source in re.findall(
            r"<tr><td>(\w+)</td><td>([^<]+)</td><td>([^<]+)</td></tr>", page
        )
    )
    assert rows["retry_max_attempts"] == ("3", "this endpoint")
    assert rows["timeout_s"] == ("15.0", "the settings")


async def test_the_operator_tests_a_sample_event_against_an_endpoint(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(
        admin,
        "acme",
        event_types=["invoice.paid"],
        filters={"invoice.paid": {"amount": {"$gt": 10}}},
        channels=["eu"],
    )
    await _sign_in(browser)
    path = f"/endpoints/{endpoint['id']}"
    token = _csrf(await browser.get(path))

    async def verdict(payload: str, channels: str = "eu") -> Response:
        form = {"event_type": "invoice.paid", "payload": payload, "channels": channels}
        return await browser.post(f"{path}/filter-test", data=form | {"csrf": token})

    passed = await verdict('{"amount": 20}')
    assert "A invoice.paid event like this would be delivered: the subscription to" in passed.text
    refused = await verdict('{"amount": 5}')
    assert "would not be delivered: the filters of the subscriptions" in refused.text
    elsewhere = await verdict('{"amount": 20}', channels="us, asia")
    assert "listens to none of the event&#39;s channels" in elsewhere.text
    wrong = await verdict("[1, 2]")
    assert wrong.status_code == 422
    assert "The sample payload is not a JSON object." in wrong.text
    forged = await browser.post(
        f"{path}/filter-test", data={"event_type": "x", "payload": "{}", "csrf": "nope"}
    )
    assert forged.status_code == 403


async def test_the_overview_charts_the_last_hours_attempts(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection, settings: Settings
) -> None:
    """The workers count each minute's attempts; the overview draws the last hour from them,
    a bar a minute, succeeded and failed."""
    async with receiver(lambda n, r: Reply(status=500 if n == 0 else 200)) as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(admin, "acme", url=target.url, event_types=["*"])
        events = [{"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}] * 3
        ok(await admin.post("/v1/events/batch", json={"events": events}), 202)
        async with running_worker(settings):

            async def counted() -> bool:
                row = await db.fetchrow(
                    "SELECT sum(succeeded) AS ok, sum(failed) AS bad FROM attempt_minutes"
                )
                return (row["ok"], row["bad"]) == (3, 1)

            await eventually(counted)
    await _sign_in(browser)
    page = await browser.get("/")
    bars = _titles(page.text, "attempts-chart")[1:]
    assert len(bars) == 60
    busy = [title for title in bars if not title.endswith(": 0 succeeded, 0 failed")]
    assert [title.split(": ")[1] for title in busy] == ["3 succeeded, 1 failed"]
    assert "the busiest minute had 4 attempts" in page.text
    # the rate's figures come from the same counts: this minute and the one before
    assert "75.0%</span> succeeded (this minute and the last)" in page.text
    assert re.findall(r'class="y-tick"[^>]*>([^<]*)<', page.text) == ["0", "1", "2", "3", "4"]


async def test_lists_name_tenants_and_endpoints_by_the_names_people_gave_them(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    """An operator reads 'Acme Corp, billing-hook', not ``ep_01…``: in the endpoint list, the
    deliveries and the endpoints in trouble."""
    await create_tenant(admin, uid="acme", name="Acme Corp")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(
        admin, "acme", uid="billing-hook", description="Billing", event_types=["*"]
    )
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": 1}}
    ok(await admin.post("/v1/events", json=body), 202)
    await db.execute(
        "UPDATE endpoints SET consecutive_failures = 3, failing_since = now() WHERE id = $1",
        ids.decode(ids.Prefix.ENDPOINT, endpoint["id"]),
    )
    await _sign_in(browser)
    for page in ("/endpoints", "/deliveries", "/overview/figures"):
        text = (await browser.get(page)).text
        assert f'<a href="/endpoints/{endpoint["id"]}">billing-hook</a>' in text, page
        assert 'Acme Corp <span class="uid">acme</span>' in text, page


async def test_one_search_box_finds_ids_uids_urls_and_idempotency_keys(
    admin: AsyncClient, browser: AsyncClient
) -> None:
    await create_tenant(admin, uid="acme", name="Acme Corp")
    await create_tenant(admin, uid="globex", name="Globex")
    await create_event_type(admin, "invoice.paid")
    endpoint = await create_endpoint(
        admin, "acme", uid="billing-hook", url="https://hooks.acme.example/in_voice"
    )
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"n": 1}}
    made = await admin.post("/v1/events", json=body, headers={"idempotency-key": "order-77"})
    event = ok(made, 202)
    await _sign_in(browser)

    async def search(q: str) -> Response:
        return await browser.get("/search", params={"q": q})

    for ref, goes_to in [
        (event["id"], f"/events/{event['id']}"),
        (endpoint["id"], f"/endpoints/{endpoint['id']}"),
    ]:
        answer = await search(f"  {ref} ")
        assert (answer.status_code, answer.headers["location"]) == (303, goes_to)
    by_uid = (await search("billing-hook")).text
    assert f'<a href="/endpoints/{endpoint["id"]}">billing-hook</a>' in by_uid
    assert "Acme Corp" in (await search("acme corp")).text  # a name, any case
    fragment = (await search("acme.example/in_v")).text
    assert "billing-hook" in fragment
    assert "billing-hook" not in (await search("in%voice")).text  # % is a character here
    assert "billing-hook" not in (await search("acme.example/in_oice")).text
    keyed = (await search("order-77")).text
    assert f'<a href="/events/{event["id"]}">{event["id"]}</a>' in keyed
    poisoned = await search("a\x00b")
    assert poisoned.status_code == 200
    assert "holds a NUL character" in poisoned.text
    assert "Globex" not in (await search("acme")).text


async def _attempt(
    db: asyncpg.Connection,
    endpoint_id: str,
    at: datetime,
    duration_ms: int,
    error_kind: str | None = None,
) -> None:
    """An attempt row as a worker writes it, at ``at``: the charts read nothing else."""
    endpoint = ids.decode(ids.Prefix.ENDPOINT, endpoint_id)
    await db.execute(
        "INSERT INTO attempts (id, delivery_id, endpoint_id, tenant_id, attempt_number,"
        " trigger, started_at, duration_ms, request_headers, response_status, error_kind,"
        " worker_id) SELECT $1, $2, e.id, e.tenant_id, 1, 'scheduled', $3, $4, '{}', $5, $6,"
        " 'w1' FROM endpoints e WHERE e.id = $7",
        ids.id_at(at),
        ids.id_at(at),
        at,
        duration_ms,
        500 if error_kind == "http_status" else (None if error_kind else 200),
        error_kind,
        endpoint,
    )


def _titles(page: str, chart: str) -> list[str]:
    drawn = re.search(rf'<svg class="plot" id="{chart}".*?</svg>', page, re.S)
    assert drawn, f"no {chart} on the page"
    return [html.unescape(title) for title in re.findall(r"<title>(.*?)</title>", drawn[0])]


async def test_an_endpoint_charts_its_attempts_by_outcome_and_latency(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    """The endpoint page draws its own attempts, a bar a minute over the hour (a quarter hour
    over the day), by outcome, and the median and 95th percentile of their durations, with
    ticks and units; a neighbour's attempts and older ones are not in it."""
    await create_tenant(admin, uid="acme")
    endpoint = (await create_endpoint(admin, "acme", event_types=["*"]))["id"]
    neighbour = (await create_endpoint(admin, "acme", event_types=["*"]))["id"]
    now = datetime.now(UTC) - timedelta(seconds=2)
    for duration in (100, 200, 300):
        await _attempt(db, endpoint, now, duration)
    await _attempt(db, endpoint, now, 400, "http_status")
    await _attempt(db, endpoint, now, 5000, "timeout")
    await _attempt(db, endpoint, now - timedelta(hours=2), 50)
    await _attempt(db, neighbour, now, 9999, "timeout")
    await _sign_in(browser)

    hour = (await browser.get(f"/endpoints/{endpoint}")).text
    bars = _titles(hour, "outcomes-chart")
    assert len(bars) == 61  # the chart's own title, then a bar a minute
    busy = [title for title in bars if "0 succeeded, 0 answered" not in title][1:]
    assert len(busy) == 1
    assert busy[0].endswith("3 succeeded, 1 answered not 2xx, 1 not answered")
    ticks = re.findall(r'class="y-tick"[^>]*>([^<]*)<', hour)
    assert ticks[:4] == ["0", "2", "4", "6"]  # five attempts in the busiest minute
    assert "attempts per minute" in hour
    points = _titles(hour, "latency-chart")[1:]
    # percentile_cont over 100, 200, 300, 400, 5000: the median 300, p95 400 + 0.8 * 4600
    assert [title.split(": ")[1] for title in points] == ["p50 300 ms", "p95 4080 ms"]

    day = (await browser.get(f"/endpoints/{endpoint}?span=day")).text
    quarters = _titles(day, "outcomes-chart")[1:]
    assert len(quarters) == 96
    busy = [title for title in quarters if "0 succeeded, 0 answered" not in title]
    assert [title.split(": ")[1] for title in busy] == [
        "1 succeeded, 0 answered not 2xx, 0 not answered",
        "3 succeeded, 1 answered not 2xx, 1 not answered",
    ]
    assert 'aria-current="page">day</a>' in day
    assert "attempts per 15 minutes" in day


async def test_a_bulk_resend_counts_first_then_queues_what_it_counted(
    admin: AsyncClient, browser: AsyncClient, db: asyncpg.Connection
) -> None:
    """The filters choose, the first step counts, the second queues: what is in flight, what
    a disabled endpoint holds, and what arrived after the count are left as they are."""
    await create_tenant(admin, uid="acme")
    await create_event_type(admin, "invoice.paid")
    await create_event_type(admin, "invoice.sent")
    await create_endpoint(admin, "acme", url="http://127.0.0.1:9/a", event_types=["invoice.paid"])
    paused = (
        await create_endpoint(
            admin, "acme", url="http://127.0.0.1:9/b", event_types=["invoice.sent"]
        )
    )["id"]
    for kind in ("invoice.paid", "invoice.paid", "invoice.paid", "invoice.sent"):
        body = {"tenant_id": "acme", "event_type": kind, "payload": {}}
        ok(await admin.post("/v1/events", json=body), 202)
    await db.execute("UPDATE deliveries SET status = 'failed', next_attempt_at = now()")
    in_flight = await db.fetchval("SELECT id FROM deliveries ORDER BY id LIMIT 1")
    await db.execute("UPDATE deliveries SET status = 'in_flight' WHERE id = $1", in_flight)
    await db.execute(
        "UPDATE endpoints SET enabled = false WHERE id = $1",
        ids.decode(ids.Prefix.ENDPOINT, paused),
    )
    await _sign_in(browser)
    token = _csrf(await browser.get("/deliveries"))

    everything = await browser.post("/deliveries/resend", data={"csrf": token})
    assert everything.status_code == 422
    assert "Choose at least one filter" in everything.text
    assert (await browser.post("/deliveries/resend", data={"tenant": "acme"})).status_code == 403

    counted = await browser.post("/deliveries/resend", data={"csrf": token, "tenant": "acme"})
    assert counted.status_code == 200
    assert "4 deliveries match these filters." in counted.text
    as_of = re.search(r'name="as_of" value="([^"]+)"', counted.text)
    assert as_of
    body = {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {}}
    ok(await admin.post("/v1/events", json=body), 202)  # after the count
    await db.execute("UPDATE deliveries SET status = 'failed' WHERE status = 'pending'")

    done = await browser.post(
        "/deliveries/resend",
        data={"csrf": token, "tenant": "acme", "confirm": "true", "as_of": as_of[1]},
    )
    assert done.status_code == 200
    assert "2 deliveries queued again. 2 were not" in done.text
    rows = await db.fetch("SELECT id, status, trigger FROM deliveries ORDER BY id")
    assert [(row["status"], row["trigger"]) for row in rows] == [
        ("in_flight", "scheduled"),
        ("pending", "manual"),
        ("pending", "manual"),
        ("failed", "scheduled"),  # its endpoint is disabled
        ("failed", "scheduled"),  # created after the count
    ]
    assert rows[0]["id"] == in_flight
    stale = await browser.post(
        "/deliveries/resend",
        data={"csrf": token, "tenant": "acme", "confirm": "true", "as_of": "not a time"},
    )
    assert stale.status_code == 422


async def test_the_operator_makes_a_portal_link_and_revokes_the_tenants_links(
    admin: AsyncClient, browser: AsyncClient, app: FastAPI
) -> None:
    """A link made on the tenants page opens the tenant's portal; revoking ends it and the
    session opened with it at their next request."""
    tenant = await create_tenant(admin, uid="acme", name="Acme Corp")
    await _sign_in(browser)
    token = _csrf(await browser.get("/tenants"))
    made = await browser.post(
        f"/tenants/{tenant['id']}/portal-link",
        data={"csrf": token, "scope": "manage", "hours": "4"},
    )
    assert made.status_code == 200
    assert "A managing portal link for Acme Corp" in made.text
    link = re.search(r"http://test(/portal/open\?token=[^<\s]+)", made.text)
    assert link
    transport = ASGITransport(app=app)
    async with AsyncClient(transport=transport, base_url="http://test") as customer:
        opened = await customer.get(html.unescape(link[1]))
        assert (opened.status_code, opened.headers["location"]) == (303, "/portal")
        assert (await customer.get("/portal")).status_code == 200

        revoked = await browser.post("/tenants/acme/revoke-portal-links", data={"csrf": token})
        assert revoked.status_code == 200
        assert "Every portal link of Acme Corp made until now" in revoked.text
        assert (await customer.get("/portal")).status_code == 403
        assert (await customer.get(html.unescape(link[1]))).status_code == 403

    forged = await browser.post(f"/tenants/{tenant['id']}/portal-link", data={"scope": "read"})
    assert forged.status_code == 403  # no form token
    nobody = await browser.post("/tenants/ten_nope/portal-link", data={"csrf": token})
    assert nobody.status_code == 404
    for bad in ({"scope": "admin"}, {"hours": "25"}, {"hours": "x"}):
        refused = await browser.post(
            f"/tenants/{tenant['id']}/portal-link", data={"csrf": token, **bad}
        )
        assert refused.status_code == 422, bad
