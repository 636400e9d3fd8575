"""Endpoint secrets at rest: Fernet with key rotation."""

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from hookpost.encryption import InvalidToken, SecretBox, load_secret_box
from hookpost.settings import Settings


def test_round_trip_without_the_plaintext_in_the_ciphertext() -> None:
    box = SecretBox([Fernet.generate_key().decode()])
    ciphertext = box.encrypt("whsec_abc")
    assert b"whsec_abc" not in ciphertext
    assert box.decrypt(ciphertext) == "whsec_abc"


def test_key_rotation_old_keys_still_decrypt() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    stored = SecretBox([old]).encrypt("whsec_abc")
    rotated = SecretBox([new, old])
    assert rotated.decrypt(stored) == "whsec_abc"
    with pytest.raises(InvalidToken):
        SecretBox([old]).decrypt(rotated.encrypt("whsec_new"))


def test_settings_key_list_and_generated_key(tmp_path: Path) -> None:
    keys = [Fernet.generate_key().decode() for _ in range(2)]
    box = load_secret_box(Settings(secret_key=SecretStr(f"{keys[0]}, {keys[1]}")))
    # the first key encrypts, so a box holding only the second cannot read new ciphertexts
    assert SecretBox([keys[0]]).decrypt(box.encrypt("x")) == "x"
    with pytest.raises(InvalidToken):
        SecretBox([keys[1]]).decrypt(box.encrypt("x"))

    generated = load_secret_box(Settings(data_dir=tmp_path))
    key_file = tmp_path / "secret.key"
    assert key_file.stat().st_mode & 0o777 == 0o600
    again = load_secret_box(Settings(data_dir=tmp_path))
    assert again.decrypt(generated.encrypt("x")) == "x"
