"""Settings: embedded defaults, overridden by a TOML file, then by `CHATAPP_*` variables.

Every value is validated once, at start-up; a bad one stops the process with a
single line that names the setting, so an operator never meets it later as a
confusing runtime error.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

ENV_PREFIX = "CHATAPP_"
# The push providers this server can use; `push_providers` enables some of them.
PUSH_PROVIDERS = ("log", "webhook", "webpush", "ntfy")
# Settings whose values are never repeated in an error message (URLs of
# databases may carry a password).
_SECRET_SUFFIXES = ("_secret", "database_url", "redis_url")


def _split_names(value: object) -> object:
    """A list may come as one string, as environment variables do: "log,webhook"."""
    if isinstance(value, str):
        return [name.strip() for name in value.split(",") if name.strip()]
    return value


class ConfigError(Exception):
    """A configuration value was refused; the message names the setting."""


class Settings(BaseModel):
    """Everything the server can be told. Field defaults are the embedded defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    data_dir: Path = Path("data")
    public_url: str | None = None
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "console"] = "auto"

    password_hash_time_cost: int = Field(default=2, ge=1, le=10)
    password_hash_memory_kib: int = Field(default=19456, ge=8, le=1048576)
    password_hash_parallelism: int = Field(default=1, ge=1, le=16)
    password_hash_threads: int = Field(default=2, ge=1, le=64)

    login_attempts_per_username: int = Field(default=10, ge=1)
    login_attempts_per_address: int = Field(default=50, ge=1)
    signups_per_address: int = Field(default=20, ge=1)
    # Who may sign up over HTTP: anyone ("open"), holders of an invite code an admin made
    # ("invite"), or nobody ("closed"); `chatapp create-user` works whatever it says.
    registration: Literal["open", "invite", "closed"] = "open"
    # Groups a user creates plus members they add, per window: putting people
    # into groups is how a stranger would reach them.
    group_changes_per_user: int = Field(default=60, ge=1)
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)

    heartbeat_interval_ms: int = Field(default=5000, ge=100, le=600_000)
    presence_timeout_ms: int = Field(default=30_000, ge=200, le=3_600_000)
    hello_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    connection_queue_size: int = Field(default=1024, ge=16, le=1_000_000)
    # Bytes the server holds for one connection that does not read, and for all
    # connections together; past either, the connection (the one holding most)
    # is closed with 1013 and catches up from the store when it comes back.
    connection_queue_bytes: int = Field(default=8 * 1024 * 1024, ge=65_536)
    outgoing_bytes_total: int = Field(default=256 * 1024 * 1024, ge=1_048_576)
    # The most message text one /sync page, replay batch or history page carries.
    page_max_bytes: int = Field(default=4 * 1024 * 1024, ge=65_536)
    # Messages older than this many days become deleted messages, in the
    # background (`chatapp.messaging.retention`); 0 keeps them forever.
    message_retention_days: int = Field(default=0, ge=0, le=36_500)
    max_connections: int = Field(default=16_000, ge=1)
    max_connections_per_user: int = Field(default=32, ge=1)
    send_rate_per_second: float = Field(default=20.0, gt=0)
    send_burst: int = Field(default=100, ge=1)
    # Browsers always send Origin; a WebSocket handshake from a page on another
    # site is refused unless its origin is listed here (the server's own
    # origin is always allowed). Clients that send no Origin are not browsers.
    allowed_origins: Annotated[list[str], BeforeValidator(_split_names)] = Field(
        default_factory=list
    )
    # Reverse proxies (addresses or networks) whose X-Forwarded-For is believed,
    # so per-address limits see clients rather than the proxy.
    trusted_proxies: Annotated[list[str], BeforeValidator(_split_names)] = Field(
        default_factory=list
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is not an address or network") from None
        return value

    push_providers: Annotated[list[str], BeforeValidator(_split_names)] = Field(
        default_factory=lambda: ["log"]
    )
    push_collapse_window_ms: int = Field(default=1000, ge=0, le=3_600_000)
    push_include_text: bool = True
    push_queue_size: int = Field(default=1000, ge=1, le=1_000_000)
    push_workers: int = Field(default=4, ge=1, le=256)
    push_timeout_ms: int = Field(default=5000, ge=10, le=600_000)
    push_retries: int = Field(default=3, ge=0, le=20)
    push_retry_base_ms: int = Field(default=500, ge=1, le=600_000)
    push_retry_max_ms: int = Field(default=30_000, ge=1, le=3_600_000, validate_default=True)
    # Cluster mode: how long after a message was accepted another node takes over its push
    # work, when the node that accepted it has not done it (it died). Only a delay: a
    # message is never pushed twice for it (chatapp/notify/pending.py).
    push_pending_lease_ms: int = Field(default=10_000, ge=100, le=3_600_000)
    push_allow_http_targets: bool = False
    # Web Push endpoints and ntfy topics are URLs users register; by default
    # the server refuses to send to private or local addresses with them.
    push_allow_private_targets: bool = False
    push_webhook_url: str = Field(default="", validate_default=True)
    push_webhook_secret: str = Field(default="", validate_default=True)
    push_vapid_subject: str = ""
    push_webpush_ttl_seconds: int = Field(default=86_400, ge=0, le=2_419_200)

    # Cluster mode: both set, the node keeps its data in PostgreSQL and talks
    # to the other nodes through Redis; neither, the embedded stores.
    database_url: str = ""
    redis_url: str = Field(default="", validate_default=True)
    node_id: str = Field(default="", max_length=100)
    cluster_name: str = Field(default="chatapp", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @field_validator("database_url")
    @classmethod
    def _database_url_is_postgresql(cls, value: str) -> str:
        if value and not value.startswith(("postgresql://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url_goes_with_database_url(cls, value: str, info: ValidationInfo) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        database_url = info.data.get("database_url", "")
        if bool(value) != bool(database_url):
            raise ValueError(
                "cluster mode needs both CHATAPP_DATABASE_URL and CHATAPP_REDIS_URL; set both"
                " or neither"
            )
        return value

    @field_validator("push_providers")
    @classmethod
    def _providers_are_known(cls, value: list[str]) -> list[str]:
        for name in value:
            if name not in PUSH_PROVIDERS:
                raise ValueError(f"unknown provider {name!r}; known: {', '.join(PUSH_PROVIDERS)}")
        if len(set(value)) != len(value):
            raise ValueError("a provider is named twice")
        return value

    @field_validator("push_retry_max_ms")
    @classmethod
    def _retry_max_covers_base(cls, value: int, info: ValidationInfo) -> int:
        base = info.data.get("push_retry_base_ms")
        if base is not None and value < base:
            raise ValueError("must not be below push_retry_base_ms")
        return value

    @field_validator("push_webhook_url")
    @classmethod
    def _webhook_url_when_enabled(cls, value: str, info: ValidationInfo) -> str:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if not value and "webhook" in info.data.get("push_providers", ()):
            raise ValueError("required when push_providers includes webhook")
        return value

    @field_validator("push_webhook_secret")
    @classmethod
    def _webhook_secret_when_enabled(cls, value: str, info: ValidationInfo) -> str:
        if "webhook" in info.data.get("push_providers", ()) and len(value) < 16:
            raise ValueError("at least 16 characters when push_providers includes webhook")
        return value

    @field_validator("push_vapid_subject")
    @classmethod
    def _vapid_subject_is_contact(cls, value: str) -> str:
        if value and not value.startswith(("mailto:", "https://")):
            raise ValueError("must be a mailto: or https:// URL")
        return value

    @field_validator("public_url")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/") if value is not None else None

    @property
    def base_url(self) -> str:
        """The URL clients are told to use; derived from host and port unless configured."""
        if self.public_url is not None:
            return self.public_url
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return "ws" + self.base_url.removeprefix("http") + "/ws"

    @property
    def cluster_mode(self) -> bool:
        return bool(self.database_url)

    @property
    def node_name(self) -> str:
        """This node's name in a cluster: `node_id`, else host and port."""
        return self.node_id or f"{self.host}:{self.port}"


def load_settings(
    *,
    config_file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build Settings from (lowest first) defaults, a TOML file, the environment, overrides.

    `CHATAPP_CONFIG` names a file when `config_file` is not given.
    """
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    file_path = config_file or (Path(env["CHATAPP_CONFIG"]) if env.get("CHATAPP_CONFIG") else None)
    if file_path is not None:
        values.update(_read_toml(file_path))
    values.update(_read_environment(env))
    values.update(overrides or {})
    try:
        return Settings(**values)
    except ValidationError as exc:
        raise ConfigError(_describe_first_error(exc, env)) from None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigError(f"config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path}: {exc}") from None
    # A section header is allowed so the file can grow other tables later.
    server = document.get("server", document)
    if not isinstance(server, dict):
        raise ConfigError(f"config file {path}: [server] must be a table")
    return dict(server)


def _read_environment(env: Mapping[str, str]) -> dict[str, str]:
    known = Settings.model_fields
    found: dict[str, str] = {}
    for key, value in env.items():
        if not key.startswith(ENV_PREFIX) or key == "CHATAPP_CONFIG":
            continue
        name = key.removeprefix(ENV_PREFIX).lower()
        if name not in known:
            raise ConfigError(f"{key}: unknown setting")
        found[name] = value
    return found


def _describe_first_error(exc: ValidationError, env: Mapping[str, str]) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "configuration"
    env_name = ENV_PREFIX + name.upper()
    source = env_name if env_name in env else name
    if error["type"] == "extra_forbidden":
        return f"{source}: unknown setting"
    if name.endswith(_SECRET_SUFFIXES):
        return f"{source}: {error['msg']}"
    return f"{source}: {error['msg']} (got {error.get('input')!r})"
