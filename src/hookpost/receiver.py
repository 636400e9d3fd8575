"""A webhook receiver for trying hookpost out (``hookpost receiver``): it prints every request
it gets and, given the endpoint's secret, checks its Standard Webhooks signature."""

import binascii
import hmac
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

import orjson
from aiohttp import web

from hookpost.delivery.signing import secret_bytes, sign

TOLERANCE_S = 300  # as the Standard Webhooks libraries: older or newer timestamps are refused


def signature_verdict(secret: str, headers: Mapping[str, str], body: bytes) -> str:
    """Why the request's signature is right or wrong, as a receiver's library would judge it."""
    scheme = "webhook" if "webhook-id" in headers else "svix"  # an endpoint may send either
    try:
        msg_id = headers[f"{scheme}-id"]
        timestamp = int(headers[f"{scheme}-timestamp"])
        given = headers[f"{scheme}-signature"].split()
    except (KeyError, ValueError):
        return "unsigned: a webhook-id, webhook-timestamp or webhook-signature header is missing"
    if abs(time.time() - timestamp) > TOLERANCE_S:
        return f"signature refused: the timestamp is more than {TOLERANCE_S} s off"
    try:
        expected = sign([secret_bytes(secret)], msg_id, timestamp, body)
    except (ValueError, binascii.Error):
        return "the secret given to the receiver is not a whsec_ secret"
    if any(hmac.compare_digest(expected, signature) for signature in given):
        return "signature verified"
    return "signature does NOT match this secret"


def application(secret: str | None, status: int, show: Callable[[str], None]) -> web.Application:
    """The receiver: every request answered ``status`` and shown with ``show``."""

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()
        try:
            event = orjson.loads(body)
            what = f"{event['type']} {event['id']}"
        except (orjson.JSONDecodeError, KeyError, TypeError):
            what = f"{len(body)} bytes"
        verdict = "" if secret is None else f" ({signature_verdict(secret, request.headers, body)})"
        at = datetime.now(UTC).strftime("%H:%M:%S")
        text = body.decode(errors="replace")
        show(f"{at} {request.method} {request.path_qs}: {what}{verdict}\n{text}")
        return web.Response(status=status)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receive)
    return app


def serve(
    host: str, port: int, secret: str | None, status: int, show: Callable[[str], None]
) -> None:
    """Receive until interrupted."""
    web.run_app(
        application(secret, status, show),
        host=host,
        port=port,
        print=None,
        access_log=None,
        handle_signals=True,
    )
