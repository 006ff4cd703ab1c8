"""The weekly knowledge-gaps e-mail (analytics/digest.py): who gets it, what it says, the
empty week, the opt-out on the profile page and the unsubscribe link."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core import mail
from django_q.models import Schedule

from analytics import digest, tasks
from analytics.tests.gapbuilders import asked
from bots.models import Membership, Role
from bots.services import membership_add
from bots.tests.factories import UserFactory

pytestmark = pytest.mark.django_db


def membership(user, organization=None) -> Membership:
    memberships = Membership.objects.filter(user=user)
    if organization is not None:
        memberships = memberships.filter(organization=organization)
    return memberships.get()


def test_owners_get_last_weeks_gaps_with_links_and_an_unsubscribe_link(
    acme, shop, owner, admin_member, agent
):
    question = asked(shop, "Do you ship to Canada?", days_ago=1)
    asked(shop, "Do you deliver to Canada?", days_ago=2)

    sent = digest.digests_send()

    assert (sent.emails, sent.empty, sent.failed) == (1, 0, 0)
    (email,) = mail.outbox
    assert email.to == [owner.email]  # not the admin, not the agent
    assert email.subject == "Acme: 2 questions your bots could not answer last week"
    html = email.alternatives[0][0]
    for body in (email.body, html):
        assert "Do you ship to Canada?" in body and "Do you deliver to Canada?" in body
        assert f"/o/acme/conversations/{question.conversation_id}/" in body
        assert digest.unsubscribe_url(membership(owner)) in body
    assert (
        email.extra_headers["List-Unsubscribe"] == f"<{digest.unsubscribe_url(membership(owner))}>"
    )


def test_an_empty_week_sends_nothing(acme, shop, owner):
    asked(shop, "Do you ship to Canada?", days_ago=10)  # the week before last

    sent = digest.digests_send()

    assert (sent.organizations, sent.emails, sent.empty) == (1, 0, 1)
    assert mail.outbox == []


def test_an_owner_who_opted_out_gets_nothing(acme, shop, owner):
    Membership.objects.filter(user=owner).update(gaps_digest=False)
    asked(shop, "Do you ship to Canada?", days_ago=1)

    assert digest.digests_send().emails == 0
    assert mail.outbox == []


def test_olga_gets_globexs_gaps_never_acmes(acme, shop, owner, outsider, gus):
    asked(shop, "Do you ship to Canada?", days_ago=1)
    asked(gus.bot, "Do you sell spare parts?", customer=gus, days_ago=1)

    digest.digests_send()

    mails = {m.to[0]: m for m in mail.outbox}
    assert set(mails) == {owner.email, outsider.email}
    olgas = mails[outsider.email]
    assert "spare parts" in olgas.body and "Canada" not in olgas.body
    assert "Canada" not in olgas.alternatives[0][0]
    assert "spare parts" not in mails[owner.email].body


def test_an_owner_of_two_organizations_gets_one_mail_each(acme, globex, shop, owner, gus):
    membership_add(organization=globex, user=owner, role=Role.OWNER)
    asked(shop, "Do you ship to Canada?", days_ago=1)
    asked(gus.bot, "Do you sell spare parts?", customer=gus, days_ago=1)

    digest.digests_send()

    subjects = sorted(m.subject.split(":")[0] for m in mail.outbox if m.to == [owner.email])
    assert subjects == ["Acme", "Globex"]


def test_the_unsubscribe_link_asks_then_stops_the_email(client, acme, owner):
    url = urlsplit(digest.unsubscribe_url(membership(owner))).path

    page = client.get(url)  # a mail scanner following the link unsubscribes no one
    assert page.status_code == 200 and "Stop these e-mails" in page.content.decode()
    assert membership(owner).gaps_digest is True

    done = client.post(url)  # no CSRF token: mail clients' RFC 8058 one-click POST
    assert done.status_code == 200 and "no longer gets" in done.content.decode()
    assert membership(owner).gaps_digest is False


def test_a_bad_or_foreign_unsubscribe_link_is_a_404(client, acme, owner, outsider):
    token = digest.unsubscribe_token(membership(owner))

    assert client.post(f"/o/acme/analytics/gaps/unsubscribe/{token}x/").status_code == 404
    # Acme's token under Globex's address names no Globex membership.
    assert client.post(f"/o/globex/analytics/gaps/unsubscribe/{token}/").status_code == 404
    assert membership(owner).gaps_digest is True
    assert membership(outsider).gaps_digest is True


def test_an_owner_turns_the_email_off_and_on_from_the_profile(client, acme, owner):
    client.force_login(owner)
    page = client.get("/accounts/profile/").content.decode()
    assert "Weekly knowledge gaps of Acme" in page

    client.post("/accounts/profile/", {"form": "gaps_digest"})
    assert membership(owner).gaps_digest is False

    client.post("/accounts/profile/", {"form": "gaps_digest", "gaps_digest": membership(owner).pk})
    assert membership(owner).gaps_digest is True


def test_the_profile_toggle_reaches_only_ones_own_owner_memberships(
    client, acme, owner, agent, outsider
):
    client.force_login(agent)
    assert "Weekly knowledge gaps" not in client.get("/accounts/profile/").content.decode()

    client.force_login(outsider)
    # Olga names Ada's membership: only her own switches are read, so Ada's stays on.
    client.post("/accounts/profile/", {"form": "gaps_digest", "gaps_digest": membership(owner).pk})
    assert membership(owner).gaps_digest is True
    assert membership(outsider).gaps_digest is False


def test_the_worker_sends_it_weekly(acme, shop, owner):
    schedule = Schedule.objects.get(func="analytics.tasks.analytics_gaps_digest")
    assert (schedule.schedule_type, schedule.repeats) == ("W", -1)
    assert schedule.next_run.weekday() == 0  # Monday
    asked(shop, "Do you ship to Canada?", days_ago=1)

    assert tasks.analytics_gaps_digest() == {
        "organizations": 1,
        "emails": 1,
        "empty": 0,
        "failed": 0,
    }


def test_a_failed_address_does_not_stop_the_others(acme, shop, owner, monkeypatch):
    second = UserFactory(email="bo@acme.example")
    membership_add(organization=acme, user=second, role=Role.OWNER)
    asked(shop, "Do you ship to Canada?", days_ago=1)
    real = digest._send

    def flaky(organization, member, *args):
        if member.user_id == owner.pk:
            raise OSError("smtp down")
        return real(organization, member, *args)

    monkeypatch.setattr(digest, "_send", flaky)

    sent = digest.digests_send()

    assert (sent.emails, sent.failed) == (1, 1)
    assert [m.to for m in mail.outbox] == [["bo@acme.example"]]
