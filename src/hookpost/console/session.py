"""The console's sign-in session: an API key is exchanged for a cookie (encrypted with the
deployment's secret key, HttpOnly, SameSite=Strict, Secure under https) that expires, and
which carries the token every state-changing form must send back (CSRF)."""

import hmac
import secrets
import time
import uuid
from dataclasses import dataclass

import orjson
from cryptography.fernet import InvalidToken
from fastapi import Request, Response

from hookpost.encryption import SecretBox

COOKIE = "hookpost_session"
LIFETIME_S = 8 * 3600


@dataclass(frozen=True)
class Session:
    """Who signed in (``key_id`` None: the configured admin key) and the form token."""

    key_id: uuid.UUID | None
    csrf: str
    expires_at: float

    def accepts(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's."""
        return token is not None and hmac.compare_digest(token, self.csrf)


def start(response: Response, request: Request, box: SecretBox, key_id: uuid.UUID | None) -> None:
    """Set a new session's cookie on ``response``."""
    expires_at = time.time() + LIFETIME_S
    payload = {"k": str(key_id) if key_id else None, "c": secrets.token_urlsafe(24)}
    sealed = box.encrypt(orjson.dumps(payload | {"e": expires_at}).decode()).decode()
    response.set_cookie(
        COOKIE,
        sealed,
        max_age=LIFETIME_S,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")


def read(request: Request, box: SecretBox) -> Session | None:
    """The request's session, or None when it has none, or one that is forged or expired."""
    sealed = request.cookies.get(COOKIE)
    if not sealed:
        return None
    try:
        payload = orjson.loads(box.decrypt(sealed.encode()))
    except (InvalidToken, orjson.JSONDecodeError, ValueError):
        return None
    if payload.get("e", 0) < time.time():
        return None
    key_id = uuid.UUID(payload["k"]) if payload.get("k") else None
    return Session(key_id=key_id, csrf=payload["c"], expires_at=payload["e"])
