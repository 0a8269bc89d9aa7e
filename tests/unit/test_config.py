"""Settings: defaults, file, environment, and a clear refusal of every bad value."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from chatapp.config import ConfigError, Settings, load_settings

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"


def test_no_configuration_serves_locally_on_8080() -> None:
    """With nothing set, the server listens on 127.0.0.1:8080 with its data in ./data."""
    settings = load_settings(environ={})
    assert (settings.host, settings.port, settings.data_dir) == ("127.0.0.1", 8080, Path("data"))
    assert settings.ws_url == "ws://127.0.0.1:8080/ws"


def test_documented_defaults_match_the_code() -> None:
    """config/chatapp.toml states the embedded defaults; it must never drift from them."""
    with (CONFIG_DIR / "chatapp.toml").open("rb") as handle:
        documented = tomllib.load(handle)["server"]
    defaults = Settings().model_dump()
    assert {key: defaults[key] for key in documented} == {
        key: Path(value) if key == "data_dir" else value for key, value in documented.items()
    }
    undocumented = set(defaults) - set(documented) - {"public_url"}
    assert not undocumented


def test_environment_overrides_file(tmp_path: Path) -> None:
    """CHATAPP_* variables win over the file, which wins over the defaults."""
    config = tmp_path / "c.toml"
    config.write_text('[server]\nport = 9000\nhost = "0.0.0.0"\n')
    settings = load_settings(config_file=config, environ={"CHATAPP_PORT": "9100"})
    assert (settings.host, settings.port) == ("0.0.0.0", 9100)


def test_public_url_gives_the_ws_url() -> None:
    """CHATAPP_PUBLIC_URL is what clients are told; ws_url is made from it."""
    settings = load_settings(environ={"CHATAPP_PUBLIC_URL": "https://chat.example.org/"})
    assert settings.base_url == "https://chat.example.org"
    assert settings.ws_url == "wss://chat.example.org/ws"


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CHATAPP_PORT": "eighty"}, "CHATAPP_PORT"),
        ({"CHATAPP_PORT": "70000"}, "CHATAPP_PORT"),
        ({"CHATAPP_PUBLIC_URL": "ftp://x"}, "CHATAPP_PUBLIC_URL"),
        ({"CHATAPP_LOG_LEVEL": "loud"}, "CHATAPP_LOG_LEVEL"),
        ({"CHATAPP_PRESENCE_TIMEOUT_MS": "-5"}, "CHATAPP_PRESENCE_TIMEOUT_MS"),
        ({"CHATAPP_NO_SUCH_THING": "1"}, "CHATAPP_NO_SUCH_THING"),
        (
            {"CHATAPP_DATABASE_URL": "mysql://x", "CHATAPP_REDIS_URL": "redis://r"},
            "CHATAPP_DATABASE_URL",
        ),
        ({"CHATAPP_DATABASE_URL": "postgresql://x"}, "redis_url"),
        ({"CHATAPP_REDIS_URL": "redis://localhost"}, "CHATAPP_REDIS_URL"),
        ({"CHATAPP_CLUSTER_NAME": "two words"}, "CHATAPP_CLUSTER_NAME"),
    ],
)
def test_bad_values_are_refused_naming_the_setting(environ: dict[str, str], named: str) -> None:
    """Each bad value stops start-up with one line that names the setting."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    message = str(caught.value)
    assert message.startswith(named)
    assert "\n" not in message


def test_bad_config_files_are_refused(tmp_path: Path) -> None:
    """A missing file, broken TOML or an unknown key in a file is refused clearly."""
    broken = tmp_path / "broken.toml"
    broken.write_text("port = = 1")
    unknown = tmp_path / "unknown.toml"
    unknown.write_text("[server]\nprot = 1\n")
    for path, expected in [
        (tmp_path / "missing.toml", "missing.toml"),
        (broken, "broken.toml"),
        (unknown, "prot: unknown setting"),
    ]:
        with pytest.raises(ConfigError, match=expected):
            load_settings(config_file=path, environ={})


def test_cluster_mode_needs_both_urls_and_hides_them_in_errors() -> None:
    """Both URLs set is cluster mode; neither is the embedded default; a password never leaks."""
    assert not load_settings(environ={}).cluster_mode
    both = load_settings(
        environ={
            "CHATAPP_DATABASE_URL": "postgresql://chat:pw@db/chat",
            "CHATAPP_REDIS_URL": "redis://cache:6379/0",
            "CHATAPP_PORT": "8081",
        }
    )
    assert both.cluster_mode
    assert both.node_name == "127.0.0.1:8081"
    with pytest.raises(ConfigError) as caught:
        load_settings(
            environ={"CHATAPP_DATABASE_URL": "mysql://chat:secret-pw@db", "CHATAPP_REDIS_URL": "r"}
        )
    assert "secret-pw" not in str(caught.value)
