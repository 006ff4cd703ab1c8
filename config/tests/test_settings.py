"""Bad configuration fails loudly with a message that says what to fix; never a fallback."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from config.database import database_from_url
from config.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parents[2]


def test_env_helpers_parse_and_refuse(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    monkeypatch.setenv("X_INT", "12")
    monkeypatch.setenv("X_LIST", "a, b,,c")
    assert env_bool("X_BOOL") is True
    assert env_int("X_INT", 1) == 12
    assert env_list("X_LIST") == ["a", "b", "c"]
    assert env_bool("X_UNSET", True) is True
    monkeypatch.setenv("X_BOOL", "perhaps")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL='perhaps' is not a boolean"):
        env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "twelve")
    with pytest.raises(ImproperlyConfigured, match="not a whole number"):
        env_int("X_INT", 1)
    monkeypatch.setenv("X_INT", "70000")
    with pytest.raises(ImproperlyConfigured, match="outside 1..65535"):
        env_int("X_INT", 1, minimum=1, maximum=65535)


def test_it_parses_a_postgres_url():
    config = database_from_url("postgres://u:p@db.internal:6543/handoff")
    assert (config["HOST"], config["PORT"], config["NAME"], config["USER"]) == (
        "db.internal",
        6543,
        "handoff",
        "u",
    )


@pytest.mark.parametrize(
    "url,message",
    [
        ("mysql://u:p@host/db", "must be a PostgreSQL URL"),
        ("sqlite:///tmp/db.sqlite3", "must be a PostgreSQL URL"),
        ("not a url at all", "must be a PostgreSQL URL"),
        ("postgres://u:p@host:notaport/db", "DATABASE_URL is malformed"),
        ("postgres://u:p@host:5432", "names no database"),
    ],
)
def test_it_refuses_a_malformed_database_url(url, message):
    with pytest.raises(ImproperlyConfigured, match=message):
        database_from_url(url)


def _manage(*args, **env):
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**os.environ, "DEBUG": "1", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_malformed_database_url_stops_the_app_at_start():
    result = _manage("check", DATABASE_URL="mysql://root@localhost/handoff")
    assert result.returncode != 0
    assert "DATABASE_URL must be a PostgreSQL URL" in result.stderr


def test_an_unreachable_redis_stops_the_app_at_start():
    # Port 9 (discard) has nothing listening here: a REDIS_URL that does not answer.
    result = _manage("check", REDIS_URL="redis://127.0.0.1:9/0")
    assert result.returncode != 0
    assert "REDIS_URL=redis://127.0.0.1:9/0 does not answer" in result.stderr


def test_a_redis_url_with_the_wrong_scheme_is_refused():
    result = _manage("check", REDIS_URL="http://127.0.0.1:6379")
    assert result.returncode != 0
    assert "REDIS_URL must start with redis://" in result.stderr


def test_production_without_a_secret_key_is_refused():
    env = {k: v for k, v in os.environ.items() if k != "SECRET_KEY"}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=ROOT,
        env={**env, "DEBUG": "0"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_without_site_url_links_name_the_port_the_server_listens_on():
    env = {k: v for k, v in os.environ.items() if k != "SITE_URL"}
    result = subprocess.run(
        [
            sys.executable,
            "manage.py",
            "shell",
            "-v0",
            "-c",
            "from django.conf import settings; print(settings.SITE_URL)",
        ],
        cwd=ROOT,
        env={**env, "DEBUG": "1", "PORT": "8200"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "http://127.0.0.1:8200"


def test_a_site_url_that_is_not_an_http_url_is_refused():
    result = _manage("check", SITE_URL="support.example.com")
    assert result.returncode != 0
    assert "SITE_URL must be an absolute http(s) URL" in result.stderr


PRODUCTION = {
    "DEBUG": "0",
    "SECRET_KEY": "a-production-secret-key-that-is-long-and-random-0123456789abcdef",
    "SITE_URL": "https://support.example.com",
    "ALLOWED_HOSTS": "support.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://support.example.com",
    "BEHIND_PROXY": "1",
}


def test_production_settings_pass_djangos_deployment_checks():
    result = _manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.django_db
def test_production_over_https_redirects_http_and_sends_hsts(client, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31_536_000
    redirect = client.get("/accounts/login/")
    assert redirect.status_code == 301
    assert redirect["Location"].startswith("https://")
    secure = client.get("/accounts/login/", secure=True)
    assert "max-age=31536000" in secure["Strict-Transport-Security"]
    # A container's health check over plain http on the loopback is answered, not redirected.
    assert client.get("/healthz").status_code == 200
