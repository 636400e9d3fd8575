"""``/api/v1/app``: Svix's applications, which are hookpost's tenants (a Svix ``uid`` is the
tenant's ``uid``)."""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin import tenants
from hookpost.admin.schemas.tenants import TenantCreate, TenantUpdate
from hookpost.db.models import Tenant
from hookpost.errors import HookpostError
from hookpost.svix.auth import SvixViewer
from hookpost.svix.deps import SessionDep
from hookpost.svix.paging import PagingDep, page
from hookpost.svix.wire import ListResponse, NotSupported, SvixModel, SvixRoute, checked

router = APIRouter(prefix="/api/v1/app", route_class=SvixRoute, tags=["svix"])


class ApplicationIn(SvixModel):
    name: str
    uid: str | None = None
    metadata: dict[str, str] | None = None
    throttle_rate: int | None = None


class ApplicationPatch(SvixModel):
    name: str | None = None
    uid: str | None = None
    metadata: dict[str, str] | None = None
    throttle_rate: int | None = None


class ApplicationOut(SvixModel):
    id: str
    uid: str | None
    name: str
    metadata: dict[str, str]
    throttle_rate: int | None = None
    created_at: datetime
    updated_at: datetime


class AppConflict(HookpostError):
    code = "tenant_uid_taken"


def metadata_out(metadata: dict[str, Any]) -> dict[str, str]:
    """A tenant's metadata as Svix's strings (the native API keeps any JSON there)."""
    return {k: v if isinstance(v, str) else str(v) for k, v in metadata.items()}


def out(tenant: Tenant) -> ApplicationOut:
    return ApplicationOut(
        id=ids.encode(ids.Prefix.TENANT, tenant.id),
        uid=tenant.uid,
        name=tenant.name,
        metadata=metadata_out(tenant.metadata_),
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
    )


def _no_throttle(throttle_rate: int | None) -> None:
    if throttle_rate is not None:
        raise NotSupported("throttleRate on an application (set it on its endpoints)")


async def create_from(session: AsyncSession, body: ApplicationIn) -> Tenant:
    _no_throttle(body.throttle_rate)
    made = checked(
        TenantCreate, {"name": body.name, "uid": body.uid, "metadata": body.metadata or {}}
    )
    try:
        return await tenants.create(session, name=made.name, uid=made.uid, metadata=made.metadata)
    except tenants.TenantUidTaken:
        raise AppConflict(f"An application with the uid {body.uid!r} exists") from None


async def application_for(
    session: AsyncSession, viewer: Viewer, app_id: str, inline: ApplicationIn | None
) -> Tenant:
    """The application ``app_id`` (id or uid) names, as ``viewer`` may see it; made from
    ``inline`` (its uid ``app_id`` unless it gives one) when none has that id or uid, as the
    Svix operations that take an inline application do."""
    found = await tenants.find(session, app_id)
    if found is None and inline is not None:
        viewer.require_operator()
        found = await create_from(session, inline.model_copy(update={"uid": inline.uid or app_id}))
    return viewer.seen("tenant", app_id, found, found.id if found else None)


@router.get("", summary="List applications")
async def list_applications(
    session: SessionDep, viewer: SvixViewer, paging: PagingDep
) -> ListResponse[ApplicationOut]:
    paged = await page(
        session,
        tenants.list_query(viewer.tenant_id),
        Tenant.id,
        paging,
        prefix=ids.Prefix.TENANT,
        default="ascending",
    )
    return paged.answer([out(row) for row in paged.rows])


@router.post("", status_code=201, summary="Create an application")
async def create_application(
    body: ApplicationIn,
    session: SessionDep,
    viewer: SvixViewer,
    response: Response,
    get_if_exists: Annotated[bool, Query()] = False,
) -> ApplicationOut:
    viewer.require_operator()
    if get_if_exists and body.uid is not None:
        found = await tenants.find(session, body.uid)
        if found is not None:
            response.status_code = 200
            return out(found)
    return out(await create_from(session, body))


@router.get("/{app_id}", summary="Get an application")
async def get_application(app_id: str, session: SessionDep, viewer: SvixViewer) -> ApplicationOut:
    return out(await tenants.visible(session, viewer, app_id))


async def _update(session: SessionDep, tenant: Tenant, changes: dict[str, Any]) -> Tenant:
    try:
        return await tenants.update(session, tenant, checked(TenantUpdate, changes).changes())
    except tenants.TenantUidTaken:
        raise AppConflict(f"An application with the uid {changes.get('uid')!r} exists") from None


@router.put("/{app_id}", summary="Update an application, or create it")
async def update_application(
    app_id: str, body: ApplicationIn, session: SessionDep, viewer: SvixViewer, response: Response
) -> ApplicationOut:
    """Replace the application's fields; one that does not exist is created, with ``app_id``
    as its uid."""
    viewer.require_operator()
    _no_throttle(body.throttle_rate)
    found = await tenants.find(session, app_id)
    if found is None:
        response.status_code = 201
        return out(await create_from(session, body.model_copy(update={"uid": body.uid or app_id})))
    changes = {"name": body.name, "uid": body.uid, "metadata": body.metadata or {}}
    return out(await _update(session, found, changes))


@router.patch("/{app_id}", summary="Patch an application")
async def patch_application(
    app_id: str, body: ApplicationPatch, session: SessionDep, viewer: SvixViewer
) -> ApplicationOut:
    viewer.require_operator()
    _no_throttle(body.throttle_rate)
    tenant = await tenants.visible(session, viewer, app_id)
    changes = body.model_dump(include={"name", "uid", "metadata"}, exclude_unset=True)
    return out(await _update(session, tenant, changes))


@router.delete("/{app_id}", status_code=204, summary="Delete an application")
async def delete_application(app_id: str, session: SessionDep, viewer: SvixViewer) -> Response:
    viewer.require_operator()
    tenant = await tenants.visible(session, viewer, app_id)
    await tenants.remove(session, tenant.id)
    return Response(status_code=204)
