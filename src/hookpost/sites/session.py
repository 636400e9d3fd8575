"""The console's and the portal's sessions. A session is a cookie
sealed with the deployment's secret key (HttpOnly, SameSite=Strict, Secure under https) that
expires and carries the token every state-changing form must send back (CSRF). An operator's
comes from an admin API key and names it, so that it ends with the key: a stored key by its
id, the configured one by a salted HMAC of it. A tenant portal's comes from a link
(``admin.portal_links``)."""

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from fastapi import Request, Response

from hookpost.admin.portal_links import issued_at_of
from hookpost.encryption import SecretBox, seal, unseal

CONSOLE = "hookpost_session"
PORTAL = "hookpost_portal"
CONSOLE_LIFETIME_S = 8 * 3600
_SALT_BYTES = 16

Scope = Literal["admin", "read", "manage"]


@dataclass(frozen=True)
class Session:
    """Who is signed in: an operator (scope ``admin``; ``key_id`` None for the configured
    admin key, whose ``fingerprint`` it carries), or one tenant's portal (``tenant_id``, scope
    ``read`` or ``manage``)."""

    scope: Scope
    key_id: uuid.UUID | None
    tenant_id: uuid.UUID | None
    csrf: str
    expires_at: float
    fingerprint: bytes | None = None
    issued_at: float = 0.0  # a portal session's: when its link was issued

    def accepts(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's."""
        return token is not None and hmac.compare_digest(token, self.csrf)

    def signed_in_with(self, key: str | None) -> bool:
        """Whether this session was signed in with ``key`` (None: no key is valid)."""
        if key is None or self.fingerprint is None:
            return False
        salt = self.fingerprint[:_SALT_BYTES]
        return hmac.compare_digest(self.fingerprint, _fingerprint(key, salt))


def _fingerprint(key: str, salt: bytes) -> bytes:
    """The salt and an HMAC of ``key`` under it: the key cannot be read back from a cookie
    even by whoever holds the deployment's secret, nor looked up in a precomputed table."""
    return salt + hmac.digest(salt, key.encode(), "sha256")


def start(
    response: Response,
    request: Request,
    box: SecretBox,
    *,
    cookie: str,
    scope: Scope,
    expires_at: float,
    key_id: uuid.UUID | None = None,
    configured_key: str | None = None,
    tenant_id: uuid.UUID | None = None,
    issued_at: float = 0.0,
) -> None:
    """Set a new session's cookie on ``response``, lasting until ``expires_at``; a session
    signed in with the configured admin key is given ``configured_key`` to carry its
    fingerprint, a portal session the ``issued_at`` of its link."""
    salt = secrets.token_bytes(_SALT_BYTES)
    payload = {
        "kind": cookie,
        "s": scope,
        "k": str(key_id) if key_id else None,
        "f": None if configured_key is None else _fingerprint(configured_key, salt).hex(),
        "t": str(tenant_id) if tenant_id else None,
        "c": secrets.token_urlsafe(24),
        "e": expires_at,
        "i": issued_at,
    }
    response.set_cookie(
        cookie,
        seal(box, payload),
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
    payload = unseal(box, sealed, cookie) if sealed else None
    if payload is None:
        return None
    key, tenant, fingerprint = payload.get("k"), payload.get("t"), payload.get("f")
    return Session(
        scope=payload["s"],  # type: ignore[arg-type]
        key_id=uuid.UUID(str(key)) if key else None,
        tenant_id=uuid.UUID(str(tenant)) if tenant else None,
        csrf=str(payload["c"]),
        expires_at=float(payload["e"]),  # type: ignore[arg-type]
        fingerprint=bytes.fromhex(fingerprint) if isinstance(fingerprint, str) else None,
        issued_at=issued_at_of(payload),
    )
