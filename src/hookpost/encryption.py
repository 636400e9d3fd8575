"""Endpoint secrets at rest: encrypted with Fernet keys from settings (MultiFernet).

The first key encrypts; every listed key decrypts, so the key can be rotated by putting a new
one in front. With no key configured, one is generated once into ``<data_dir>/secret.key``.
"""

from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from hookpost.settings import Settings

__all__ = ["InvalidToken", "SecretBox", "load_secret_box"]


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
