"""The console's pages: sign-in, the overview (its figures refreshed in place), one search
box, endpoints with their health and actions (enable or disable, recover a window after a dry
run), deliveries searched by filters in the URL with a bulk resend, tenants with their portal
links, and the forms that create and change tenants, event types and endpoints (read by
``console.forms`` into the API's own request models). The pages the portal has too come from
``sites.site.Site``; every rule is the services' (``admin``, ``ops``); a page only reads the
form, checks the session and its CSRF token, and renders."""

import dataclasses
import hmac
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Form, Query, Request
from fastapi.responses import Response
from sqlalchemy import or_, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import OPERATOR, Viewer
from hookpost.admin import api_keys, event_types, portal_links, tenants
from hookpost.admin import endpoints as admin_endpoints
from hookpost.admin.filters import FilterError
from hookpost.console import forms
from hookpost.db import unstorable
from hookpost.db.models import (
    ApiKey,
    Delivery,
    DeliveryStatus,
    Endpoint,
    EventType,
    Tenant,
)
from hookpost.delivery.ssrf import BlockedDestination
from hookpost.errors import HookpostError
from hookpost.ingest import events
from hookpost.ingest.validation import ValidationUnavailable
from hookpost.ops import logs, overview, recovery, stats
from hookpost.sites import actions, charts
from hookpost.sites import session as console_session
from hookpost.sites.rendering import (
    ASSETS,
    from_another_origin,
    local,
    page_of,
    render,
    see_other,
)
from hookpost.sites.site import Refused, SignInNeeded, Site
from hookpost.state import AppState, app_state


class ConsoleSite(Site):
    """The operator's pages: every tenant, seen as ``OPERATOR``, signed in with an admin key."""

    prefix = ""
    endpoint_template = "endpoint.html"
    delivery_template = "delivery.html"

    async def signed_in(self, request: Request) -> tuple[AppState, console_session.Session]:
        """The app state and the session of a signed-in operator whose key is still valid."""
        state = app_state(request)
        found = console_session.read(request, state.secret_box, console_session.CONSOLE)
        if found is None or found.scope != "admin":
            raise SignInNeeded(self)
        # a session ends with its key: a deleted key, or a configured one changed or unset
        if found.key_id is None:
            configured = state.settings.admin_api_key
            if not found.signed_in_with(configured.get_secret_value() if configured else None):
                raise SignInNeeded(self)
        elif not await state.pool.fetchval(api_keys.IS_ADMIN_KEY, found.key_id):
            raise SignInNeeded(self)
        return state, found

    def viewer(self, found: console_session.Session) -> Viewer:
        return OPERATOR

    def check_form(
        self, found: console_session.Session, csrf: str | None, *, changes: bool
    ) -> None:
        if not found.accepts(csrf):
            raise Refused(self)

    def dress(self, state: AppState, found: console_session.Session | None) -> dict[str, Any]:
        return {"csrf": found.csrf if found else None}

    def not_found(
        self, request: Request, state: AppState, found: console_session.Session, what: str
    ) -> Response:
        return render(request, "not_found.html", 404, csrf=found.csrf, what=what)

    def sign_in_answer(self, request: Request) -> Response:
        if request.headers.get("hx-request"):  # a fragment: the page itself must move
            return Response(status_code=204, headers={"hx-redirect": "/sign-in"})
        return see_other("/sign-in")

    def refused_answer(self, request: Request) -> Response:
        return render(request, "refused.html", 403)

    async def endpoint_extras(
        self,
        request: Request,
        session: AsyncSession,
        state: AppState,
        endpoint: Endpoint,
        shown: dict[str, Any],
    ) -> dict[str, Any]:
        """Its figures over the last day; its attempts charted over the last hour or day
        (``?span=``); the policy in force; the recovery form's window (the last hour unless
        the form gave one)."""
        now = datetime.now(UTC)
        figures = await stats.endpoint_stats(
            session, endpoint.id, since=now - timedelta(days=1), until=now
        )
        span: stats.Span = "day" if request.query_params.get("span") == "day" else "hour"
        slots = await stats.attempt_series(session, endpoint.id, span, now=now)
        every, per = (16, "per 15 minutes") if span == "day" else (10, "per minute")
        window = (local(now - timedelta(hours=1)), local(now + timedelta(minutes=1)))
        return {
            "stats": figures,
            "span": span,
            "outcomes": charts.outcomes(slots, per=per, every=every, label=_clock),
            "latency": charts.latency(slots, every=every, label=_clock),
            "policy": admin_endpoints.effective_policy(state.settings, endpoint.policy),
            "threshold": state.settings.breaker_threshold,
            "recoverable": shown.get("recoverable"),
            "window": shown.get("window") or window,
        }


def _clock(at: datetime) -> str:
    return at.strftime("%H:%M")


SITE = ConsoleSite()
router = SITE.router


# signing in


@router.get("/sign-in")
async def sign_in_page(request: Request) -> Response:
    return render(request, "sign_in.html", error=None)


@router.post("/sign-in")
async def sign_in(request: Request, key: Annotated[str, Form(max_length=200)]) -> Response:
    """Exchange an admin API key for a session cookie; the key itself is never stored. Only
    from the console's own page: another site's form would sign the browser in to a session
    of that site's choosing (login CSRF)."""
    if from_another_origin(request):
        return render(
            request,
            "sign_in.html",
            403,
            error="This sign-in was sent from another website's page, so it was refused. "
            "Sign in here, on the console's own page.",
        )
    state = app_state(request)
    key_id: uuid.UUID | None
    configured = state.settings.admin_api_key
    if configured is not None and hmac.compare_digest(
        key.encode(), configured.get_secret_value().encode()
    ):
        key_id = None
    else:
        row = await state.pool.fetchrow(api_keys.FIND_BY_HASH, api_keys.hash_key(key))
        if row is None:
            return render(request, "sign_in.html", 401, error="This API key is not known.")
        if row["tenant_id"] is not None:
            return render(
                request,
                "sign_in.html",
                403,
                error="The console needs an admin API key; this one belongs to a tenant.",
            )
        key_id = row["id"]
    answer = see_other("/")
    console_session.start(
        answer,
        request,
        state.secret_box,
        cookie=console_session.CONSOLE,
        scope="admin",
        expires_at=time.time() + console_session.CONSOLE_LIFETIME_S,
        key_id=key_id,
        configured_key=key if key_id is None else None,
    )
    return answer


@router.post("/sign-out")
async def sign_out(request: Request, csrf: Annotated[str | None, Form()] = None) -> Response:
    _, found = await SITE.signed_in(request)
    SITE.check_form(found, csrf, changes=True)
    answer = see_other("/sign-in")
    console_session.end(answer, console_session.CONSOLE)
    return answer


# overview


async def _overview(state: AppState) -> tuple[overview.Overview, dict[uuid.UUID, Tenant]]:
    """The figures, and the tenants of the endpoints in trouble (to name them)."""
    async with state.sessions() as session:
        figures = await overview.overview(
            session, breaker_threshold=state.settings.breaker_threshold
        )
        owners = await _tenants_of(session, {item.endpoint.tenant_id for item in figures.trouble})
    return figures, owners


async def _tenants_of(session: AsyncSession, tenant_ids: set[uuid.UUID]) -> dict[uuid.UUID, Tenant]:
    """The tenants of the rows a page shows, by id: the page names them, not only ids."""
    if not tenant_ids:
        return {}
    rows = await session.scalars(select(Tenant).where(Tenant.id.in_(tenant_ids)))
    return {row.id: row for row in rows}


async def _endpoints_of(
    session: AsyncSession, endpoint_ids: set[uuid.UUID]
) -> dict[uuid.UUID, Endpoint]:
    if not endpoint_ids:
        return {}
    rows = await session.scalars(select(Endpoint).where(Endpoint.id.in_(endpoint_ids)))
    return {row.id: row for row in rows}


@router.get("/")
async def overview_page(request: Request) -> Response:
    state, found = await SITE.signed_in(request)
    figures, owners = await _overview(state)
    return render(
        request,
        "overview.html",
        csrf=found.csrf,
        figures=figures,
        chart=_last_hour_chart(figures),
        tenants=owners,
    )


@router.get("/overview/figures")
async def overview_figures(request: Request) -> Response:
    """The overview's figures alone: the page swaps them in every few seconds."""
    state, _ = await SITE.signed_in(request)
    figures, owners = await _overview(state)
    return render(
        request,
        "overview_figures.html",
        figures=figures,
        chart=_last_hour_chart(figures),
        tenants=owners,
    )


def _last_hour_chart(figures: overview.Overview) -> charts.Chart:
    """Every worker's attempts, a bar a minute over the last hour."""
    return charts.stacked(
        [minute.at for minute in figures.last_hour],
        [
            [("succeeded", minute.succeeded, "succeeded"), ("refused", minute.failed, "failed")]
            for minute in figures.last_hour
        ],
        what="Attempts, succeeded and failed,",
        per="per minute",
        every=10,
        label=_clock,
    )


# endpoints


@router.get("/endpoints")
async def endpoints_page(
    request: Request, cursor: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        query = admin_endpoints.list_query(None)
        rows, next_cursor = await page_of(session, query, Endpoint, ids.Prefix.ENDPOINT, cursor)
        owners = await _tenants_of(session, {row.tenant_id for row in rows})
    return render(
        request,
        "endpoints.html",
        csrf=found.csrf,
        endpoints=rows,
        tenants=owners,
        next_cursor=next_cursor,
        threshold=state.settings.breaker_threshold,
    )


def _form_page(
    request: Request,
    found: console_session.Session,
    template: str,
    action: str,
    values: Mapping[str, Any],
    status_code: int,
    problems: Sequence[str],
    **about: Any,
) -> Response:
    """A create or change form posting to ``action``, showing ``values`` and, after a refusal,
    its ``problems``."""
    return render(
        request,
        template,
        status_code,
        csrf=found.csrf,
        action=action,
        values=values,
        problems=problems,
        **about,
    )


@dataclasses.dataclass(frozen=True)
class _Named:
    """What a form's page shows of the tenant or endpoint it is about, read before any change:
    a refused change rolls its savepoint back, which leaves the row's attributes unloaded."""

    id: uuid.UUID
    name: str
    uid: str | None
    description: str = ""

    @classmethod
    def of(cls, row: Tenant | Endpoint) -> "_Named":
        if isinstance(row, Tenant):
            return cls(row.id, row.name, row.uid)
        return cls(row.id, "", row.uid, row.description)


async def _endpoint_form(
    request: Request,
    state: AppState,
    found: console_session.Session,
    tenant: _Named,
    endpoint: _Named | None,
    values: Mapping[str, Any],
    status_code: int = 200,
    problems: Sequence[str] = (),
) -> Response:
    if endpoint is None:
        action = f"/tenants/{ids.encode(ids.Prefix.TENANT, tenant.id)}/endpoints"
        back = "/tenants"
    else:
        action = f"/endpoints/{ids.encode(ids.Prefix.ENDPOINT, endpoint.id)}/edit"
        back = f"/endpoints/{ids.encode(ids.Prefix.ENDPOINT, endpoint.id)}"
    return _form_page(
        request,
        found,
        "endpoint_form.html",
        action,
        values,
        status_code,
        problems,
        tenant=tenant,
        endpoint=endpoint,
        back=back,
        policy_fields=forms.POLICY_FIELDS,
        defaults={
            name: forms.shown_number(value)
            for name, value in admin_endpoints.effective_policy(state.settings, {}).items()
        },
    )


def _endpoint_refusal(error: HookpostError) -> str:
    """What the services refuse in an endpoint's form, as the sentence the form shows."""
    if isinstance(error, admin_endpoints.UnknownEventTypes):
        return f"Event types: no event type named {', '.join(error.names)}; create it first"
    if isinstance(error, admin_endpoints.EndpointUidTaken):
        return f"Uid: another endpoint of the tenant has the uid {error.uid!r}"
    if isinstance(error, admin_endpoints.FilterWithoutSubscription):
        return f"Filters: the endpoint does not subscribe to {error.pattern!r}"
    if isinstance(error, FilterError):
        where = ".".join(str(part) for part in error.where)
        return f"Filters: {where}: {error.message}"
    if isinstance(error, admin_endpoints.PolicyRejected):
        return f"{forms.LABELS[f'policy.{error.field}']}: {error.message}"
    if isinstance(error, BlockedDestination):
        return f"URL: {error.detail}"
    return error.detail


_ENDPOINT_REFUSALS = (
    admin_endpoints.UnknownEventTypes,
    admin_endpoints.EndpointUidTaken,
    admin_endpoints.FilterWithoutSubscription,
    admin_endpoints.PolicyRejected,
    FilterError,
    BlockedDestination,
)


@router.get("/tenants/{tenant_id}/endpoints/new")
async def new_endpoint_page(request: Request, tenant_id: str) -> Response:
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        tenant = await tenants.find(session, tenant_id)
    if tenant is None:
        return SITE.not_found(request, state, found, "tenant")
    return await _endpoint_form(
        request, state, found, _Named.of(tenant), None, {"max_in_flight": "10"}
    )


@router.post("/tenants/{tenant_id}/endpoints")
async def create_endpoint(
    request: Request, tenant_id: str, form: Annotated[forms.EndpointForm, Form()]
) -> Response:
    """An endpoint of the tenant made from the form, by the rules of ``POST /v1/endpoints``;
    its signing secret is generated."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, form.csrf, changes=True)
    async with state.sessions() as session, session.begin():
        tenant = await tenants.find(session, tenant_id)
        if tenant is None:
            return SITE.not_found(request, state, found, "tenant")
        owner = _Named.of(tenant)
        try:
            body = forms.endpoint_create(form, ids.encode(ids.Prefix.TENANT, owner.id))
            async with session.begin_nested():
                endpoint = await admin_endpoints.create_from(
                    session, state.settings, state.secret_box, owner.id, body
                )
        except forms.FormInvalid as error:
            problems = error.problems
        except _ENDPOINT_REFUSALS as error:
            problems = [_endpoint_refusal(error)]
        else:
            return see_other(f"/endpoints/{ids.encode(ids.Prefix.ENDPOINT, endpoint.id)}")
    return await _endpoint_form(request, state, found, owner, None, form.shown(), 422, problems)


async def _owner(session: AsyncSession, endpoint: Endpoint) -> _Named:
    tenant = await session.get(Tenant, endpoint.tenant_id)
    assert tenant is not None  # an endpoint goes with its tenant
    return _Named.of(tenant)


@router.get("/endpoints/{endpoint_id}/edit")
async def edit_endpoint_page(request: Request, endpoint_id: str) -> Response:
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        endpoint = await actions.endpoint(session, OPERATOR, endpoint_id)
        if endpoint is None:
            return SITE.not_found(request, state, found, "endpoint")
        owner = await _owner(session, endpoint)
        subscribed = (await admin_endpoints.subscriptions_of(session, [endpoint.id]))[endpoint.id]
    values = forms.endpoint_fields(
        endpoint,
        [item.event_type for item in subscribed],
        {item.event_type: item.filter for item in subscribed if item.filter is not None},
    )
    return await _endpoint_form(request, state, found, owner, _Named.of(endpoint), values)


@router.post("/endpoints/{endpoint_id}/edit")
async def edit_endpoint(
    request: Request, endpoint_id: str, form: Annotated[forms.EndpointForm, Form()]
) -> Response:
    """The endpoint changed by the form, by the rules of ``PATCH /v1/endpoints/{id}``."""
    async with SITE.changing(request, endpoint_id, form.csrf) as changing:
        state, found, session, endpoint = changing
        if endpoint is None:
            return SITE.not_found(request, state, found, "endpoint")
        owner, named = await _owner(session, endpoint), _Named.of(endpoint)
        try:
            body = forms.endpoint_update(form)
            async with session.begin_nested():
                await admin_endpoints.update_from(session, state.settings, endpoint, body)
        except forms.FormInvalid as error:
            problems = error.problems
        except _ENDPOINT_REFUSALS as error:
            problems = [_endpoint_refusal(error)]
        else:
            return see_other(f"/endpoints/{endpoint_id}")
    return await _endpoint_form(request, state, found, owner, named, form.shown(), 422, problems)


@router.post("/endpoints/{endpoint_id}/enabled")
async def set_enabled(
    request: Request,
    endpoint_id: str,
    enabled: Annotated[bool, Form()],
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    async with SITE.changing(request, endpoint_id, csrf) as (_, found, session, endpoint):
        if endpoint is None:
            return render(request, "not_found.html", 404, csrf=found.csrf, what="endpoint")
        changes: dict[str, Any] = {"enabled": enabled}
        if not enabled:
            changes["disabled_reason"] = "disabled in the console"
        await admin_endpoints.update(session, endpoint, changes)
    return see_other(f"/endpoints/{endpoint_id}")


@router.post("/endpoints/{endpoint_id}/recover")
async def recover(
    request: Request,
    endpoint_id: str,
    since: Annotated[str, Form(max_length=32)],
    until: Annotated[str, Form(max_length=32)],
    confirm: Annotated[bool, Form()] = False,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Without ``confirm``: how many failed deliveries the window holds (a dry run), with a
    button to queue them; with it, queue them."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, csrf, changes=True)
    try:
        start = datetime.fromisoformat(since).replace(tzinfo=UTC)
        end = datetime.fromisoformat(until).replace(tzinfo=UTC)
    except ValueError:
        return await SITE.endpoint_page(
            request,
            state,
            found,
            endpoint_id,
            error="Give the window as two times.",
            status_code=422,
        )
    if end <= start:
        return await SITE.endpoint_page(
            request,
            state,
            found,
            endpoint_id,
            error="The window must end after it starts.",
            window=(since, until),
            status_code=422,
        )
    async with state.sessions() as session:
        endpoint = await actions.endpoint(session, OPERATOR, endpoint_id)
    if endpoint is None:
        return render(request, "not_found.html", 404, csrf=found.csrf, what="endpoint")
    if not confirm:
        count = await recovery.count_recoverable(state.engine, endpoint.id, since=start, until=end)
        return await SITE.endpoint_page(
            request, state, found, endpoint_id, recoverable=count, window=(since, until)
        )
    try:
        queued = await recovery.recover(state.engine, endpoint, since=start, until=end)
    except recovery.EndpointDisabled:
        return await SITE.endpoint_page(
            request,
            state,
            found,
            endpoint_id,
            error="Enable the endpoint before recovering.",
            window=(since, until),
            status_code=409,
        )
    return await SITE.endpoint_page(
        request, state, found, endpoint_id, message=f"{queued} deliveries queued again."
    )


# search

SEARCH_LIMIT = 20
_GOES_TO = {
    ids.Prefix.EVENT: "/events/{}",
    ids.Prefix.DELIVERY: "/deliveries/{}",
    ids.Prefix.ENDPOINT: "/endpoints/{}",
    ids.Prefix.TENANT: "/deliveries?tenant={}",
}
# An event by its idempotency key, tenant by tenant: the key's index leads with the tenant.
_BY_IDEMPOTENCY_KEY = text(
    "SELECT found.id FROM tenants t CROSS JOIN LATERAL ("
    " SELECT e.id FROM events e WHERE e.tenant_id = t.id AND e.idempotency_key = :key"
    ") found LIMIT :limit"
)


def _like(fragment: str) -> str:
    escaped = fragment.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


@router.get("/search")
async def search(request: Request, q: Annotated[str, Query(max_length=2048)] = "") -> Response:
    """One box for everything an operator holds: an id goes straight to its page; anything
    else is looked for as a tenant's or an endpoint's uid, a tenant's name, a fragment of an
    endpoint's URL or description, and an event's idempotency key."""
    state, found = await SITE.signed_in(request)
    query = q.strip()
    for prefix, path in _GOES_TO.items():
        if ids.decode(prefix, query) is not None:
            return see_other(path.format(quote(query, safe="")))
    problem = unstorable.refusal(query)
    tenants_found: Sequence[Tenant] = []
    endpoints_found: Sequence[Endpoint] = []
    event_ids: list[str] = []
    if query and problem is None:
        async with state.sessions() as session:
            pattern = _like(query)
            tenants_found = (
                await session.scalars(
                    select(Tenant)
                    .where(or_(Tenant.uid == query, Tenant.name.ilike(pattern)))
                    .order_by(Tenant.id.desc())
                    .limit(SEARCH_LIMIT)
                )
            ).all()
            endpoints_found = (
                await session.scalars(
                    admin_endpoints.list_query(None)
                    .where(
                        or_(
                            Endpoint.uid == query,
                            Endpoint.url.ilike(pattern),
                            Endpoint.description.ilike(pattern),
                        )
                    )
                    .order_by(Endpoint.id.desc())
                    .limit(SEARCH_LIMIT)
                )
            ).all()
            rows = await session.execute(
                _BY_IDEMPOTENCY_KEY, {"key": query[:255], "limit": SEARCH_LIMIT}
            )
            event_ids = [ids.encode(ids.Prefix.EVENT, row.id) for row in rows]
            owners = await _tenants_of(session, {row.tenant_id for row in endpoints_found})
    else:
        owners = {}
    return render(
        request,
        "search.html",
        csrf=found.csrf,
        q=query,
        problem=problem and f"The search {problem}.",
        tenants=owners,
        found_tenants=tenants_found,
        found_endpoints=endpoints_found,
        found_events=event_ids,
    )


# the configuration


@router.get("/tenants")
async def tenants_page(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    saved: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """The tenants, newest first; ``saved`` names the one a form just made or changed."""
    state, found = await SITE.signed_in(request)
    message = None
    if saved is not None:
        async with state.sessions() as session:
            tenant = await tenants.find(session, saved)
        message = f"Saved the tenant {tenant.name}." if tenant is not None else None
    return await _tenants_page(request, state, found, cursor, message=message)


async def _tenants_page(
    request: Request,
    state: AppState,
    found: console_session.Session,
    cursor: str | None = None,
    *,
    status_code: int = 200,
    **shown: Any,
) -> Response:
    async with state.sessions() as session:
        rows, next_cursor = await page_of(
            session, tenants.list_query(None), Tenant, ids.Prefix.TENANT, cursor
        )
    return render(
        request,
        "tenants.html",
        status_code,
        csrf=found.csrf,
        tenants=rows,
        next_cursor=next_cursor,
        **{"link": None, "message": None, **shown},
    )


def _tenant_form(
    request: Request,
    found: console_session.Session,
    tenant: _Named | None,
    values: Mapping[str, Any],
    status_code: int = 200,
    problems: Sequence[str] = (),
) -> Response:
    action = f"/tenants/{ids.encode(ids.Prefix.TENANT, tenant.id)}/edit" if tenant else "/tenants"
    return _form_page(
        request, found, "tenant_form.html", action, values, status_code, problems, tenant=tenant
    )


@router.get("/tenants/new")
async def new_tenant_page(request: Request) -> Response:
    _, found = await SITE.signed_in(request)
    return _tenant_form(request, found, None, {})


@router.post("/tenants")
async def create_tenant(request: Request, form: Annotated[forms.TenantForm, Form()]) -> Response:
    """A tenant made from the form, by the rules of ``POST /v1/tenants``."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, form.csrf, changes=True)
    try:
        body = forms.tenant_create(form)
        async with state.sessions() as session, session.begin():
            tenant = await tenants.create(
                session, name=body.name, uid=body.uid, metadata=body.metadata
            )
    except forms.FormInvalid as error:
        return _tenant_form(request, found, None, form.shown(), 422, error.problems)
    except tenants.TenantUidTaken as error:
        return _tenant_form(request, found, None, form.shown(), 409, [_uid_taken(error)])
    return see_other(f"/tenants?saved={ids.encode(ids.Prefix.TENANT, tenant.id)}")


def _uid_taken(error: tenants.TenantUidTaken) -> str:
    return f"Uid: another tenant has the uid {error.detail!r}"


@router.get("/tenants/{tenant_id}/edit")
async def edit_tenant_page(request: Request, tenant_id: str) -> Response:
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        tenant = await tenants.find(session, tenant_id)
    if tenant is None:
        return SITE.not_found(request, state, found, "tenant")
    return _tenant_form(request, found, _Named.of(tenant), forms.tenant_fields(tenant))


@router.post("/tenants/{tenant_id}/edit")
async def edit_tenant(
    request: Request, tenant_id: str, form: Annotated[forms.TenantForm, Form()]
) -> Response:
    """The tenant changed by the form, by the rules of ``PATCH /v1/tenants/{id}``."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, form.csrf, changes=True)
    async with state.sessions() as session, session.begin():
        tenant = await tenants.find(session, tenant_id)
        if tenant is None:
            return SITE.not_found(request, state, found, "tenant")
        named = _Named.of(tenant)
        try:
            await tenants.update(session, tenant, forms.tenant_update(form).changes())
        except forms.FormInvalid as error:
            return _tenant_form(request, found, named, form.shown(), 422, error.problems)
        except tenants.TenantUidTaken as error:
            return _tenant_form(request, found, named, form.shown(), 409, [_uid_taken(error)])
    return see_other(f"/tenants?saved={ids.encode(ids.Prefix.TENANT, named.id)}")


@router.post("/tenants/{tenant_id}/portal-link")
async def make_portal_link(
    request: Request,
    tenant_id: str,
    scope: Annotated[Literal["read", "manage"], Form()] = "read",
    hours: Annotated[int, Form(ge=1, le=portal_links.LIFETIME_RANGE_S[1] // 3600)] = 1,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """A portal link for the tenant's customer, shown once on the page (as the API's
    ``POST /v1/tenants/{id}/portal-links`` makes it)."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, csrf, changes=True)
    async with state.sessions() as session:
        tenant = await tenants.find(session, tenant_id)
    if tenant is None:
        return SITE.not_found(request, state, found, "tenant")
    url, expires_at = portal_links.issue_link(
        state.secret_box,
        tenant.id,
        scope,
        hours * 3600,
        state.settings.public_url or str(request.base_url),
    )
    link = {"tenant": tenant, "url": url, "scope": scope, "expires_at": expires_at}
    return await _tenants_page(request, state, found, link=link)


@router.post("/tenants/{tenant_id}/revoke-portal-links")
async def revoke_portal_links(
    request: Request, tenant_id: str, csrf: Annotated[str | None, Form()] = None
) -> Response:
    """End the tenant's portal links issued until now, and the sessions opened with them."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, csrf, changes=True)
    async with state.sessions() as session, session.begin():
        tenant = await tenants.find(session, tenant_id)
        if tenant is None:
            return SITE.not_found(request, state, found, "tenant")
        await tenants.revoke_portal_links(session, tenant, datetime.now(UTC))
        name = tenant.name
    message = f"Every portal link of {name} made until now, and its sessions, no longer work."
    return await _tenants_page(request, state, found, message=message)


@router.get("/event-types")
async def event_types_page(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    saved: Annotated[str | None, Query(max_length=255)] = None,
) -> Response:
    """The event types, newest first, each with its schema and a payload shaped like it;
    ``saved`` names the one a form just made or changed."""
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        query = event_types.list_query(include_archived=True)
        rows, next_cursor = await page_of(session, query, EventType, ids.Prefix.EVENT_TYPE, cursor)
        known = saved is not None and await event_types.find(session, saved) is not None
    samples = {row.name: event_types.example_payload(row.schema) for row in rows if row.schema}
    return render(
        request,
        "event_types.html",
        csrf=found.csrf,
        event_types=rows,
        samples=samples,
        next_cursor=next_cursor,
        message=f"Saved the event type {saved}." if known else None,
    )


def _event_type_form(
    request: Request,
    found: console_session.Session,
    event_type: EventType | None,
    values: Mapping[str, Any],
    status_code: int = 200,
    problems: Sequence[str] = (),
) -> Response:
    action = f"/event-types/{quote(event_type.name)}/edit" if event_type else "/event-types"
    return _form_page(
        request,
        found,
        "event_type_form.html",
        action,
        values,
        status_code,
        problems,
        event_type=event_type,
    )


async def _schema_problems(state: AppState, schema: dict[str, Any] | None) -> list[str]:
    """Why the schema cannot be an event type's, as the API checks it."""
    if schema is None:
        return []
    try:
        error = await state.validator.schema_error(schema)
    except ValidationUnavailable as unavailable:
        return [f"Schema: cannot be checked now ({unavailable}); try again"]
    return [] if error is None else [f"Schema: cannot be used: {error}"]


@router.get("/event-types/new")
async def new_event_type_page(request: Request) -> Response:
    _, found = await SITE.signed_in(request)
    return _event_type_form(request, found, None, {})


@router.post("/event-types")
async def create_event_type(
    request: Request, form: Annotated[forms.EventTypeForm, Form()]
) -> Response:
    """An event type made from the form, by the rules of ``POST /v1/event-types``."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, form.csrf, changes=True)
    try:
        body = forms.event_type_create(form)
    except forms.FormInvalid as error:
        return _event_type_form(request, found, None, form.shown(), 422, error.problems)
    if problems := await _schema_problems(state, body.schema_):
        return _event_type_form(request, found, None, form.shown(), 422, problems)
    try:
        async with state.sessions() as session, session.begin():
            await event_types.create(
                session, name=body.name, description=body.description, schema=body.schema_
            )
    except event_types.NameTaken:
        taken = [f"Name: an event type named {body.name!r} exists"]
        return _event_type_form(request, found, None, form.shown(), 409, taken)
    state.event_types.forget()
    return see_other(f"/event-types?saved={quote(body.name)}")


@router.get("/event-types/{name}/edit")
async def edit_event_type_page(request: Request, name: str) -> Response:
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        event_type = await event_types.find(session, name)
    if event_type is None:
        return SITE.not_found(request, state, found, "event type")
    return _event_type_form(request, found, event_type, forms.event_type_fields(event_type))


@router.post("/event-types/{name}/edit")
async def edit_event_type(
    request: Request, name: str, form: Annotated[forms.EventTypeForm, Form()]
) -> Response:
    """The event type changed by the form, by the rules of ``PATCH /v1/event-types/{name}``."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, form.csrf, changes=True)
    async with state.sessions() as session, session.begin():
        event_type = await event_types.find(session, name)
        if event_type is None:
            return SITE.not_found(request, state, found, "event type")
        try:
            body = forms.event_type_update(form)
        except forms.FormInvalid as error:
            return _event_type_form(request, found, event_type, form.shown(), 422, error.problems)
        if problems := await _schema_problems(state, body.schema_):
            return _event_type_form(request, found, event_type, form.shown(), 422, problems)
        await event_types.update(session, event_type, body.changes())
    state.event_types.forget()
    return see_other(f"/event-types?saved={quote(name)}")


@router.get("/api-keys")
async def api_keys_page(
    request: Request, cursor: Annotated[str | None, Query(max_length=64)] = None
) -> Response:
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        rows, next_cursor = await page_of(
            session, api_keys.list_query(None), ApiKey, ids.Prefix.API_KEY, cursor
        )
    return render(request, "api_keys.html", csrf=found.csrf, keys=rows, next_cursor=next_cursor)


# deliveries


FILTERS = ("endpoint", "event", "tenant", "type", "status", "since", "until")


async def _delivery_filter(
    session: AsyncSession, given: dict[str, str | None]
) -> tuple[logs.DeliveryFilter, list[str]]:
    """The deliveries filter the fields in ``given`` spell, and what is wrong with them (a
    filter that names nothing selects nothing, and the page says why)."""
    problems: list[str] = []
    status = given.get("status")
    if status and status not in set(DeliveryStatus):
        problems.append(f"status {status!r} is not one of {', '.join(DeliveryStatus)}")
    tenant_id = None
    if tenant := given.get("tenant"):
        found_tenant = await tenants.find(session, tenant)
        if found_tenant is None:
            problems.append(f"no tenant {tenant!r}")
        else:
            tenant_id = found_tenant.id
    where = logs.DeliveryFilter(
        endpoint_id=await _filter_endpoint(session, given.get("endpoint"), tenant_id, problems),
        event_id=_filter_id(ids.Prefix.EVENT, "event", given.get("event"), problems),
        tenant_id=tenant_id,
        event_type=given.get("type") or None,
        status=status if status in set(DeliveryStatus) else None,
        since=_filter_time("since", given.get("since"), problems),
        until=_filter_time("until", given.get("until"), problems),
    )
    return where, problems


async def _deliveries_page(
    request: Request,
    state: AppState,
    found: console_session.Session,
    given: dict[str, str | None],
    cursor: str | None = None,
    *,
    status_code: int = 200,
    **shown: Any,
) -> Response:
    rows: Sequence[Delivery] = []
    next_cursor = None
    async with state.sessions() as session:
        where, problems = await _delivery_filter(session, given)
        if not problems:
            rows, next_cursor = await page_of(
                session, logs.deliveries_query(where), Delivery, ids.Prefix.DELIVERY, cursor
            )
        owners = await _tenants_of(session, {row.tenant_id for row in rows})
        targets = await _endpoints_of(session, {row.endpoint_id for row in rows})
    return render(
        request,
        "deliveries.html",
        status_code,
        csrf=found.csrf,
        deliveries=rows,
        tenants=owners,
        endpoints=targets,
        next_cursor=next_cursor,
        filters={name: value for name, value in given.items() if value},
        statuses=list(DeliveryStatus),
        problems=problems,
        cap=recovery.BULK_RESEND_CAP,
        **{"counted": None, "as_of": None, "message": None, "error": None, **shown},
    )


@router.get("/deliveries")
async def deliveries_page(
    request: Request,
    endpoint: Annotated[str | None, Query(max_length=255)] = None,
    event: Annotated[str | None, Query(max_length=64)] = None,
    tenant: Annotated[str | None, Query(max_length=255)] = None,
    type: Annotated[str | None, Query(max_length=255)] = None,
    status: Annotated[str | None, Query(max_length=16)] = None,
    since: Annotated[str | None, Query(max_length=32)] = None,
    until: Annotated[str | None, Query(max_length=32)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Response:
    """Deliveries, newest first, narrowed by the filters in the URL (so a link can be shared):
    endpoint, event, tenant (id or uid), event type, state and a window of creation (UTC); a
    filter that names nothing shows an empty list and says why."""
    state, found = await SITE.signed_in(request)
    given = dict(zip(FILTERS, (endpoint, event, tenant, type, status, since, until), strict=True))
    return await _deliveries_page(request, state, found, given, cursor)


@router.post("/deliveries/resend")
async def resend_selection(
    request: Request,
    endpoint: Annotated[str | None, Form(max_length=255)] = None,
    event: Annotated[str | None, Form(max_length=64)] = None,
    tenant: Annotated[str | None, Form(max_length=255)] = None,
    type: Annotated[str | None, Form(max_length=255)] = None,
    status: Annotated[str | None, Form(max_length=16)] = None,
    since: Annotated[str | None, Form(max_length=32)] = None,
    until: Annotated[str | None, Form(max_length=32)] = None,
    as_of: Annotated[str | None, Form(max_length=32)] = None,
    confirm: Annotated[bool, Form()] = False,
    csrf: Annotated[str | None, Form()] = None,
) -> Response:
    """Resend what the filters select, newest first, up to ``BULK_RESEND_CAP``. Without
    ``confirm``: how many that is, as of now (a dry run), with a button to go on; with it,
    queue them, leaving out any created after the count."""
    state, found = await SITE.signed_in(request)
    SITE.check_form(found, csrf, changes=True)
    given = dict(zip(FILTERS, (endpoint, event, tenant, type, status, since, until), strict=True))
    if not any(given.values()):
        error = "Choose at least one filter: a bulk resend never takes every delivery."
        return await _deliveries_page(request, state, found, given, error=error, status_code=422)
    async with state.sessions() as session:
        where, problems = await _delivery_filter(session, given)
        if problems:
            return await _deliveries_page(request, state, found, given, status_code=422)
        if not confirm:
            counted = await recovery.count_matching(session, where)
            now = datetime.now(UTC).isoformat(timespec="microseconds")
            return await _deliveries_page(request, state, found, given, counted=counted, as_of=now)
    try:
        counted_at = datetime.fromisoformat(as_of or "").astimezone(UTC)
    except (ValueError, OverflowError):
        return await _deliveries_page(
            request, state, found, given, error="Count them first.", status_code=422
        )
    if where.until is None or where.until > counted_at:
        where = dataclasses.replace(where, until=counted_at)
    queued, passed_over = await recovery.resend_matching(state.engine, where)
    message = f"{queued} deliveries queued again."
    if passed_over:
        message += f" {passed_over} were not: being sent right now, or their endpoint is disabled."
    return await _deliveries_page(request, state, found, given, message=message)


async def _filter_endpoint(
    session: AsyncSession, value: str | None, tenant_id: uuid.UUID | None, problems: list[str]
) -> uuid.UUID | None:
    """An endpoint filter: an id as it is, or a uid among the filtered tenant's endpoints."""
    if not value:
        return None
    if (parsed := ids.decode(ids.Prefix.ENDPOINT, value)) is not None:
        return parsed
    if tenant_id is None:
        problems.append(f"endpoint {value!r} is not an ep_ id; to find it by uid, name its tenant")
        return None
    found = await admin_endpoints.find(session, value, tenant_id)
    if found is None:
        problems.append(f"the tenant has no endpoint {value!r}")
        return None
    return found.id


def _filter_time(name: str, value: str | None, problems: list[str]) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).replace(tzinfo=UTC)
    except ValueError:
        problems.append(f"{name} {value!r} is not a time (2026-12-04T09:30)")
        return None


def _filter_id(prefix: ids.Prefix, name: str, value: str | None, problems: list[str]) -> Any:
    if not value:
        return None
    parsed = ids.decode(prefix, value)
    if parsed is None:
        problems.append(f"{name} {value!r} is not a {prefix.value}_ id")
    return parsed


@router.get("/events/{event_id}")
async def event_page(request: Request, event_id: str) -> Response:
    """An event: its body and the state of each of its deliveries."""
    state, found = await SITE.signed_in(request)
    async with state.sessions() as session:
        parsed = ids.decode(ids.Prefix.EVENT, event_id)
        event = None if parsed is None else await events.get(session, parsed)
        if event is None:
            return render(request, "not_found.html", 404, csrf=found.csrf, what="event")
        query = logs.deliveries_query(logs.DeliveryFilter(event_id=event.id))
        deliveries = (await session.scalars(query.order_by(Delivery.id))).all()
        body = await events.body_sent(session, event.id)
    return render(
        request, "event.html", csrf=found.csrf, event=event, body=body, deliveries=deliveries
    )


def install(app: Any) -> None:
    """Serve the console's pages, and the assets both sites share, on ``app``."""
    from fastapi.staticfiles import StaticFiles

    app.mount("/console-assets", StaticFiles(directory=ASSETS), name="console-assets")
    SITE.install(app)
