"""The SSRF guard: every non-public range refused (v4 and v6), the allow list, https-only,
and names vetted on every address they resolve to. No traffic is sent: a fake resolver
answers the names."""

import ipaddress
import socket

import pytest

from hookpost.delivery.ssrf import (
    BlockedDestination,
    DestinationPolicy,
    GuardedResolver,
    guarded_socket,
    is_public,
    unsendable,
)
from hookpost.settings import parse_networks
from tests.fake_dns import FakeResolver

BLOCKED = [
    "127.0.0.1",  # loopback
    "127.255.255.254",
    "10.0.0.1",  # RFC 1918
    "172.16.5.4",
    "192.168.1.1",
    "169.254.169.254",  # link-local: cloud metadata
    "100.64.0.1",  # CGNAT
    "224.0.0.1",  # multicast
    "239.255.255.250",
    "240.0.0.1",  # reserved
    "255.255.255.255",
    "0.0.0.0",  # unspecified
    "198.18.0.1",  # benchmarking
    "::1",  # v6 loopback
    "::",  # v6 unspecified
    "fe80::1",  # v6 link-local
    "fc00::1",  # v6 unique local
    "fd12:3456::1",
    "ff02::1",  # v6 multicast
    "::ffff:127.0.0.1",  # IPv4-mapped
    "::ffff:169.254.169.254",
    "::ffff:10.0.0.1",
    "2002:a00:1::",  # 6to4 wrapping 10.0.0.1
    "2001:db8::1",  # documentation
]
PUBLIC = ["93.184.216.34", "1.1.1.1", "8.8.8.8", "2606:4700:4700::1111", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", BLOCKED)
def test_blocked_ranges(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    with pytest.raises(BlockedDestination):
        DestinationPolicy().check_address(ipaddress.ip_address(address))
    host = f"[{address}]" if ":" in address else address
    with pytest.raises(BlockedDestination):
        DestinationPolicy().check_url(f"http://{host}:8080/hook")


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    DestinationPolicy().check_address(ipaddress.ip_address(address))


def test_the_allow_list_opens_only_its_ranges() -> None:
    policy = DestinationPolicy(tuple(parse_networks("127.0.0.0/8, ::1/128")))
    policy.check_url("http://127.0.0.1:9000/")
    policy.check_url("http://[::1]:9000/")
    policy.check_address(ipaddress.ip_address("::ffff:127.0.0.1"))  # mapped form of an allowed one
    for refused in ("http://10.0.0.1/", "http://169.254.169.254/latest/meta-data"):
        with pytest.raises(BlockedDestination):
            policy.check_url(refused)
    with pytest.raises(ValueError, match="does not appear to be"):
        parse_networks("not-a-network")


def test_a_url_asked_again_gets_the_same_answer() -> None:
    """check_url keeps its answer per URL (the sender asks for every attempt)."""
    policy = DestinationPolicy(tuple(parse_networks("127.0.0.0/8")))
    for _ in range(2):
        policy.check_url("http://127.0.0.1:9000/hook")
        with pytest.raises(
            BlockedDestination, match=r"10\.0\.0\.1 is not a public address.*ALLOWED_NETWORKS"
        ):
            policy.check_url("http://10.0.0.1/hook")
    assert policy == DestinationPolicy(tuple(parse_networks("127.0.0.0/8")))  # answers aside


def test_https_only() -> None:
    policy = DestinationPolicy(https_only=True)
    policy.check_url("https://example.com/")
    with pytest.raises(BlockedDestination, match="https"):
        policy.check_url("http://example.com/")


async def test_names_are_vetted_on_every_resolved_address() -> None:
    resolver = GuardedResolver(
        DestinationPolicy(),
        FakeResolver(
            {
                "good.test": ["93.184.216.34"],
                "evil.test": ["10.0.0.1"],
                "rebind.test": ["93.184.216.34", "169.254.169.254"],
                "mapped.test": ["::ffff:127.0.0.1"],
            }
        ),
    )
    assert [r["host"] for r in await resolver.resolve("good.test", 443)] == ["93.184.216.34"]
    for host in ("evil.test", "rebind.test", "mapped.test"):
        with pytest.raises(BlockedDestination, match=host):
            await resolver.resolve(host, 443)


@pytest.mark.parametrize(
    "address", ["64:ff9b::7f00:1", "64:ff9b:1::a00:1", "::7f00:1", "::ffff:0:7f00:1", "fec0::1"]
)
def test_ipv6_forms_that_carry_a_refused_address_are_refused(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


def test_nat64_of_a_public_address_is_public() -> None:
    assert is_public(ipaddress.ip_address("64:ff9b::808:808"))  # 8.8.8.8 through NAT64


def test_the_socket_factory_refuses_what_the_policy_refuses() -> None:
    """The last gate: whatever name or spelling led to an address, no socket is made for a
    refused one (the address aiohttp is about to connect to, literal or resolved)."""
    make = guarded_socket(DestinationPolicy())
    for family, sockaddr in (
        (socket.AF_INET, ("127.0.0.1", 80)),
        (socket.AF_INET6, ("::1", 80, 0, 0)),
        (socket.AF_INET6, ("fe80::1%1", 80, 0, 1)),
    ):
        with pytest.raises(BlockedDestination):
            make((family, socket.SOCK_STREAM, 6, "", sockaddr))
    opened = guarded_socket(DestinationPolicy(tuple(parse_networks("127.0.0.0/8"))))
    opened((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))).close()


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("http://2130706433/", True),
        ("http://127.1/", True),
        ("http://0/", True),
        ("http://127.0.0.1./", True),
        ("http://0x7f.0.0.1/", True),
        ("http://1.2.3.4.5/", True),
        ("http://127.0.0.1/", False),
        ("http://example.com./", False),
        ("http://[::1]/", False),
        ("https://hooks.example.com:8443/x", False),
    ],
)
def test_hosts_no_parser_agrees_on_are_unsendable(url: str, refused: bool) -> None:
    assert (unsendable(url) is not None) is refused
