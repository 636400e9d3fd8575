"""The operators' commands of the CLI: they talk to a running hookpost over its REST API
(``HOOKPOST_API_URL``, ``HOOKPOST_API_KEY``), so they work from anywhere the API is reachable."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import httpx
import orjson
import typer
from rich.console import Console
from rich.table import Table

ApiUrl = Annotated[
    str,
    typer.Option("--api-url", envvar="HOOKPOST_API_URL", help="The hookpost API."),
]
ApiKey = Annotated[
    str,
    typer.Option("--api-key", envvar="HOOKPOST_API_KEY", help="An API key (hp_...)."),
]
DEFAULT_API_URL = "http://127.0.0.1:8000"


class Status(StrEnum):
    """A delivery's status, as the API names it."""

    PENDING = "pending"
    WAITING = "waiting"
    IN_FLIGHT = "in_flight"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON answer, for scripts.")]


def print_json(answer: Any) -> None:
    typer.echo(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())


def _console() -> Console:
    console = Console()
    return console if console.is_terminal else Console(width=250)  # piped: whole ids


def call(api_url: str, api_key: str, method: str, path: str, **kwargs: Any) -> Any:
    """The JSON answer of one API call; a clear message and exit code 1 on any error."""
    try:
        response = httpx.request(
            method,
            api_url.rstrip("/") + path,
            headers={"authorization": f"Bearer {api_key}"},
            timeout=60,
            **kwargs,
        )
    except httpx.HTTPError as error:
        typer.secho(f"error: cannot reach {api_url}: {error}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1) from None
    if response.is_error:
        try:
            problem = response.json()
            message = f"{problem['code']}: {problem['detail']}"
        except (ValueError, KeyError, TypeError):
            message = f"{response.status_code} {response.text[:200]}"
        typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
        raise typer.Exit(1)
    return response.json()


def deliveries(
    api_key: ApiKey,
    api_url: ApiUrl = DEFAULT_API_URL,
    tenant: Annotated[str | None, typer.Option(help="Tenant id or uid.")] = None,
    endpoint: Annotated[
        str | None, typer.Option(help="Endpoint id (ep_...), or uid with --tenant.")
    ] = None,
    event: Annotated[str | None, typer.Option(help="Event id (evt_...).")] = None,
    event_type: Annotated[str | None, typer.Option(help="Event type name.")] = None,
    status: Annotated[Status | None, typer.Option(help="Only this status.")] = None,
    since: Annotated[datetime | None, typer.Option(help="Created at or after (UTC).")] = None,
    until: Annotated[datetime | None, typer.Option(help="Created before (UTC).")] = None,
    limit: Annotated[int, typer.Option(min=1, max=500, help="How many, newest first.")] = 50,
    as_json: AsJson = False,
) -> None:
    """List deliveries, newest first: status, why, tenant and endpoint (with its URL)."""
    params = {
        "tenant_id": tenant,
        "endpoint_id": endpoint,
        "event_id": event,
        "event_type": event_type,
        "status": status and status.value,
        "since": since and _aware(since).isoformat(),
        "until": until and _aware(until).isoformat(),
        "limit": limit,
    }
    page = call(
        api_url,
        api_key,
        "GET",
        "/v1/deliveries",
        params={k: str(v) for k, v in params.items() if v is not None},
    )
    if as_json:
        print_json(page)
        return
    urls = {
        endpoint_id: call(api_url, api_key, "GET", f"/v1/endpoints/{endpoint_id}")["url"]
        for endpoint_id in dict.fromkeys(item["endpoint_id"] for item in page["data"])
    }
    table = Table()
    columns = ("delivery", "status", "reason", "event type", "tenant", "endpoint", "tries", "last")
    for column in (*columns, "created"):
        table.add_column(column, no_wrap=column != "reason", overflow="fold")
    for item in page["data"]:
        last = item["last_status_code"] or item["last_error_kind"] or ""
        table.add_row(
            item["id"],
            item["status"],
            item["status_reason"] or "",
            item["event_type"],
            item["tenant_id"],
            f"{item['endpoint_id']} {urls[item['endpoint_id']]}",
            str(item["attempt_count"]),
            str(last),
            item["created_at"][:19].replace("T", " "),
        )
    _console().print(table)
    if page["next_cursor"]:
        typer.echo(f"more: the API's next_cursor is {page['next_cursor']}")


def delivery(
    delivery_id: Annotated[str, typer.Argument(help="The delivery (dlv_...).")],
    api_key: ApiKey,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """One delivery and every attempt of it, oldest first: when, the answer or the error,
    how long it took, and the start of the response body."""
    found = call(api_url, api_key, "GET", f"/v1/deliveries/{delivery_id}")
    if as_json:
        print_json(found)
        return
    typer.echo(
        f"{found['id']}: {found['status']}"
        + (f" ({found['status_reason']})" if found["status_reason"] else "")
    )
    typer.echo(f"event {found['event_id']} ({found['event_type']}), tenant {found['tenant_id']}")
    typer.echo(f"endpoint {found['endpoint_id']} {found['endpoint']['url']}")
    if found["status"] == "pending":
        typer.echo(f"next attempt at {found['next_attempt_at']}")
    table = Table()
    for column in ("#", "at", "answer", "ms", "error", "response body"):
        table.add_column(column, overflow="fold")
    for attempt in found["attempts"]:
        table.add_row(
            str(attempt["attempt_number"]),
            attempt["started_at"][:23].replace("T", " "),
            str(attempt["response_status"] or attempt["error_kind"] or ""),
            str(attempt["duration_ms"]),
            attempt["error_message"] or "",
            (attempt["response_body"] or "")[:120],
        )
    _console().print(table)


def resend(
    delivery_id: Annotated[str, typer.Argument(help="The delivery (dlv_...).")],
    api_key: ApiKey,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """Queue one delivery again now (its history is kept)."""
    answer = call(api_url, api_key, "POST", f"/v1/deliveries/{delivery_id}/resend")
    if as_json:
        print_json(answer)
        return
    typer.echo(f"{answer['id']} queued ({answer['status']})")


RECOVER_SLICES = 20  # a large window is recovered a slice at a time, so progress shows


EndpointTenant = Annotated[
    str | None,
    typer.Option(
        "--tenant", help="The endpoint's tenant (id or uid): with an admin key, to name it by uid."
    ),
]


def recover(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint: its id (ep_...) or uid.")],
    since: Annotated[datetime, typer.Option(help="Failed deliveries created at or after (UTC).")],
    api_key: ApiKey,
    until: Annotated[datetime | None, typer.Option(help="And before (UTC); now if absent.")] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only count what would be queued again.")
    ] = False,
    tenant: EndpointTenant = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """After an outage: queue again every failed delivery of an endpoint in a time window,
    with the count first and progress as it goes (with --json, one object at the end)."""
    start = _aware(since)
    end = _aware(until) if until else datetime.now(UTC)
    path = f"/v1/endpoints/{endpoint_id}/recover"
    scope = {} if tenant is None else {"tenant_id": tenant}

    def post(low: datetime, high: datetime, *, dry: bool) -> int:
        body = {"since": low.isoformat(), "until": high.isoformat(), "dry_run": dry}
        queued: int = call(api_url, api_key, "POST", path, json=body, params=scope)["queued"]
        return queued

    found = post(start, end, dry=True)

    def say(text: str) -> None:  # --json prints one object at the end instead
        if not as_json:
            typer.echo(text)

    say(f"{found} failed deliveries in the window")
    queued = 0
    if dry_run or not found:
        if as_json:
            print_json({"found": found, "queued": queued, "dry_run": dry_run})
        return
    step = (end - start) / RECOVER_SLICES
    for number in range(RECOVER_SLICES):
        low = start + step * number
        high = end if number == RECOVER_SLICES - 1 else start + step * (number + 1)
        queued += post(low, high, dry=False)
        say(f"queued {queued} of {found} ({queued / found:.0%})")
    say(f"{queued} failed deliveries queued again")
    if as_json:
        print_json({"found": found, "queued": queued, "dry_run": False})


def _aware(at: datetime) -> datetime:
    """``at`` with its time zone; a time given without one is taken as UTC."""
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def rotate_secret(
    endpoint_id: Annotated[str, typer.Argument(help="The endpoint: its id (ep_...) or uid.")],
    api_key: ApiKey,
    grace_period_s: Annotated[
        int, typer.Option(min=0, help="How long the old secrets keep signing beside the new.")
    ] = 86_400,
    key: Annotated[
        str | None, typer.Option(help="The new whsec_ secret; generated when absent.")
    ] = None,
    tenant: EndpointTenant = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """Rotate an endpoint's signing secret and print the new one; during the grace period
    every live secret signs, so receivers can switch without rejecting a request (--json: every
    live secret, with when each stops)."""
    body = {"grace_period_s": grace_period_s} | ({"key": key} if key else {})
    answer = call(
        api_url,
        api_key,
        "POST",
        f"/v1/endpoints/{endpoint_id}/secret/rotate",
        json=body,
        params={} if tenant is None else {"tenant_id": tenant},
    )
    if as_json:
        print_json(answer)
        return
    typer.echo(answer["key"])


def emit(
    event_type: Annotated[str, typer.Argument(help="The event type (invoice.paid).")],
    payload: Annotated[str, typer.Argument(help="The payload, a JSON object.")],
    api_key: ApiKey,
    tenant: Annotated[
        str | None, typer.Option(help="The tenant (id or uid); a tenant key's own if absent.")
    ] = None,
    channels: Annotated[
        list[str] | None, typer.Option("--channel", help="A channel of the event; repeat.")
    ] = None,
    deliver_at: Annotated[
        datetime | None, typer.Option(help="When its deliveries fall due (UTC if no zone).")
    ] = None,
    idempotency_key: Annotated[
        str | None, typer.Option(help="Emitting twice with it creates one event.")
    ] = None,
    api_url: ApiUrl = DEFAULT_API_URL,
    as_json: AsJson = False,
) -> None:
    """Emit one event, as a backend does, and print its id and how many deliveries it made."""
    try:
        data = orjson.loads(payload)
    except orjson.JSONDecodeError as error:
        raise typer.BadParameter(f"not JSON: {error}", param_hint="PAYLOAD") from None
    body: dict[str, Any] = {"event_type": event_type, "payload": data}
    if tenant is not None:
        body["tenant_id"] = tenant
    if channels:
        body["channels"] = channels
    if deliver_at is not None:
        body["deliver_at"] = _aware(deliver_at).isoformat()
    if idempotency_key is not None:
        body["idempotency_key"] = idempotency_key
    answer = call(api_url, api_key, "POST", "/v1/events", json=body)
    if as_json:
        print_json(answer)
        return
    repeat = " (a repeat: the first event)" if answer["duplicate"] else ""
    typer.echo(f"{answer['id']}: {answer['deliveries']} deliveries{repeat}")
