"""Tenants: the product's customers, found by id or by their own ``uid``."""

import uuid
from datetime import datetime
from typing import Any, ClassVar

import asyncpg
from sqlalchemy import Select, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.db import unstorable
from hookpost.db.models import Attempt, Tenant
from hookpost.errors import HookpostError


class TenantUidTaken(HookpostError):
    """Another tenant already has this uid."""

    code: ClassVar[str] = "tenant_uid_taken"


async def find(session: AsyncSession, ref: str) -> Tenant | None:
    """The tenant whose id (``ten_...``) or ``uid`` is ``ref``."""
    tenant_id = ids.decode(ids.Prefix.TENANT, ref)
    if tenant_id is not None:
        return await session.get(Tenant, tenant_id)
    if unstorable.refusal(ref) is not None:  # no uid holds it, and Postgres cannot be asked
        return None
    return await session.scalar(select(Tenant).where(Tenant.uid == ref))


async def visible(session: AsyncSession, viewer: Viewer, ref: str) -> Tenant:
    """The tenant ``ref`` names, as ``viewer`` may see it: else NotFound."""
    found = await find(session, ref)
    return viewer.seen("tenant", ref, found, found.id if found else None)


async def find_id(connection: asyncpg.Connection | asyncpg.Pool, ref: str) -> uuid.UUID | None:
    """The id of the tenant whose id or uid is ``ref``, on a bare asyncpg connection or pool
    (the ingest path and the worker)."""
    if unstorable.refusal(ref) is not None:
        return None
    found: uuid.UUID | None = await connection.fetchval(
        "SELECT id FROM tenants WHERE id = $1 OR uid = $2",
        ids.decode(ids.Prefix.TENANT, ref),
        ref,
    )
    return found


async def create(
    session: AsyncSession, *, name: str, uid: str | None, metadata: dict[str, Any]
) -> Tenant:
    tenant = Tenant(name=name, uid=uid, metadata_=metadata)
    session.add(tenant)
    await _flush(session, uid)
    return tenant


async def update(session: AsyncSession, tenant: Tenant, changes: dict[str, Any]) -> Tenant:
    for field, value in changes.items():
        setattr(tenant, "metadata_" if field == "metadata" else field, value)
    await _flush(session, changes.get("uid"))
    await session.refresh(tenant)
    return tenant


async def remove(session: AsyncSession, tenant_id: uuid.UUID) -> None:
    """Delete the tenant and everything of it: its attempts explicitly (the attempt log has
    no foreign keys), the rest by the cascades of theirs."""
    await session.execute(delete(Attempt).where(Attempt.tenant_id == tenant_id))
    await session.execute(delete(Tenant).where(Tenant.id == tenant_id))


async def revoke_portal_links(session: AsyncSession, tenant: Tenant, at: datetime) -> None:
    """End every portal link of ``tenant`` issued before ``at``, and every session opened
    with one, at their next use."""
    tenant.portal_revoked_at = at
    await session.flush()


def list_query(only: uuid.UUID | None) -> Select[Tenant]:
    query = select(Tenant)
    if only is not None:
        query = query.where(Tenant.id == only)
    return query


async def _flush(session: AsyncSession, uid: str | None) -> None:
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        raise TenantUidTaken(uid) from error
