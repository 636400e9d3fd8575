"""Finding the object a route names, as the caller may see it: another tenant's object, or
one that does not exist, is the same 404."""

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.admin import endpoints, tenants
from hookpost.api.deps import Principal
from hookpost.api.errors import Problem, not_found
from hookpost.db.models import Endpoint, Tenant


async def tenant_for(session: AsyncSession, principal: Principal, ref: str) -> Tenant:
    tenant = await tenants.find(session, ref)
    if tenant is None or not principal.can_see(tenant.id):
        raise not_found("tenant", ref)
    return tenant


async def owner_tenant_id(
    session: AsyncSession, principal: Principal, ref: str | None
) -> uuid.UUID:
    """The tenant a new object belongs to: the one named, or a tenant key's own."""
    if ref is not None:
        return (await tenant_for(session, principal, ref)).id
    if principal.tenant_id is None:
        raise Problem(422, "validation_error", "tenant_id is required with an admin key")
    return principal.tenant_id


async def tenant_id_for(
    session: AsyncSession, principal: Principal, ref: str | None
) -> uuid.UUID | None:
    """The tenant a list is filtered to: the one named, or a tenant key's own (None: all)."""
    if ref is not None:
        return (await tenant_for(session, principal, ref)).id
    return principal.tenant_id


async def endpoint_for(session: AsyncSession, principal: Principal, ref: str) -> Endpoint:
    endpoint_id = ids.decode(ids.Prefix.ENDPOINT, ref)
    endpoint = None if endpoint_id is None else await endpoints.get(session, endpoint_id)
    if endpoint is None or not principal.can_see(endpoint.tenant_id):
        raise not_found("endpoint", ref)
    return endpoint
