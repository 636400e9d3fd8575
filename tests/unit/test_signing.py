"""Standard Webhooks signing, verified by the standardwebhooks package."""

import base64
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hookpost.delivery.signing import generate_secret, secret_bytes, sign


def _headers(msg_id: str, timestamp: int, signature: str) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature,
    }


@given(
    body=st.text(max_size=500),
    msg_id=st.from_regex(r"evt_[0-9a-z]{26}", fullmatch=True),
    size=st.integers(24, 64),
)
def test_signature_verifies_with_standardwebhooks(body: str, msg_id: str, size: int) -> None:
    secret = generate_secret(size)
    now = int(time.time())
    header = sign([secret_bytes(secret)], msg_id, now, body.encode())
    Webhook(secret).verify(body.encode(), _headers(msg_id, now, header), json_parse=False)


def test_every_live_secret_signs() -> None:
    old, new, stranger = generate_secret(), generate_secret(), generate_secret()
    now = int(time.time())
    header = sign([secret_bytes(new), secret_bytes(old)], "evt_1", now, b"{}")
    assert len(header.split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify(b"{}", _headers("evt_1", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(b"{}", _headers("evt_1", now, header))


def test_tampering_breaks_the_signature() -> None:
    secret = generate_secret()
    now = int(time.time())
    header = sign([secret_bytes(secret)], "evt_1", now, b'{"a":1}')
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":2}', _headers("evt_1", now, header))
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"a":1}', _headers("evt_2", now, header))


@pytest.mark.parametrize("size", [24, 32, 64])
def test_generated_secrets(size: int) -> None:
    secret = generate_secret(size)
    assert secret.startswith("whsec_")
    assert len(secret_bytes(secret)) == size


@pytest.mark.parametrize(
    "secret",
    [
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_",
        "whsec_not base64!",
        "whsec_" + base64.b64encode(b"x" * 23).decode(),
        "whsec_" + base64.b64encode(b"x" * 65).decode(),
    ],
)
def test_invalid_secrets(secret: str) -> None:
    with pytest.raises(ValueError, match="secret"):
        secret_bytes(secret)
