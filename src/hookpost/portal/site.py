"""The tenant portal at ``/portal``: what a tenant's own customer sees through a link the
product hands out (``POST /v1/tenants/{id}/portal-links``). One tenant only: its endpoints
(with the ``manage`` scope: add, change the URL, reveal and rotate the signing secret, send a
test event, delete; with either scope, the filter test) and its deliveries and attempts
(resend with ``manage``), through ``sites.actions`` as the tenant's ``Viewer``. Anything of
another tenant is not found. Carries the product's name, colour and logo; may be framed by
the origins of ``HOOKPOST_PORTAL_FRAME_ANCESTORS``."""

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any, ClassVar

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin import endpoints as admin_endpoints
from hookpost.admin import event_types as admin_event_types
from hookpost.admin import portal_links
from hookpost.db.engine import driver_connection
from hookpost.db.models import Attempt, Delivery, DeliveryStatus, Endpoint, Tenant
from hookpost.errors import HookpostError
from hookpost.ingest import emit
from hookpost.ops import logs
from hookpost.sites import actions
from hookpost.sites import session as console_session
from hookpost.sites.rendering import (
    content_security_policy,
    opened_from_another_site,
    page_of,
    render,
    see_other,
)
from hookpost.state import AppState, app_state

router = APIRouter(prefix="/portal", include_in_schema=False)
ROTATION_GRACE_S = 24 * 3600


class PortalSignInNeeded(HookpostError):
    """No valid portal session: the link must be opened (again)."""

    code: ClassVar[str] = "sign_in_needed"


class PortalRefused(HookpostError):
    """A form without the session's CSRF token, or an action the session's scope lacks."""

    code: ClassVar[str] = "csrf_refused"


def _csp(state: AppState) -> str:
    logo = state.settings.portal_logo_url
    images = "/".join(logo.split("/", 3)[:3]) if logo else ""
    return content_security_policy(
        frame_ancestors=state.settings.portal_frame_ancestors or "'none'", images=images
    )


def _page(
    request: Request,
    state: AppState,
    found: console_session.Session | None,
    template: str,
    status_code: int = 200,
    **context: Any,
) -> Response:
    return render(
        request,
        template,
        status_code,
        csp=_csp(state),
        brand=state.settings,
        csrf=found.csrf if found else None,
        manage=found is not None and found.scope == "manage",
        **context,
    )


async def _signed_in(request: Request) -> tuple[AppState, console_session.Session]:
    """The portal session, while its tenant exists and has not revoked its link."""
    state = app_state(request)
    found = console_session.read(request, state.secret_box, console_session.PORTAL)
    if found is None or found.tenant_id is None or found.scope not in ("read", "manage"):
        raise PortalSignInNeeded()
    if not await _link_still_valid(state, found.tenant_id, found.issued_at):
        raise PortalSignInNeeded()
    return state, found


async def _link_still_valid(state: AppState, tenant_id: uuid.UUID, issued_at: float) -> bool:
    """Whether a link of ``tenant_id`` issued at ``issued_at``, or a session opened with it,
    still works: the tenant exists and has revoked no link since."""
    async with state.sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
    return portal_links.still_valid(tenant, issued_at)


def _viewer(found: console_session.Session) -> Viewer:
    return Viewer(tenant_id=found.tenant_id, may_change=found.scope == "manage")


def _may_change(found: console_session.Session, csrf: str | None) -> None:
    if found.scope != "manage" or not found.accepts(csrf):
        raise PortalRefused()


async def _endpoint(
    session: AsyncSession, found: console_session.Session, endpoint_id: str
) -> Endpoint | None:
    """The tenant's own live endpoint, or None (another tenant's is not found either)."""
    return await actions.endpoint(session, _viewer(found), endpoint_id)


async def _delivery(
    session: AsyncSession, found: console_session.Session, delivery_id: str
) -> Delivery | None:
    return await actions.delivery(session, _viewer(found), delivery_id)


@asynccontextmanager
async def _changing(
    request: Request, endpoint_id: str, csrf: str | None
) -> AsyncIterator[tuple[AppState, console_session.Session, AsyncSession, Endpoint | None]]:
    """For an action on an endpoint: the session (manage scope and its token checked), a
    database session in a transaction, and the tenant's endpoint (None: not theirs)."""
    state, found = await _signed_in(request)
    _may_change(found, csrf)
    async with state.sessions() as session, session.begin():
        yield state, found, session, await _endpoint(session, found, endpoint_id)


def _not_found(request: Request, state: AppState, found: console_session.Session) -> Response:
    return _page(request, state, found, "portal_not_found.html", 404)


@router.get("/open")
async def open_link(
    request: Request, token: Annotated[str, Query(max_length=1000)] = ""
) -> Response:
    """Exchange a link's token for a session cookie, and drop the token from the address.
    Not when followed from another site: its page could sign the browser in to a tenant of
    its choosing (login CSRF). The product hands links out from its own site, which is the
    portal's (its session cookie is SameSite=Strict)."""
    state = app_state(request)
    if opened_from_another_site(request):
        return _page(request, state, None, "portal_link_foreign.html", 403)
    opened = portal_links.open_portal_link(state.secret_box, token)
    if opened is not None and not await _link_still_valid(
        state, opened.tenant_id, opened.issued_at
    ):
        opened = None
    if opened is None:
        return _page(request, state, None, "portal_link_invalid.html", 403)
    answer = see_other("/portal")
    console_session.start(
        answer,
        request,
        state.secret_box,
        cookie=console_session.PORTAL,
        scope=opened.scope,
        expires_at=opened.expires_at,
        tenant_id=opened.tenant_id,
        issued_at=opened.issued_at,
    )
    return answer


@router.get("/brand.css")
async def brand_css(request: Request) -> Response:
    """The product's colour, as a style sheet: the pages allow no inline style."""
    color = app_state(request).settings.portal_color
    return Response(f":root {{ --accent: {color}; }}\n", media_type="text/css")


@router.get("")
async def endpoints_page(
    request: Request, cursor: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """The tenant's endpoints, newest first, a page at a time."""
    return await _endpoints_page(request, cursor=cursor)


async def _endpoints_page(
    request: Request, *, cursor: str | None = None, error: str | None = None
) -> Response:
    state, found = await _signed_in(request)
    async with state.sessions() as session:
        rows, next_cursor = await page_of(
            session,
            admin_endpoints.list_query(found.tenant_id),
            Endpoint,
            ids.Prefix.ENDPOINT,
            cursor,
        )
        types = (await session.scalars(admin_event_types.offered_to_tenants())).all()
    return _page(
        request,
        state,
        found,
        "portal_endpoints.html",
        422 if error else 200,
        endpoints=rows,
        next_cursor=next_cursor,
        types=types,
        error=error,
    )


@router.post("/endpoints")
async def add_endpoint(
    request: Request,
    url: Annotated[str, Form(max_length=2048)],
    event_types: Annotated[list[str] | None, Form(max_length=255)] = None,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    state, found = await _signed_in(request)
    _may_change(found, csrf)
    assert found.tenant_id is not None
    checked, refusal = actions.checked_url(state.settings, url)
    if not event_types:
        checked, refusal = None, "choose at least one event type"
    elif any(name.startswith(admin_event_types.OWN_PREFIX) for name in event_types):
        checked, refusal = None, "an event type is not known"
    if checked is None or not event_types:
        return await _endpoints_page(request, error=f"The endpoint was not added: {refusal}.")
    async with state.sessions() as session, session.begin():
        try:
            endpoint = await admin_endpoints.create(
                session,
                state.secret_box,
                tenant_id=found.tenant_id,
                fields={"url": checked},
                secret=None,
                event_types=event_types,
            )
        except admin_endpoints.UnknownEventTypes:
            return await _endpoints_page(
                request, error="The endpoint was not added: an event type is not known."
            )
    return see_other(f"/portal/endpoints/{ids.encode(ids.Prefix.ENDPOINT, endpoint.id)}")


async def _endpoint_page(
    request: Request,
    state: AppState,
    found: console_session.Session,
    endpoint_id: str,
    *,
    secret: str | None = None,
    message: str | None = None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    async with state.sessions() as session:
        endpoint = await _endpoint(session, found, endpoint_id)
        if endpoint is None:
            return _not_found(request, state, found)
        attempts = await session.scalars(
            select(Attempt)
            .where(Attempt.endpoint_id == endpoint.id)
            .order_by(Attempt.id.desc())
            .limit(10)
        )
        subscriptions = await admin_endpoints.subscriptions(session, endpoint.id)
        return _page(
            request,
            state,
            found,
            "portal_endpoint.html",
            status_code,
            endpoint=endpoint,
            attempts=attempts.all(),
            event_types=[row.event_type for row in subscriptions],
            secret=secret,
            message=message,
            error=error,
        )


@router.get("/endpoints/{endpoint_id}")
async def endpoint_page(request: Request, endpoint_id: str) -> Response:
    state, found = await _signed_in(request)
    return await _endpoint_page(request, state, found, endpoint_id)


@router.post("/endpoints/{endpoint_id}/url")
async def change_url(
    request: Request,
    endpoint_id: str,
    url: Annotated[str, Form(max_length=2048)],
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    state, found = await _signed_in(request)
    _may_change(found, csrf)
    checked, refusal = actions.checked_url(state.settings, url)
    if checked is None:
        return await _endpoint_page(
            request,
            state,
            found,
            endpoint_id,
            error=f"Not changed: {refusal}.",
            status_code=422,
        )
    async with state.sessions() as session, session.begin():
        endpoint = await _endpoint(session, found, endpoint_id)
        if endpoint is None:
            return _not_found(request, state, found)
        await admin_endpoints.update(session, endpoint, {"url": checked})
    return see_other(f"/portal/endpoints/{endpoint_id}")


@router.post("/endpoints/{endpoint_id}/filter-test")
async def sample_event_verdict(
    request: Request,
    endpoint_id: str,
    event_type: Annotated[str, Form(min_length=1, max_length=255)],
    payload: Annotated[str, Form(max_length=65_536)],
    channels: Annotated[str, Form(max_length=1400)] = "",
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Whether a sample event would reach the endpoint, and why; nothing is stored or sent,
    so a read-only link may ask too."""
    state, found = await _signed_in(request)
    if not found.accepts(csrf):
        raise PortalRefused()
    async with state.sessions() as session:
        endpoint = await _endpoint(session, found, endpoint_id)
        if endpoint is None:
            return _not_found(request, state, found)
        message, error = await actions.filter_verdict(
            session, endpoint, event_type, payload, channels
        )
    return await _endpoint_page(
        request,
        state,
        found,
        endpoint_id,
        message=message,
        error=error,
        status_code=200 if error is None else 422,
    )


@router.post("/endpoints/{endpoint_id}/secret")
async def reveal_secret(
    request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    async with _changing(request, endpoint_id, csrf) as (state, found, session, endpoint):
        if endpoint is None:
            return _not_found(request, state, found)
        secret = await admin_endpoints.current_secret(session, state.secret_box, endpoint.id)
    return await _endpoint_page(request, state, found, endpoint_id, secret=secret)


@router.post("/endpoints/{endpoint_id}/rotate")
async def rotate_secret(
    request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    async with _changing(request, endpoint_id, csrf) as (state, found, session, endpoint):
        if endpoint is None:
            return _not_found(request, state, found)
        secret = await admin_endpoints.rotate_secret(
            session,
            state.secret_box,
            endpoint.id,
            new_secret=None,
            grace_period_s=ROTATION_GRACE_S,
        )
    message = "A new signing secret is current; the old one keeps signing for 24 hours."
    return await _endpoint_page(request, state, found, endpoint_id, secret=secret, message=message)


@router.post("/endpoints/{endpoint_id}/test")
async def send_test_event(
    request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    async with _changing(request, endpoint_id, csrf) as (state, found, session, endpoint):
        if endpoint is None:
            return _not_found(request, state, found)
        assert found.tenant_id is not None
        delivery_id = await emit.send_test(
            await driver_connection(session), found.tenant_id, endpoint.id
        )
    return see_other(f"/portal/deliveries/{ids.encode(ids.Prefix.DELIVERY, delivery_id)}")


@router.post("/endpoints/{endpoint_id}/delete")
async def delete_endpoint(
    request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    async with _changing(request, endpoint_id, csrf) as (state, found, session, endpoint):
        if endpoint is None:
            return _not_found(request, state, found)
        await admin_endpoints.remove(session, endpoint)
    return see_other("/portal")


@router.get("/deliveries")
async def deliveries_page(
    request: Request,
    endpoint: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The tenant's deliveries, newest first, a page at a time, each with its endpoint;
    filtered by endpoint and state (a value that is neither is ignored, as an empty one)."""
    state, found = await _signed_in(request)
    endpoint_id = ids.decode(ids.Prefix.ENDPOINT, endpoint) if endpoint else None
    chosen = status if status in set(DeliveryStatus) else None
    where = logs.DeliveryFilter(tenant_id=found.tenant_id, endpoint_id=endpoint_id, status=chosen)
    async with state.sessions() as session:
        rows, next_cursor = await page_of(
            session, logs.deliveries_query(where), Delivery, ids.Prefix.DELIVERY, cursor
        )
        shown = {row.endpoint_id for row in rows} | ({endpoint_id} if endpoint_id else set())
        named = select(Endpoint.id, Endpoint.url).where(
            Endpoint.id.in_(shown), Endpoint.tenant_id == found.tenant_id
        )
        urls = {row.id: row.url for row in await session.execute(named)}
    return _page(
        request,
        state,
        found,
        "portal_deliveries.html",
        deliveries=rows,
        next_cursor=next_cursor,
        urls=urls,
        endpoint=endpoint if endpoint_id else None,
        status=chosen,
        statuses=list(DeliveryStatus),
    )


@router.get("/deliveries/{delivery_id}")
async def delivery_page(request: Request, delivery_id: str) -> Response:
    state, found = await _signed_in(request)
    async with state.sessions() as session:
        delivery = await _delivery(session, found, delivery_id)
        if delivery is None:
            return _not_found(request, state, found)
        event, endpoint, attempts = await logs.delivery_context(session, delivery)
    return _page(
        request,
        state,
        found,
        "portal_delivery.html",
        delivery=delivery,
        event=event,
        endpoint=endpoint,
        attempts=list(reversed(attempts)),
        live=actions.in_motion(delivery),
        message=request.query_params.get("message"),
    )


@router.post("/deliveries/{delivery_id}/resend")
async def resend(
    request: Request, delivery_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    state, found = await _signed_in(request)
    _may_change(found, csrf)
    async with state.sessions() as session, session.begin():
        delivery = await _delivery(session, found, delivery_id)
        if delivery is None:
            return _not_found(request, state, found)
        message = await actions.resend(session, delivery)
    return see_other(f"/portal/deliveries/{delivery_id}?message={message}")


def install(app: Any) -> None:
    """Serve the portal's pages on ``app`` (its assets are the console's, mounted there)."""
    app.include_router(router)

    @app.exception_handler(PortalSignInNeeded)
    async def link_needed(request: Request, _: PortalSignInNeeded) -> Response:
        return _page(request, app_state(request), None, "portal_link_invalid.html", 403)

    @app.exception_handler(PortalRefused)
    async def refused(request: Request, _: PortalRefused) -> Response:
        state = app_state(request)
        found = console_session.read(request, state.secret_box, console_session.PORTAL)
        return _page(request, state, found, "portal_refused.html", 403)
