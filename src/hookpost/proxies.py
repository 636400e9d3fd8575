"""Forwarded headers, honoured only from the proxies the deployment trusts
(``HOOKPOST_FORWARDED_ALLOW_IPS``). A request straight from anyone else has its
``X-Forwarded-*`` headers removed before any page reads them: a client could otherwise name
the host its forged form "came from", or the address it "came from"."""

import ipaddress

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

_FORWARDED = (b"x-forwarded-host", b"x-forwarded-for", b"x-forwarded-proto", b"forwarded")


def trusted_networks(spec: str) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network] | None:
    """The networks of a comma-separated list of addresses and CIDR blocks; None for ``*``
    (every peer is a proxy: only behind one that always sets these headers)."""
    parts = [part.strip() for part in spec.split(",") if part.strip()]
    if "*" in parts:
        return None
    return [ipaddress.ip_network(part, strict=False) for part in parts]


class TrustedProxies:
    """Keep a trusted proxy's ``X-Forwarded-Host`` and apply its ``X-Forwarded-For`` and
    ``-Proto`` (uvicorn's middleware); drop all of them from anyone else."""

    def __init__(self, app: ASGIApp, trusted: str) -> None:
        self._networks = trusted_networks(trusted)
        self._app = ProxyHeadersMiddleware(app, trusted_hosts=trusted)  # type: ignore[arg-type]

    def _trusts(self, client: tuple[str, int] | None) -> bool:
        if self._networks is None:
            return True
        try:
            address = ipaddress.ip_address(client[0]) if client else None
        except ValueError:  # a unix socket's peer, or a name
            return False
        return address is not None and any(address in network for network in self._networks)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and not self._trusts(scope.get("client")):
            headers = [(name, value) for name, value in scope["headers"] if name not in _FORWARDED]
            scope = {**scope, "headers": headers}
        await self._app(scope, receive, send)  # type: ignore[arg-type]
