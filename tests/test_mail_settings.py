"""Mail settings: production never silently "sends" into the development mailbox."""

from __future__ import annotations

import os

import pytest

from server.settings import SettingsError, load_settings


def env(**values: str) -> dict[str, str]:
    base = {key: os.environ[key] for key in ("DATABASE_URL", "REDIS_URL", "SECRET_KEY")}
    return {**base, **values}


def test_production_refuses_to_start_without_smtp() -> None:
    with pytest.raises(SettingsError, match="SMTP_URL is not set"):
        load_settings(env(PARLEY_ENV="production"))
    assert load_settings(env(PARLEY_ENV="production", MAIL_ENABLED="false")).mail.enabled is False
    configured = load_settings(env(PARLEY_ENV="production", SMTP_URL="smtps://u:p@mail.example:465"))
    assert configured.mail.smtp_url == "smtps://u:p@mail.example:465" and configured.production


def test_development_defaults_to_the_dev_mailbox_and_links_to_the_web_port() -> None:
    settings = load_settings(env(WEB_PORT="8120"))
    assert settings.mail.smtp_url is None and settings.mail.enabled
    assert settings.mail.public_url == "http://127.0.0.1:8120"
    assert load_settings(env(PUBLIC_URL="https://chat.example/")).mail.public_url == "https://chat.example"


@pytest.mark.parametrize(
    ("name", "value"),
    [("SMTP_URL", "http://mail.example"), ("PARLEY_ENV", "staging"), ("PUBLIC_URL", "chat")],
)
def test_malformed_mail_settings_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=name):
        load_settings(env(**{name: value}))
