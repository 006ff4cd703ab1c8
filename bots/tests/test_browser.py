"""In Chromium, through the real pages: sign in, and see the organization update live."""

import re

import pytest
from playwright.sync_api import expect

from bots.tests.factories import PASSWORD

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _sign_in(page, base, email):
    page.goto(f"{base}/accounts/login/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_the_owner_signs_in_through_the_login_page(
    live_asgi_server, browser_context, owner, acme_bot
):
    page = browser_context.new_page()
    _sign_in(page, live_asgi_server, owner.email)
    expect(page).to_have_url(re.compile(r"/o/acme/$"))
    expect(page.get_by_role("heading", name="Acme")).to_be_visible()
    expect(page.locator("#bot-list")).to_contain_text("Acme Support")


def test_a_wrong_password_is_refused_on_the_page(live_asgi_server, browser_context, owner):
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/accounts/login/")
    page.get_by_label("Email").fill(owner.email)
    page.get_by_label("Password").fill("wrong password")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_text("not correct")).to_be_visible()
    expect(page).to_have_url(re.compile(r"/accounts/login/"))


def test_a_new_bot_appears_live_on_a_colleagues_open_page(
    live_asgi_server, browser_context, chromium, owner, admin_member
):
    # Ian watches the organization page in his own browser; Ada creates a bot in hers.
    watching = chromium.new_context()
    ian = watching.new_page()
    _sign_in(ian, live_asgi_server, admin_member.email)
    expect(ian.locator("#bot-list")).to_contain_text("No bots yet")
    # Wait until the socket is open, or the push could race the subscription.
    expect(ian.locator("#live")).to_have_attribute("data-live", "on")

    ada = browser_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)
    ada.get_by_label("Name").fill("Returns desk")
    ada.get_by_role("button", name="Create bot").click()
    expect(ada.get_by_role("heading", name="Returns desk")).to_be_visible()

    expect(ian.locator("#bot-list")).to_contain_text("Returns desk", timeout=5_000)
    watching.close()


SIGN_UP_PASSWORD = "a-long-and-unusual-passphrase"


def _fill_passwords(page):
    page.get_by_label(re.compile(r"^Password:?$")).fill(SIGN_UP_PASSWORD)
    page.get_by_label("Password (again)").fill(SIGN_UP_PASSWORD)


def test_a_visitor_signs_up_with_their_name(live_asgi_server, browser_context):
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/")
    page.locator(".topbar").get_by_role("link", name="Sign up").click()
    page.get_by_label("Your name").fill("Lena Park")
    page.get_by_label("Email").fill("lena@initech.example")
    _fill_passwords(page)
    page.get_by_label("Organization").fill("Initech")
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page).to_have_url(re.compile(r"/o/initech/$"))
    expect(page.locator(".topbar").get_by_role("link", name="Lena Park")).to_be_visible()


def test_a_person_renames_themselves_from_the_top_bar(live_asgi_server, browser_context, agent):
    page = browser_context.new_page()
    _sign_in(page, live_asgi_server, agent.email)
    page.locator(".topbar").get_by_role("link", name="Sam").click()
    expect(page.get_by_role("heading", name="Your profile")).to_be_visible()

    page.get_by_label("Your name").fill("   ")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".errorlist")).to_contain_text("This field is required.")

    page.get_by_label("Your name").fill("Sam Rivera")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_contain_text("Your name is now Sam Rivera.")
    expect(page.get_by_label("Your name")).to_have_value("Sam Rivera")
    expect(page.locator(".topbar").get_by_role("link", name="Sam Rivera")).to_be_visible()


@pytest.fixture
def mail_folder(settings, tmp_path):
    """Mail the live server sends, as files: it runs in another process, with its own outbox.
    Request it before live_asgi_server so the server starts with these settings."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    settings.EMAIL_FILE_PATH = tmp_path / "mail"
    return settings.EMAIL_FILE_PATH


def _mails(folder):
    return [p.read_text() for p in sorted(folder.glob("*.log"))] if folder.exists() else []


def test_an_invited_agent_signs_up_into_the_organization(
    mail_folder, live_asgi_server, browser_context, chromium, owner
):
    ada = browser_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)
    ada.locator(".topbar").get_by_role("link", name="Members").click()
    ada.get_by_label("Email").fill("sam.rivera@example.com")
    ada.get_by_label("Name (optional)").fill("Sam Rivera")
    ada.locator("form[action$='/members/invite/']").get_by_label("Role").select_option("agent")
    ada.get_by_role("button", name="Send invitation").click()
    expect(ada.get_by_role("status")).to_contain_text("Invitation sent to sam.rivera@example.com")

    [invitation_mail] = _mails(mail_folder)
    assert "Hello Sam Rivera," in invitation_mail
    link = re.search(r"https?://\S+/invitations/\S+/", invitation_mail).group(0)
    path = re.sub(r"^https?://[^/]+", "", link)

    invitee_context = chromium.new_context()
    sam = invitee_context.new_page()
    sam.goto(f"{live_asgi_server}{path}")
    sam.get_by_role("link", name="Create your account").click()
    expect(sam.get_by_text("You're joining Acme as an agent.")).to_be_visible()
    expect(sam.get_by_label("Organization")).to_have_count(0)
    expect(sam.get_by_label("Email")).to_have_value("sam.rivera@example.com")
    expect(sam.get_by_label("Email")).to_have_attribute("readonly", "")
    expect(sam.get_by_label("Your name")).to_have_value("Sam Rivera")
    _fill_passwords(sam)
    sam.get_by_role("button", name="Sign up", exact=True).click()

    expect(sam).to_have_url(re.compile(r"/o/acme/$"))
    expect(sam.get_by_role("heading", name="Acme")).to_be_visible()
    expect(sam.locator(".topbar").get_by_role("link", name="Sam Rivera")).to_be_visible()
    assert len(_mails(mail_folder)) == 1, "no 'confirm your e-mail' after an invitation"
    invitee_context.close()


def test_an_invitee_can_sign_up_without_the_invitation(live_asgi_server, browser_context, owner):
    from bots.models import Role
    from bots.services import invitation_create

    invitation = invitation_create(
        organization=owner.memberships.get().organization,
        email="sam.rivera@example.com",
        role=Role.AGENT,
        invited_by=owner,
    )
    page = browser_context.new_page()
    page.goto(f"{live_asgi_server}/invitations/{invitation.token}/")
    page.get_by_role("link", name="Create your account").click()
    expect(page.get_by_text("You're joining Acme as an agent.")).to_be_visible()
    page.get_by_role("button", name="Sign up without the invitation").click()

    expect(page.get_by_text("You're joining")).to_have_count(0)
    page.get_by_label("Your name").fill("Sam Rivera")
    page.get_by_label("Email").fill("sam@rivera.example")
    _fill_passwords(page)
    page.get_by_label("Organization").fill("Rivera Repairs")
    page.get_by_role("button", name="Sign up", exact=True).click()
    expect(page).to_have_url(re.compile(r"/o/rivera-repairs/$"))


def test_an_owner_changes_a_role_and_removes_a_member_whose_open_page_closes(
    live_asgi_server, browser_context, chromium, owner, agent, admin_member
):
    # Sam has the organization page open in his own browser.
    watching = chromium.new_context()
    sam = watching.new_page()
    _sign_in(sam, live_asgi_server, agent.email)
    expect(sam.locator("#live")).to_have_attribute("data-live", "on")

    ada = browser_context.new_page()
    _sign_in(ada, live_asgi_server, owner.email)
    ada.goto(f"{live_asgi_server}/o/acme/members/")
    ian = ada.locator(f"li[data-member='{admin_member.email}']")
    ian.get_by_label(f"Role of {admin_member.display_name}").select_option("agent")
    ian.get_by_role("button", name="Change role").click()
    expect(ada.get_by_text(f"{admin_member.display_name} is now agent.")).to_be_visible()

    row = ada.locator(f"li[data-member='{agent.email}']")
    row.get_by_text("Remove…").click()
    row.get_by_role("button", name="Remove", exact=True).click()
    expect(ada.get_by_text("is no longer a member of Acme")).to_be_visible()
    expect(ada.locator(f"li[data-member='{agent.email}']")).to_have_count(0)

    # His socket is closed by the server and the page reloads into a page he may not see.
    expect(sam.locator("#bot-list")).to_have_count(0, timeout=10_000)
    watching.close()
