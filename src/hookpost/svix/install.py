"""The Svix API's share of the app: its routers under ``/api/v1``, and a Svix-shaped answer
for every other path there (an operation hookpost does not have names itself, never a bare
404). Its contract is Svix's own OpenAPI document, so hookpost's ``/docs`` leaves it out."""

from fastapi import APIRouter, FastAPI, Request

from hookpost.svix import (
    applications,
    attempts,
    endpoints,
    event_types,
    health,
    messages,
    portal_access,
)
from hookpost.svix.wire import NotSupported, SvixRoute

_unsupported = APIRouter(prefix="/api/v1", route_class=SvixRoute, include_in_schema=False)


@_unsupported.api_route("/{rest:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
async def not_supported(request: Request, rest: str) -> None:
    raise NotSupported(f"{request.method} /api/v1/{rest}")


def install_svix(app: FastAPI) -> None:
    for module in (health, applications, event_types, endpoints, messages, attempts, portal_access):
        app.include_router(module.router, include_in_schema=False)
    app.include_router(_unsupported)  # last: only what no route above answers
