import factory

from bots.tests.factories import BotFactory
from escalation.models import BusinessHours, EscalationRule, Holiday


class EscalationRuleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EscalationRule

    bot = factory.SubFactory(BotFactory)
    position = factory.Sequence(lambda n: (n + 1) * 10)
    name = factory.Sequence(lambda n: f"Rule {n}")
    trigger = "keywords"
    phrases = "refund"


class BusinessHoursFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = BusinessHours

    bot = factory.SubFactory(BotFactory)
    timezone = "Europe/Berlin"


class HolidayFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Holiday

    bot = factory.SubFactory(BotFactory)
    name = "Holiday"
