"""Shared fixtures: named personas, a live ASGI server, Chromium, and the CI gate.

Personas (STYLE.md): Ada owns Acme, Ian is Acme's admin, Sam is Acme's agent, Olga owns Globex
(another tenant, who must never see Acme's data), and Root is the superuser who self-hosts.
Customers: Carla, Dan and Vera (verified) chat with Acme's bot, Gus with Globex's.
"""

from __future__ import annotations

import os
import signal
import threading
import uuid
from functools import partial

import pytest

from bots.models import Role

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # Consumers reach the ORM from asgiref's worker threads; with persistent connections those
    # would outlive the test and block dropping the test database.
    from django.conf import settings

    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


@pytest.fixture(autouse=True)
def _no_adapter_training(settings, tmp_path_factory):
    # Fine-tuning a bot's adapter costs a minute of CPU per knowledge change; the tests that
    # are about it switch it on (knowledge/tests/test_adaptation.py). Adapters never land in
    # the developer's own data folder.
    settings.KNOWLEDGE_ADAPTER = False
    # No background model load in the test process: a live server forked while a thread is
    # importing torch would inherit its locks and hang.
    settings.EMBEDDING_PRELOAD = False
    settings.DATA_DIR = tmp_path_factory.getbasetemp() / "data"


@pytest.fixture(scope="session", autouse=True)
def _parses_remembered():
    """A file parsed once in the session is not parsed again in a new interpreter.

    Every upload is read in a fresh `python -m knowledge.isolation` (about 0.4 s), and hundreds
    of tests upload the same few files (Acme's demo knowledge above all). A parse is a pure
    function of its bytes, name, format, budget and target, so a successful one is remembered
    under those and handed out as a copy. Failures are never remembered: every budget, bomb
    and timeout test still runs its child. knowledge/tests/test_upload_budget.py calls
    isolation.parse_isolated itself, which stays the real one."""
    import copy
    import hashlib

    from knowledge import sync

    real = sync.parse_isolated
    parsed: dict[tuple, list] = {}

    def parse_isolated(*, filename, data, format, budget, **kwargs):
        key = (filename, format, repr(budget), repr(sorted(kwargs.items())))
        key += (hashlib.sha256(data).hexdigest(),)
        if key not in parsed:
            parsed[key] = real(filename=filename, data=data, format=format, budget=budget, **kwargs)
        return copy.deepcopy(parsed[key])

    sync.parse_isolated = parse_isolated
    yield
    sync.parse_isolated = real


@pytest.fixture(autouse=True)
def _in_process_channel_layer(request, settings):
    """In-process socket tests (channels' communicators) run on the in-memory channel layer, as
    `make test` does without REDIS_URL. channels-redis keeps state per layer instance across
    event loops, and every async test runs on a new loop: with REDIS_URL, CI hung three times on
    a console or widget socket test whose loop sat idle waiting for a channel-layer operation
    that never completed (pytest-timeout's stack dump: no thread busy, the loop in select).
    Production has one loop per process. channels-redis is exercised where it means something,
    across processes: the `redis` tests, and every browser test's live server (forked after this
    fixture, so it keeps the Redis layer)."""
    if "live_asgi_server" in request.fixturenames or request.node.get_closest_marker("redis"):
        return
    if settings.CHANNEL_LAYERS["default"]["BACKEND"] != "channels.layers.InMemoryChannelLayer":
        settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def _own_cache(settings):
    """Each test counts in a cache of its own (a key prefix; the live server's fork inherits
    it). With REDIS_URL the cache is shared and outlives the run: rate limits and the per-IP
    conversation cap counted every earlier test's chats from 127.0.0.1, and browser tests
    late in a run (or in a second run within the hour) were refused their conversation."""
    prefix = f"test-{uuid.uuid4().hex[:12]}"
    settings.CACHES = {
        alias: {**config, "KEY_PREFIX": prefix} for alias, config in settings.CACHES.items()
    }


# --- Personas ---------------------------------------------------------------------------------
@pytest.fixture
def acme(db):
    from bots.tests.factories import OrganizationFactory

    return OrganizationFactory(name="Acme", slug="acme")


@pytest.fixture
def globex(db):
    from bots.tests.factories import OrganizationFactory

    return OrganizationFactory(name="Globex", slug="globex")


def _member(organization, email, first, role):
    from bots.services import membership_add
    from bots.tests.factories import UserFactory

    user = UserFactory(email=email, first_name=first)
    membership_add(organization=organization, user=user, role=role)
    user.refresh_from_db()
    return user


@pytest.fixture
def owner(acme):
    return _member(acme, "ada@acme.example", "Ada", Role.OWNER)


@pytest.fixture
def admin_member(acme):
    return _member(acme, "ian@acme.example", "Ian", Role.ADMIN)


@pytest.fixture
def agent(acme):
    return _member(acme, "sam@acme.example", "Sam", Role.AGENT)


@pytest.fixture
def outsider(globex):
    """Owner of another organization: a signed-in, staff user with no rights in Acme."""
    return _member(globex, "olga@globex.example", "Olga", Role.OWNER)


@pytest.fixture
def superuser(db):
    from bots.tests.factories import UserFactory

    return UserFactory(email="root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def acme_bot(acme):
    from bots.tests.factories import BotFactory

    return BotFactory(organization=acme, name="Acme Support", slug="acme-support")


@pytest.fixture
def globex_bot(globex):
    from bots.tests.factories import BotFactory

    return BotFactory(organization=globex, name="Globex Helper", slug="globex-helper")


# --- Chat personas: Carla chats with Acme's bot (`carlas_chat`), Dan is another Acme customer,
# Vera is a verified Acme customer (signed user id), and Gus chats with Globex's bot. ---------


@pytest.fixture
def carla(acme_bot):
    from conversations.tests.factories import CustomerFactory

    return CustomerFactory(bot=acme_bot, name="Carla", visitor_id="carla-browser-1")


@pytest.fixture
def carlas_chat(carla):
    from conversations.tests.factories import ConversationFactory

    return ConversationFactory(customer=carla)


@pytest.fixture
def dan(acme_bot):
    from conversations.tests.factories import CustomerFactory

    return CustomerFactory(bot=acme_bot, name="Dan", visitor_id="dan-browser-1")


@pytest.fixture
def vera(acme_bot):
    from conversations.tests.factories import CustomerFactory

    return CustomerFactory(
        bot=acme_bot, name="Vera", visitor_id="vera-laptop-1", external_id="user-42"
    )


@pytest.fixture
def gus(globex_bot):
    from conversations.tests.factories import CustomerFactory

    return CustomerFactory(bot=globex_bot, name="Gus", visitor_id="gus-browser-1")


@pytest.fixture
def _broadcast_log(monkeypatch):
    """Events recorded as (group, event, payload), split by audience: the customer's and the
    organization's groups, and the console's."""
    customer_and_org, staff = [], []

    def record(group, event, **payload):
        (staff if group.startswith("staff.") else customer_and_org).append((group, event, payload))

    monkeypatch.setattr("config.realtime.broadcast", record)
    return customer_and_org, staff


@pytest.fixture
def broadcasts(_broadcast_log):
    """Events sent through config.realtime.broadcast to the customer's and the organization's
    groups, as (group, event, payload)."""
    return _broadcast_log[0]


@pytest.fixture
def staff_broadcasts(_broadcast_log):
    """Events sent to the console's groups (`staff.conv.<id>`) only."""
    return _broadcast_log[1]


# --- A live ASGI server (daphne: HTTP + WebSocket) on the test database -----------------------
def _forked_server_setup() -> None:
    """Thread pools do not survive fork: the child inherits their bookkeeping, not their
    threads. asgiref's one thread for thread-sensitive calls (channels' database_sync_to_async),
    used by earlier async tests in this process, would take work and never run it; the
    child's sockets then hang. torch's OpenMP pool likewise: one thread is plenty here."""
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from asgiref.sync import SyncToAsync

    SyncToAsync.single_thread_executor = ThreadPoolExecutor(max_workers=1)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


@pytest.fixture
def live_asgi_server(transactional_db, settings):
    """Daphne in a forked process serving the real ASGI app, static files included.

    Like channels' ChannelsLiveServerTestCase, as a pytest fixture. Needs transactional_db:
    the server is another process and sees only committed rows.
    """
    from channels.testing.live import make_application
    from daphne.testing import DaphneProcess
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.db import connections

    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]
    # Each test sets up the answers it checks: no sweep retrying them behind its back.
    settings.CHAT_RECOVER_EVERY_SECONDS = 0
    # The fork must not share the parent's open database sockets. It inherits the settings
    # as pytest-django left them, already naming the test database.
    connections.close_all()
    process = DaphneProcess(
        "127.0.0.1",
        partial(make_application, static_wrapper=ASGIStaticFilesHandler),
        setup=_forked_server_setup,
    )
    process.start()
    if not process.ready.wait(timeout=30):
        process.terminate()
        raise RuntimeError("the live daphne server did not start in 30 s")
    yield f"http://127.0.0.1:{process.port.value}"
    process.terminate()
    process.join(timeout=3)
    if process.is_alive():
        # Daphne waits for open sockets to close before it exits; the test is over, and
        # what it served is checked: nothing is lost by not waiting.
        process.kill()
        process.join(timeout=5)


# --- Chromium through Playwright --------------------------------------------------------------
def _browser_required() -> bool:
    return os.environ.get("HANDOFF_REQUIRE_BROWSER_TESTS") == "1"


# Every page a browser test opens is watched for Content-Security-Policy violations: a script,
# style or handler the policy refuses silently breaks a page (issue 12, finding 5).
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => console.error(
  `Content Security Policy violation: ${e.effectiveDirective} refused ${e.blockedURI || "inline"}` +
  ` in ${e.sourceFile || e.documentURI}:${e.lineNumber}`));
"""
_csp_violations: list[str] = []


def _watch_csp(context) -> None:
    context.add_init_script(CSP_WATCH)
    context.on(
        "console",
        lambda m: _csp_violations.append(m.text) if "Content Security Policy" in m.text else None,
    )


@pytest.fixture
def csp_violations() -> list[str]:
    """What the watch saw in this test; a test that provokes one on purpose clears it."""
    return _csp_violations


@pytest.fixture(autouse=True)
def _no_csp_violations(request):
    if request.node.get_closest_marker("browser") is None:
        yield
        return
    _csp_violations.clear()
    yield
    assert not _csp_violations, "\n".join(_csp_violations)


@pytest.fixture(scope="module")
def chromium():
    """One Chromium per browser test module.

    Playwright's sync API keeps an asyncio loop running in this thread while the browser
    lives, and Django then refuses ORM calls from it (the test's own and the database
    teardown). Test code here is synchronous, so that guard is lifted exactly while the
    browser is up, and only for browser modules.
    """
    if not os.path.exists(CHROMIUM):
        message = (
            f"Chromium not found at {CHROMIUM}: apt-get install chromium (or set CHROMIUM_PATH)."
        )
        if _browser_required():
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import expect, sync_playwright

    # Assertions wait as long as actions do (the contexts' 10 s). Playwright's 5 s default was
    # exceeded on CI's 2-core machine by a queue push (once in ~1,300 tests); with both cores
    # kept busy, three of four runs of the console's browser tests failed so (a customer's
    # "Talk to a person" answered after 5 s), none with a push lost. A lost push never arrives
    # however long the wait, so this hides no bug; how fast pushes are is `bench_escalation`'s.
    expect.set_options(timeout=10_000)
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        manager = sync_playwright()
        playwright = manager.__enter__()
        try:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            new_context = browser.new_context

            def watched_context(*args, **kwargs):
                context = new_context(*args, **kwargs)
                _watch_csp(context)
                return context

            browser.new_context = watched_context
            yield browser
            browser.close()
        finally:
            _stop_playwright(manager)
    finally:
        os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def _stop_playwright(manager, grace: float = 5.0) -> None:
    """Leave Playwright, killing its node driver if it does not exit by itself.

    Leaving waits for the driver to exit once its stdin closes. Under load, after some modules,
    that driver was seen never exiting (with no browser left) and the whole run hung at a
    module's end, its tests all passed. The browser is closed already; a driver still there
    after `grace` seconds is killed, so the wait ends and the run goes on."""
    process = manager._client._transport._proc if manager._client else None
    timer = None
    if process is not None:
        timer = threading.Timer(grace, _kill_quietly, args=(process.pid,))
        timer.daemon = True
        timer.start()
    try:
        manager.__exit__(None, None, None)
    finally:
        if timer is not None:
            timer.cancel()


def _kill_quietly(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


@pytest.fixture
def browser_context(chromium):
    context = chromium.new_context(viewport={"width": 1200, "height": 800})
    context.set_default_timeout(10_000)
    yield context
    context.close()


# --- The CI gate: required suites must have run and passed, not been skipped ------------------
_passed_markers: set[str] = set()


def pytest_runtest_logreport(report):
    if report.when == "call" and report.passed:
        for marker in ("browser", "redis"):
            if marker in report.keywords:
                _passed_markers.add(marker)


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    required = []
    if _browser_required():
        required.append(("browser", "HANDOFF_REQUIRE_BROWSER_TESTS"))
    if os.environ.get("HANDOFF_REQUIRE_REDIS_TESTS") == "1":
        required.append(("redis", "HANDOFF_REQUIRE_REDIS_TESTS"))
    missing = [(m, var) for m, var in required if m not in _passed_markers]
    if missing and session.exitstatus == 0:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        for marker, var in missing:
            reporter.write_line(
                f"FAILED: {var}=1 but no '{marker}' test ran and passed (skipped or deselected).",
                red=True,
            )
        session.exitstatus = 1


def pytest_unconfigure(config):
    """No child process outlives the run: multiprocessing joins its children at exit, so one
    left running (a live server whose test failed or was interrupted mid-setup) would keep a
    finished run from ever exiting, as seen once with a run that had printed its results."""
    import multiprocessing

    for child in multiprocessing.active_children():
        child.kill()
        child.join(timeout=5)
