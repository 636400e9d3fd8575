"""Endpoints: receivers' URLs with their custom headers, limits, signing secrets and
subscriptions. Deleting one keeps its row (``deleted_at``) so its delivery log survives."""

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Select, delete, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.db.engine import driver_connection
from hookpost.db.models import Endpoint, EndpointSecret, EventType, Subscription
from hookpost.delivery import queue
from hookpost.delivery.policy import TIMEOUT_OVERRIDE, schedule_from, with_overrides
from hookpost.delivery.signing import generate_secret
from hookpost.encryption import SecretBox
from hookpost.ids import new_id
from hookpost.settings import Settings

MAX_SECRETS = 10


class UnknownEventTypes(Exception):
    """Subscriptions named exact event types that do not exist."""

    def __init__(self, names: Sequence[str]) -> None:
        super().__init__(", ".join(names))
        self.names = list(names)


class PolicyRejected(Exception):
    """An endpoint's policy that its deliveries could not follow; ``field`` names the part."""

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


async def get(session: AsyncSession, endpoint_id: uuid.UUID) -> Endpoint | None:
    """A live (not deleted) endpoint."""
    return await session.scalar(
        select(Endpoint).where(Endpoint.id == endpoint_id, Endpoint.deleted_at.is_(None))
    )


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
) -> Endpoint:
    endpoint = Endpoint(tenant_id=tenant_id, **fields)
    if not endpoint.enabled:
        endpoint.disabled_reason = endpoint.disabled_reason or "disabled when created"
        endpoint.disabled_at = datetime.now(UTC)
    session.add(endpoint)
    await session.flush()
    session.add(
        EndpointSecret(endpoint_id=endpoint.id, ciphertext=box.encrypt(secret or generate_secret()))
    )
    await replace_subscriptions(session, endpoint.id, event_types)
    await session.flush()
    await session.refresh(endpoint)
    return endpoint


async def update(session: AsyncSession, endpoint: Endpoint, changes: dict[str, Any]) -> Endpoint:
    """Apply ``changes``. Disabling records the reason and time and stops the pending
    deliveries; enabling clears them and the failure streak, and resumes what disabling
    stopped. A new URL is a new receiver: its failure streak and breaker start afresh."""
    enabled = changes.pop("enabled", None)
    reason = changes.pop("disabled_reason", None)
    if "url" in changes and changes["url"] != endpoint.url:
        endpoint.consecutive_failures = 0
        endpoint.failing_since = None
        endpoint.breaker_probe_at = None
    for field, value in changes.items():
        setattr(endpoint, field, value)
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


async def remove(session: AsyncSession, endpoint: Endpoint) -> None:
    """Delete the endpoint: it stops receiving, and its pending deliveries stop when claimed."""
    now = datetime.now(UTC)
    endpoint.deleted_at = now
    endpoint.enabled = False
    endpoint.disabled_at = now
    endpoint.disabled_reason = "endpoint deleted"
    await session.execute(delete(Subscription).where(Subscription.endpoint_id == endpoint.id))
    await session.flush()


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


async def subscribed_types(
    session: AsyncSession, endpoint_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[str]]:
    """Each endpoint's subscription patterns, in the order they were added."""
    rows = await session.execute(
        select(Subscription.endpoint_id, Subscription.event_type)
        .where(Subscription.endpoint_id.in_(endpoint_ids))
        .order_by(Subscription.id)
    )
    found: dict[uuid.UUID, list[str]] = {endpoint_id: [] for endpoint_id in endpoint_ids}
    for endpoint_id, event_type in rows:
        found[endpoint_id].append(event_type)
    return found


async def replace_subscriptions(
    session: AsyncSession, endpoint_id: uuid.UUID, patterns: Sequence[str]
) -> None:
    await _check_exact_names(session, patterns)
    await session.execute(delete(Subscription).where(Subscription.endpoint_id == endpoint_id))
    for pattern in dict.fromkeys(patterns):
        session.add(Subscription(endpoint_id=endpoint_id, event_type=pattern))
    await session.flush()


async def subscribe(
    session: AsyncSession, endpoint_id: uuid.UUID, pattern: str
) -> tuple[Subscription, bool]:
    """The subscription of ``endpoint_id`` to ``pattern``, and whether it was created now."""
    await _check_exact_names(session, [pattern])
    inserted = await session.scalar(
        insert(Subscription)
        .values(id=new_id(), endpoint_id=endpoint_id, event_type=pattern)
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
    return existing, False


async def unsubscribe(
    session: AsyncSession, endpoint_id: uuid.UUID, subscription_id: uuid.UUID
) -> bool:
    result = await session.execute(
        delete(Subscription).where(
            Subscription.id == subscription_id, Subscription.endpoint_id == endpoint_id
        )
    )
    return bool(cast("CursorResult[Any]", result).rowcount)
