"""Push settings: lists from the environment, and a clear refusal of every bad value."""

from __future__ import annotations

import pytest

from chatapp.config import ConfigError, load_settings

WEBHOOK = {
    "CHATAPP_PUSH_PROVIDERS": "log, webhook",
    "CHATAPP_PUSH_WEBHOOK_URL": "https://relay.example.org/push",
    "CHATAPP_PUSH_WEBHOOK_SECRET": "sixteen or more characters",
}


def test_provider_lists_come_from_environment_strings() -> None:
    """CHATAPP_PUSH_PROVIDERS is comma-separated; an empty value turns push off."""
    assert load_settings(environ=WEBHOOK).push_providers == ["log", "webhook"]
    assert load_settings(environ={"CHATAPP_PUSH_PROVIDERS": ""}).push_providers == []
    assert load_settings(environ={}).push_providers == ["log"]
    settings = load_settings(environ={"CHATAPP_PUSH_INCLUDE_TEXT": "false"})
    assert settings.push_include_text is False


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"CHATAPP_PUSH_PROVIDERS": "log,fcm"}, "CHATAPP_PUSH_PROVIDERS"),
        ({"CHATAPP_PUSH_PROVIDERS": "log,log"}, "CHATAPP_PUSH_PROVIDERS"),
        ({**WEBHOOK, "CHATAPP_PUSH_WEBHOOK_URL": ""}, "CHATAPP_PUSH_WEBHOOK_URL"),
        ({**WEBHOOK, "CHATAPP_PUSH_WEBHOOK_URL": "relay:80"}, "CHATAPP_PUSH_WEBHOOK_URL"),
        ({**WEBHOOK, "CHATAPP_PUSH_WEBHOOK_SECRET": "short"}, "CHATAPP_PUSH_WEBHOOK_SECRET"),
        ({"CHATAPP_PUSH_COLLAPSE_WINDOW_MS": "-1"}, "CHATAPP_PUSH_COLLAPSE_WINDOW_MS"),
        ({"CHATAPP_PUSH_QUEUE_SIZE": "0"}, "CHATAPP_PUSH_QUEUE_SIZE"),
        ({"CHATAPP_PUSH_RETRY_BASE_MS": "60000"}, "push_retry_max_ms"),
        ({"CHATAPP_PUSH_VAPID_SUBJECT": "admin@example.org"}, "CHATAPP_PUSH_VAPID_SUBJECT"),
        ({"CHATAPP_PUSH_INCLUDE_TEXT": "perhaps"}, "CHATAPP_PUSH_INCLUDE_TEXT"),
    ],
)
def test_bad_push_values_are_refused_naming_the_setting(
    environ: dict[str, str], named: str
) -> None:
    """Each bad push value stops start-up with one line that names the setting."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ=environ)
    message = str(caught.value)
    assert message.startswith(named)
    assert "\n" not in message


def test_a_refused_secret_is_not_repeated() -> None:
    """The error about a webhook secret does not print the secret."""
    with pytest.raises(ConfigError) as caught:
        load_settings(environ={**WEBHOOK, "CHATAPP_PUSH_WEBHOOK_SECRET": "hunter2"})
    assert "hunter2" not in str(caught.value)
