"""Request bodies read as strict JSON (``strict_json``) before FastAPI reads them, for every
face that takes JSON bodies: ``strict_request`` wraps the request so that FastAPI's own read
of its JSON is the strict one, and raises ``NotStrictJSON`` (or ``RecursionError`` for a body
nested too deeply) for the face to answer in its own words. A body that is not JSON at all
goes on to FastAPI, which answers it as it does."""

from typing import Any

from fastapi import Request

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


async def strict_request(request: Request) -> Request:
    """``request`` with its JSON body already read strictly."""
    strict = _StrictRequest(request.scope, request.receive)
    if _is_json(strict) and await strict.body():
        try:
            await strict.json()
        except NotStrictJSON:
            raise
        except ValueError:  # not JSON at all: FastAPI answers it as it does
            pass
    return strict
