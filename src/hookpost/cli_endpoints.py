"""``hookpost endpoint ...``: create, change, show and test endpoints through the REST API,
with their routing (event types, payload filters, channels), policy, uid and metadata."""

from typing import Annotated, Any

import orjson
import typer

from hookpost.cli_client import DEFAULT_API_URL, ApiKey, ApiUrl, AsJson, call, print_json

app = typer.Typer(help="Create, change, show and test endpoints (through the API).")

Tenant = Annotated[
    str | None,
    typer.Option(help="The endpoint's tenant (id or uid): with an admin key, to name it by uid."),
]
EndpointRef = Annotated[str, typer.Argument(help="The endpoint: its id (ep_...) or uid.")]
EventTypes = Annotated[
    list[str] | None,
    typer.Option("--event-type", help="A type, prefix.* or * it receives; repeat for more."),
]
Filters = Annotated[
    list[str] | None,
    typer.Option(
        "--filter",
        help="PATTERN=RULE: a payload filter (JSON) on its subscription to PATTERN; repeat.",
    ),
]
Channels = Annotated[
    list[str] | None, typer.Option("--channel", help="A channel it listens to; repeat.")
]
Policy = Annotated[
    list[str] | None,
    typer.Option("--policy", help="NAME=VALUE: a setting it overrides (retry_max_attempts=5)."),
]
Metadata = Annotated[
    list[str] | None, typer.Option("--metadata", help="KEY=VALUE kept with it; repeat.")
]
Uid = Annotated[str | None, typer.Option(help="The product's own id for it.")]
OrderingKey = Annotated[
    str | None,
    typer.Option(
        "--ordering-key",
        help="Deliver in order per value of this payload field (ordered lanes).",
    ),
]
Ordered = Annotated[
    bool, typer.Option("--ordered", help="Deliver in order, one lane for the tenant.")
]
OnExhausted = Annotated[
    str | None,
    typer.Option(
        "--on-exhausted",
        help="fail (the lane goes on) or hold (it waits for a resend); implies ordered.",
    ),
]


def _pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise typer.BadParameter(f"{value!r} is not NAME=VALUE", param_hint=option)
        pairs.append((name, rest))
    return pairs


def _json(text: str, option: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as error:
        raise typer.BadParameter(f"{text!r} is not JSON: {error}", param_hint=option) from None


def _routing(
    *,
    event_types: list[str] | None,
    filters: list[str] | None,
    channels: list[str] | None,
    policy: list[str] | None,
    metadata: list[str] | None,
    uid: str | None,
    ordered: bool = False,
    ordering_key: str | None = None,
    on_exhausted: str | None = None,
) -> dict[str, Any]:
    """The request fields of the options given (an option left out is not sent)."""
    body: dict[str, Any] = {}
    if ordered or ordering_key is not None or on_exhausted is not None:
        if on_exhausted not in (None, "fail", "hold"):
            raise typer.BadParameter("fail or hold", param_hint="--on-exhausted")
        body["ordering"] = {"key": ordering_key, "on_exhausted": on_exhausted or "fail"}
    if event_types is not None:
        body["event_types"] = event_types
    if filters is not None:
        body["filters"] = {
            pattern: _json(rule, "--filter") for pattern, rule in _pairs(filters, "--filter")
        }
    if channels is not None:
        body["channels"] = channels
    if policy is not None:
        body["policy"] = {
            name: _json(value, "--policy") for name, value in _pairs(policy, "--policy")
        }
    if metadata is not None:
        body["metadata"] = dict(_pairs(metadata, "--metadata"))
    if uid is not None:
        body["uid"] = uid
    return body


def _show(endpoint: dict[str, Any]) -> None:
    typer.echo(f"{endpoint['id']}" + (f" ({endpoint['uid']})" if endpoint["uid"] else ""))
    typer.echo(f"url {endpoint['url']}")
    state = "enabled" if endpoint["enabled"] else f"disabled: {endpoint['disabled_reason']}"
    typer.echo(f"tenant {endpoint['tenant_id']}, {state}")
    for pattern in endpoint["event_types"]:
        rule = endpoint["filters"].get(pattern)
        typer.echo(
            f"receives {pattern}" + (f" where {orjson.dumps(rule).decode()}" if rule else "")
        )
    if not endpoint["event_types"]:
        typer.echo("receives nothing (no subscription)")
    channels = endpoint["channels"]
    typer.echo(f"channels {', '.join(channels)}" if channels else "channels any")
    ordering = endpoint["ordering"]
    if ordering is None:
        typer.echo("order none (unordered)")
    else:
        lanes = f"a lane per {ordering['key']}" if ordering["key"] else "one lane"
        typer.echo(f"order {lanes}; a delivery out of attempts: {ordering['on_exhausted']}")
    for name, value in endpoint["effective_policy"].items():
        source = "this endpoint" if name in endpoint["policy"] else "settings"
        typer.echo(f"policy {name} = {value} ({source})")
    for name, value in endpoint["metadata"].items():
        typer.echo(f"metadata {name} = {value}")
    for warning in endpoint.get("warnings", []):
        typer.secho(f"warning: {warning}", fg=typer.colors.YELLOW)


def _answer(endpoint: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print_json(endpoint)
    else:
        _show(endpoint)


@app.command()
def create(
    url: Annotated[str, typer.Argument(help="Where its webhooks go.")],
    api_key: ApiKey,
    tenant: Tenant = None,
    event_types: EventTypes = None,
    filters: Filters = None,
    channels: Channels = None,
    policy: Policy = None,
    metadata: Metadata = None,
    uid: Uid = None,
    ordered: Ordered = False,
    ordering_key: OrderingKey = None,
    on_exhausted: OnExhausted = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """Create an endpoint of a tenant and show it (its signing secret: `hookpost endpoint
    show` does not print it; the API's GET /v1/endpoints/{id}/secret does)."""
    body = {"url": url} | _routing(
        event_types=event_types,
        filters=filters,
        channels=channels,
        policy=policy,
        metadata=metadata,
        uid=uid,
        ordered=ordered,
        ordering_key=ordering_key,
        on_exhausted=on_exhausted,
    )
    if tenant is not None:
        body["tenant_id"] = tenant
    _answer(call(api_url, api_key, "POST", "/v1/endpoints", json=body), as_json)


@app.command()
def update(
    endpoint: EndpointRef,
    api_key: ApiKey,
    tenant: Tenant = None,
    url: Annotated[str | None, typer.Option(help="A new URL.")] = None,
    event_types: EventTypes = None,
    filters: Filters = None,
    channels: Channels = None,
    policy: Policy = None,
    metadata: Metadata = None,
    uid: Uid = None,
    ordered: Ordered = False,
    ordering_key: OrderingKey = None,
    on_exhausted: OnExhausted = None,
    unordered: Annotated[bool, typer.Option("--unordered", help="Turn ordered lanes off.")] = False,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """Change what is given: each option replaces that part whole (--filter every filter,
    --policy every override, ...); what is left out stays."""
    body = _routing(
        event_types=event_types,
        filters=filters,
        channels=channels,
        policy=policy,
        metadata=metadata,
        uid=uid,
        ordered=ordered,
        ordering_key=ordering_key,
        on_exhausted=on_exhausted,
    )
    if unordered:
        body["ordering"] = None
    if url is not None:
        body["url"] = url
    if not body:
        raise typer.BadParameter("give at least one thing to change")
    answer = call(
        api_url,
        api_key,
        "PATCH",
        f"/v1/endpoints/{endpoint}",
        json=body,
        params=_scope(tenant),
    )
    _answer(answer, as_json)


@app.command()
def show(
    endpoint: EndpointRef,
    api_key: ApiKey,
    tenant: Tenant = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """An endpoint: its URL, state, what it receives (with filters and channels), the policy
    its deliveries follow and where each value comes from, and its metadata."""
    _answer(
        call(api_url, api_key, "GET", f"/v1/endpoints/{endpoint}", params=_scope(tenant)),
        as_json,
    )


@app.command("filter-test")
def filter_test(
    endpoint: EndpointRef,
    event_type: Annotated[str, typer.Option(help="The sample event's type.")],
    payload: Annotated[str, typer.Option(help="The sample event's payload (JSON).")],
    api_key: ApiKey,
    tenant: Tenant = None,
    channels: Channels = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """Whether an event like this would be delivered to the endpoint, and why (exit code 0
    when it would, 3 when it would not)."""
    body = {"event_type": event_type, "payload": _json(payload, "--payload")}
    if channels:
        body["channels"] = channels
    answer = call(
        api_url,
        api_key,
        "POST",
        f"/v1/endpoints/{endpoint}/filter-test",
        json=body,
        params=_scope(tenant),
    )
    if as_json:
        print_json(answer)
    else:
        typer.echo(("delivered: " if answer["delivered"] else "not delivered: ") + answer["reason"])
    if not answer["delivered"]:
        raise typer.Exit(3)


def _scope(tenant: str | None) -> dict[str, str]:
    return {} if tenant is None else {"tenant_id": tenant}
