"""The console's and the portal's sessions, and the portal's links. A session is a cookie
sealed with the deployment's secret key (HttpOnly, SameSite=Strict, Secure under https) that
expires and carries the token every state-changing form must send back (CSRF). An operator's
comes from an admin API key; a tenant portal's from a link (a sealed, short-lived token)."""

import hmac
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import orjson
from cryptography.fernet import InvalidToken
from fastapi import Request, Response

from hookpost.encryption import SecretBox

CONSOLE = "hookpost_session"
PORTAL = "hookpost_portal"
CONSOLE_LIFETIME_S = 8 * 3600

Scope = Literal["admin", "read", "manage"]


@dataclass(frozen=True)
class Session:
    """Who is signed in: an operator (scope ``admin``; ``key_id`` None for the configured
    admin key), or one tenant's portal (``tenant_id``, scope ``read`` or ``manage``)."""

    scope: Scope
    key_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    csrf: str
    expires_at: float

    def accepts(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's."""
        return token is not None and hmac.compare_digest(token, self.csrf)


def _seal(box: SecretBox, payload: Mapping[str, object]) -> str:
    return box.encrypt(orjson.dumps(payload).decode()).decode()


def _unseal(box: SecretBox, sealed: str, kind: str) -> dict[str, object] | None:
    try:
        payload = orjson.loads(box.decrypt(sealed.encode()))
    except (InvalidToken, orjson.JSONDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        return None
    if not isinstance(payload.get("e"), float | int) or payload["e"] < time.time():
        return None
    return payload


def start(
    response: Response,
    request: Request,
    box: SecretBox,
    *,
    cookie: str,
    scope: Scope,
    expires_at: float,
    key_id: uuid.UUID | None = None,
    tenant_id: uuid.UUID | None = None,
) -> None:
    """Set a new session's cookie on ``response``, lasting until ``expires_at``."""
    payload = {
        "kind": cookie,
        "s": scope,
        "k": str(key_id) if key_id else None,
        "t": str(tenant_id) if tenant_id else None,
        "c": secrets.token_urlsafe(24),
        "e": expires_at,
    }
    response.set_cookie(
        cookie,
        _seal(box, payload),
        max_age=max(1, int(expires_at - time.time())),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def end(response: Response, cookie: str) -> None:
    response.delete_cookie(cookie, path="/", httponly=True, samesite="strict")


def read(request: Request, box: SecretBox, cookie: str) -> Session | None:
    """The request's session of that cookie, or None: none, forged, or expired."""
    sealed = request.cookies.get(cookie)
    payload = _unseal(box, sealed, cookie) if sealed else None
    if payload is None:
        return None
    key, tenant = payload.get("k"), payload.get("t")
    return Session(
        scope=payload["s"],  # type: ignore[arg-type]
        key_id=uuid.UUID(str(key)) if key else None,
        tenant_id=uuid.UUID(str(tenant)) if tenant else None,
        csrf=str(payload["c"]),
        expires_at=float(payload["e"]),  # type: ignore[arg-type]
    )


def portal_link_token(
    box: SecretBox, tenant_id: uuid.UUID, scope: Literal["read", "manage"], expires_at: float
) -> str:
    """A portal link's token: one tenant, one scope, until ``expires_at``."""
    return _seal(box, {"kind": "portal-link", "t": str(tenant_id), "s": scope, "e": expires_at})


def open_portal_link(
    box: SecretBox, token: str
) -> tuple[uuid.UUID, Literal["read", "manage"], float] | None:
    """The tenant, scope and expiry of a link's token; None when forged or expired."""
    payload = _unseal(box, token, "portal-link")
    if payload is None or payload.get("s") not in ("read", "manage"):
        return None
    return uuid.UUID(str(payload["t"])), payload["s"], float(payload["e"])  # type: ignore[arg-type,return-value]
