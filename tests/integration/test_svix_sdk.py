"""The Svix API as a Svix user meets it: the official Python SDK (PyPI ``svix``) against a
running hookpost, with nothing changed but ``server_url``. Applications, event types with a
schema, endpoints with and without event types, messages with ``eventId`` and channels, the
receiver verifying with the ``svix`` library's ``Webhook``, attempts, resend, secret rotation
with both secrets verifying during the grace, paging, the portal link, and Svix-shaped
errors."""

import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi import FastAPI
from svix.api import (
    ApplicationIn,
    AppPortalAccessIn,
    EndpointIn,
    EndpointPatch,
    EndpointSecretRotateIn,
    EventExampleIn,
    EventTypeIn,
    MessageIn,
    RecoverIn,
    SvixAsync,
    SvixOptions,
)
from svix.api.application import ApplicationListOptions
from svix.api.message_attempt import MessageAttemptListByEndpointOptions
from svix.exceptions import HttpError, HTTPValidationError
from svix.models import MessageStatus
from svix.webhooks import Webhook

from hookpost.app import create_app
from hookpost.settings import Settings
from tests.conftest import ADMIN_KEY
from tests.integration.delivery_helpers import eventually, running_worker
from tests.integration.live import serving
from tests.receiver import receiver

SCHEMA = {"type": "object", "required": ["invoice_id"]}


def _client(url: str) -> SvixAsync:
    return SvixAsync(ADMIN_KEY, SvixOptions(server_url=url, retry_schedule=[]))


async def test_a_svix_users_whole_flow(settings: Settings, app: FastAPI) -> None:
    async with receiver() as target, running_worker(settings):
        with serving(create_app(settings)) as url:
            svix = _client(url)
            await svix.health.get()
            app_out = await svix.application.create(ApplicationIn(name="Acme", uid="acme"))
            again = await svix.application.get_or_create(ApplicationIn(name="Acme", uid="acme"))
            assert again.id == app_out.id
            assert (await svix.application.get("acme")).name == "Acme"

            event_type = await svix.event_type.create(
                EventTypeIn(
                    name="invoice.paid",
                    description="Paid.",
                    schemas={"1": SCHEMA},
                    group_name="billing",
                )
            )
            assert (event_type.schemas, event_type.group_name) == ({"1": SCHEMA}, "billing")
            with pytest.raises(HTTPValidationError):  # the schema holds
                await svix.message.create(
                    "acme", MessageIn(event_type="invoice.paid", payload={"amount": 1})
                )

            every = await svix.endpoint.create(
                "acme", EndpointIn(url=f"{target.url}/every", uid="every")
            )
            assert every.event_types is None  # no types: every type, as in Svix
            only_eu = await svix.endpoint.create(
                "acme",
                EndpointIn(
                    url=f"{target.url}/eu",
                    event_types=["invoice.paid"],
                    channels=["eu"],
                    throttle_rate=50,
                    metadata={"team": "billing"},
                ),
            )
            assert (only_eu.throttle_rate, only_eu.metadata) == (50, {"team": "billing"})
            secret = (await svix.endpoint.get_secret("acme", "every")).key

            message = await svix.message.create(
                "acme",
                MessageIn(
                    event_type="invoice.paid",
                    payload={"invoice_id": "in_1"},
                    event_id="evt-1",
                    channels=["us"],
                ),
            )
            assert (await svix.message.get("acme", "evt-1")).id == message.id
            with pytest.raises(HttpError) as duplicate:
                await svix.message.create(
                    "acme",
                    MessageIn(
                        event_type="invoice.paid", payload={"invoice_id": "in_1"}, event_id="evt-1"
                    ),
                )
            assert duplicate.value.status_code == 409

            [request] = await target.wait_for(1)  # the "us" message skips the "eu" endpoint
            assert request.path == "/every"
            Webhook(secret).verify(request.body, request.headers)
            # as Svix delivers: the payload itself, under svix-* headers only
            assert json.loads(request.body) == {"invoice_id": "in_1"}
            assert request.headers["svix-id"] == message.id
            assert not any(name.startswith("webhook-") for name in request.headers)

            async def attempted() -> bool:
                listed = await svix.message_attempt.list_by_endpoint("acme", "every")
                return len(listed.data) == 1

            await eventually(attempted)
            [attempt] = (await svix.message_attempt.list_by_endpoint("acme", every.id)).data
            assert (attempt.status, attempt.response_status_code, attempt.msg_id) == (
                0,
                200,
                message.id,
            )

            pending = await svix.message_attempt.list_by_endpoint(
                "acme", every.id, MessageAttemptListByEndpointOptions(status=MessageStatus.PENDING)
            )
            assert pending.data == []  # an attempt has ended: none is pending
            counted = await svix.endpoint.get_stats("acme", every.id)
            assert (counted.success, counted.fail, counted.pending) == (1, 0, 0)
            recovered = await svix.endpoint.recover(
                "acme", every.id, RecoverIn(since=datetime.now(UTC) - timedelta(hours=1))
            )
            assert recovered.status == "finished"  # nothing failed, nothing queued again

            rotated = await svix.endpoint.rotate_secret("acme", "every", EndpointSecretRotateIn())
            new_secret = (await svix.endpoint.get_secret("acme", "every")).key
            assert rotated.key == new_secret
            assert new_secret != secret
            await svix.message_attempt.resend("acme", message.id, every.id)
            [_, resent] = await target.wait_for(2)
            Webhook(secret).verify(resent.body, resent.headers)  # both sign during the grace
            Webhook(new_secret).verify(resent.body, resent.headers)

            example = await svix.endpoint.send_example(
                "acme", every.id, EventExampleIn(event_type="invoice.paid", payload={"n": 1})
            )
            [*_, sent] = await target.wait_for(3)  # to this endpoint alone, the payload given
            assert (json.loads(sent.body), sent.headers["svix-id"]) == ({"n": 1}, example.id)

            patched = await svix.endpoint.patch("acme", only_eu.id, EndpointPatch(disabled=True))
            assert patched.disabled is True

            portal = await svix.authentication.app_portal_access(
                "acme", AppPortalAccessIn(read_only=True)
            )
            async with httpx.AsyncClient() as browser:
                opened = await browser.get(portal.url.replace("http://testserver", url))
            assert opened.status_code == 303
            await svix.application.delete("acme")
            with pytest.raises(HttpError) as gone:
                await svix.application.get("acme")
            assert (gone.value.status_code, gone.value.code) == (404, "not_found")


async def test_paging_walks_forward_and_back(settings: Settings, app: FastAPI) -> None:
    with serving(create_app(settings)) as url:
        svix = _client(url)
        for n in range(7):
            await svix.application.create(ApplicationIn(name=f"tenant {n}", uid=f"t{n}"))
        seen, iterator, pages = [], None, []
        while True:
            listed = await svix.application.list(ApplicationListOptions(limit=3, iterator=iterator))
            seen += [item.uid for item in listed.data]
            pages.append(listed)
            if listed.done:
                break
            iterator = listed.iterator
        assert seen == [f"t{n}" for n in range(7)]  # ascending, as Svix lists applications
        assert len(pages) == 3
        back = await svix.application.list(
            ApplicationListOptions(limit=3, iterator=pages[2].prev_iterator)
        )
        assert [item.uid for item in back.data] == ["t3", "t4", "t5"]


async def test_what_hookpost_does_not_have_says_so_in_svix_words(
    settings: Settings, app: FastAPI
) -> None:
    with serving(create_app(settings)) as url:
        async with httpx.AsyncClient(
            base_url=url, headers={"authorization": f"Bearer {ADMIN_KEY}"}
        ) as client:
            missing = await client.post("/api/v1/app/acme/endpoint/x/replay-missing", json={})
            assert missing.status_code == 501
            assert missing.json()["code"] == "not_supported"
            assert "replay-missing" in missing.json()["detail"]
            unknown = await client.get("/api/v1/app/nope")
            assert unknown.status_code == 404
            assert unknown.json() == {"code": "not_found", "detail": "No tenant 'nope'"}
            bad = await client.post("/api/v1/app", json={"uid": "x"})
            assert bad.status_code == 422
            assert bad.json()["detail"][0]["loc"] == ["body", "name"]
            nan = await client.post(
                "/api/v1/app",
                content=b'{"name": "a", "metadata": {"x": NaN}}',
                headers={"content-type": "application/json"},
            )
            assert nan.status_code == 422
        async with httpx.AsyncClient(base_url=url) as anonymous:
            refused = await anonymous.get("/api/v1/app")
            assert refused.status_code == 401
            assert refused.json()["code"] == "authentication"
