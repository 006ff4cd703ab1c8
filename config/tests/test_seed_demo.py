import json

import pytest
from django.core.management import call_command

from bots.models import Bot, Membership, Organization, User
from chat import runner
from conversations import services
from conversations.models import Message
from conversations.tests.factories import ConversationFactory, CustomerFactory
from knowledge.models import KnowledgeSource

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
    names = {u.email: u.display_name for u in User.objects.all()}
    assert names == {"owner@acme.example": "Ada Moreno", "agent@acme.example": "Sam Rivera"}
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


def test_the_demo_bot_answers_as_soon_as_the_seed_returns(data_dir):
    """`make run` prints its URLs after seeding: by then the knowledge is synced, with no
    worker running, and the first customer question gets a grounded answer."""
    call_command("seed_demo")
    bot = Bot.objects.get(organization__name="Acme")
    statuses = set(KnowledgeSource.objects.filter(bot=bot).values_list("status", flat=True))
    assert statuses == {KnowledgeSource.Status.READY}

    conversation = ConversationFactory(customer=CustomerFactory(bot=bot))
    message, _ = services.message_add_user(
        conversation=conversation, text="How long does shipping take?"
    )
    list(runner.turn_run(message=message))
    answer = conversation.messages.get(sender=Message.Sender.AI)
    assert answer.outcome == "answered"
    assert "3 to 5 business days" in answer.text
    assert answer.citations


def test_it_gives_earlier_demo_people_real_names_but_keeps_chosen_ones(data_dir):
    """Demo rows seeded before names existed were called "Ada Owner" and "Sam Agent"."""
    from bots.tests.factories import UserFactory

    UserFactory(email="owner@acme.example", first_name="Ada", last_name="Owner", name="Ada Owner")
    UserFactory(email="agent@acme.example", first_name="Sam", name="Samantha")
    call_command("seed_demo")
    names = {u.email: u.display_name for u in User.objects.all()}
    assert names == {"owner@acme.example": "Ada Moreno", "agent@acme.example": "Samantha"}


def test_it_gives_the_demo_bot_its_actions_once_pointing_at_this_instance(data_dir, settings):
    from actions.models import Action

    settings.SITE_URL = "http://127.0.0.1:8000"
    call_command("seed_demo")
    settings.SITE_URL = "http://127.0.0.1:8200"  # `make run` on another port
    call_command("seed_demo")

    bot = Bot.objects.get(organization__name="Acme")
    actions = {a.name: a for a in Action.objects.filter(bot=bot)}
    assert set(actions) == {"lookup_order", "start_refund"}
    assert Action.objects.count() == 2
    lookup, refund = actions["lookup_order"], actions["start_refund"]
    assert lookup.url_template == (
        f"http://127.0.0.1:8200/demo/shop/api/{bot.public_key}/orders/{{order_id}}"
    )
    assert lookup.intent == "order_status" and lookup.audience == Action.Audience.VERIFIED
    assert refund.requires_confirmation and refund.limit_argument == "amount"
    assert refund.limit_max == 50
    intents = json.loads((settings.BASE_DIR / "bots" / "demo" / "acme-intents.json").read_text())
    order_status = next(i for i in intents["intents"] if i["tag"] == "order_status")
    assert "Where's my order 1234?" in order_status["patterns"]


def test_wheres_my_order_matches_the_intent_bound_to_lookup_order(data_dir):
    """Offline, the intent runs the action: the demo's question must land on it."""
    from actions.selectors import action_for_intent
    from knowledge.intents import intent_match
    from knowledge.retrieval import embed_query

    call_command("seed_demo")
    bot = Bot.objects.get(organization__name="Acme")
    for text in ("Where's my order 1234?", "where is order 1236", "Has order 1235 shipped?"):
        match = intent_match(bot=bot, text=text, vector=embed_query(bot, text))
        assert match is not None and match.accepted, (text, match)
        assert action_for_intent(bot=bot, intent=match.tag).name == "lookup_order"
