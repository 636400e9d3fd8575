"""Every setting of hookpost, read from the environment with the prefix ``HOOKPOST_``.

One pydantic-settings class; the README's settings table lists each field.
"""

import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[IPNetwork]:
    """Comma-separated CIDR ranges (``127.0.0.0/8, ::1/128``); ValueError on a bad one."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]


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
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="Log level: debug, info, warning, error."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        default="auto",
        description="json (one object a line), text, or auto: text in a terminal, else json.",
    )
    metrics_port: int = Field(
        default=0,
        ge=0,
        le=65535,
        description="Port on which `hookpost worker` serves its own /metrics (0: none). With "
        "`hookpost run` the worker's metrics are on the API's /metrics.",
    )
    metrics_api_key: SecretStr | None = Field(
        default=None,
        min_length=16,
        description="A bearer token the API's /metrics requires (Prometheus: `authorization: "
        "{credentials_file: ...}`), good for nothing else; a missing or wrong one is answered "
        "401. Unset: /metrics is open, as scrapes from inside a private network usually are; "
        "set it when the API's port is reachable from outside. Not asked on "
        "HOOKPOST_METRICS_PORT, which is for a private network only.",
    )
    otel: bool = Field(
        default=False,
        description="FastAPI's native OpenTelemetry on the API (request spans, metrics, error "
        "logs) through the global OpenTelemetry providers. Off by default: even with no "
        "provider configured, it costs about a fifth of the API's CPU per request.",
    )
    db_pool_size: int = Field(
        default=10,
        ge=2,
        description="Database connections an API process holds at most (half for ingest and "
        "authentication, half for the other queries). A worker holds 5 of its own (claims, "
        "flushes, the wake-up listener) and upkeep 1 while it runs.",
    )
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
    validation_timeout_s: float = Field(
        default=1.0,
        gt=0,
        description="Longest a request's payloads may take to validate against their event "
        "type's schema; past it the request is refused (422) and the validation stopped.",
    )
    validation_processes: int = Field(
        default=2,
        ge=1,
        description="Validation processes per API process, started when first needed.",
    )
    worker_concurrency: int = Field(
        default=512,
        ge=1,
        le=10_000,
        description="Requests under way at once per worker process. Waiting on a slow receiver "
        "costs a socket, not CPU, so this is high: slow endpoints must not take every slot.",
    )
    worker_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Most deliveries claimed by one queue query."
    )
    worker_poll_s: float = Field(
        default=5.0,
        gt=0,
        description="Longest a worker sleeps without looking at the queue (it is woken at once "
        "by new events and at the next due retry).",
    )
    worker_flush_s: float = Field(
        default=0.02,
        gt=0,
        description="How long attempt results gather before they are written together.",
    )
    worker_grace_s: float = Field(
        default=10.0,
        ge=0,
        description="On SIGTERM/SIGINT, how long requests under way may finish before the rest "
        "are released to other workers.",
    )
    worker_dead_after_s: float = Field(
        default=10.0,
        ge=1.0,
        description="A worker whose heartbeat (every 2 s) stopped this long ago is dead: the "
        "deliveries it held go to other workers at once, without waiting for their leases.",
    )
    lease_s: float = Field(
        default=60.0,
        gt=0,
        description="How long a claimed delivery stays with its worker; a killed worker's "
        "deliveries are taken back after it. Keep it above the delivery timeout.",
    )
    delivery_timeout_s: float = Field(
        default=15.0, gt=0, description="Total time allowed for one webhook request."
    )
    delivery_connect_timeout_s: float = Field(
        default=5.0, gt=0, description="Time allowed to connect (TCP and TLS) to a receiver."
    )
    delivery_read_timeout_s: float = Field(
        default=10.0, gt=0, description="Longest wait for the next bytes of a response."
    )
    response_body_cap_bytes: int = Field(
        default=16 * 1024,
        ge=0,
        description="How much of a receiver's response body is read and logged; the rest is "
        "dropped.",
    )
    retry_base_s: float = Field(default=10.0, gt=0, description="Delay before the first retry.")
    retry_factor: float = Field(
        default=3.0, ge=1, description="Each retry waits this many times longer than the last."
    )
    retry_cap_s: float = Field(
        default=6 * 3600.0, gt=0, description="Longest delay between two attempts."
    )
    retry_jitter: float = Field(
        default=0.25,
        ge=0,
        le=1,
        description="Each delay is shortened by a random share up to this, so that retries "
        "of many deliveries spread out.",
    )
    retry_max_attempts: int = Field(
        default=20, ge=1, description="Attempts after which a delivery has failed."
    )
    retry_max_age_s: float = Field(
        default=3 * 86400.0,
        gt=0,
        description="Age after which a delivery is not retried any more (3 days, as Stripe).",
    )
    attempt_retention_days: float = Field(
        default=30.0, gt=0, description="How long attempts are kept."
    )
    event_retention_days: float = Field(
        default=30.0,
        gt=0,
        description="How long events are kept once all their deliveries have finished (their "
        "deliveries and attempts go with them).",
    )
    maintenance_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="How often a process that runs a worker runs retention and partition upkeep "
        "(one process at a time does it).",
    )
    partition_days_ahead: int = Field(
        default=7, ge=1, le=60, description="Days of attempt partitions made ahead of time."
    )
    worker_first_attempt_share: float = Field(
        default=0.25,
        ge=0,
        lt=1,
        description="Share of a worker's slots kept for first attempts: retries never fill it.",
    )
    defer_s: float = Field(
        default=0.25,
        gt=0,
        description="The least a delivery that its endpoint has no room for waits in the queue "
        "before it is looked at again.",
    )
    breaker_threshold: int = Field(
        default=5,
        ge=1,
        description="Failed attempts in a row after which an endpoint is probed by one attempt "
        "at a time (its circuit breaker opens).",
    )
    breaker_probe_s: float = Field(
        default=30.0, gt=0, description="Time between two probes of an endpoint in trouble."
    )
    disable_after_s: float = Field(
        default=5 * 86400.0,
        gt=0,
        description="An endpoint that failed every attempt for this long is disabled (5 days, "
        "as Svix).",
    )
    ops_tenant: str | None = Field(
        default=None,
        description="Tenant (id or uid) that receives hookpost's operational events "
        "(hookpost.endpoint.disabled, hookpost.endpoint.failing, hookpost.delivery.exhausted); "
        "unset: none are emitted.",
    )
    allowed_networks: str = Field(
        default="",
        description="Comma-separated CIDR ranges that webhooks may reach although they are not "
        "public (127.0.0.0/8 for local development). Empty: public addresses only.",
    )
    public_url: str | None = Field(
        default=None,
        description="The address your customers reach hookpost at (https://webhooks.example.com): "
        "the base of the portal links it issues. Unset: the address the request for the link "
        "was made to, which a backend on an internal name would hand out as it is.",
    )
    portal_name: str = Field(
        default="Webhooks",
        max_length=80,
        description="The product's name, shown at the top of the tenant portal.",
    )
    portal_color: str = Field(
        default="#3451b2",
        pattern=r"^#[0-9a-fA-F]{6}$",
        description="The portal's accent colour, as #rrggbb.",
    )
    portal_logo_url: str | None = Field(
        default=None,
        pattern=r"^https://[^\s\"'<>]+$",
        description="An https URL of the product's logo, shown in the portal's header.",
    )
    portal_frame_ancestors: str = Field(
        default="",
        pattern=r"^[a-zA-Z0-9:/.*\- ]*$",
        description="Space-separated origins whose pages may embed the tenant portal in an "
        "iframe (https://app.example.com). Empty: none. The portal's session cookie is "
        "SameSite=Strict, so the embedding page must be on the same site as hookpost.",
    )
    portal_offers_own_types: bool = Field(
        default=False,
        description="Whether the portal offers hookpost's own event types (hookpost.*: an "
        "endpoint disabled, ...) to tenants, in its catalog and when they add an endpoint. "
        "Off: they are the operator's alone.",
    )
    forwarded_allow_ips: str = Field(
        default="127.0.0.1,::1",
        pattern=r"^[0-9a-fA-F:.,/* ]*$",
        description="The addresses (or CIDR blocks, comma-separated; * for any) of the proxies "
        "whose X-Forwarded-Host, -For and -Proto are honoured. From anyone else they are "
        "dropped.",
    )
    https_only: bool = Field(
        default=False,
        description="Refuse plain http:// endpoint URLs (at creation and when sending).",
    )

    @field_validator("allowed_networks")
    @classmethod
    def _valid_networks(cls, value: str) -> str:
        parse_networks(value)
        return value

    @field_validator("public_url")
    @classmethod
    def _valid_public_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// address with a host")
        if parts.query or parts.fragment or parts.username or parts.password:
            raise ValueError("must hold no query, fragment or credentials")
        return value.rstrip("/")

    @property
    def secret_key_file(self) -> Path:
        return self.data_dir / "secret.key"
