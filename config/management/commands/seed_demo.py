"""Seed the demo organization: Acme, its owner and agent, a support bot and its knowledge
(bots/demo/: an FAQ, a help article and an intent file), synced before it returns. Idempotent.

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
        credentials_path().write_text(json.dumps(passwords, indent=2))
        credentials_path().chmod(0o600)
        self.stdout.write(self.style.SUCCESS(f"Demo organization {organization.name} is ready."))
        for email, _name, role in DEMO_PEOPLE:
            name = users[email].display_name
            self.stdout.write(f"  {role:<6} {email}  password: {passwords[email]}  ({name})")
        self.stdout.write(f"  bot    {bot.name}  widget key: {bot.public_key}")

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

    def _verified_emails(self, users) -> None:
        # allauth asks for a verified primary address on some flows; demo ones are verified.
        from allauth.account.models import EmailAddress

        for user in users:
            EmailAddress.objects.update_or_create(
                user=user, email=user.email, defaults={"verified": True, "primary": True}
            )
