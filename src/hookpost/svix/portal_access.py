"""``/api/v1/auth/app-portal-access/{app_id}``: a link into hookpost's own tenant portal for
the application (open-source Svix has no portal), read-only where asked; ``expiry`` is the
link's lifetime in seconds, within hookpost's range for portal links. An inline
``application`` is created when none has the path's id or uid."""

from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Request

from hookpost.admin.portal_links import LIFETIME_RANGE_S, issue_link
from hookpost.svix.applications import ApplicationIn, application_for
from hookpost.svix.auth import SvixViewer
from hookpost.svix.deps import SessionDep, StateDep
from hookpost.svix.wire import Invalid, SvixModel, SvixRoute

router = APIRouter(prefix="/api/v1/auth", route_class=SvixRoute, tags=["svix"])

DEFAULT_EXPIRY_S = 3600


class AppPortalAccessIn(SvixModel):
    application: ApplicationIn | None = None
    read_only: bool = False
    expiry: int | None = None


class AppPortalAccessOut(SvixModel):
    url: str
    token: str


@router.post("/app-portal-access/{app_id}", summary="Get a portal link for an application")
async def app_portal_access(
    app_id: str,
    body: AppPortalAccessIn,
    request: Request,
    session: SessionDep,
    state: StateDep,
    viewer: SvixViewer,
) -> AppPortalAccessOut:
    viewer.require_operator()
    lifetime_s = DEFAULT_EXPIRY_S if body.expiry is None else body.expiry
    low, high = LIFETIME_RANGE_S
    if not low <= lifetime_s <= high:
        message = f"a portal link lasts {low} to {high} seconds"
        raise Invalid([{"loc": ["body", "expiry"], "msg": message, "type": "value_error"}])
    tenant = await application_for(session, viewer, app_id, body.application)
    url, _ = issue_link(
        state.secret_box,
        tenant.id,
        "read" if body.read_only else "manage",
        lifetime_s,
        state.settings.public_url or str(request.base_url),
    )
    [token] = parse_qs(urlsplit(url).query)["token"]
    return AppPortalAccessOut(url=url, token=token)
