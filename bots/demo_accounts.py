"""The demo organization's people and where their passwords are kept: read by the seed
(config/management/commands/seed_demo.py, which also gives the demo bot its knowledge and
actions) and
by `serve`, which prints the sign-ins.

Passwords are random per installation (never in the repository), kept in the data folder so a
second `make run` prints the same ones. Delete that file to rotate them.
"""

from __future__ import annotations

import json

from django.conf import settings

from bots.models import Role

DEMO_ORG = "Acme"
DEMO_PEOPLE = [
    ("owner@acme.example", "Ada Moreno", Role.OWNER),
    ("agent@acme.example", "Sam Rivera", Role.AGENT),
]
DEMO_BOT = {
    "name": "Acme Support",
    "greeting": "Hi! I'm Acme's assistant. Ask me about orders, shipping, returns or your account.",
    "colour": "#2563eb",
}
# What earlier versions called them; a name a demo user chose on their profile stays.
PLACEHOLDER_NAMES = {"", "Ada Owner", "Sam Agent"}


def credentials_path():
    return settings.DATA_DIR / "demo_credentials.json"


def load_passwords() -> dict[str, str]:
    try:
        return json.loads(credentials_path().read_text())
    except (FileNotFoundError, ValueError):
        return {}
