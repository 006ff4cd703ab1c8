import json

import pytest
from django.core.management import call_command

from bots.models import Bot, Membership, Organization, User

pytestmark = pytest.mark.django_db


@pytest.fixture
def data_dir(settings, tmp_path):
    settings.DATA_DIR = tmp_path
    return tmp_path


def test_it_seeds_acme_once_and_keeps_the_passwords(data_dir, client, capsys):
    call_command("seed_demo")
    first = json.loads((data_dir / "demo_credentials.json").read_text())
    call_command("seed_demo")
    second = json.loads((data_dir / "demo_credentials.json").read_text())

    assert first == second
    assert Organization.objects.filter(name="Acme").count() == 1
    assert Bot.objects.filter(organization__name="Acme").count() == 1
    roles = dict(Membership.objects.values_list("user__email", "role"))
    assert roles == {"owner@acme.example": "owner", "agent@acme.example": "agent"}
    out = capsys.readouterr().out
    assert first["owner@acme.example"] in out and first["agent@acme.example"] in out
    assert client.login(username="owner@acme.example", password=first["owner@acme.example"])


def test_it_repairs_a_lost_credentials_file(data_dir):
    call_command("seed_demo")
    (data_dir / "demo_credentials.json").unlink()
    call_command("seed_demo")
    passwords = json.loads((data_dir / "demo_credentials.json").read_text())
    assert User.objects.get(email="agent@acme.example").check_password(
        passwords["agent@acme.example"]
    )
