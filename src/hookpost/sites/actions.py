"""What the console and the portal both do, once, for any ``Viewer``: find the endpoint or the
delivery the viewer may see, take a URL, test a sample event against an endpoint's routing,
and resend a delivery. Each face only reads its form and renders the outcome; the rules are
the services' (``admin``, ``ops``)."""

from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids, jsonvalue
from hookpost.access import Viewer
from hookpost.admin import endpoints as admin_endpoints
from hookpost.db import unstorable
from hookpost.db.engine import driver_connection
from hookpost.db.models import Delivery, DeliveryStatus, Endpoint
from hookpost.errors import HookpostError, NotFound
from hookpost.ingest import emit
from hookpost.ops import logs, recovery
from hookpost.settings import Settings
from hookpost.strict_json import NotStrictJSON, loads


async def endpoint(session: AsyncSession, viewer: Viewer, ref: str) -> Endpoint | None:
    """The live endpoint ``ref`` names, as ``viewer`` may see it; None otherwise."""
    try:
        return await admin_endpoints.visible(session, viewer, ref)
    except (NotFound, admin_endpoints.UidNeedsTenant):
        return None


async def delivery(session: AsyncSession, viewer: Viewer, ref: str) -> Delivery | None:
    """The delivery ``ref`` names, as ``viewer`` may see it; None otherwise."""
    try:
        return await logs.visible_delivery(session, viewer, ref)
    except NotFound:
        return None


def checked_url(settings: Settings, url: str) -> tuple[str | None, str | None]:
    """``url`` as an endpoint keeps it, or why it is refused (the API's own rule)."""
    try:
        return admin_endpoints.accepted_url(settings, url), None
    except HookpostError as error:
        return None, error.detail.removeprefix("the URL was refused: ")


async def filter_verdict(
    session: AsyncSession, endpoint: Endpoint, event_type: str, payload: str, channels: str
) -> tuple[str | None, str | None]:
    """Whether a sample event would reach ``endpoint`` and why, or why the sample is refused.
    The payload is read as strictly as the API reads one."""
    try:
        data = loads(payload)
    except NotStrictJSON as error:
        return None, f"The sample payload is not strict JSON: {error.message}."
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return None, "The sample payload is not a JSON object."
    if (refused := unstorable.json_refusal(data, keep_nul=True)) is not None:
        place, reason = refused
        where = "".join(f"[{part!r}]" for part in place)
        return None, f"The sample payload cannot be sent: at payload{where}, {reason}."
    verdict = await admin_endpoints.test_filters(
        session,
        endpoint.id,
        event_type=event_type,
        payload_json=jsonvalue.dumps(data).decode(),
        channels=[name.strip() for name in channels.split(",") if name.strip()] or None,
    )
    said = "would be delivered" if verdict.delivered else "would not be delivered"
    return f"A {event_type} event like this {said}: {verdict.reason}.", None


# A delivery whose next attempt is this close is watched: its page refreshes itself.
WATCHED_S = 60


def in_motion(found: Delivery) -> bool:
    """Whether ``found`` is being sent or about to be: its page then refreshes itself until
    it settles."""
    if found.status == DeliveryStatus.IN_FLIGHT:
        return True
    soon = datetime.now(UTC) + timedelta(seconds=WATCHED_S)
    return found.status == DeliveryStatus.PENDING and found.next_attempt_at <= soon


async def send_test(session: AsyncSession, endpoint: Endpoint) -> str:
    """Queue a ``hookpost.test`` event for ``endpoint`` alone, whatever it subscribes to, in
    the session's transaction; its delivery's public id."""
    delivery_id = await emit.send_test(
        await driver_connection(session), endpoint.tenant_id, endpoint.id
    )
    return ids.encode(ids.Prefix.DELIVERY, delivery_id)


Resent = Literal["queued", "disabled", "in_flight"]


async def resend(session: AsyncSession, found: Delivery) -> Resent:
    """Queue ``found`` again now, in the session's transaction; what became of it."""
    _, target, _ = await logs.delivery_context(session, found)
    try:
        await recovery.resend(session, found, target)
    except recovery.EndpointDisabled:
        return "disabled"
    except recovery.DeliveryInFlight:
        return "in_flight"
    return "queued"
