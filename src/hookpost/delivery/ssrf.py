"""The SSRF guard: webhook URLs are chosen by strangers, so hookpost refuses to send to
addresses that are not on the public internet (loopback, private, link-local including cloud
metadata, CGNAT, multicast, reserved, unspecified; IPv4-mapped IPv6 unwrapped), unless an
operator opens a range with ``HOOKPOST_ALLOWED_NETWORKS``.

The check runs on the addresses actually connected to: ``GuardedResolver`` vets every address
a name resolves to before aiohttp may connect to any of them, so a DNS answer that changes
between a check and the connection (rebinding) cannot reach a private network. IP literals in
URLs, which skip the resolver, are checked by ``DestinationPolicy.check_url``.
"""

import ipaddress
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from hookpost.settings import IPNetwork, Settings, parse_networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class BlockedDestination(OSError):
    """A request hookpost refuses to send; logged as error kind ``blocked_destination``."""


def _unwrap(address: IPAddress) -> IPAddress:
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour):
            if embedded is not None:
                return embedded
        if address.teredo is not None:
            return address.teredo[1]
    return address


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet, the only kind webhooks may reach."""
    address = _unwrap(address)
    return address.is_global and not address.is_multicast


def _scheme_and_literal(url: str) -> tuple[str, IPAddress | None]:
    """A URL's scheme, and its host if that is an IP literal."""
    parts = urlsplit(url)
    try:
        return parts.scheme, ipaddress.ip_address(parts.hostname or "")
    except ValueError:
        return parts.scheme, None


@dataclass(frozen=True)
class DestinationPolicy:
    allowed_networks: tuple[IPNetwork, ...] = ()
    https_only: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "DestinationPolicy":
        return cls(tuple(parse_networks(settings.allowed_networks)), settings.https_only)

    def check_address(self, address: IPAddress) -> None:
        unwrapped = _unwrap(address)
        if any(unwrapped in network or address in network for network in self.allowed_networks):
            return
        if not is_public(address):
            raise BlockedDestination(
                f"{address} is not a public address; refused (HOOKPOST_ALLOWED_NETWORKS opens "
                "ranges, such as 127.0.0.0/8,::1/128 for local development)"
            )

    def check_url(self, url: str) -> None:
        """Refuse a plain-http URL under https-only, and a URL whose host is a blocked IP."""
        scheme, address = _scheme_and_literal(url)
        if self.https_only and scheme != "https":
            raise BlockedDestination("only https:// URLs are allowed (HOOKPOST_HTTPS_ONLY)")
        if address is not None:  # a name's addresses are checked when it is resolved
            self.check_address(address)

    def check_results(self, host: str, results: Iterable[ResolveResult]) -> None:
        for result in results:
            try:
                self.check_address(ipaddress.ip_address(result["host"]))
            except BlockedDestination as error:
                raise BlockedDestination(f"{host} resolves to {error}") from None


class GuardedResolver(AbstractResolver):
    """A resolver that answers only when every address of the name passes the policy."""

    def __init__(self, policy: DestinationPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._policy.check_results(host, results)
        return results

    async def close(self) -> None:
        await self._inner.close()
