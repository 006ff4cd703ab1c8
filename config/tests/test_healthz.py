"""/healthz: ok or not for anyone; what each dependency said only for the instance's operator."""

from __future__ import annotations

import pytest

from config import checks

pytestmark = pytest.mark.django_db

SECRET_PATH = "/run/postgresql/.s.PGSQL.5432"


@pytest.fixture
def database_down(monkeypatch):
    def refuse():
        raise OSError(f'connection to server on socket "{SECRET_PATH}" failed')

    monkeypatch.setattr(checks, "check_database", refuse)


def test_anyone_learns_only_whether_it_is_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_an_outage_is_a_503_without_the_drivers_error(client, database_down):
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json() == {"status": "error"}
    assert SECRET_PATH not in response.content.decode()


def test_an_organizations_owner_sees_no_details(client, owner, database_down):
    client.force_login(owner)  # staff for their own tenant's admin, not the operator
    assert client.get("/healthz").json() == {"status": "error"}


def test_the_superuser_sees_every_dependency(client, superuser):
    client.force_login(superuser)
    data = client.get("/healthz").json()
    assert data["status"] == "ok"
    assert data["database"]["detail"].startswith("18")
    assert data["pgvector"]["detail"].startswith("0.8")
    assert data["channel_layer"]["ok"] is True


def test_the_health_token_shows_the_error_to_a_monitor(client, settings, database_down):
    settings.HEALTHZ_TOKEN = "monitor-token-123"
    data = client.get("/healthz", HTTP_AUTHORIZATION="Bearer monitor-token-123").json()
    assert data["status"] == "error"
    assert SECRET_PATH in data["database"]["error"]
    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer wrong").json() == {"status": "error"}


def test_an_unset_token_opens_nothing(client, settings, database_down):
    settings.HEALTHZ_TOKEN = ""
    assert client.get("/healthz", HTTP_AUTHORIZATION="Bearer ").json() == {"status": "error"}
