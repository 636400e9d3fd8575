"""The SSRF guard: webhook URLs are chosen by strangers, so hookpost refuses to send to
addresses that are not on the public internet (loopback, private, link-local including cloud
metadata, CGNAT, multicast, reserved, unspecified; IPv4 inside IPv6 unwrapped: mapped,
compatible, translated, NAT64, 6to4, Teredo), unless an operator opens a range with
``HOOKPOST_ALLOWED_NETWORKS``.

The address judged is the address connected to, whatever the URL's spelling:
``guarded_socket`` vets the address of every socket the sender opens, IP literals included
(aiohttp never resolves those), so neither a Unicode spelling of a literal nor a DNS answer
that changes after a check (rebinding) reaches a refused network. ``GuardedResolver`` refuses a
name when any of its addresses is refused, with the name in the reason; ``DestinationPolicy``
judges a URL as aiohttp's own parser (yarl) reads it, and ``unsendable`` says which hosts can
never be sent to, so that they are refused when an endpoint is made.
"""

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import ClassVar

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver
from yarl import URL

from hookpost.errors import HookpostError
from hookpost.settings import IPNetwork, Settings, parse_networks

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddrInfo = tuple[int, int, int, str, tuple[str, int] | tuple[str, int, int, int]]

# IPv6 prefixes whose last 32 bits are an IPv4 address a packet may end up at: NAT64 (RFC 6052,
# RFC 8215), IPv4-compatible (deprecated, ::/96) and IPv4-translated (SIIT, ::ffff:0:0/96).
_EMBEDDING_IPV4 = tuple(
    ipaddress.IPv6Network(prefix)
    for prefix in ("64:ff9b::/96", "64:ff9b:1::/48", "::/96", "::ffff:0:0/96", "::ffff:0:0:0/96")
)
# A host whose last label is a number is an IPv4 address to a URL parser (WHATWG "ends in a
# number"), in whatever base and however many parts: only the plain dotted quad is kept.
_NUMERIC_LABEL = re.compile(r"^(0[xX][0-9a-fA-F]*|[0-9]+)$")


class BlockedDestination(HookpostError, OSError):
    """A request hookpost refuses to send; logged as error kind ``blocked_destination``."""

    code: ClassVar[str] = "blocked_destination"


def _embedded(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address that an IPv6 one carries to, if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    for carried in (address.ipv4_mapped, address.sixtofour):
        if carried is not None:
            return carried
    if address.teredo is not None:
        return address.teredo[1]
    if int(address) > 1 and any(address in prefix for prefix in _EMBEDDING_IPV4):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def _unwrap(address: IPAddress) -> IPAddress:
    return _embedded(address) or address


def _globally_routed(address: IPAddress) -> bool:
    return (
        address.is_global
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_link_local
        and not (isinstance(address, ipaddress.IPv6Address) and address.is_site_local)
    )


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet, the only kind webhooks may reach: the
    address itself and any IPv4 address it carries to."""
    carried = _embedded(address)
    if carried is not None:
        return _globally_routed(carried)
    return _globally_routed(address)


def host_of(url: str) -> str:
    """The host that aiohttp connects to for ``url``: yarl's reading (IDNA/UTS 46 mapping, so
    full-width digits and ideographic dots are plain ones), in ASCII; raises ValueError."""
    host = URL(url).raw_host
    if not host:
        raise ValueError("the URL has no host")
    return host.split("%", 1)[0]  # an IPv6 zone is no part of the address


def _literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def unsendable(url: str) -> str | None:
    """Why ``url``'s host can never be sent to as written, or None: a number that is not a
    plain dotted quad (``2130706433``, ``127.1``, ``0x7f.0.0.1``, ``0``) or an address with a
    trailing dot means an IPv4 address to one parser and a name to another."""
    try:
        host = host_of(url)
    except ValueError as error:
        return str(error)
    if ":" in host:
        return None  # an IPv6 literal: yarl has already read it as one
    labels = host.removesuffix(".").split(".")
    if not _NUMERIC_LABEL.match(labels[-1]):
        return None  # a name
    address = _literal(host)
    if address is None or str(address) != host:
        return (
            f"the host {host!r} is a number but not an IPv4 address written a.b.c.d in "
            "decimal; write the address in full, without a trailing dot"
        )
    return None


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
        """Refuse a plain-http URL under https-only, and a URL whose host, as aiohttp reads it,
        is a refused IP literal (a name's addresses are judged when it is resolved, and every
        address again when it is connected to)."""
        parsed = URL(url)
        if self.https_only and parsed.scheme != "https":
            raise BlockedDestination("only https:// URLs are allowed (HOOKPOST_HTTPS_ONLY)")
        try:
            address = _literal(host_of(url))
        except ValueError:
            return  # aiohttp refuses it too, and the attempt says why (invalid_url)
        if address is not None:
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


def guarded_socket(policy: DestinationPolicy) -> Callable[[AddrInfo], socket.socket]:
    """The sender's socket factory: a socket for an address the policy allows, and for no
    other, whatever name or spelling led to it."""

    def make(addr_info: AddrInfo) -> socket.socket:
        family, kind, proto, _, sockaddr = addr_info
        policy.check_address(ipaddress.ip_address(sockaddr[0].split("%", 1)[0]))
        return socket.socket(family=family, type=kind, proto=proto)

    return make
