"""A generated month of history for the demo organization (the bot and people `seed_demo`
creates), so a new user's analytics dashboard is full on the first `make run`.

Every generated customer carries `attributes["demo"] = True` and a visitor id starting `demo-`:
that is what marks the data as demo (the dashboard says so) and what `--remove` deletes. The
conversations follow the product's own rules (README, "How a conversation ends"): see
_demo_conversations.py, which writes them one at a time, and _demo_script.py, what is said.

Running it again replaces the generated history (the demo customers are deleted first), so it
never doubles. `--if-new` does nothing when the organization has any history or its demo
history was removed once (`make run` uses it: a second run adds nothing, a removal sticks).

Rows are written with bulk_create, then their times moved into the past with one UPDATE per
table (set_fields), since auto_now_add overrides any value given on create.
"""

from __future__ import annotations

import random
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction
from django.utils import timezone

from analytics.management.commands._demo_conversations import Generator, Story
from analytics.management.commands._demo_script import NAMES
from analytics.services import rollups_refresh
from bots.demo_accounts import DEMO_BOT, DEMO_ORG, DEMO_PEOPLE
from bots.models import Bot, Organization, User
from conversations.models import Conversation, Customer, Message, Transition
from escalation.models import EscalationLog

Sender = Message.Sender
Resolution = Conversation.Resolution

VISITOR_PREFIX = "demo-"
# `--remove` leaves this in the data folder, so `--if-new` (make run) does not bring it back.
REMOVED_MARKER = "demo_history_removed"
# Conversations started per hour of the day (local time): quiet nights, busy office hours.
HOURLY = [1, 1, 1, 1, 1, 2, 3, 6, 10, 13, 14, 13, 11, 12, 13, 13, 12, 10, 8, 7, 6, 5, 3, 2]
# Mean conversations per day, Monday..Sunday.
DAILY = [52, 50, 48, 47, 42, 30, 26]


def demo_customers(organization: Organization):
    return Customer.objects.filter(bot__organization=organization, attributes__demo=True)


class Command(BaseCommand):
    help = (
        "Generate a month of demo history for the demo organization (replacing any generated "
        "before), or --remove it."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=60,
            # Two months: the dashboard's default 30 days then have 30 days before them to be
            # compared with (with one month, "vs previous period" read +2,000% everywhere).
            help="Days of history, ending yesterday (default 60).",
        )
        parser.add_argument("--seed", type=int, default=14, help="The same seed, the same history.")
        parser.add_argument(
            "--remove",
            action="store_true",
            help="Delete every demo customer of the demo organization with their conversations.",
        )
        parser.add_argument(
            "--if-new",
            action="store_true",
            help="Only if the organization has no conversations yet and its demo history was "
            "never removed (make run).",
        )

    def handle(self, *args, days, seed, remove, if_new, **options):
        organization = Organization.objects.filter(name=DEMO_ORG).first()
        bot = (
            organization
            and Bot.objects.filter(organization=organization, name=DEMO_BOT["name"]).first()
        )
        if not bot:
            raise CommandError(
                f"No demo organization {DEMO_ORG} with its bot: run `manage.py seed_demo` first."
            )
        marker = settings.DATA_DIR / REMOVED_MARKER
        if remove:
            customers, conversations = self.remove(organization)
            marker.write_text("The demo history was removed; make run does not add it again.\n")
            self.stdout.write(
                f"Removed {conversations} demo conversations of {customers} demo customers from "
                f"{organization.name}."
            )
            self.refresh(organization)
            return
        if if_new:
            if marker.exists():
                self.stdout.write("Demo history: removed earlier, not added again.")
                return
            history = Conversation.objects.filter(bot__organization=organization).exclude(
                channel=Conversation.Channel.PLAYGROUND
            )
            if history.exists():
                self.stdout.write(f"Demo history: {organization.name} has conversations already.")
                return
        if not 1 <= days <= 366:
            raise CommandError(f"--days is from 1 to 366, not {days}.")
        people = [email for email, _name, _role in DEMO_PEOPLE]
        agents = list(
            User.objects.filter(email__in=people, memberships__organization=organization).order_by(
                "email"
            )
        )
        if not agents:
            raise CommandError(
                f"{organization.name} has none of the demo people: run `manage.py seed_demo` first."
            )
        owners = [u for u in agents if u.email == people[0]] or agents
        with transaction.atomic():
            _, replaced = self.remove(organization)
            stories = self.generate(bot=bot, agents=agents, owner=owners[0], days=days, seed=seed)
        marker.unlink(missing_ok=True)
        ended = [s.fields.get("resolution") for s in stories]
        escalated = sum(1 for s in stories if s.escalation)
        what = ", ".join(f"{ended.count(r)} {r}" for r in Resolution.values)
        self.stdout.write(
            self.style.SUCCESS(
                f"Generated {len(stories)} demo conversations over {days} days for "
                f"{organization.name} ({what}; {escalated} escalated)"
                + (f", replacing {replaced} generated before." if replaced else ".")
            )
        )
        self.refresh(organization)

    def refresh(self, organization: Organization) -> None:
        # Every day of the organization, not only those touched: deleted conversations leave
        # no trace an incremental refresh could find (analytics/services.py).
        result = rollups_refresh(organization_id=organization.pk, full=True)
        self.stdout.write(
            f"Analytics rollups refreshed: {result.days} days in {result.seconds:.1f} s."
        )

    def remove(self, organization: Organization) -> tuple[int, int]:
        customers = demo_customers(organization)
        conversations = Conversation.objects.filter(customer__in=customers).count()
        count = customers.count()
        customers.delete()
        return count, conversations

    def generate(self, *, bot, agents, owner, days, seed) -> list[Story]:
        rng = random.Random(seed)
        zone = ZoneInfo(settings.TIME_ZONE)
        now = timezone.now()
        first = now.astimezone(zone).date() - timedelta(days=days)
        generator = Generator(rng=rng, bot=bot, agents=agents, owner=owner, now=now, zone=zone)
        stories = []
        for offset in range(days):
            day = first + timedelta(days=offset)
            mean = DAILY[day.weekday()]
            count = max(5, round(rng.gauss(mean, mean * 0.12)))
            hours = rng.choices(range(24), HOURLY, k=count)
            starts = sorted(
                datetime.combine(day, time(hour), tzinfo=zone)
                + timedelta(seconds=rng.uniform(0, 3599))
                for hour in hours
            )
            for start in starts:
                channel = (
                    Conversation.Channel.API if rng.random() < 0.15 else Conversation.Channel.WIDGET
                )
                story = generator.conversation(start, channel)
                if story is not None:
                    stories.append(story)
        self.save(bot, stories, rng, zone)
        return stories

    def save(self, bot, stories: list[Story], rng, zone) -> None:
        customers = []
        for i, s in enumerate(stories):
            named = rng.random() < 0.35 or s.channel == Conversation.Channel.API
            name = rng.choice(NAMES) if named else ""
            customers.append(
                Customer(
                    bot=bot,
                    # Random after the prefix: an unnamed visitor shows as "Visitor " and the
                    # id's first 8 characters (Customer.__str__), one per customer in the lists.
                    visitor_id=f"{VISITOR_PREFIX}{rng.getrandbits(64):016x}",
                    name=name,
                    email=f"{name.lower()}.{i}@example.com" if name else "",
                    attributes={"demo": True},
                )
            )
        Customer.objects.bulk_create(customers)
        conversations = []
        for s, customer in zip(stories, customers, strict=True):
            spoken = [at for m, at, _ in s.messages if m.sender != Sender.SYSTEM]
            conversations.append(
                Conversation(
                    bot=bot,
                    customer=customer,
                    channel=s.channel,
                    status=s.status,
                    assigned_agent=s.agent,
                    last_message_at=max(spoken),
                    **s.fields,
                )
            )
        Conversation.objects.bulk_create(conversations)
        messages, transitions, logs = [], [], []
        for s, conversation in zip(stories, conversations, strict=True):
            for message, _at, _reply_to in s.messages:
                message.conversation = conversation
                messages.append(message)
            transitions.extend(
                Transition(
                    conversation=conversation,
                    from_status=a,
                    to_status=b,
                    actor=actor,
                    reason=reason[:200],
                )
                for a, b, _at, actor, reason in s.transitions
            )
        Message.objects.bulk_create(messages, batch_size=2000)
        Transition.objects.bulk_create(transitions, batch_size=2000)
        for s, conversation in zip(stories, conversations, strict=True):
            if s.escalation:
                e = dict(s.escalation)
                index = e.pop("message")
                logs.append(
                    EscalationLog(
                        conversation=conversation,
                        message=s.message(index) if index is not None else None,
                        **e,
                    )
                )
        EscalationLog.objects.bulk_create(logs)
        # auto_now_add gave every row the present time: move each to when it happened.
        for s, customer, conversation in zip(stories, customers, conversations, strict=True):
            customer.created_at, customer.last_seen_at = s.start, s.last
            conversation.created_at = s.start
            conversation.updated_at = max(s.last, s.transitions[-1][2])
            for message, at, reply_to in s.messages:
                message.created_at = message.updated_at = at
                if reply_to is not None:
                    message.reply_to = s.message(reply_to)
        for transition, at in zip(
            transitions, (t[2] for s in stories for t in s.transitions), strict=True
        ):
            transition.created_at = at
        for log, s in zip(logs, (s for s in stories if s.escalation), strict=True):
            log.triggered_at = s.escalation["triggered_at"]
        set_fields(Customer, customers, ["created_at", "last_seen_at"])
        set_fields(Conversation, conversations, ["created_at", "updated_at"])
        set_fields(Message, messages, ["created_at", "updated_at", "reply_to"])
        set_fields(Transition, transitions, ["created_at"])
        set_fields(EscalationLog, logs, ["triggered_at"])


def set_fields(model, objects: list, names: list[str]) -> None:
    """Write `names` of the saved `objects` as they are on the instances, in one UPDATE.

    bulk_update does the same with a CASE per row: for a month of history (some 30,000 rows)
    it took 7 s of the command's 9, most of it compiling the expressions; one UPDATE from
    unnested arrays takes a fraction of a second."""
    if not objects:
        return
    quote = connection.ops.quote_name
    fields = [model._meta.get_field(name) for name in names]
    pk = model._meta.pk
    columns = [pk.column] + [f.column for f in fields]
    types = [pk.rel_db_type(connection)] + [
        f.rel_db_type(connection) if f.is_relation else f.db_type(connection) for f in fields
    ]
    arrays = [[o.pk for o in objects]] + [[getattr(o, f.attname) for o in objects] for f in fields]
    sets = ", ".join(f"{quote(c)} = v.{quote(c)}" for c in columns[1:])
    unnest = ", ".join(f"%s::{t}[]" for t in types)
    sql = (
        f"UPDATE {quote(model._meta.db_table)} AS t SET {sets} "
        f"FROM unnest({unnest}) AS v({', '.join(quote(c) for c in columns)}) "
        f"WHERE t.{quote(pk.column)} = v.{quote(pk.column)}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, arrays)
