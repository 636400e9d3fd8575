"""``/v1/endpoints``: receivers' URLs, their subscriptions and their signing secrets."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, Query, Response
from pydantic import AwareDatetime
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids, jsonvalue
from hookpost.admin import endpoints
from hookpost.admin.filters import FilterError
from hookpost.admin.schemas.endpoints import (
    EndpointCreate,
    EndpointUpdate,
    FilterTest,
    SecretRotate,
    SubscriptionCreate,
)
from hookpost.admin.schemas.fields import TenantRef
from hookpost.api.deps import AppState, AuthDep, PageDep, SessionDep, StateDep
from hookpost.api.errors import FieldError, Problem, not_found, problem_responses
from hookpost.api.json_body import StrictJSONRoute
from hookpost.api.pagination import paginate
from hookpost.api.schemas.common import Page
from hookpost.api.schemas.deliveries import EndpointStatsOut, LastAttempt, Recovered, RecoverRequest
from hookpost.api.schemas.endpoints import (
    EffectivePolicy,
    EndpointOut,
    FilterTestOut,
    LiveSecretOut,
    SecretOut,
    SubscriptionOut,
)
from hookpost.api.scoping import EndpointDep, owner_tenant_id, tenant_id_for
from hookpost.db.models import Endpoint
from hookpost.delivery.ssrf import BlockedDestination
from hookpost.ops import recovery, stats

router = APIRouter(
    route_class=StrictJSONRoute,
    prefix="/v1/endpoints",
    tags=["endpoints"],
    responses=problem_responses(401),
)


def _unknown_types(error: endpoints.UnknownEventTypes) -> Problem:
    return Problem(
        "unknown_event_type",
        f"No event type named {', '.join(error.names)}; create it first or use a pattern",
    )


def _uid_taken(uid: str | None) -> Problem:
    return Problem("endpoint_uid_taken", f"Another endpoint of the tenant has the uid {uid!r}")


def _invalid_filter(error: FilterError, prefix: list[str | int]) -> Problem:
    where = ".".join(str(part) for part in [*prefix[1:], *error.where])
    return Problem(
        "invalid_filter",
        f"{where}: {error.message}",
        errors=[FieldError(loc=[*prefix, *error.where], message=error.message, type="filter")],
    )


def _filter_without_subscription(error: endpoints.FilterWithoutSubscription) -> Problem:
    message = f"the endpoint does not subscribe to {error.pattern!r}: add it to event_types"
    return Problem(
        "invalid_filter",
        f"filters.{error.pattern}: {message}",
        errors=[FieldError(loc=["body", "filters", error.pattern], message=message, type="filter")],
    )


@contextmanager
def _refusals() -> Iterator[None]:
    """What the admin layer refuses in an endpoint's configuration, as problems."""
    try:
        yield
    except endpoints.UnknownEventTypes as error:
        raise _unknown_types(error) from None
    except endpoints.EndpointUidTaken as error:
        raise _uid_taken(error.uid) from None
    except endpoints.FilterWithoutSubscription as error:
        raise _filter_without_subscription(error) from None
    except FilterError as error:
        raise _invalid_filter(error, ["body", "filters"]) from None
    except BlockedDestination as error:
        raise Problem("blocked_destination", f"url: {error}") from None
    except endpoints.PolicyRejected as error:
        raise Problem(
            "validation_error",
            f"policy.{error.field}: {error.message}",
            errors=[
                FieldError(
                    loc=["body", "policy", error.field], message=error.message, type="value_error"
                )
            ],
        ) from None


async def _out(session: AsyncSession, state: AppState, rows: list[Endpoint]) -> list[EndpointOut]:
    subscriptions = await endpoints.subscriptions_of(session, [row.id for row in rows])
    return [
        EndpointOut(
            id=row.id,
            tenant_id=row.tenant_id,
            uid=row.uid,
            metadata=row.metadata_,
            url=row.url,
            description=row.description,
            event_types=[item.event_type for item in subscriptions[row.id]],
            filters={
                item.event_type: item.filter
                for item in subscriptions[row.id]
                if item.filter is not None
            },
            headers=row.headers,
            rate_limit_per_s=row.rate_limit_per_s,
            max_in_flight=row.max_in_flight,
            enabled=row.enabled,
            disabled_reason=row.disabled_reason,
            disabled_at=row.disabled_at,
            channels=row.channels,
            ordering=row.ordering,
            policy=row.policy,
            body_format=row.body_format,
            signature_headers=row.signature_headers,
            effective_policy=EffectivePolicy.model_validate(
                endpoints.effective_policy(state.settings, row.policy)
            ),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


async def _out_with_warnings(
    session: AsyncSession, state: AppState, endpoint: Endpoint
) -> EndpointOut:
    [out] = await _out(session, state, [endpoint])
    out.warnings = await endpoints.subscription_warnings(session, out.event_types)
    return out


@router.post(
    "",
    status_code=201,
    summary="Create an endpoint",
    responses=problem_responses(404, 409, 422),
)
async def create_endpoint(
    body: EndpointCreate, session: SessionDep, state: StateDep, viewer: AuthDep
) -> EndpointOut:
    """Register a URL of a tenant's, with the event types it receives. A signing secret is
    generated unless `secret` is given; read it with `GET /v1/endpoints/{id}/secret`."""
    tenant_id = await owner_tenant_id(session, viewer, body.tenant_id)
    with _refusals():
        endpoint = await endpoints.create_from(
            session, state.settings, state.secret_box, tenant_id, body
        )
    return await _out_with_warnings(session, state, endpoint)


@router.get("", summary="List endpoints", responses=problem_responses(404, 422))
async def list_endpoints(
    session: SessionDep,
    state: StateDep,
    viewer: AuthDep,
    page: PageDep,
    tenant_id: Annotated[TenantRef | None, Query(description="Only this tenant's.")] = None,
) -> Page[EndpointOut]:
    """Endpoints, newest first; a tenant key sees only its own tenant's."""
    only = await tenant_id_for(session, viewer, tenant_id)
    query = endpoints.list_query(only)
    rows, cursor = await paginate(session, query, Endpoint.id, ids.Prefix.ENDPOINT, page)
    return Page(data=await _out(session, state, list(rows)), next_cursor=cursor)


@router.get("/{endpoint_id}", summary="Get an endpoint", responses=problem_responses(404))
async def get_endpoint(endpoint: EndpointDep, session: SessionDep, state: StateDep) -> EndpointOut:
    """One endpoint with its subscriptions and the policy its deliveries follow."""
    return (await _out(session, state, [endpoint]))[0]


@router.patch(
    "/{endpoint_id}", summary="Update an endpoint", responses=problem_responses(404, 409, 422)
)
async def update_endpoint(
    endpoint: EndpointDep,
    body: EndpointUpdate,
    session: SessionDep,
    state: StateDep,
) -> EndpointOut:
    """Change an endpoint. `enabled: false` disables it (with an optional `disabled_reason`);
    `enabled: true` enables it again. `event_types` replaces every subscription."""
    with _refusals():
        endpoint = await endpoints.update_from(session, state.settings, endpoint, body)
    return await _out_with_warnings(session, state, endpoint)


@router.delete(
    "/{endpoint_id}",
    status_code=204,
    summary="Delete an endpoint",
    responses=problem_responses(404),
)
async def delete_endpoint(endpoint: EndpointDep, session: SessionDep) -> Response:
    """Stop delivering to an endpoint. Its pending deliveries are cancelled; its delivery log
    stays queryable."""
    await endpoints.remove(session, endpoint)
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/subscriptions",
    summary="List an endpoint's subscriptions",
    responses=problem_responses(404),
)
async def list_subscriptions(endpoint: EndpointDep, session: SessionDep) -> Page[SubscriptionOut]:
    """The event types the endpoint receives, oldest first (an endpoint has at most a few
    hundred, so this list has one page)."""
    rows = await endpoints.subscriptions(session, endpoint.id)
    return Page(data=[SubscriptionOut.model_validate(row) for row in rows], next_cursor=None)


@router.post(
    "/{endpoint_id}/subscriptions",
    status_code=201,
    summary="Subscribe an endpoint to event types",
    responses=problem_responses(404, 422),
)
async def create_subscription(
    endpoint: EndpointDep,
    body: SubscriptionCreate,
    session: SessionDep,
    response: Response,
) -> SubscriptionOut:
    """Add an exact event type, a prefix pattern (`invoice.*`) or `*`, with an optional
    payload `filter`. Subscribing again to the same pattern sets its filter to the one given
    (none if left out) and answers the subscription with 200."""
    try:
        subscription, created = await endpoints.subscribe(
            session, endpoint.id, body.event_type, body.filter
        )
    except endpoints.UnknownEventTypes as error:
        raise _unknown_types(error) from None
    except FilterError as error:
        raise _invalid_filter(error, ["body", "filter"]) from None
    if not created:
        response.status_code = 200
    out = SubscriptionOut.model_validate(subscription)
    out.warnings = await endpoints.subscription_warnings(session, [body.event_type])
    return out


@router.delete(
    "/{endpoint_id}/subscriptions/{subscription_id}",
    status_code=204,
    summary="Remove a subscription",
    responses=problem_responses(404),
)
async def delete_subscription(
    endpoint: EndpointDep, subscription_id: str, session: SessionDep
) -> Response:
    """The endpoint stops receiving the event types of this subscription."""
    sub_id = ids.decode(ids.Prefix.SUBSCRIPTION, subscription_id)
    if sub_id is None or not await endpoints.unsubscribe(session, endpoint.id, sub_id):
        raise not_found("subscription", subscription_id)
    return Response(status_code=204)


@router.get(
    "/{endpoint_id}/secret",
    summary="Get an endpoint's signing secret",
    responses=problem_responses(404),
)
async def get_secret(endpoint: EndpointDep, session: SessionDep, state: StateDep) -> SecretOut:
    """The current `whsec_` secret; give it to the receiver to verify signatures. `secrets`
    lists every secret that signs now, with when each stops (after a rotation)."""
    return await _secrets(session, state, endpoint.id)


@router.post(
    "/{endpoint_id}/secret/rotate",
    summary="Rotate an endpoint's signing secret",
    responses=problem_responses(404, 422),
)
async def rotate_secret(
    endpoint: EndpointDep,
    body: SecretRotate,
    session: SessionDep,
    state: StateDep,
) -> SecretOut:
    """Make a new secret current (generated unless `key` is given). For `grace_period_s` the
    old secrets sign too, so receivers can switch without rejecting a request. At most ten
    secrets are kept."""
    await endpoints.rotate_secret(
        session,
        state.secret_box,
        endpoint.id,
        new_secret=body.key,
        grace_period_s=body.grace_period_s,
    )
    return await _secrets(session, state, endpoint.id)


async def _secrets(session: AsyncSession, state: AppState, endpoint_id: uuid.UUID) -> SecretOut:
    live = await endpoints.live_secrets(session, state.secret_box, endpoint_id)
    return SecretOut(
        key=live[0].key,
        secrets=[
            LiveSecretOut(key=s.key, created_at=s.created_at, expires_at=s.expires_at) for s in live
        ],
    )


@router.post(
    "/{endpoint_id}/recover",
    summary="Recover an endpoint's failed deliveries",
    responses=problem_responses(404, 409, 422),
)
async def recover_endpoint(
    endpoint: EndpointDep,
    body: RecoverRequest,
    session: SessionDep,
    state: StateDep,
) -> Recovered:
    """After an outage: put every failed delivery of this endpoint created in
    `[since, until)` back in the queue, in bounded batches. Succeeded deliveries are not sent
    again. Answers how many were queued; with `dry_run`, how many would be."""
    until = body.until or datetime.now(UTC)
    if body.dry_run:
        found = await recovery.count_recoverable(
            state.engine, endpoint.id, since=body.since, until=until
        )
        return Recovered(queued=found, dry_run=True)
    queued = await recovery.recover(state.engine, endpoint, since=body.since, until=until)
    return Recovered(queued=queued, dry_run=False)


@router.get(
    "/{endpoint_id}/stats",
    summary="An endpoint's delivery figures",
    responses=problem_responses(404, 422),
)
async def endpoint_stats(
    endpoint: EndpointDep,
    session: SessionDep,
    since: Annotated[
        AwareDatetime | None, Query(description="Window start; 24 hours ago when left out.")
    ] = None,
    until: Annotated[AwareDatetime | None, Query(description="Window end; now.")] = None,
) -> EndpointStatsOut:
    """Deliveries by state over a window (created in it), the success rate, the last attempt
    and its outcome, the backlog and the age of its oldest delivery."""
    until = until or datetime.now(UTC)
    since = since or until - timedelta(days=1)
    if until <= since:
        raise Problem("validation_error", "until must be after since")
    found = await stats.endpoint_stats(session, endpoint.id, since=since, until=until)
    last = found.last_attempt
    return EndpointStatsOut(
        since=since,
        until=until,
        counts=found.counts,
        success_rate=found.success_rate,
        last_attempt=None
        if last is None
        else LastAttempt(
            at=last.started_at,
            status_code=last.response_status,
            error_kind=last.error_kind,
            succeeded=last.error_kind is None,
        ),
        backlog=found.backlog,
        oldest_pending_age_s=found.oldest_pending_age_s,
        concurrency_limit=found.concurrency_limit,
        held_lanes=found.held_lanes,
    )


@router.post(
    "/{endpoint_id}/filter-test",
    summary="Test a sample event against an endpoint's routing",
    responses=problem_responses(404, 422),
)
async def test_filter(
    endpoint: EndpointDep, body: FilterTest, session: SessionDep
) -> FilterTestOut:
    """Whether an event of `event_type` with `payload` (and `channels`) would be delivered to
    the endpoint, by the same conditions the fan-out applies: its channels, each
    subscription's pattern and each filter. Nothing is stored or sent."""
    try:
        payload_json = jsonvalue.dumps(body.payload).decode()
    except orjson.JSONEncodeError as error:
        raise Problem("payload_invalid", f"The payload cannot be encoded: {error}") from None
    verdict = await endpoints.test_filters(
        session,
        endpoint.id,
        event_type=body.event_type,
        payload_json=payload_json,
        channels=body.channels,
    )
    return FilterTestOut.model_validate(verdict, from_attributes=True)
