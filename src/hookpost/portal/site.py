"""The tenant portal at ``/portal``: what a tenant's own customer sees through a link the
product hands out (``POST /v1/tenants/{id}/portal-links``). One tenant only: the event
catalog; its endpoints (with the ``manage`` scope: add, change the URL, reveal and rotate the
signing secret, send a test event, delete; with either scope, the filter test); its
deliveries and attempts (resend with ``manage``), seen as the tenant's ``Viewer``. The pages
the console has too come from ``sites.site.Site``; this module adds the link, the list pages,
the catalog, adding, revealing and deleting. Anything of another tenant is not found. Carries
the product's name, colour and logo; may be framed by the origins of
``HOOKPOST_PORTAL_FRAME_ANCESTORS``."""

import uuid
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import select

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin import endpoints as admin_endpoints
from hookpost.admin import event_types as admin_event_types
from hookpost.admin import portal_links
from hookpost.db.models import Delivery, DeliveryStatus, Endpoint, EventType, Tenant
from hookpost.ops import logs
from hookpost.sites import actions
from hookpost.sites import session as console_session
from hookpost.sites.rendering import (
    content_security_policy,
    opened_from_another_site,
    page_of,
    see_other,
)
from hookpost.sites.site import Refused, SignInNeeded, Site
from hookpost.state import AppState, app_state


def _csp(state: AppState) -> str:
    logo = state.settings.portal_logo_url
    images = "/".join(logo.split("/", 3)[:3]) if logo else ""
    return content_security_policy(
        frame_ancestors=state.settings.portal_frame_ancestors or "'none'", images=images
    )


async def _link_still_valid(state: AppState, tenant_id: uuid.UUID, issued_at: float) -> bool:
    """Whether a link of ``tenant_id`` issued at ``issued_at``, or a session opened with it,
    still works: the tenant exists and has revoked no link since."""
    async with state.sessions() as session:
        tenant = await session.get(Tenant, tenant_id)
    return portal_links.still_valid(tenant, issued_at)


class PortalSite(Site):
    """One tenant's pages, seen as the tenant's ``Viewer``; changes need the manage scope."""

    prefix = "/portal"
    endpoint_template = "portal_endpoint.html"
    delivery_template = "portal_delivery.html"

    async def signed_in(self, request: Request) -> tuple[AppState, console_session.Session]:
        """The portal session, while its tenant exists and has not revoked its link."""
        state = app_state(request)
        found = console_session.read(request, state.secret_box, console_session.PORTAL)
        if found is None or found.tenant_id is None or found.scope not in ("read", "manage"):
            raise SignInNeeded(self)
        if not await _link_still_valid(state, found.tenant_id, found.issued_at):
            raise SignInNeeded(self)
        return state, found

    def viewer(self, found: console_session.Session) -> Viewer:
        return Viewer(tenant_id=found.tenant_id, may_change=found.scope == "manage")

    def check_form(
        self, found: console_session.Session, csrf: str | None, *, changes: bool
    ) -> None:
        if not found.accepts(csrf) or (changes and found.scope != "manage"):
            raise Refused(self)

    def dress(self, state: AppState, found: console_session.Session | None) -> dict[str, Any]:
        return {
            "csp": _csp(state),
            "brand": state.settings,
            "csrf": found.csrf if found else None,
            "manage": found is not None and found.scope == "manage",
        }

    def not_found(
        self, request: Request, state: AppState, found: console_session.Session, what: str
    ) -> Response:
        return self.page(request, state, found, "portal_not_found.html", 404, what=what)

    def sign_in_answer(self, request: Request) -> Response:
        return self.page(request, app_state(request), None, "portal_link_invalid.html", 403)

    def refused_answer(self, request: Request) -> Response:
        state = app_state(request)
        found = console_session.read(request, state.secret_box, console_session.PORTAL)
        return self.page(request, state, found, "portal_refused.html", 403)


SITE = PortalSite()
router = SITE.router


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
        return SITE.page(request, state, None, "portal_link_foreign.html", 403)
    opened = portal_links.open_portal_link(state.secret_box, token)
    if opened is not None and not await _link_still_valid(
        state, opened.tenant_id, opened.issued_at
    ):
        opened = None
    if opened is None:
        return SITE.page(request, state, None, "portal_link_invalid.html", 403)
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
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        rows, next_cursor = await page_of(
            session,
            admin_endpoints.list_query(found.tenant_id),
            Endpoint,
            ids.Prefix.ENDPOINT,
            cursor,
        )
        offered = admin_event_types.offered_to_tenants(own_types=_own_types(state))
        types = (await session.scalars(offered.order_by(EventType.name))).all()
    return SITE.page(
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


def _own_types(state: AppState) -> bool:
    return state.settings.portal_offers_own_types


@router.get("/event-types")
async def catalog_page(
    request: Request, cursor: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    """The event catalog: each type a tenant may subscribe to, with its description, its
    schema and a payload shaped like it, newest first, a page at a time."""
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        offered = admin_event_types.offered_to_tenants(own_types=_own_types(state))
        rows, next_cursor = await page_of(
            session, offered, EventType, ids.Prefix.EVENT_TYPE, cursor
        )
    examples = {
        row.name: admin_event_types.example_payload(row.schema) for row in rows if row.schema
    }
    return SITE.page(
        request,
        state,
        found,
        "portal_event_types.html",
        event_types=rows,
        samples=examples,
        next_cursor=next_cursor,
    )


@router.post("/endpoints")
async def add_endpoint(
    request: Request,
    url: Annotated[str, Form(max_length=2048)],
    event_types: Annotated[list[str] | None, Form(max_length=255)] = None,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, csrf, changes=True)
    assert found.tenant_id is not None
    checked, refusal = actions.checked_url(state.settings, url)
    if not event_types:
        checked, refusal = None, "choose at least one event type"
    elif not all(
        admin_event_types.is_offered(name, own_types=_own_types(state)) for name in event_types
    ):
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


@router.post("/endpoints/{endpoint_id}/delete")
async def delete_endpoint(
    request: Request, endpoint_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    async with SITE.changing(request, endpoint_id, csrf) as (state, found, session, endpoint):
        if endpoint is None:
            return SITE.not_found(request, state, found, "endpoint")
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
    state, found = await SITE.signed_in(request)
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
    return SITE.page(
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


def install(app: Any) -> None:
    """Serve the portal's pages on ``app`` (its assets are the console's, mounted there)."""
    SITE.install(app)
