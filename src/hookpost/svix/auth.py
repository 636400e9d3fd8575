"""Who is asking the Svix API: the bearer token of Svix's SDKs is a hookpost API key, looked
up as every face looks one up (``AppState.viewer_of``)."""

from typing import Annotated

from fastapi import Depends, Request

from hookpost.access import Viewer
from hookpost.errors import Unauthenticated
from hookpost.state import app_state


async def authenticate(request: Request) -> Viewer:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("Send an API key: Authorization: Bearer <key>")
    viewer = await app_state(request).viewer_of(token.strip())
    if viewer is None:
        raise Unauthenticated("Invalid token")
    return viewer


SvixViewer = Annotated[Viewer, Depends(authenticate)]
