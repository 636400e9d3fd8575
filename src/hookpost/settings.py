"""Every setting of hookpost, read from the environment with the prefix ``HOOKPOST_``.

One pydantic-settings class; the README's settings table lists each field.
"""

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """hookpost's configuration. Each field is read from ``HOOKPOST_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="HOOKPOST_", extra="ignore")

    database_url: str | None = Field(
        default=None,
        description="Postgres URL (postgresql://user:pass@host/db). Unset: an embedded Postgres "
        "is started in data_dir.",
    )
    data_dir: Path = Field(
        default=Path(".hookpost"),
        description="Where the embedded Postgres and the generated encryption key live.",
    )
    admin_api_key: SecretStr | None = Field(
        default=None,
        description="An admin API key accepted in addition to the keys stored in the database.",
    )
    secret_key: SecretStr | None = Field(
        default=None,
        description="Comma-separated Fernet keys that encrypt endpoint secrets at rest; the first "
        "encrypts, all decrypt. Unset: a key is generated once into data_dir/secret.key.",
    )
    host: str = Field(default="127.0.0.1", description="Address the API listens on.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port the API listens on.")
    log_level: str = Field(default="info", description="Log level: debug, info, warning, error.")
    db_pool_size: int = Field(default=10, ge=1, description="Database connections per process.")
    db_connect_timeout_s: float = Field(
        default=30.0, gt=0, description="How long start-up waits for the database."
    )
    max_payload_bytes: int = Field(
        default=256 * 1024, ge=1, description="Largest accepted event payload, in bytes."
    )
    max_request_bytes: int = Field(
        default=10 * 1024 * 1024,
        ge=1,
        description="Largest accepted request body (a batch of events), in bytes; larger "
        "requests are refused before they are read.",
    )

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"
