"""Portal links: sealed, short-lived tokens that open one tenant's portal with one scope. A
link carries when it was issued, so that the tenant's revocation (``tenants.portal_revoked_at``)
ends every link issued before it, and every session opened with one."""

import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from hookpost.db.models import Tenant
from hookpost.encryption import SecretBox, seal, unseal


def issued_at_of(payload: Mapping[str, object]) -> float:
    """When a sealed link or portal session says it was issued (0: before links said so)."""
    issued = payload.get("i")
    return float(issued) if isinstance(issued, float | int) else 0.0


def still_valid(tenant: Tenant | None, issued_at: float) -> bool:
    """Whether a portal link of ``tenant`` issued at ``issued_at`` (epoch seconds), or a
    session opened with it, still works: its tenant exists and revoked nothing since."""
    if tenant is None:
        return False
    revoked = tenant.portal_revoked_at
    return revoked is None or issued_at >= revoked.timestamp()


@dataclass(frozen=True)
class PortalLink:
    """What a portal link's token says: one tenant, one scope, from ``issued_at`` until
    ``expires_at`` (epoch seconds)."""

    tenant_id: uuid.UUID
    scope: Literal["read", "manage"]
    expires_at: float
    issued_at: float


def portal_link_token(
    box: SecretBox, tenant_id: uuid.UUID, scope: Literal["read", "manage"], expires_at: float
) -> str:
    """A portal link's token: one tenant, one scope, until ``expires_at``; it carries the
    time it was issued, so that a revocation ends it."""
    payload = {"kind": "portal-link", "t": str(tenant_id), "s": scope, "e": expires_at}
    return seal(box, payload | {"i": time.time()})


# How long a link may last, in seconds: at least a minute, at most a day.
LIFETIME_RANGE_S = (60, 86400)


def issue_link(
    box: SecretBox,
    tenant_id: uuid.UUID,
    scope: Literal["read", "manage"],
    expires_in_s: int,
    base_url: str,
) -> tuple[str, datetime]:
    """A portal link for ``tenant_id`` under ``base_url`` (``HOOKPOST_PUBLIC_URL``, or the
    address the link was asked at), and when it expires."""
    expires_at = datetime.now(UTC) + timedelta(seconds=expires_in_s)
    token = portal_link_token(box, tenant_id, scope, expires_at.timestamp())
    return f"{base_url.rstrip('/')}/portal/open?token={token}", expires_at


def open_portal_link(box: SecretBox, token: str) -> PortalLink | None:
    """What a link's token says; None when forged or expired."""
    payload = unseal(box, token, "portal-link")
    if payload is None or payload.get("s") not in ("read", "manage"):
        return None
    return PortalLink(
        tenant_id=uuid.UUID(str(payload["t"])),
        scope=payload["s"],  # type: ignore[arg-type]
        expires_at=float(payload["e"]),  # type: ignore[arg-type]
        issued_at=issued_at_of(payload),
    )
