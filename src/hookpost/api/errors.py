"""Errors as ``application/problem+json`` (RFC 9457) with a stable ``code``.

A route raises ``Problem``, or lets a ``HookpostError`` from below through: either is answered
with its code and the status ``errors.STATUS`` gives that code. The handlers here also turn
FastAPI's validation errors, unknown routes, malformed JSON and values Postgres refuses into
problems, so no bad input becomes a 500.
"""

import logging
from http import HTTPStatus
from typing import Any

import asyncpg
import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException

from hookpost.db.engine import is_outage, is_refused_value
from hookpost.errors import STATUS, HookpostError, Kind, NotFound, code_of

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"


class FieldError(BaseModel):
    """One invalid field of a request."""

    loc: list[str | int] = Field(description="Where the field is: body, query, path or header.")
    message: str
    type: str


class ProblemBody(BaseModel):
    """An error answer (RFC 9457)."""

    type: str = Field(examples=["https://hookpost.dev/problems/tenant_not_found"])
    title: str = Field(examples=["Not Found"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["No tenant ten_01jd8k2c3w5x7y9z0a1b2c3d4e"])
    code: str = Field(examples=["tenant_not_found"], description="Stable, machine-readable.")
    errors: list[FieldError] | None = None


class Problem(HookpostError):
    """An error answered to the caller as problem+json: its status is ``STATUS[code]``
    (``status`` is given only for HTTP's own errors, which have no code of their own)."""

    def __init__(
        self,
        code: str,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        status: int | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = STATUS[code] if status is None else status
        self.instance_code = code
        self.errors = errors
        self.headers = headers

    @classmethod
    def of(cls, error: HookpostError) -> "Problem":
        """The problem a refusal raised below the API is answered with."""
        if isinstance(error, Problem):
            return error
        return cls(code_of(error), error.detail)

    def body(self) -> ProblemBody:
        return ProblemBody(
            type=f"https://hookpost.dev/problems/{self.instance_code}",
            title=HTTPStatus(self.status).phrase,
            status=self.status,
            detail=self.detail,
            code=self.instance_code,
            errors=self.errors,
        )


def not_found(kind: Kind, ref: str) -> Problem:
    """The 404 for an object that does not exist or that the caller may not see."""
    return Problem.of(NotFound(kind, ref))


def _encodable(value: Any) -> Any:
    """``value`` with each lone surrogate in its strings written as its escape (``\\ud800``):
    a problem may quote what the request sent, and UTF-8 has no form for those."""
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode()
    if isinstance(value, dict):
        return {_encodable(key): _encodable(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [_encodable(inner) for inner in value]
    return value


def problem_response(problem: Problem) -> Response:
    body = problem.body().model_dump(exclude_none=True)
    try:
        content = orjson.dumps(body)
    except TypeError:  # a quoted lone surrogate
        content = orjson.dumps(_encodable(body))
    return Response(
        content=content,
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=problem.headers,
    )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting the problems a route may answer (served as
    problem+json: see ``openapi.py``)."""
    return {
        status: {"model": ProblemBody, "description": HTTPStatus(status).phrase}
        for status in statuses
    }


def _field_errors(error: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(
            # a validator of a whole JSON value names the place inside it as ``at``
            loc=[
                part
                for part in [*item.get("loc", ()), *item.get("ctx", {}).get("at", ())]
                if isinstance(part, str | int)
            ],
            message=str(item.get("msg", "invalid")),
            type=str(item.get("type", "invalid")),
        )
        for item in error.errors()
    ]


async def _on_refusal(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HookpostError)
    return problem_response(Problem.of(exc))


async def _on_validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = _field_errors(exc)
    if any(item.type == "json_invalid" for item in errors):
        return problem_response(
            Problem("malformed_json", "The request body is not valid JSON", errors=errors)
        )
    detail = "; ".join(_sentence(item) for item in errors[:3])
    if len(errors) > 3:
        detail += f"; and {len(errors) - 3} more (see errors)"
    return problem_response(Problem("validation_error", detail, errors=errors))


_EXAMPLE_TIME = "2026-11-22T08:00:00Z"
# What a person should do, for the errors whose own words do not say it.
_ADVICE = {
    "missing": "is required",
    "timezone_aware": f"needs a time zone, such as {_EXAMPLE_TIME}",
    "datetime_parsing": f"must be a date and time, such as {_EXAMPLE_TIME}",
    "datetime_from_date_parsing": f"must be a date and time, such as {_EXAMPLE_TIME}",
    "extra_forbidden": "is not a field of this request",
}


def _sentence(item: FieldError) -> str:
    """One field error as a person reads it: where, and what to do."""
    place = ".".join(str(part) for part in item.loc)
    if item.loc == ["body"] and item.type in ("model_attributes_type", "dict_type"):
        return "the request body must be a JSON object, sent with content-type: application/json"
    advice = _ADVICE.get(item.type)
    if advice is not None:
        return f"{place} {advice}"
    return f"{place}: {item.message.removeprefix('Value error, ')}"


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "request_too_large",
}


async def _on_http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    headers = dict(exc.headers) if exc.headers else None
    return problem_response(Problem(code, detail, headers=headers, status=exc.status_code))


async def _on_database_error(request: Request, exc: Exception) -> Response:
    if is_refused_value(exc):
        return problem_response(
            Problem("invalid_value", "A value of the request cannot be stored as given")
        )
    if is_outage(exc):
        logger.warning("database unavailable: %s", type(exc).__name__)
        # After a restart every idle connection of the hot pool is dead too: each would fail
        # one more request. Expired, they are made anew when next taken.
        state = getattr(request.app.state, "hookpost", None)
        if state is not None:
            await state.pool.expire_connections()
        return problem_response(
            Problem(
                "database_unavailable",
                "The database cannot be reached; try again shortly",
                headers={"Retry-After": "1"},
            )
        )
    return await _on_unexpected(request, exc)


async def _on_unexpected(_: Request, exc: Exception) -> Response:
    logger.exception("unhandled error", exc_info=exc)
    return problem_response(Problem("internal_error", "An unexpected error occurred"))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(HookpostError, _on_refusal)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(DBAPIError, _on_database_error)  # through SQLAlchemy
    app.add_exception_handler(asyncpg.PostgresError, _on_database_error)  # on the driver itself
    app.add_exception_handler(asyncpg.InterfaceError, _on_database_error)
    app.add_exception_handler(asyncpg.InternalClientError, _on_database_error)
    app.add_exception_handler(OSError, _on_database_error)  # the database went away
    app.add_exception_handler(Exception, _on_unexpected)
