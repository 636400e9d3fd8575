"""The OpenAPI document, adjusted to what the API really answers: every error is
``application/problem+json`` with the ``ProblemBody`` schema, FastAPI's own 422 included."""

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

# One true example a status: what the API answers most often with it.
_EXAMPLES: dict[int, tuple[str, str]] = {
    400: ("malformed_json", "The request body is not valid JSON"),
    401: ("unauthorized", "Send an API key: Authorization: Bearer <key>"),
    403: ("admin_only", "This action needs an admin API key"),
    404: ("tenant_not_found", "No tenant 'acme'"),
    409: (
        "idempotency_conflict",
        "The idempotency key 'invoice-1234-paid' was used for another event",
    ),
    413: ("payload_too_large", "The payload is 300000 bytes; the limit is 262144"),
    422: ("validation_error", "body.url: the URL must start with http:// or https://"),
    503: (
        "validation_unavailable",
        "Payloads cannot be validated now: the validation process died",
    ),
}


def _example(status: int) -> dict[str, Any]:
    code, detail = _EXAMPLES.get(status, ("http_error", HTTPStatus(status).phrase))
    example: dict[str, Any] = {
        "type": f"https://hookpost.dev/problems/{code}",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if status == 422:
        example["errors"] = [
            {
                "loc": ["body", "url"],
                "message": "Value error, the URL must start with http:// or https://",
                "type": "value_error",
            }
        ]
    return example


def _problems_everywhere(spec: dict[str, Any]) -> None:
    for item in spec.get("paths", {}).values():
        for operation in item.values():
            for status, response in operation.get("responses", {}).items():
                if status[0] in "45":
                    response["content"] = {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/ProblemBody"},
                            "example": _example(int(status)),
                        }
                    }
    schemas = spec.get("components", {}).get("schemas", {})
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            _problems_everywhere(spec)
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
