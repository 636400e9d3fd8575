"""The HTTP sender: one POST of a signed webhook, reported as a ``SendResult`` whatever
happens. One small interface (``Sender``) and its one implementation on aiohttp, chosen by
measurement (DESIGN.md, decision 5): one session per worker process, no redirects followed,
connect/read/total timeouts, response bodies read up to a cap, and the SSRF guard
(``ssrf.py``) on every address connected to. What the receiver answers is made storable
(``storable.py``) before it leaves the sender."""

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import aiohttp
from aiohttp.abc import AbstractResolver

from hookpost.delivery import storable
from hookpost.delivery.ssrf import (
    BlockedDestination,
    DestinationPolicy,
    GuardedResolver,
    guarded_socket,
)


class ErrorKind(StrEnum):
    """Why an attempt failed; stored with the attempt."""

    TIMEOUT = "timeout"
    CONNECT = "connect"
    DNS = "dns"
    TLS = "tls"
    HTTP_STATUS = "http_status"
    REDIRECT = "redirect"
    BLOCKED_DESTINATION = "blocked_destination"
    INVALID_URL = "invalid_url"
    SECRET_UNREADABLE = "secret_unreadable"  # not sent: the signing secret won't decrypt
    INTERNAL = "internal_error"  # hookpost failed on this attempt: a bug, retried by the policy


@dataclass(slots=True)  # not frozen: made per delivery (queue.Claimed says why)
class SendResult:
    """What one POST gave: a response (status, headers, capped body), or an error, or both
    (a non-2xx status is an error of kind ``http_status``)."""

    duration_ms: int
    status_code: int | None = None
    headers: dict[str, str] | None = None
    body: str | None = None
    error_kind: ErrorKind | None = None
    error_message: str | None = None


class Sender(Protocol):
    async def send(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout_s: float | None = None
    ) -> SendResult:
        """POST ``body``; ``timeout_s``, when given, replaces the total timeout (and caps the
        connect and read timeouts) for this request."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True)
class SenderLimits:
    connections: int
    total_timeout_s: float
    connect_timeout_s: float
    read_timeout_s: float
    body_cap_bytes: int


def _error_kind(error: BaseException) -> ErrorKind:
    """The kind of a transport error; the order matters, subclasses first."""
    if isinstance(error, BlockedDestination) or isinstance(error.__cause__, BlockedDestination):
        return ErrorKind.BLOCKED_DESTINATION
    if isinstance(error, aiohttp.ClientConnectorDNSError):
        return ErrorKind.DNS
    if isinstance(error, aiohttp.ClientSSLError):
        return ErrorKind.TLS
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(error, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        return ErrorKind.INVALID_URL
    return ErrorKind.CONNECT


def _describe(error: BaseException) -> str:
    if isinstance(error.__cause__, BlockedDestination):
        error = error.__cause__
    text = str(error) or type(error).__name__
    if isinstance(error, TimeoutError | aiohttp.ServerTimeoutError) and not str(error):
        text = "no complete response within the timeout"
    elif isinstance(error, aiohttp.ClientConnectorError) and not isinstance(
        error, aiohttp.ClientSSLError
    ):
        # aiohttp's own words name its TLS context ("ssl:default") even for http:// URLs
        reason = (
            "connection refused"
            if isinstance(error.os_error, ConnectionRefusedError)
            else error.os_error.strerror or str(error.os_error)
        )
        text = f"cannot connect to {error.host}:{error.port}: {reason}"
    return storable.message(f"{type(error).__name__}: {text}")


class AiohttpSender:
    """Sends webhooks over one aiohttp session; make it inside the event loop that uses it."""

    def __init__(
        self,
        limits: SenderLimits,
        *,
        user_agent: str,
        policy: DestinationPolicy,
        resolver: AbstractResolver | None = None,
    ) -> None:
        """``resolver`` answers names before the policy vets them (tests pass a fake one;
        by default the system's)."""
        self._limits = limits
        self._policy = policy
        self._default_timeout = self._timeout(limits.total_timeout_s)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(
                limit=limits.connections,
                ttl_dns_cache=30,
                resolver=GuardedResolver(policy, resolver),
                socket_factory=guarded_socket(policy),
            ),
            timeout=self._default_timeout,
            headers={"user-agent": user_agent},
        )

    async def send(
        self, url: str, headers: dict[str, str], body: bytes, *, timeout_s: float | None = None
    ) -> SendResult:
        started = time.perf_counter()
        timeout = self._default_timeout if timeout_s is None else self._timeout(timeout_s)

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            self._policy.check_url(url)
            async with self._session.post(
                url, data=body, headers=headers, allow_redirects=False, timeout=timeout
            ) as response:
                content = await self._read_capped(response)
                status = response.status
                response_headers = storable.headers(response.headers.items())
        except (TimeoutError, aiohttp.ClientError, OSError, ValueError) as error:
            return SendResult(
                duration_ms=elapsed(), error_kind=_error_kind(error), error_message=_describe(error)
            )
        kind, message = None, None
        if 300 <= status < 400:
            location = response_headers.get("location", "")
            kind = ErrorKind.REDIRECT
            message = storable.message(f"redirect {status} to {location!r}, not followed")
        elif not 200 <= status < 300:
            kind, message = ErrorKind.HTTP_STATUS, f"the receiver answered {status}"
        return SendResult(
            duration_ms=elapsed(),
            status_code=status,
            headers=response_headers,
            body=content,
            error_kind=kind,
            error_message=message,
        )

    def _timeout(self, total_s: float) -> aiohttp.ClientTimeout:
        """The total ``total_s``, the connect and read timeouts of the limits within it."""
        return aiohttp.ClientTimeout(
            total=total_s,
            connect=min(self._limits.connect_timeout_s, total_s),
            sock_read=min(self._limits.read_timeout_s, total_s),
        )

    async def _read_capped(self, response: aiohttp.ClientResponse) -> str:
        cap = self._limits.body_cap_bytes
        chunks: list[bytes] = []
        size = 0
        while size < cap:
            chunk = await response.content.read(cap - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return storable.body(b"".join(chunks))

    async def close(self) -> None:
        await self._session.close()
