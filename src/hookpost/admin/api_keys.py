"""API keys: generated, stored as SHA-256 hashes, looked up by hash on every request."""

import hashlib
import secrets
import uuid

from sqlalchemy import Select, delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hookpost.db.models import ApiKey

KEY_PREFIX = "hp_"
FIND_BY_HASH = "SELECT id, tenant_id FROM api_keys WHERE key_hash = $1"
IS_ADMIN_KEY = "SELECT tenant_id IS NULL FROM api_keys WHERE id = $1"


def generate_key() -> str:
    """A new API key: ``hp_`` and 43 url-safe characters (256 random bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_key(key: str) -> bytes:
    """The stored form of a key. Keys are random, so a plain SHA-256 cannot be reversed."""
    return hashlib.sha256(key.encode()).digest()


async def create(
    session: AsyncSession, *, name: str, tenant_id: uuid.UUID | None
) -> tuple[ApiKey, str]:
    """A new key row and the key itself, which is shown once and never stored."""
    key = generate_key()
    row = ApiKey(name=name, tenant_id=tenant_id, key_hash=hash_key(key), key_hint=key[:7])
    session.add(row)
    await session.flush()
    return row, key


async def has_admin_key(session: AsyncSession) -> bool:
    found = await session.scalar(select(ApiKey.id).where(ApiKey.tenant_id.is_(None)).limit(1))
    return found is not None


def list_query(tenant_id: uuid.UUID | None) -> Select[ApiKey]:
    query = select(ApiKey)
    if tenant_id is not None:
        query = query.where(ApiKey.tenant_id == tenant_id)
    return query


async def get(session: AsyncSession, key_id: uuid.UUID) -> ApiKey | None:
    return await session.get(ApiKey, key_id)


async def remove(session: AsyncSession, key_id: uuid.UUID) -> None:
    await session.execute(delete(ApiKey).where(ApiKey.id == key_id))
