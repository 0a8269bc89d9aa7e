"""Settings: embedded defaults, overridden by a TOML file, then by `CHATAPP_*` variables.

Every value is validated once, at start-up; a bad one stops the process with a
single line that names the setting, so an operator never meets it later as a
confusing runtime error.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

ENV_PREFIX = "CHATAPP_"


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
    rate_limit_window_seconds: float = Field(default=60.0, gt=0)

    heartbeat_interval_ms: int = Field(default=5000, ge=100, le=600_000)
    presence_timeout_ms: int = Field(default=30_000, ge=200, le=3_600_000)
    hello_timeout_ms: int = Field(default=10_000, ge=100, le=600_000)
    connection_queue_size: int = Field(default=1024, ge=16, le=1_000_000)

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
    return f"{source}: {error['msg']} (got {error.get('input')!r})"
