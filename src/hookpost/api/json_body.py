"""The API's routes read their JSON bodies strictly (``strict_body``): what is not strict is
a 422 naming its place. Every router uses ``StrictJSONRoute``; a body that is not JSON at all
is still FastAPI's 400.
"""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from hookpost.api.errors import FieldError, Problem
from hookpost.strict_body import strict_request
from hookpost.strict_json import NotStrictJSON


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is parsed strictly before FastAPI reads it."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict(request: Request) -> Response:
            try:
                request = await strict_request(request)
            except NotStrictJSON as error:
                place = ".".join(str(part) for part in ["body", *error.path])
                raise Problem(
                    "json_not_strict",
                    f"The request body is not strict JSON at {place}: {error.message}",
                    errors=[
                        FieldError(loc=["body", *error.path], message=error.message, type="json")
                    ],
                ) from None
            except RecursionError:
                raise Problem(
                    "malformed_json",
                    "The request body nests arrays or objects too deeply to be read",
                ) from None
            return await handler(request)

        return strict
