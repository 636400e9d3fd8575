"""The root of every refusal hookpost names, and the one table of what each costs in HTTP.

Each subclass of ``HookpostError`` carries a stable ``code`` (the ``code`` of the API's
problem+json, the reason a console or portal page gives); ``STATUS`` maps every code to the
status the API answers it with. The modules that refuse define their own subclasses next to
the rule they guard; nothing here imports the rest of hookpost.
"""

from typing import ClassVar, Literal, get_args


class HookpostError(Exception):
    """Something hookpost refuses or cannot do; ``code`` says which, in words a program can
    match, and the message says why, in words a person can act on."""

    code: ClassVar[str] = "internal_error"

    @property
    def detail(self) -> str:
        return str(self)


# The kinds of object a request can name; each has its own "<kind>_not_found".
Kind = Literal[
    "api_key", "attempt", "delivery", "endpoint", "event", "event_type", "subscription", "tenant"
]


class NotFound(HookpostError):
    """An object that does not exist or that the one asking may not see: the same answer,
    so that a neighbour's ids cannot be probed."""

    code: ClassVar[str] = "not_found"

    def __init__(self, kind: Kind, ref: str) -> None:
        super().__init__(f"No {kind.replace('_', ' ')} {ref!r}")
        self.kind = kind
        self.ref = ref

    @property
    def instance_code(self) -> str:
        return f"{self.kind}_not_found"


class Unauthenticated(HookpostError):
    """A request without a key hookpost knows."""

    code: ClassVar[str] = "unauthorized"


class NotAllowed(HookpostError):
    """The one asking may see this but not do it (a tenant's key, a read-only portal)."""

    code: ClassVar[str] = "forbidden"


class AdminOnly(NotAllowed):
    code: ClassVar[str] = "admin_only"


class ReadOnly(NotAllowed):
    code: ClassVar[str] = "read_only"


STATUS: dict[str, int] = {
    # the request itself
    "bad_request": 400,
    "malformed_json": 400,
    "unauthorized": 401,
    "sign_in_needed": 401,
    "forbidden": 403,
    "admin_only": 403,
    "read_only": 403,
    "csrf_refused": 403,
    "not_found": 404,
    **{f"{kind}_not_found": 404 for kind in get_args(Kind)},
    "method_not_allowed": 405,
    "not_supported": 501,
    "request_too_large": 413,
    "payload_too_large": 413,
    # what it asks for
    "validation_error": 422,
    "invalid_value": 422,
    "invalid_id": 422,
    "invalid_cursor": 422,
    "invalid_filter": 422,
    "invalid_schema": 422,
    "invalid_policy": 422,
    "json_not_strict": 422,
    "blocked_destination": 422,
    "invalid_url": 422,
    "tenant_required": 422,
    "unknown_event_type": 422,
    "event_type_archived": 422,
    "event_type_schema_unusable": 422,
    "payload_invalid": 422,
    "payload_validation_timeout": 422,
    "deliver_at_too_far": 422,
    # the state it meets
    "tenant_uid_taken": 409,
    "endpoint_uid_taken": 409,
    "event_type_exists": 409,
    "idempotency_conflict": 409,
    "tenant_changed": 409,
    "endpoint_disabled": 409,
    "delivery_in_flight": 409,
    "cannot_resend": 409,
    # hookpost itself
    "http_error": 500,
    "internal_error": 500,
    "database_unavailable": 503,
    "validation_unavailable": 503,
}


def code_of(error: HookpostError) -> str:
    """The code ``error`` is answered with: its class's, or one of its own where the class
    stands for several (``NotFound`` names its kind)."""
    own = getattr(error, "instance_code", None)
    return own if isinstance(own, str) else error.code


def status_of(error: HookpostError) -> int:
    return STATUS[code_of(error)]
