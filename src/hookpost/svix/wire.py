"""The Svix API's conventions on the wire: camelCase fields, lists as ``{data, iterator,
prevIterator, done}``, errors as ``{code, detail}`` and a refused request as ``{detail: [{loc,
msg, type}]}``; ``SvixRoute`` answers every refusal of a route in those shapes."""

from collections.abc import Callable, Coroutine, Mapping, Sequence
from http import HTTPStatus
from typing import Any, ClassVar, Generic, TypeVar

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from starlette.exceptions import HTTPException

from hookpost.db.engine import is_outage, is_refused_value
from hookpost.errors import HookpostError, status_of
from hookpost.strict_body import strict_request
from hookpost.strict_json import NotStrictJSON

Item = TypeVar("Item")
Model = TypeVar("Model", bound=BaseModel)


class SvixModel(BaseModel):
    """A Svix request or answer: camelCase on the wire. Fields hookpost has no counterpart
    for are taken and left alone, as Svix's SDKs send some of them on every call."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")


class ListResponse(SvixModel, Generic[Item]):
    data: list[Item]
    iterator: str | None
    prev_iterator: str | None = None
    done: bool


class NotSupported(HookpostError):
    """An operation of the Svix API that hookpost does not have."""

    code: ClassVar[str] = "not_supported"

    def __init__(self, operation: str) -> None:
        super().__init__(f"hookpost does not support {operation} of the Svix API")


class Invalid(HookpostError):
    """A request whose values break hookpost's rules of the object (``admin.schemas``):
    answered as Svix answers a refused request, a list of ``{loc, msg, type}``."""

    code: ClassVar[str] = "validation_error"

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in errors))
        self.errors = errors


def _items(errors: Sequence[Any], prefix: Sequence[str], renames: Mapping[str, str]) -> list[Any]:
    """pydantic's errors as Svix's ``{loc, msg, type}``, each place as the request names it."""
    return [
        {
            "loc": [*prefix, *_camel(_renamed(item.get("loc", ()), renames))],
            "msg": str(item.get("msg", "invalid")).removeprefix("Value error, "),
            "type": str(item.get("type", "value_error")),
        }
        for item in errors
    ]


def invalid(error: ValidationError, renames: Mapping[str, str]) -> Invalid:
    """hookpost's model refused the values: the places as the Svix request names them
    (``renames``: hookpost's name of a field, to Svix's)."""
    return Invalid(_items(error.errors(), ["body"], renames))


def _renamed(place: Sequence[Any], renames: Mapping[str, str]) -> list[Any]:
    return [renames.get(place[0], place[0]), *place[1:]] if place else []


def checked(model: type[Model], values: dict[str, Any], renames: Mapping[str, str] = {}) -> Model:
    """``values`` validated by hookpost's own model of the object (``admin.schemas``), so
    that a rule holds the same through this face as through the others."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise invalid(error, renames) from None


# Svix's codes for the statuses hookpost's refusals answer with.
_CODES = {
    400: "bad_request",
    401: "authentication",
    403: "forbidden",
    404: "not_found",
    409: "conflict",
    413: "payload_too_large",
    422: "validation",
    501: "not_supported",
    503: "unavailable",
}


def error_response(status: int, code: str, detail: str) -> JSONResponse:
    return JSONResponse({"code": code, "detail": detail}, status_code=status)


def refusal_response(error: HookpostError) -> JSONResponse:
    if isinstance(error, Invalid):
        return JSONResponse({"detail": error.errors}, status_code=422)
    status = status_of(error)
    if status == 422:  # a value refused: Svix's shape of a validation error
        return validation_response([("body",)], error.detail, error.code)
    return error_response(
        status, _CODES.get(status, HTTPStatus(status).phrase.lower()), error.detail
    )


def validation_response(
    places: Sequence[Sequence[str | int]], message: str, kind: str
) -> JSONResponse:
    detail = [{"loc": list(place), "msg": message, "type": kind} for place in places]
    return JSONResponse({"detail": detail}, status_code=422)


def _camel(place: Sequence[Any]) -> list[str | int]:
    return [to_camel(part) if isinstance(part, str) and "_" in part else part for part in place]


class SvixRoute(APIRoute):
    """A route that reads its JSON body strictly and answers every refusal in Svix's shapes."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer(request: Request) -> Response:
            try:
                if self.body_field is not None:
                    request = await strict_request(request)
                return await handler(request)
            except NotStrictJSON as error:
                return validation_response([["body", *error.path]], error.message, "json")
            except RecursionError:
                return error_response(400, "bad_request", "The body nests too deeply to be read")
            except RequestValidationError as error:
                items = _items(error.errors(), [], {})  # FastAPI's places start with body
                return JSONResponse({"detail": items}, status_code=422)
            except HookpostError as error:
                return refusal_response(error)
            except HTTPException as error:  # FastAPI's own, such as a body that is not UTF-8
                code = _CODES.get(error.status_code, "bad_request")
                return error_response(error.status_code, code, str(error.detail))
            except Exception as error:
                if is_refused_value(error):  # a value Postgres would not take: a bad request
                    message = "a value of the request cannot be stored as given"
                    return validation_response([["body"]], message, "invalid_value")
                if is_outage(error):  # the SDKs retry a 503
                    detail = "The database cannot be reached; try again shortly"
                    return error_response(503, "unavailable", detail)
                raise

        return answer
