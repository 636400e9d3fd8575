"""Finding the object a route names, as the caller may see it: another tenant's object, or
one that does not exist, is the same 404."""

import uuid
from typing import Annotated

from fastapi import Depends, Query
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.access import Viewer
from hookpost.admin import endpoints, tenants
from hookpost.admin.schemas.fields import TenantRef
from hookpost.api.deps import AuthDep, SessionDep
from hookpost.api.errors import Problem
from hookpost.db.models import Endpoint, Tenant


async def tenant_for(session: AsyncSession, viewer: Viewer, ref: str) -> Tenant:
    return await tenants.visible(session, viewer, ref)


async def owner_tenant_id(session: AsyncSession, viewer: Viewer, ref: str | None) -> uuid.UUID:
    """The tenant a new object belongs to: the one named, or a tenant key's own."""
    if ref is not None:
        return (await tenant_for(session, viewer, ref)).id
    if viewer.tenant_id is None:
        raise Problem("validation_error", "tenant_id is required with an admin key")
    return viewer.tenant_id


async def tenant_id_for(session: AsyncSession, viewer: Viewer, ref: str | None) -> uuid.UUID | None:
    """The tenant a list is filtered to: the one named, or a tenant key's own (None: all)."""
    if ref is not None:
        return (await tenant_for(session, viewer, ref)).id
    return viewer.tenant_id


async def endpoint_for(
    session: AsyncSession, viewer: Viewer, ref: str, tenant_ref: str | None = None
) -> Endpoint:
    """The endpoint ``ref`` names: its id (``ep_...``), or its uid among the endpoints of the
    tenant named by ``tenant_ref`` (or of a tenant key's own): uids are unique per tenant, so
    an admin key that names an endpoint by uid names the tenant too."""
    tenant_id = await tenant_id_for(session, viewer, tenant_ref)
    return await endpoints.visible(session, viewer, ref, tenant_id)


EndpointTenant = Annotated[
    TenantRef | None,
    Query(
        description="The endpoint's tenant (id or uid): an admin key that names an endpoint "
        "by its uid names its tenant too."
    ),
]


async def _endpoint(
    endpoint_id: str, session: SessionDep, viewer: AuthDep, tenant_id: EndpointTenant = None
) -> Endpoint:
    return await endpoint_for(session, viewer, endpoint_id, tenant_id)


# The endpoint a route's path names (``endpoint_id``: its id or uid), as the caller may see it.
EndpointDep = Annotated[Endpoint, Depends(_endpoint)]
