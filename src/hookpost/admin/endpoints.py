"""Endpoints: receivers' URLs with their custom headers, limits, signing secrets and
subscriptions. Deleting one keeps its row (``deleted_at``) so its delivery log survives."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, cast

from sqlalchemy import CursorResult, Select, delete, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost import ids
from hookpost.access import Viewer
from hookpost.admin.filters import CompiledFilter, FilterError, compile_filter
from hookpost.admin.schemas.endpoints import EndpointCreate, EndpointUpdate, url_refusal
from hookpost.db import unstorable
from hookpost.db.engine import driver_connection
from hookpost.db.models import Endpoint, EndpointSecret, EventType, Subscription
from hookpost.delivery import queue, ssrf
from hookpost.delivery.policy import TIMEOUT_OVERRIDE, schedule_from, with_overrides
from hookpost.delivery.signing import generate_secret
from hookpost.encryption import SecretBox
from hookpost.errors import HookpostError
from hookpost.ids import new_id
from hookpost.settings import Settings

MAX_SECRETS = 10


class UnknownEventTypes(HookpostError):
    """Subscriptions named exact event types that do not exist."""

    code: ClassVar[str] = "unknown_event_type"

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(", ".join(names))
        self.names = list(names)


class PolicyRejected(HookpostError):
    """An endpoint's policy that its deliveries could not follow; ``field`` names the part."""

    code: ClassVar[str] = "invalid_policy"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def effective_policy(settings: Settings, overrides: Mapping[str, float]) -> dict[str, float]:
    """The policy an endpoint with ``overrides`` follows: those, and the settings elsewhere."""
    schedule = with_overrides(schedule_from(settings), overrides)
    return {
        "retry_base_s": schedule.base_s,
        "retry_factor": schedule.factor,
        "retry_cap_s": schedule.cap_s,
        "retry_jitter": schedule.jitter,
        "retry_max_attempts": schedule.max_attempts,
        "retry_max_age_s": schedule.max_age_s,
        "timeout_s": overrides.get(TIMEOUT_OVERRIDE, settings.delivery_timeout_s),
    }


def check_policy(settings: Settings, overrides: Mapping[str, float]) -> None:
    """Refuse overrides that contradict the settings they join (PolicyRejected)."""
    effective = effective_policy(settings, overrides)
    if effective["timeout_s"] >= settings.lease_s:
        raise PolicyRejected(
            "timeout_s",
            f"must be below the workers' lease of {settings.lease_s:g} s (HOOKPOST_LEASE_S): "
            "a request that outlived its lease would be sent twice at once",
        )
    if effective["retry_cap_s"] < effective["retry_base_s"]:
        field = "retry_cap_s" if "retry_cap_s" in overrides else "retry_base_s"
        raise PolicyRejected(
            field,
            f"the longest delay ({effective['retry_cap_s']:g} s) is below the first "
            f"({effective['retry_base_s']:g} s)",
        )


class EndpointUidTaken(HookpostError):
    """Another live endpoint of the tenant has this uid."""

    code: ClassVar[str] = "endpoint_uid_taken"

    def __init__(self, uid: str | None) -> None:
        super().__init__(uid)
        self.uid = uid


class UidNeedsTenant(HookpostError):
    """An endpoint named by its uid, without the tenant whose uids to look in."""

    code: ClassVar[str] = "tenant_required"

    def __init__(self, ref: str) -> None:
        super().__init__(
            f"{ref!r} is not an endpoint id (ep_...): to name an endpoint by its uid with an "
            "admin key, add tenant_id (the tenant's id or uid)"
        )
        self.ref = ref


class FilterWithoutSubscription(HookpostError):
    """A filter for a pattern the endpoint does not subscribe to."""

    code: ClassVar[str] = "invalid_filter"

    def __init__(self, pattern: str) -> None:
        super().__init__(pattern)
        self.pattern = pattern


class UrlRefused(HookpostError):
    """An endpoint URL hookpost does not take; the message says why."""

    code: ClassVar[str] = "invalid_url"


def accepted_url(settings: Settings, url: str) -> str:
    """``url`` as an endpoint keeps it; ``UrlRefused`` for its spelling, ``BlockedDestination``
    for a destination the deployment's policy refuses."""
    reason = url_refusal(url)
    if reason is not None:
        raise UrlRefused(f"the URL was refused: {reason}")
    ssrf.DestinationPolicy.from_settings(settings).check_url(url)
    return url


async def get(session: AsyncSession, endpoint_id: uuid.UUID) -> Endpoint | None:
    """A live (not deleted) endpoint."""
    return await session.scalar(
        select(Endpoint).where(Endpoint.id == endpoint_id, Endpoint.deleted_at.is_(None))
    )


async def find(session: AsyncSession, ref: str, tenant_id: uuid.UUID | None) -> Endpoint | None:
    """The live endpoint whose id (``ep_...``) is ``ref``, or whose uid is ``ref`` among the
    endpoints of ``tenant_id`` (uids are unique per tenant: UidNeedsTenant when it is None).
    With a ``tenant_id``, an endpoint of another tenant is not found."""
    endpoint_id = ids.decode(ids.Prefix.ENDPOINT, ref)
    if endpoint_id is not None:
        endpoint = await get(session, endpoint_id)
        if endpoint is not None and tenant_id is not None and endpoint.tenant_id != tenant_id:
            return None
        return endpoint
    if tenant_id is None:
        raise UidNeedsTenant(ref)
    if unstorable.refusal(ref) is not None:  # no uid holds it, and Postgres cannot be asked
        return None
    return await session.scalar(
        select(Endpoint).where(
            Endpoint.tenant_id == tenant_id, Endpoint.uid == ref, Endpoint.deleted_at.is_(None)
        )
    )


async def visible(
    session: AsyncSession, viewer: Viewer, ref: str, tenant_id: uuid.UUID | None = None
) -> Endpoint:
    """The live endpoint ``ref`` (its id, or its uid among the endpoints of ``tenant_id`` or of
    the viewer's own tenant) names, as ``viewer`` may see it: else NotFound."""
    found = await find(session, ref, tenant_id or viewer.tenant_id)
    return viewer.seen("endpoint", ref, found, found.tenant_id if found else None)


def list_query(tenant_id: uuid.UUID | None) -> Select[Endpoint]:
    query = select(Endpoint).where(Endpoint.deleted_at.is_(None))
    if tenant_id is not None:
        query = query.where(Endpoint.tenant_id == tenant_id)
    return query


async def create(
    session: AsyncSession,
    box: SecretBox,
    *,
    tenant_id: uuid.UUID,
    fields: dict[str, Any],
    secret: str | None,
    event_types: Sequence[str],
    filters: Mapping[str, dict[str, Any]] | None = None,
) -> Endpoint:
    """A new endpoint subscribed to ``event_types``, with ``filters`` on some of them (by
    pattern). Raises EndpointUidTaken, UnknownEventTypes, FilterWithoutSubscription or
    FilterError."""
    endpoint = Endpoint(tenant_id=tenant_id, **_columns(fields))
    if not endpoint.enabled:
        endpoint.disabled_reason = endpoint.disabled_reason or "disabled when created"
        endpoint.disabled_at = datetime.now(UTC)
    session.add(endpoint)
    await _flush(session, endpoint.uid)
    session.add(
        EndpointSecret(endpoint_id=endpoint.id, ciphertext=box.encrypt(secret or generate_secret()))
    )
    await replace_subscriptions(session, endpoint.id, event_types)
    await set_filters(session, endpoint.id, filters or {})
    await session.refresh(endpoint)
    return endpoint


async def update(session: AsyncSession, endpoint: Endpoint, changes: dict[str, Any]) -> Endpoint:
    """Apply ``changes`` (EndpointUidTaken for a uid another endpoint of the tenant has). Disabling
    records the reason and time and stops the pending deliveries; enabling clears them and
    the failure streak, and resumes what disabling stopped. A new URL is a new receiver: its
    failure streak and breaker start afresh."""
    enabled = changes.pop("enabled", None)
    reason = changes.pop("disabled_reason", None)
    if "url" in changes and changes["url"] != endpoint.url:
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        endpoint.breaker_probe_at = None
    ordering_before = endpoint.ordering
    for field, value in _columns(changes).items():
        setattr(endpoint, field, value)
    await _flush(session, endpoint.uid)
    if "ordering" in changes:
        await _reorder(session, endpoint.id, ordering_before, endpoint.ordering)
    if enabled is False and endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_at = datetime.now(UTC)
        endpoint.disabled_reason = reason or "disabled through the API"
        await session.flush()
        await queue.pause_deliveries(
            await driver_connection(session), endpoint.id, endpoint.disabled_reason
        )
    elif enabled is True and not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_at = None
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        endpoint.consecutive_failures = 0
        endpoint.breaker_probe_at = None
        await session.flush()
        await queue.resume_deliveries(await driver_connection(session), endpoint.id)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def create_from(
    session: AsyncSession,
    settings: Settings,
    box: SecretBox,
    tenant_id: uuid.UUID,
    body: EndpointCreate,
) -> Endpoint:
    """The endpoint ``body`` describes, for ``tenant_id``, once the deployment allows its
    destination (BlockedDestination) and its policy (PolicyRejected); ``create`` says what
    else it raises."""
    ssrf.DestinationPolicy.from_settings(settings).check_url(body.url)
    overrides = body.policy.overrides()
    check_policy(settings, overrides)
    fields = body.model_dump(exclude={"tenant_id", "secret", "event_types", "policy", "filters"})
    fields["policy"] = overrides
    fields["channels"] = body.channels or None
    return await create(
        session,
        box,
        tenant_id=tenant_id,
        fields=fields,
        secret=body.secret,
        event_types=body.event_types,
        filters=body.filters,
    )


async def update_from(
    session: AsyncSession, settings: Settings, endpoint: Endpoint, body: EndpointUpdate
) -> Endpoint:
    """Apply the fields ``body`` sets, with the checks of ``create_from``. A new
    ``event_types`` replaces every subscription, keeping the filters of the patterns that stay;
    ``update``, ``replace_subscriptions`` and ``set_filters`` say what else it raises."""
    if body.url is not None:
        ssrf.DestinationPolicy.from_settings(settings).check_url(body.url)
    changes = body.changes()
    if "policy" in changes:
        changes["policy"] = body.policy.overrides() if body.policy is not None else {}
        check_policy(settings, changes["policy"])
    if "channels" in changes:
        changes["channels"] = changes["channels"] or None
    event_types = changes.pop("event_types", None)
    filters_sent = "filters" in changes
    filters = changes.pop("filters", None)
    if event_types is not None:
        await replace_subscriptions(session, endpoint.id, event_types)
    if filters_sent:
        await set_filters(session, endpoint.id, filters or {})
    return await update(session, endpoint, changes)


async def _reorder(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
) -> None:
    """What a change of ordering does to the deliveries already queued: unordered now, the
    lanes dissolve; no longer holding, the held lanes go on. A new key applies to new events
    (the lanes queued keep theirs)."""
    connection = await driver_connection(session)
    if before is not None and after is None:
        await queue.dissolve_lanes(connection, endpoint_id)
    elif (before or {}).get("on_exhausted") == "hold" and (after or {}).get(
        "on_exhausted"
    ) != "hold":
        await queue.release_holds(connection, endpoint_id)


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """The fields of an endpoint by its attributes' names (``metadata`` is ``metadata_``)."""
    return {("metadata_" if name == "metadata" else name): value for name, value in fields.items()}


async def _flush(session: AsyncSession, uid: str | None) -> None:
    """Flush, telling a uid that another live endpoint of the tenant has (EndpointUidTaken)."""
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        if "uq_endpoints_tenant_id_uid" not in str(error):
            raise
        raise EndpointUidTaken(uid) from None


async def remove(session: AsyncSession, endpoint: Endpoint) -> None:
    """Delete the endpoint: it stops receiving, its pending deliveries stop when claimed, and
    those waiting in its ordered lanes are cancelled now."""
    now = datetime.now(UTC)
    endpoint.deleted_at = now
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = "endpoint deleted"
    await session.execute(delete(Subscription).where(Subscription.endpoint_id == endpoint.id))
    await session.flush()
    await queue.cancel_waiting(await driver_connection(session), endpoint.id)


# Secrets


def _live(endpoint_id: uuid.UUID, now: datetime) -> Select[EndpointSecret]:
    return (
        select(EndpointSecret)
        .where(
            EndpointSecret.endpoint_id == endpoint_id,
            or_(EndpointSecret.expires_at.is_(None), EndpointSecret.expires_at > now),
        )
        .order_by(EndpointSecret.id.desc())
    )


async def current_secret(session: AsyncSession, box: SecretBox, endpoint_id: uuid.UUID) -> str:
    """The newest secret: the one that signs after a rotation's grace period."""
    row = (await session.scalars(_live(endpoint_id, datetime.now(UTC)).limit(1))).one()
    return box.decrypt(row.ciphertext)


@dataclass(frozen=True)
class LiveSecret:
    """A secret that signs now, and until when (None: the current one, until a rotation)."""

    key: str
    created_at: datetime
    expires_at: datetime | None


async def live_secrets(
    session: AsyncSession, box: SecretBox, endpoint_id: uuid.UUID
) -> list[LiveSecret]:
    """Every secret that signs now, newest (the current one) first."""
    rows = await session.scalars(_live(endpoint_id, datetime.now(UTC)))
    return [LiveSecret(box.decrypt(row.ciphertext), row.created_at, row.expires_at) for row in rows]


async def rotate_secret(
    session: AsyncSession,
    box: SecretBox,
    endpoint_id: uuid.UUID,
    *,
    new_secret: str | None,
    grace_period_s: int,
) -> str:
    """Make ``new_secret`` (or a generated one) current; the secrets live now keep signing for
    ``grace_period_s`` more. Expired secrets, and live ones past the newest ten, are removed."""
    now = datetime.now(UTC)
    expires = now + timedelta(seconds=grace_period_s)
    await session.execute(
        sql_update(EndpointSecret)
        .where(
            EndpointSecret.endpoint_id == endpoint_id,
            or_(EndpointSecret.expires_at.is_(None), EndpointSecret.expires_at > expires),
        )
        .values(expires_at=expires)
    )
    secret = new_secret or generate_secret()
    session.add(EndpointSecret(endpoint_id=endpoint_id, ciphertext=box.encrypt(secret)))
    await session.flush()
    keep = select(EndpointSecret.id).where(
        EndpointSecret.endpoint_id == endpoint_id,
        or_(EndpointSecret.expires_at.is_(None), EndpointSecret.expires_at > now),
    )
    keep = keep.order_by(EndpointSecret.id.desc()).limit(MAX_SECRETS)
    await session.execute(
        delete(EndpointSecret).where(
            EndpointSecret.endpoint_id == endpoint_id, EndpointSecret.id.not_in(keep)
        )
    )
    return secret


# Subscriptions


def is_pattern(event_type: str) -> bool:
    """True for ``*`` and ``prefix.*``; False for an exact event type name."""
    return event_type == "*" or event_type.endswith(".*")


async def _check_exact_names(session: AsyncSession, patterns: Sequence[str]) -> None:
    exact = {name for name in patterns if not is_pattern(name)}
    if not exact:
        return
    known = set(await session.scalars(select(EventType.name).where(EventType.name.in_(exact))))
    if missing := sorted(exact - known):
        raise UnknownEventTypes(missing)


NO_SUBSCRIPTIONS = (
    "The endpoint subscribes to no event type: it receives nothing until it does (event_types, "
    'or POST /v1/endpoints/{id}/subscriptions; ["*"] for every type)'
)


async def subscription_warnings(session: AsyncSession, patterns: Sequence[str]) -> list[str]:
    """What will likely not do what was meant: no subscription at all, or a prefix pattern
    that no event type matches today (a typo such as ``invoce.*``)."""
    if not patterns:
        return [NO_SUBSCRIPTIONS]
    warnings = []
    for pattern in patterns:
        if pattern == "*" or not pattern.endswith(".*"):
            continue  # exact names are checked when subscribing
        prefix = pattern[:-1]
        found = await session.scalar(
            select(EventType.name)
            .where(EventType.name.startswith(prefix, autoescape=True))
            .limit(1)
        )
        if found is None:
            warnings.append(
                f"No event type matches {pattern!r} today: the endpoint receives nothing for it "
                "until one is created"
            )
    return warnings


async def subscriptions(session: AsyncSession, endpoint_id: uuid.UUID) -> Sequence[Subscription]:
    query = select(Subscription).where(Subscription.endpoint_id == endpoint_id)
    return (await session.scalars(query.order_by(Subscription.id))).all()


async def subscriptions_of(
    session: AsyncSession, endpoint_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Subscription]]:
    """Each endpoint's subscriptions, in the order they were added."""
    rows = await session.scalars(
        select(Subscription)
        .where(Subscription.endpoint_id.in_(endpoint_ids))
        .order_by(Subscription.id)
    )
    found: dict[uuid.UUID, list[Subscription]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
    for row in rows:
        found[row.endpoint_id].append(row)
    return found


def _filter_columns(rule: dict[str, Any] | None) -> dict[str, Any]:
    """A subscription's filter columns for ``rule`` (FilterError when it cannot compile)."""
    compiled: CompiledFilter | None = None if rule is None else compile_filter(rule)
    return {
        "filter": rule,
        "filter_path": None if compiled is None else compiled.path,
        "filter_vars": None if compiled is None else compiled.variables,
    }


async def replace_subscriptions(
    session: AsyncSession, endpoint_id: uuid.UUID, patterns: Sequence[str]
) -> None:
    """Subscribe to exactly ``patterns``: the others go; those kept keep their filters."""
    await _check_exact_names(session, patterns)
    await session.execute(
        delete(Subscription).where(
            Subscription.endpoint_id == endpoint_id, Subscription.event_type.not_in(patterns)
        )
    )
    for pattern in dict.fromkeys(patterns):
        await session.execute(
            insert(Subscription)
            .values(id=new_id(), endpoint_id=endpoint_id, event_type=pattern)
            .on_conflict_do_nothing()
        )
    await session.flush()


async def set_filters(
    session: AsyncSession, endpoint_id: uuid.UUID, filters: Mapping[str, dict[str, Any]]
) -> None:
    """Give the subscriptions to the patterns of ``filters`` those filters, and the others
    none. Raises FilterWithoutSubscription for a pattern the endpoint does not subscribe to,
    and FilterError (``where`` starting with the pattern) for a rule that cannot compile."""
    known = {row.event_type: row for row in await subscriptions(session, endpoint_id)}
    if unknown := next((pattern for pattern in filters if pattern not in known), None):
        raise FilterWithoutSubscription(unknown)
    for pattern, row in known.items():
        try:
            columns = _filter_columns(filters.get(pattern))
        except FilterError as error:
            raise FilterError([pattern, *error.where], error.message) from None
        for name, value in columns.items():
            setattr(row, name, value)
    await session.flush()


async def subscribe(
    session: AsyncSession, endpoint_id: uuid.UUID, pattern: str, rule: dict[str, Any] | None
) -> tuple[Subscription, bool]:
    """The subscription of ``endpoint_id`` to ``pattern`` with the filter ``rule`` (None:
    none), and whether it was created now (else its filter was set). Raises
    UnknownEventTypes or FilterError."""
    await _check_exact_names(session, [pattern])
    columns = _filter_columns(rule)
    inserted = await session.scalar(
        insert(Subscription)
        .values(id=new_id(), endpoint_id=endpoint_id, event_type=pattern, **columns)
        .on_conflict_do_nothing()
        .returning(Subscription)
    )
    if inserted is not None:
        return inserted, True
    existing = await session.scalar(
        select(Subscription).where(
            Subscription.endpoint_id == endpoint_id, Subscription.event_type == pattern
        )
    )
    assert existing is not None
    for name, value in columns.items():
        setattr(existing, name, value)
    await session.flush()
    return existing, False


@dataclass(frozen=True)
class SubscriptionMatch:
    """How one subscription takes a sample event."""

    id: uuid.UUID
    event_type: str
    takes_type: bool
    passes: bool


@dataclass(frozen=True)
class FilterVerdict:
    """Whether a sample event would be delivered to an endpoint, and why."""

    delivered: bool
    reason: str
    subscriptions: list[SubscriptionMatch]


async def test_filters(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    event_type: str,
    payload_json: str,
    channels: Sequence[str] | None,
) -> FilterVerdict:
    """Whether an event of ``event_type`` with the payload ``payload_json`` (JSON text) and
    ``channels`` would be delivered to the endpoint, decided by the fan-out's own conditions
    (``queue.MATCH_SUBSCRIPTIONS``)."""
    rows = await (await driver_connection(session)).fetch(
        queue.MATCH_SUBSCRIPTIONS,
        endpoint_id,
        event_type,
        payload_json,
        list(channels) if channels else None,
    )
    matches = [
        SubscriptionMatch(row["id"], row["event_type"], row["takes_type"], row["passes"])
        for row in rows
    ]
    taking = [match for match in matches if match.takes_type]
    if not matches:
        return FilterVerdict(False, "the endpoint subscribes to no event type", matches)
    if not rows[0]["listens"]:
        return FilterVerdict(False, "the endpoint listens to none of the event's channels", matches)
    if not taking:
        return FilterVerdict(False, f"no subscription takes {event_type!r}", matches)
    if passing := [match for match in taking if match.passes]:
        return FilterVerdict(
            True, f"the subscription to {passing[0].event_type!r} takes it", matches
        )
    return FilterVerdict(False, "the filters of the subscriptions that take it refuse it", matches)


async def unsubscribe(
    session: AsyncSession, endpoint_id: uuid.UUID, subscription_id: uuid.UUID
) -> bool:
    result = await session.execute(
        delete(Subscription).where(
            Subscription.id == subscription_id, Subscription.endpoint_id == endpoint_id
        )
    )
    return bool(cast("CursorResult[Any]", result).rowcount)
