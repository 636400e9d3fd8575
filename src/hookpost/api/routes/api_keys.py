"""``/v1/api-keys``: keys for this API, admin or scoped to one tenant."""

from typing import Annotated

from fastapi import APIRouter, Query, Response

from hookpost import ids
from hookpost.admin import api_keys
from hookpost.admin.schemas.fields import TenantRef
from hookpost.api.deps import AuthDep, PageDep, SessionDep, StateDep
from hookpost.api.errors import not_found, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.api_keys import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from hookpost.api.schemas.common import Page
from hookpost.api.scoping import tenant_for, tenant_id_for
from hookpost.db.models import ApiKey

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/api-keys",
    tags=["api keys"],
    responses=problem_responses(401),
)


@router.post(
    "", status_code=201, summary="Create an API key", responses=problem_responses(403, 404, 422)
)
async def create_api_key(body: ApiKeyCreate, session: SessionDep, viewer: AuthDep) -> ApiKeyCreated:
    """A new key. Without `tenant_id` it is an admin key (admin keys only); with one it sees
    only that tenant. The key is in this answer only: hookpost keeps just its hash."""
    if body.tenant_id is None:
        viewer.require_operator()
        tenant_id = None
    else:
        tenant_id = (await tenant_for(session, viewer, body.tenant_id)).id
    row, key = await api_keys.create(session, name=body.name, tenant_id=tenant_id)
    return ApiKeyCreated.model_validate({**ApiKeyOut.model_validate(row).__dict__, "key": key})


@router.get("", summary="List API keys", responses=problem_responses(404, 422))
async def list_api_keys(
    session: SessionDep,
    viewer: AuthDep,
    page: PageDep,
    tenant_id: Annotated[TenantRef | None, Query(description="Only this tenant's keys.")] = None,
) -> Page[ApiKeyOut]:
    """Keys, newest first, without the keys themselves. A tenant key sees its tenant's keys."""
    query = api_keys.list_query(await tenant_id_for(session, viewer, tenant_id))
    rows, cursor = await paginate(session, query, ApiKey.id, ids.Prefix.API_KEY, page)
    return Page(data=[ApiKeyOut.model_validate(row) for row in rows], next_cursor=cursor)


@router.delete(
    "/{key_id}", status_code=204, summary="Revoke an API key", responses=problem_responses(404)
)
async def delete_api_key(
    key_id: str, session: SessionDep, state: StateDep, viewer: AuthDep
) -> Response:
    """The key stops working at once."""
    parsed = ids.decode(ids.Prefix.API_KEY, key_id)
    row = None if parsed is None else await api_keys.get(session, parsed)
    if row is None or (row.tenant_id is None and not viewer.is_operator):
        raise not_found("api_key", key_id)
    if row.tenant_id is not None and not viewer.can_see(row.tenant_id):
        raise not_found("api_key", key_id)
    await api_keys.remove(session, row.id)
    state.keys.forget()
    return Response(status_code=204)
