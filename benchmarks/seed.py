"""Setting up benchmark data straight in the database (no API in the way)."""

import uuid

import asyncpg

from hookpost.delivery.signing import generate_secret
from hookpost.encryption import SecretBox
from hookpost.ids import new_id


async def add_endpoint(
    connection: asyncpg.Connection,
    tenant_id: uuid.UUID,
    url: str,
    box: SecretBox,
    *,
    subscribes_to: str,
    max_in_flight: int = 10,
) -> uuid.UUID:
    """An endpoint with a signing secret and one subscription."""
    endpoint_id = new_id()
    await connection.execute(
        "INSERT INTO endpoints (id, tenant_id, url, max_in_flight) VALUES ($1, $2, $3, $4)",
        endpoint_id,
        tenant_id,
        url,
        max_in_flight,
    )
    await connection.execute(
        "INSERT INTO endpoint_secrets (id, endpoint_id, ciphertext) VALUES ($1, $2, $3)",
        new_id(),
        endpoint_id,
        box.encrypt(generate_secret()),
    )
    await connection.execute(
        "INSERT INTO subscriptions (id, endpoint_id, event_type) VALUES ($1, $2, $3)",
        new_id(),
        endpoint_id,
        subscribes_to,
    )
    return endpoint_id
