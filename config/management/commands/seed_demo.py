"""Seed the demo organization: Acme, its owner and agent, a support bot, its knowledge
(bots/demo/: an FAQ, a help article and an intent file, synced before it returns) and its two
actions against the demo shop this instance serves (actions/demo.py): `lookup_order`, bound to
the order_status intent so it works offline, and `start_refund` (confirmed on a card; above $50
handed to a person). Idempotent.

It lives in the composition root (like `serve`): it puts knowledge and actions together.

Passwords are random per installation (never in the repository), kept in the data folder so a
second `make run` prints the same ones. Delete that file to rotate them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction

from actions.demo import DEMO_CUSTOMER
from actions.models import Action
from actions.services import action_put
from bots.demo_accounts import (
    DEMO_BOT,
    DEMO_ORG,
    DEMO_PEOPLE,
    PLACEHOLDER_NAMES,
    credentials_path,
    load_passwords,
)
from bots.models import Bot, Organization, User
from bots.services import bot_create, membership_add, organization_create
from knowledge.models import Chunk, KnowledgeSource
from knowledge.services import source_upload

# The demo organization's files, kept with its people (bots/demo_accounts.py).
DEMO_KNOWLEDGE = Path(settings.BASE_DIR) / "bots" / "demo"


class Command(BaseCommand):
    help = "Create (or refresh) the demo organization Acme with an owner, an agent and a bot."

    def handle(self, *args, **options):
        passwords = load_passwords()
        with transaction.atomic():
            users = {}
            for email, name, _role in DEMO_PEOPLE:
                user = User.objects.filter(email=email).first()
                if user is None:
                    user = User(email=email, username=email)
                if user.name in PLACEHOLDER_NAMES:
                    user.name = name
                # Make the stored password and the account agree, whichever was lost.
                password = passwords.get(email) or secrets.token_urlsafe(9)
                if not user.pk or not user.check_password(password):
                    user.set_password(password)
                user.save()
                passwords[email] = password
                users[email] = user

            organization = Organization.objects.filter(name=DEMO_ORG).first()
            owner = users[DEMO_PEOPLE[0][0]]
            if organization is None:
                organization = organization_create(name=DEMO_ORG, owner=owner)
            for email, _name, role in DEMO_PEOPLE:
                membership_add(organization=organization, user=users[email], role=role)
            self._verified_emails(users.values())

            bot = Bot.objects.filter(organization=organization, name=DEMO_BOT["name"]).first()
            if bot is None:
                bot = bot_create(organization=organization, **DEMO_BOT)

        self._knowledge(bot)
        self._actions(bot)
        credentials_path().write_text(json.dumps(passwords, indent=2))
        credentials_path().chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Demo organization {organization.name} is ready."))
        for email, _name, role in DEMO_PEOPLE:
            name = users[email].display_name
            self.stdout.write(f"  {role:<6} {email}  password: {passwords[email]}  ({name})")
        self.stdout.write(f"  bot    {bot.name}  widget key: {bot.public_key}")
        self.stdout.write(
            f"  actions lookup_order, start_refund → the demo shop (customer {DEMO_CUSTOMER}: "
            "orders 1234, 1235, 1236)"
        )

    def _knowledge(self, bot: Bot) -> None:
        for path in sorted(DEMO_KNOWLEDGE.iterdir()):
            data = path.read_bytes()
            source = KnowledgeSource.objects.filter(bot=bot, filename=path.name).first()
            unchanged = source and source.content_checksum == hashlib.sha256(data).hexdigest()
            if unchanged and source.status == KnowledgeSource.Status.READY:
                continue
            # Synced here, before `make run` prints its URLs: the demo bot answers from the
            # first message (in the worker it waited for the worker's start and its model load).
            source = source_upload(
                bot=bot, filename=path.name, data=data, source=source, sync_now=True
            )
            passages = Chunk.objects.filter(document__source=source).count()
            self.stdout.write(f"  knowledge {path.name}: {passages} passages synced")

    def _actions(self, bot: Bot) -> None:
        # Refreshed on every run: the shop is this instance, whose address may have changed.
        shop = f"{settings.SITE_URL.rstrip('/')}/demo/shop/api/{bot.public_key}"
        for name, fields in demo_actions(shop).items():
            action_put(bot=bot, name=name, **fields)

    def _verified_emails(self, users) -> None:
        # allauth asks for a verified primary address on some flows; demo ones are verified.
        from allauth.account.models import EmailAddress

        for user in users:
            EmailAddress.objects.update_or_create(
                user=user, email=user.email, defaults={"verified": True, "primary": True}
            )


ORDER_NUMBER = {
    "type": "string",
    "title": "order number",
    "description": "The order number, four to ten digits, e.g. 1234.",
    "pattern": "^\\d{4,10}$",
}


def demo_actions(shop: str) -> dict[str, dict]:
    """Acme's actions, calling the demo shop at `shop` (its API root for this bot)."""
    return {
        "lookup_order": {
            "description": "Look up one of the signed-in customer's orders by its order number: "
            "its status, items and expected delivery date.",
            "input_schema": {
                "type": "object",
                "properties": {"order_id": ORDER_NUMBER},
                "required": ["order_id"],
                "additionalProperties": False,
            },
            "method": Action.Method.GET,
            "url_template": shop + "/orders/{order_id}",
            "audience": Action.Audience.VERIFIED,
            "requires_confirmation": False,
            "confirmation_template": "",
            "limit_argument": "",
            "limit_max": None,
            "result_template": "Order {{ id }} ({{ items|join(', ') }}) is {{ status }}"
            "{% if status != 'delivered' %}, arriving {{ eta }}{% endif %}.",
            "progress_text": "Checking your order…",
            "intent": "order_status",
            "timeout_seconds": 5,
            "enabled": True,
        },
        "start_refund": {
            "description": "Start a refund of an amount in dollars on one of the signed-in "
            "customer's orders. Ask for the order number and the amount if not given.",
            "input_schema": {
                "type": "object",
                "properties": {
                    "order_id": ORDER_NUMBER,
                    "amount": {
                        "type": "number",
                        "exclusiveMinimum": 0,
                        "title": "refund amount",
                        "description": "The amount to refund, in dollars, e.g. 30.",
                        # Finds "$30" in a message without an LLM (ignored when validating).
                        "pattern": "\\$\\s?(\\d+(?:\\.\\d{1,2})?)",
                    },
                },
                "required": ["order_id", "amount"],
                "additionalProperties": False,
            },
            "method": Action.Method.POST,
            "url_template": shop + "/refunds",
            "audience": Action.Audience.VERIFIED,
            "requires_confirmation": True,
            "confirmation_template": "Refund ${{ '%.2f'|format(amount) }} for order "
            "{{ order_id }} to the card you paid with.",
            "limit_argument": "amount",
            "limit_max": 50,
            "result_template": "Your refund of ${{ amount }} for order {{ order_id }} has "
            "started (reference {{ refund_id }}). It reaches your card within {{ days }} "
            "business days.",
            "progress_text": "Starting your refund…",
            "intent": "",
            "timeout_seconds": 5,
            "enabled": True,
        },
    }
