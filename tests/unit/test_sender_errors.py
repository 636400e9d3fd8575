"""Transport errors map to the attempt error kinds (DNS and TLS cannot be provoked on
127.0.0.1 without a resolver or certificates of our own, so their mapping is checked here)."""

import ssl

import aiohttp
import pytest
from aiohttp.client_reqrep import ConnectionKey

from hookpost.delivery.sender import ErrorKind, _error_kind

KEY = ConnectionKey("example.com", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (
            aiohttp.ClientConnectorDNSError(KEY, OSError(-2, "Name or service not known")),
            ErrorKind.DNS,
        ),
        (
            aiohttp.ClientConnectorCertificateError(KEY, ssl.SSLCertVerificationError()),
            ErrorKind.TLS,
        ),
        (aiohttp.ClientConnectorSSLError(KEY, ssl.SSLError()), ErrorKind.TLS),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
            ErrorKind.CONNECT,
        ),
        (aiohttp.ServerDisconnectedError(), ErrorKind.CONNECT),
        (aiohttp.ClientConnectionResetError(), ErrorKind.CONNECT),
        (aiohttp.ConnectionTimeoutError(), ErrorKind.TIMEOUT),
        (aiohttp.SocketTimeoutError(), ErrorKind.TIMEOUT),
        (TimeoutError(), ErrorKind.TIMEOUT),
        (aiohttp.InvalidUrlClientError("nope"), ErrorKind.INVALID_URL),
    ],
)
def test_error_kinds(error: BaseException, kind: ErrorKind) -> None:
    assert _error_kind(error) is kind
