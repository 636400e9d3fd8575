"""How the console's create and change forms become the models the API's bodies are
(``admin.schemas``), so that a tenant, an event type or an endpoint made in a page obeys the
rules of one made through the API: each field's text is read (a JSON object as strictly as
the API reads one, a list split at commas, a blank as left out), the model validates it, and
its errors become sentences that name the form's fields."""

from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from hookpost.admin.schemas.endpoints import EndpointCreate, EndpointUpdate
from hookpost.admin.schemas.event_types import EventTypeCreate, EventTypeUpdate
from hookpost.admin.schemas.tenants import TenantCreate, TenantUpdate
from hookpost.db.models import Endpoint, EventType, Tenant
from hookpost.errors import HookpostError
from hookpost.jsonvalue import dumps
from hookpost.strict_json import NotStrictJSON, loads

Model = TypeVar("Model", bound=BaseModel)

# the overrides an endpoint's form offers, in the order it shows them, with their labels
POLICY_FIELDS = {
    "retry_base_s": "First retry after (s)",
    "retry_factor": "Each retry waits longer by",
    "retry_cap_s": "Longest wait (s)",
    "retry_jitter": "Jitter (share of a wait)",
    "retry_max_attempts": "Attempts at most",
    "retry_max_age_s": "Retried until its age (s)",
    "timeout_s": "Timeout of a request (s)",
}
LABELS = {
    "name": "Name",
    "uid": "Uid",
    "metadata": "Metadata",
    "description": "Description",
    "schema": "Schema",
    "tenant_id": "Tenant",
    "url": "URL",
    "event_types": "Event types",
    "channels": "Channels",
    "filters": "Filters",
    "headers": "Headers",
    "rate_limit_per_s": "Rate limit",
    "max_in_flight": "In flight at most",
    "ordering": "Ordering",
    "body_format": "Body",
    "signature_headers": "Signature headers",
    "ordering.key": "Lane key",
    "ordering.on_exhausted": "When a delivery runs out",
    **{f"policy.{name}": label for name, label in POLICY_FIELDS.items()},
}


class FormInvalid(HookpostError):
    """A form whose fields break the rules; ``problems`` holds one sentence per field."""

    code: ClassVar[str] = "validation_error"

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


class _Form(BaseModel):
    """A form as the browser sends it: text fields (a box left unticked is absent), read by
    the functions below; the form token is checked by the page."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    csrf: str | None = None

    def shown(self) -> dict[str, str]:
        """The fields as they were sent, to show them again beside the problems."""
        return self.model_dump(by_alias=True, exclude={"csrf"})


class TenantForm(_Form):
    name: str = ""
    uid: str = ""
    metadata: str = ""


class EventTypeForm(_Form):
    name: str = ""
    description: str = ""
    schema_: str = Field(default="", alias="schema")
    archived: str = ""


class EndpointForm(_Form):
    url: str = ""
    uid: str = ""
    description: str = ""
    event_types: str = ""
    channels: str = ""
    filters: str = ""
    headers: str = ""
    metadata: str = ""
    rate_limit_per_s: str = ""
    max_in_flight: str = ""
    ordered: str = ""
    body_format: str = ""
    signature_headers: str = ""
    ordering_key: str = Field(default="", alias="ordering.key")
    ordering_on_exhausted: str = Field(default="", alias="ordering.on_exhausted")
    retry_base_s: str = Field(default="", alias="policy.retry_base_s")
    retry_factor: str = Field(default="", alias="policy.retry_factor")
    retry_cap_s: str = Field(default="", alias="policy.retry_cap_s")
    retry_jitter: str = Field(default="", alias="policy.retry_jitter")
    retry_max_attempts: str = Field(default="", alias="policy.retry_max_attempts")
    retry_max_age_s: str = Field(default="", alias="policy.retry_max_age_s")
    timeout_s: str = Field(default="", alias="policy.timeout_s")


def _blank_is_none(text: str) -> str | None:
    return text.strip() or None


def _listed(text: str) -> list[str]:
    return text.replace(",", " ").split()


def _json(text: str, label: str, problems: list[str], blank: Any = None) -> Any:
    """The field's JSON value, ``blank`` for a blank; a text that is not strict JSON is a
    problem."""
    if not text.strip():
        return blank
    try:
        return loads(text)
    except NotStrictJSON as error:
        problems.append(f"{label}: not strict JSON: {error.message}")
    except (ValueError, RecursionError):
        problems.append(f"{label}: not JSON")
    return None


def _sentence(error: Mapping[str, Any]) -> str:
    place = ".".join(str(part) for part in error.get("loc", ()))
    label = LABELS.get(place) or LABELS.get(place.split(".")[0], place)
    if error.get("type") == "missing":
        return f"{label}: required"
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    one_item = place not in LABELS and place.split(".")[0] in LABELS  # of a list or an object
    if one_item and isinstance(error.get("input"), str):
        return f"{label}: {error['input']!r}: {message}"
    return f"{label}: {message}"


def _validated(model: type[Model], values: dict[str, Any], problems: list[str]) -> Model:
    try:
        checked = model.model_validate(values)
    except ValidationError as error:
        raise FormInvalid([*problems, *(_sentence(item) for item in error.errors())]) from None
    if problems:
        raise FormInvalid(problems)
    return checked


def _tenant_values(form: TenantForm, problems: list[str]) -> dict[str, Any]:
    return {
        "name": form.name.strip(),
        "uid": _blank_is_none(form.uid),
        "metadata": _json(form.metadata, "Metadata", problems, {}),
    }


def tenant_create(form: TenantForm) -> TenantCreate:
    problems: list[str] = []
    return _validated(TenantCreate, _tenant_values(form, problems), problems)


def tenant_update(form: TenantForm) -> TenantUpdate:
    """Every field the form shows is sent: a blank uid removes it."""
    problems: list[str] = []
    return _validated(TenantUpdate, _tenant_values(form, problems), problems)


def event_type_create(form: EventTypeForm) -> EventTypeCreate:
    problems: list[str] = []
    values = {
        "name": form.name.strip(),
        "description": form.description.strip(),
        "schema": _json(form.schema_, "Schema", problems),
    }
    return _validated(EventTypeCreate, values, problems)


def event_type_update(form: EventTypeForm) -> EventTypeUpdate:
    """A blank schema removes it; the archived box unticked brings the type back."""
    problems: list[str] = []
    values = {
        "description": form.description.strip(),
        "schema": _json(form.schema_, "Schema", problems),
        "archived": form.archived == "on",
    }
    return _validated(EventTypeUpdate, values, problems)


def _endpoint_values(form: EndpointForm, problems: list[str]) -> dict[str, Any]:
    """The fields the create and the change forms share, each as the model names it."""
    ordering = None
    if form.ordered == "on":
        ordering = {
            "key": _blank_is_none(form.ordering_key),
            "on_exhausted": form.ordering_on_exhausted.strip() or "fail",
        }
    wire = {
        name: value
        for name in ("body_format", "signature_headers")
        if (value := getattr(form, name).strip())
    }
    return {
        **wire,
        "url": form.url.strip(),
        "uid": _blank_is_none(form.uid),
        "description": form.description.strip(),
        "event_types": _listed(form.event_types),
        "channels": _listed(form.channels) or None,
        "filters": _json(form.filters, "Filters", problems, {}),
        "headers": _json(form.headers, "Headers", problems, {}),
        "metadata": _json(form.metadata, "Metadata", problems, {}),
        "rate_limit_per_s": _blank_is_none(form.rate_limit_per_s),
        "max_in_flight": form.max_in_flight.strip() or "10",
        "ordering": ordering,
        "policy": {
            name: value
            for name in POLICY_FIELDS
            if (value := _blank_is_none(getattr(form, name))) is not None
        },
    }


def endpoint_create(form: EndpointForm, tenant_id: str) -> EndpointCreate:
    problems: list[str] = []
    values = {"tenant_id": tenant_id, **_endpoint_values(form, problems)}
    return _validated(EndpointCreate, values, problems)


def endpoint_update(form: EndpointForm) -> EndpointUpdate:
    """Every field the form shows is sent, so each replaces what the endpoint had: a blank
    override follows the setting again, an unticked ordering makes it unordered."""
    problems: list[str] = []
    return _validated(EndpointUpdate, _endpoint_values(form, problems), problems)


def _shown_json(value: Any) -> str:
    return dumps(value).decode() if value else ""


def shown_number(value: float) -> str:
    """A number as a form field shows it: no ``.0`` on a whole one, every digit kept."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def tenant_fields(tenant: Tenant | None) -> dict[str, str]:
    """What the form shows for ``tenant`` (blank for a new one)."""
    if tenant is None:
        return {}
    return {
        "name": tenant.name,
        "uid": tenant.uid or "",
        "metadata": _shown_json(tenant.metadata_),
    }


def event_type_fields(event_type: EventType | None) -> dict[str, str]:
    if event_type is None:
        return {}
    return {
        "name": event_type.name,
        "description": event_type.description,
        "schema": _shown_json(event_type.schema),
        "archived": "on" if event_type.archived else "",
    }


def endpoint_fields(
    endpoint: Endpoint, event_types: list[str], filters: dict[str, Any]
) -> dict[str, str]:
    ordering = endpoint.ordering or {}
    return {
        "url": endpoint.url,
        "uid": endpoint.uid or "",
        "description": endpoint.description,
        "event_types": ", ".join(event_types),
        "channels": ", ".join(endpoint.channels or []),
        "filters": _shown_json(filters),
        "headers": _shown_json(endpoint.headers),
        "metadata": _shown_json(endpoint.metadata_),
        "rate_limit_per_s": str(endpoint.rate_limit_per_s or ""),
        "max_in_flight": str(endpoint.max_in_flight),
        "ordered": "on" if endpoint.ordering is not None else "",
        "body_format": endpoint.body_format,
        "signature_headers": endpoint.signature_headers,
        "ordering.key": ordering.get("key") or "",
        "ordering.on_exhausted": ordering.get("on_exhausted", "fail"),
        **{f"policy.{name}": shown_number(value) for name, value in endpoint.policy.items()},
    }
