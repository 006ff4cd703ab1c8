import pytest

from audit import selectors
from bots.models import Membership

IP = "203.0.113.9"


@pytest.fixture
def audit_rows(owner):
    """The rows of Acme's audit log as its owner reads them (audit.describe.Entry), newest
    first; optionally only those of one label."""

    def rows(label=None, **filters):
        membership = Membership.objects.get(user=owner, organization__slug="acme")
        page = selectors.audit_page(membership=membership, filters=selectors.Filters(**filters))
        return [e for e in page.object_list if label is None or e.label == label]

    return rows
