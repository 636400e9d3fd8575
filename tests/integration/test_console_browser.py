"""The operator's main journey in a real headless Chromium (Debian's, driven by Playwright):
sign in, find the failing endpoint, read its last attempt, fix its URL, recover the window
after counting it, see the deliveries succeed, and resend them in bulk after counting them;
set a customer up from nothing; a customer's journey in the portal; and the portal link the
Svix SDK asks for, opened. The screenshots it takes are the README's
(``HOOKPOST_SCREENSHOTS`` names the folder; a temporary one otherwise)."""

import os
import shutil
from pathlib import Path

import asyncpg
import pytest
from httpx import AsyncClient
from playwright.async_api import Browser, Page, Playwright, async_playwright, expect
from standardwebhooks.webhooks import Webhook
from svix.api import ApplicationIn, AppPortalAccessIn, EndpointIn, SvixAsync, SvixOptions

from hookpost.app import create_app
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok
from tests.integration.live import serving
from tests.receiver import Received, Reply, receiver

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# CI installs Chromium (.ci/run): there, a missing browser is a failure, not a skip.
needs_browser = pytest.mark.skipif(
    CHROMIUM is None and not os.environ.get("CI"), reason="Chromium is not installed"
)


@pytest.fixture
def screenshots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("HOOKPOST_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def _open(playwright: Playwright) -> tuple[Browser, Page]:
    """Debian's Chromium, headless, every host but 127.0.0.1 unresolvable, and a page."""
    assert CHROMIUM is not None
    browser = await playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"],
    )
    return browser, await browser.new_page(viewport={"width": 1280, "height": 800})


async def _shot(page: Page, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / f"console-{name}.png"), full_page=True)


@needs_browser
async def test_an_operator_fixes_a_failing_endpoint_and_recovers_its_deliveries(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings, screenshots: Path
) -> None:
    folder = screenshots

    def script(n: int, request: Received) -> Reply:
        if request.path.startswith("/broken"):
            return Reply(status=500, body=b'{"error": "database unavailable"}')
        return Reply()

    async with receiver(script) as target:
        await create_tenant(admin, uid="acme", name="Acme Corp")
        await create_event_type(admin, "invoice.paid")
        await create_endpoint(admin, "acme", url=f"{target.url}/broken", event_types=["*"])
        events = [
            {"tenant_id": "acme", "event_type": "invoice.paid", "payload": {"invoice": n}}
            for n in range(3)
        ]
        ok(await admin.post("/v1/events/batch", json={"events": events}), 202)
        async with running_worker(settings, retry_max_attempts=2):

            async def all_failed() -> bool:
                failed = "SELECT count(*) FROM deliveries WHERE status = 'failed'"
                return await db.fetchval(failed) == 3

            await eventually(all_failed)
            with serving(create_app(settings)) as url:
                async with async_playwright() as playwright:
                    browser, page = await _open(playwright)
                    complaints: list[str] = []  # the policy's refusals would show here
                    page.on("console", lambda message: complaints.append(message.text))
                    await page.goto(f"{url}/")
                    await expect(page).to_have_url(f"{url}/sign-in")
                    await page.fill("#key", ADMIN_KEY)
                    await page.get_by_role("button", name="Sign in").click()
                    trouble = page.locator("#figures tbody tr")
                    await expect(trouble).to_have_count(1)  # failing, its breaker open
                    await expect(trouble).to_contain_text("probing")
                    await _shot(page, folder, "overview")

                    await page.fill("#q", "/broken")  # the header's one search box
                    await page.press("#q", "Enter")
                    await expect(page.locator("#found-endpoints")).to_contain_text(
                        f"{target.url}/broken"
                    )
                    await expect(page.locator("#found-endpoints")).to_contain_text("Acme Corp")
                    await page.go_back()

                    await trouble.locator("a").click()
                    await expect(page.locator("h1")).to_contain_text("Endpoint")
                    await expect(page.locator("#attempts tbody tr").first).to_contain_text("500")
                    await _shot(page, folder, "endpoint")

                    await page.locator("#attempts tbody tr a").first.click()
                    await expect(page.locator(".timeline")).to_contain_text("database unavailable")
                    await _shot(page, folder, "delivery")
                    await page.go_back()

                    await page.fill("#url", f"{target.url}/fixed")
                    await page.get_by_role("button", name="Save the URL").click()
                    await expect(page.locator("p.url")).to_have_text(f"{target.url}/fixed")
                    await page.get_by_role("button", name="Count").click()
                    await expect(page.locator("#recoverable")).to_have_text(
                        "3 failed deliveries in this window."
                    )
                    await page.get_by_role("button", name="Recover 3").click()
                    await expect(page.locator("p.ok")).to_have_text("3 deliveries queued again.")
                    await target.wait_for(3 * 2 + 3)  # two failed attempts each, then one

                    async def all_succeeded() -> bool:
                        done = "SELECT count(*) FROM deliveries WHERE status = 'succeeded'"
                        return await db.fetchval(done) == 3

                    await eventually(all_succeeded)
                    await page.get_by_role("link", name="Its deliveries").click()
                    await expect(page.locator(".badge.succeeded")).to_have_count(3)
                    await _shot(page, folder, "deliveries")
                    await page.locator("#bulk-resend").get_by_role("button", name="Count").click()
                    await expect(page.locator("#bulk-count")).to_have_text(
                        "3 deliveries match these filters."
                    )
                    await page.get_by_role("button", name="Resend 3").click()
                    await expect(page.locator("#bulk-message")).to_have_text(
                        "3 deliveries queued again."
                    )
                    await target.wait_for(3 * 2 + 3 + 3)  # and once more each, resent
                    await page.set_viewport_size({"width": 390, "height": 844})  # a phone
                    fits = "document.documentElement.scrollWidth <= window.innerWidth"
                    assert await page.evaluate(fits)  # wide tables scroll inside themselves
                    await _shot(page, folder, "phone")
                    await page.set_viewport_size({"width": 1280, "height": 800})
                    await page.goto(f"{url}/")  # the overview, refreshed in place
                    await page.wait_for_timeout(2500)
                    await browser.close()
    assert [text for text in complaints if "Content Security Policy" in text] == []
    fixed = [r for r in target.requests if r.path == "/fixed"]
    assert len(fixed) == 3 + 3  # recovered, then resent in bulk


@needs_browser
async def test_a_tenants_customer_adds_an_endpoint_tests_it_and_rotates_its_secret(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings, screenshots: Path
) -> None:
    """Through a portal link with the manage scope: add an endpoint, send it a test event,
    watch its page turn to delivered by itself, rotate the signing secret; then the product
    revokes the tenant's links, and the next page the customer opens says so."""
    async with receiver(lambda n, r: Reply(delay_s=1.5)) as target:
        tenant = await create_tenant(admin, uid="acme", name="Acme Corp")
        await create_event_type(admin, "invoice.paid")
        await create_event_type(admin, "invoice.refunded")
        made = await admin.post(
            f"/v1/tenants/{tenant['id']}/portal-links", json={"scope": "manage"}
        )
        link = ok(made, 201)["url"].removeprefix("http://test")
        branded = settings.model_copy(update={"portal_name": "Acme Billing webhooks"})
        async with running_worker(settings):
            with serving(create_app(branded)) as url:
                async with async_playwright() as playwright:
                    browser, page = await _open(playwright)
                    await page.goto(f"{url}{link}")
                    await expect(page).to_have_url(f"{url}/portal")
                    await expect(page.locator("header")).to_contain_text("Acme Billing")
                    await page.fill("#url", f"{target.url}/acme")
                    await page.get_by_label("invoice.paid").check()
                    await page.get_by_role("button", name="Add the endpoint").click()
                    await expect(page.locator("p.url")).to_have_text(f"{target.url}/acme")

                    await page.get_by_role("button", name="Send a test event").click()
                    # the receiver answers after 1.5 s: the page, opened before, updates itself
                    await expect(page.locator("#state")).not_to_have_text("succeeded")
                    await expect(page.locator("#state")).to_have_text("succeeded", timeout=15_000)
                    await expect(page.locator(".timeline li")).to_have_count(1)
                    await _shot(page, screenshots, "portal-delivery")
                    await page.go_back()
                    await page.get_by_role("button", name="Reveal the signing secret").click()
                    first = await page.locator("#secret").inner_text()
                    await page.get_by_role("button", name="Rotate the signing secret").click()
                    await expect(page.locator("p.ok")).to_contain_text("new signing secret")
                    second = await page.locator("#secret").inner_text()
                    await page.get_by_role("link", name="Endpoints").click()
                    await _shot(page, screenshots, "portal-endpoints")
                    # the product revokes the tenant's links: the open page ends at once
                    revoked = await admin.post("/v1/tenants/acme/portal-links/revoke")
                    assert revoked.status_code == 204
                    await page.get_by_role("link", name="Deliveries").click()
                    await expect(page.locator("h1")).to_have_text(
                        "This link does not open the portal"
                    )
                    await browser.close()
    assert first.startswith("whsec_")
    assert second.startswith("whsec_")
    assert first != second
    assert [r.path for r in target.requests] == ["/acme"]
    assert b"hookpost.test" in target.requests[0].body


@needs_browser
async def test_an_operator_sets_up_a_customer_from_nothing(
    admin: AsyncClient, db: asyncpg.Connection, settings: Settings, screenshots: Path
) -> None:
    """In the console alone: create a tenant, an event type with a schema and an endpoint
    with its routing and policy; a refused form says which field and keeps what was typed;
    an event the product emits then reaches the receiver, signed with the endpoint's secret."""
    async with receiver(lambda n, r: Reply()) as target, running_worker(settings):
        with serving(create_app(settings)) as url:
            async with async_playwright() as playwright:
                browser, page = await _open(playwright)
                await page.goto(f"{url}/sign-in")
                await page.fill("#key", ADMIN_KEY)
                await page.get_by_role("button", name="Sign in").click()

                await page.get_by_role("link", name="Event types").first.click()
                await page.get_by_role("link", name="New event type").click()
                await page.fill("#f-name", "invoice.paid")
                await page.fill("#f-description", "An invoice was paid in full.")
                await page.fill("#f-schema", '{"type": "object", "required": ["invoice_id"]}')
                await page.get_by_role("button", name="Create the event type").click()
                await expect(page.locator("#event-type-message")).to_have_text(
                    "Saved the event type invoice.paid."
                )

                await page.get_by_role("link", name="Tenants").first.click()
                await page.get_by_role("link", name="New tenant").click()
                await page.fill("#f-name", "Globex")
                await page.fill("#f-uid", "globex")
                await page.get_by_role("button", name="Create the tenant").click()
                await expect(page.locator("#tenant-message")).to_have_text(
                    "Saved the tenant Globex."
                )

                await page.get_by_role("link", name="Add an endpoint").click()
                await page.fill("#f-url", f"{target.url}/globex")
                await page.fill("#f-description", "Globex billing")
                await page.fill("#f-event_types", "invoice.*")
                await page.fill('[name="filters"]', '{"invoice.*": {"amount": {"$gt": 100}}}')
                await page.check("#f-ordered")
                await page.fill('[name="ordering.key"]', "customer_id")
                await page.fill('[name="policy.timeout_s"]', "500")  # above the lease
                await page.get_by_role("button", name="Create the endpoint").click()
                problems = page.locator("#form-problems")
                await expect(problems).to_contain_text("Timeout of a request (s)")
                await expect(page.locator("#f-description")).to_have_value("Globex billing")
                await _shot(page, screenshots, "endpoint-form")
                await page.fill('[name="policy.timeout_s"]', "5")
                await page.get_by_role("button", name="Create the endpoint").click()
                await expect(page.locator("p.url")).to_have_text(f"{target.url}/globex")
                endpoint_path = page.url.removeprefix(url)
                await page.get_by_role("button", name="Reveal the signing secret").click()
                secret = await page.locator("#secret").inner_text()  # for the receiver

                await page.get_by_role("link", name="Change its configuration").click()
                await expect(page.locator('[name="policy.timeout_s"]')).to_have_value("5")
                await page.fill("#f-uid", "globex-billing")
                await page.get_by_role("button", name="Save the endpoint").click()
                await expect(page).to_have_url(f"{url}{endpoint_path}")
                await browser.close()
        endpoint_id = endpoint_path.removeprefix("/endpoints/")
        for amount in (50, 500):  # the filter lets only the second through
            event = {
                "tenant_id": "globex",
                "event_type": "invoice.paid",
                "payload": {"invoice_id": f"in_{amount}", "amount": amount, "customer_id": "c"},
            }
            ok(await admin.post("/v1/events", json=event), 202)
        # fan-out commits with the event: what the filter refused has no delivery at all
        assert await db.fetchval("SELECT count(*) FROM deliveries") == 1
        [request] = await target.wait_for(1)
    body = ok(await admin.get(f"/v1/endpoints/{endpoint_id}"))
    assert (body["uid"], body["policy"]) == ("globex-billing", {"timeout_s": 5})
    assert body["ordering"] == {"key": "customer_id", "on_exhausted": "fail"}
    assert Webhook(secret).verify(request.body, request.headers)["data"]["amount"] == 500


@needs_browser
async def test_a_svix_apps_portal_link_opens_hookposts_portal(settings: Settings) -> None:
    """The Svix SDK's app-portal-access, opened in the browser: hookpost's own portal, on the
    application's endpoints, read-only as asked."""
    with serving(create_app(settings)) as url:
        svix = SvixAsync(ADMIN_KEY, SvixOptions(server_url=url, retry_schedule=[]))
        await svix.application.create(ApplicationIn(name="Initech", uid="initech"))
        await svix.endpoint.create("initech", EndpointIn(url="https://initech.example/hooks"))
        access = await svix.authentication.app_portal_access(
            "initech", AppPortalAccessIn(read_only=True)
        )
        async with async_playwright() as playwright:
            browser, page = await _open(playwright)
            await page.goto(access.url)
            await expect(page).to_have_url(f"{url}/portal")
            await expect(page.locator("main")).to_contain_text("https://initech.example/hooks")
            await expect(page.get_by_role("button", name="Add the endpoint")).to_have_count(0)
            await browser.close()
