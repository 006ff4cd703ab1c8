"""Actions' scene: Acme's bot with `lookup_order` and `start_refund` pointed at a local server
standing in for the business (private addresses allowed for it, as an intranet instance would
set ACTIONS_ALLOW_PRIVATE_NETWORKS), and Globex's bot with an action of its own."""

import pytest

from actions.tests.business_server import BusinessServer
from actions.tests.factories import ActionFactory, RefundActionFactory

VERA = "vera-42"  # the verified customer's id, as the site signs it


@pytest.fixture
def business():
    server = BusinessServer()
    yield server
    server.close()


@pytest.fixture
def private_allowed(settings):
    settings.ACTIONS_ALLOW_PRIVATE_NETWORKS = True


@pytest.fixture
def lookup(acme_bot, business, private_allowed):
    return ActionFactory(bot=acme_bot, url_template=business.url + "/orders/{order_id}")


@pytest.fixture
def refund(acme_bot, business, private_allowed):
    return RefundActionFactory(bot=acme_bot, url_template=business.url + "/refunds")


@pytest.fixture
def globex_action(globex_bot):
    return ActionFactory(bot=globex_bot, name="globex_lookup")
