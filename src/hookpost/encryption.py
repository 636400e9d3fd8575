"""Endpoint secrets at rest: encrypted with Fernet keys from settings (MultiFernet).

The first key encrypts; every listed key decrypts, so the key can be rotated by putting a new
one in front. With no key configured, one is generated once into ``<data_dir>/secret.key``.
"""

import time
from collections.abc import Mapping
from pathlib import Path

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hookpost.settings import Settings

__all__ = ["InvalidToken", "SecretBox", "load_secret_box", "seal", "unseal"]


class SecretBox:
    """Encrypts and decrypts endpoint signing secrets."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise ValueError("at least one encryption key is needed")
        self._fernet = MultiFernet([Fernet(key.encode()) for key in keys])

    def encrypt(self, plaintext: str) -> bytes:
        return self._fernet.encrypt(plaintext.encode())

    def decrypt(self, ciphertext: bytes) -> str:
        return self._fernet.decrypt(ciphertext).decode()


def _generated_key(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(Fernet.generate_key().decode())
        path.chmod(0o600)
    return path.read_text().strip()


def load_secret_box(settings: Settings) -> SecretBox:
    """The box for ``settings``: its ``secret_key`` list, or the key generated in ``data_dir``."""
    if settings.secret_key is not None:
        keys = [k.strip() for k in settings.secret_key.get_secret_value().split(",") if k.strip()]
    else:
        keys = [_generated_key(settings.secret_key_file)]
    return SecretBox(keys)


def seal(box: SecretBox, payload: Mapping[str, object]) -> str:
    """``payload`` (JSON, with its ``kind`` and its expiry ``e`` in epoch seconds) sealed:
    readable and changeable by no one without the deployment's key."""
    return box.encrypt(orjson.dumps(payload).decode()).decode()


def unseal(box: SecretBox, sealed: str, kind: str) -> dict[str, object] | None:
    """What ``seal`` sealed, if it is of ``kind`` and has not expired; else None."""
    try:
        payload = orjson.loads(box.decrypt(sealed.encode()))
    except (InvalidToken, orjson.JSONDecodeError, ValueError):
        return None
    if not isinstance(payload, dict) or payload.get("kind") != kind:
        return None
    if not isinstance(payload.get("e"), float | int) or payload["e"] < time.time():
        return None
    return payload
