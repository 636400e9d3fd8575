"""``/v1/tenants``: the product's customers."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request, Response

from hookpost import ids
from hookpost.admin import tenants
from hookpost.admin.portal_links import issue_link
from hookpost.admin.schemas.fields import StorableText
from hookpost.admin.schemas.tenants import TenantCreate, TenantUpdate
from hookpost.api.deps import AuthDep, PageDep, SessionDep, StateDep
from hookpost.api.errors import Problem, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.common import Page
from hookpost.api.schemas.tenants import PortalLink, PortalLinkCreate, TenantOut
from hookpost.api.scoping import tenant_for
from hookpost.db.models import Tenant

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/tenants",
    tags=["tenants"],
    responses=problem_responses(401),
)


# The tenant a path names, by id or uid: looked up in the database, so storable text.
TenantPath = Annotated[StorableText, Path(examples=["acme-corp"])]


def _uid_taken(uid: str | None) -> Problem:
    return Problem("tenant_uid_taken", f"Another tenant has the uid {uid!r}")


@router.post(
    "",
    status_code=201,
    summary="Create a tenant",
    responses=problem_responses(403, 409, 422),
)
async def create_tenant(body: TenantCreate, session: SessionDep, viewer: AuthDep) -> TenantOut:
    """Register a customer of the product. `uid` is your own id for it, so that events can
    name the tenant without storing hookpost's id. Admin keys only."""
    viewer.require_operator()
    try:
        tenant = await tenants.create(session, name=body.name, uid=body.uid, metadata=body.metadata)
    except tenants.TenantUidTaken:
        raise _uid_taken(body.uid) from None
    return TenantOut.of(tenant)


@router.get("", summary="List tenants", responses=problem_responses(422))
async def list_tenants(session: SessionDep, viewer: AuthDep, page: PageDep) -> Page[TenantOut]:
    """Every tenant, newest first. A tenant key sees only its own tenant."""
    rows, cursor = await paginate(
        session, tenants.list_query(viewer.tenant_id), Tenant.id, ids.Prefix.TENANT, page
    )
    return Page(data=[TenantOut.of(row) for row in rows], next_cursor=cursor)


@router.get("/{tenant_id}", summary="Get a tenant", responses=problem_responses(404))
async def get_tenant(tenant_id: TenantPath, session: SessionDep, viewer: AuthDep) -> TenantOut:
    """One tenant, by its id or its `uid`."""
    return TenantOut.of(await tenant_for(session, viewer, tenant_id))


@router.patch(
    "/{tenant_id}", summary="Update a tenant", responses=problem_responses(403, 404, 409, 422)
)
async def update_tenant(
    tenant_id: TenantPath, body: TenantUpdate, session: SessionDep, viewer: AuthDep
) -> TenantOut:
    """Change a tenant's name, uid or metadata; fields left out keep their value. Admin keys
    only."""
    viewer.require_operator()
    tenant = await tenant_for(session, viewer, tenant_id)
    try:
        tenant = await tenants.update(session, tenant, body.changes())
    except tenants.TenantUidTaken:
        raise _uid_taken(body.uid) from None
    return TenantOut.of(tenant)


@router.delete(
    "/{tenant_id}",
    status_code=204,
    summary="Delete a tenant",
    responses=problem_responses(403, 404),
)
async def delete_tenant(
    tenant_id: TenantPath, session: SessionDep, state: StateDep, viewer: AuthDep
) -> Response:
    """Delete a tenant with its endpoints, events, deliveries, attempts and keys. Admin keys
    only; this cannot be undone."""
    viewer.require_operator()
    tenant = await tenant_for(session, viewer, tenant_id)
    await tenants.remove(session, tenant.id)
    state.keys.forget()  # its keys went with it
    return Response(status_code=204)


@router.post(
    "/{tenant_id}/portal-links",
    status_code=201,
    summary="Make a tenant portal link",
    responses=problem_responses(403, 404, 422),
)
async def create_portal_link(
    tenant_id: TenantPath,
    body: PortalLinkCreate,
    request: Request,
    session: SessionDep,
    state: StateDep,
    viewer: AuthDep,
) -> PortalLink:
    """A short-lived link into the tenant portal for this tenant alone: hand it to the
    tenant's own customer (or open it in an iframe of your product's pages). `{}` makes a
    read-only link for an hour. Admin keys only."""
    viewer.require_operator()
    tenant = await tenant_for(session, viewer, tenant_id)
    url, expires_at = issue_link(
        state.secret_box,
        tenant.id,
        body.scope,
        body.expires_in_s,
        state.settings.public_url or str(request.base_url),
    )
    return PortalLink(url=url, scope=body.scope, expires_at=expires_at)


@router.post(
    "/{tenant_id}/portal-links/revoke",
    status_code=204,
    summary="Revoke a tenant's portal links",
    responses=problem_responses(403, 404),
)
async def revoke_portal_links(
    tenant_id: TenantPath, session: SessionDep, viewer: AuthDep
) -> Response:
    """End every portal link made for this tenant until now, and every portal session opened
    with one, at their next request (a leaked link need not wait for its expiry). Links made
    afterwards work. Admin keys only."""
    viewer.require_operator()
    tenant = await tenant_for(session, viewer, tenant_id)
    await tenants.revoke_portal_links(session, tenant, datetime.now(UTC))
    return Response(status_code=204)
