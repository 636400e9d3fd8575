"""An endpoint chooses how its requests look: the body (hookpost's envelope, or the payload
alone) and the names of the signature headers (``webhook-*``, ``svix-*`` or both). Each
request is verified by a library written by others for the names it carries."""

import json

from httpx import AsyncClient
from standardwebhooks.webhooks import Webhook as StandardWebhook
from svix.webhooks import Webhook as SvixWebhook

from hookpost.settings import Settings
from tests.integration.delivery_helpers import running_worker
from tests.integration.helpers import create_endpoint, create_event_type, create_tenant, ok, problem
from tests.receiver import receiver


async def test_each_endpoint_gets_the_body_and_headers_it_chose(
    admin: AsyncClient, settings: Settings
) -> None:
    async with receiver() as target:
        await create_tenant(admin, uid="acme")
        await create_event_type(admin, "invoice.paid")
        plain = await create_endpoint(admin, "acme", url=f"{target.url}/plain", event_types=["*"])
        assert (plain["body_format"], plain["signature_headers"]) == ("envelope", "webhook")
        both = await create_endpoint(
            admin,
            "acme",
            url=f"{target.url}/both",
            event_types=["*"],
            body_format="payload",
            signature_headers="both",
        )
        secrets = {
            path: ok(await admin.get(f"/v1/endpoints/{endpoint['id']}/secret"))["key"]
            for path, endpoint in (("/plain", plain), ("/both", both))
        }
        # sent as text, so that the literal 12.50 reaches hookpost as written
        event = (
            b'{"tenant_id": "acme", "event_type": "invoice.paid",'
            b' "payload": {"invoice_id": "in_1", "amount": 12.50}}'
        )
        headers = {"content-type": "application/json"}
        ok(await admin.post("/v1/events", content=event, headers=headers), 202)
        async with running_worker(settings):
            requests = {request.path: request for request in await target.wait_for(2)}
    enveloped, bare = requests["/plain"], requests["/both"]
    assert json.loads(enveloped.body)["data"] == {"invoice_id": "in_1", "amount": 12.5}
    assert not any(name.startswith("svix-") for name in enveloped.headers)
    StandardWebhook(secrets["/plain"]).verify(enveloped.body, enveloped.headers)
    assert bare.body == b'{"invoice_id":"in_1","amount":12.50}'  # the payload as written
    StandardWebhook(secrets["/both"]).verify(bare.body, bare.headers)
    svix_only = {k: v for k, v in bare.headers.items() if not k.startswith("webhook-")}
    SvixWebhook(secrets["/both"]).verify(bare.body, svix_only)


async def test_a_format_hookpost_does_not_have_is_refused(admin: AsyncClient) -> None:
    await create_tenant(admin, uid="acme")
    answer = await admin.post(
        "/v1/endpoints",
        json={"tenant_id": "acme", "url": "https://example.com/h", "body_format": "xml"},
    )
    problem(answer, 422, "validation_error")
    for name in ("svix-id", "Svix_Signature"):
        refused = await admin.post(
            "/v1/endpoints",
            json={"tenant_id": "acme", "url": "https://example.com/h", "headers": {name: "x"}},
        )
        problem(refused, 422, "validation_error")
