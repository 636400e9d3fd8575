"""Request bodies read as strict JSON (``strict_json``) before FastAPI reads them: what is
not strict is a 422 naming its place. Every router uses ``StrictJSONRoute``; a body that is
not JSON at all is still FastAPI's 400.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from hookpost.api.errors import FieldError, Problem
from hookpost.strict_json import NotStrictJSON, loads


def _is_json(request: Request) -> bool:
    """Whether FastAPI will read this body as JSON (no content type, or a JSON one)."""
    content_type = request.headers.get("content-type")
    if content_type is None:
        return True
    subtype = content_type.partition(";")[0].strip().lower().rpartition("/")[2]
    return subtype == "json" or subtype.endswith("+json")


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads(await self.body())
        return self._json


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed strictly before FastAPI reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict(request: Request) -> Response:
            request = _StrictRequest(request.scope, request.receive)
            if _is_json(request) and await request.body():
                try:
                    await request.json()
                except NotStrictJSON as error:
                    place = ".".join(str(part) for part in ["body", *error.path])
                    raise Problem(
                        "json_not_strict",
                        f"The request body is not strict JSON at {place}: {error.message}",
                        errors=[
                            FieldError(
                                loc=["body", *error.path], message=error.message, type="json"
                            )
                        ],
                    ) from None
                except RecursionError:
                    raise Problem(
                        "malformed_json",
                        "The request body nests arrays or objects too deeply to be read",
                    ) from None
                except ValueError:  # not JSON at all: FastAPI answers it as it does
                    pass
            return await handler(request)

        return strict
