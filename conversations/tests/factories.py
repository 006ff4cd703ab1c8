import factory

from bots.tests.factories import BotFactory
from conversations.models import Conversation, Customer, Message


class CustomerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Customer

    bot = factory.SubFactory(BotFactory)
    visitor_id = factory.Sequence(lambda n: f"visitor-{n:08d}")
    name = "Casey"


class ConversationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Conversation

    customer = factory.SubFactory(CustomerFactory)
    bot = factory.LazyAttribute(lambda o: o.customer.bot)


class MessageFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Message

    conversation = factory.SubFactory(ConversationFactory)
    sender = Message.Sender.USER
    text = factory.Sequence(lambda n: f"Message number {n}")
