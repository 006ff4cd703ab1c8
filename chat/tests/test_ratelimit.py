"""Rate limits: fixed one-minute windows per visitor and per client IP, in the cache."""

import pytest

from chat import ratelimit
from chat.tests import fixtures_rt

fresh_rate_limits = fixtures_rt.fresh_rate_limits

pytestmark = pytest.mark.usefixtures("fresh_rate_limits")


@pytest.fixture
def clock(monkeypatch):
    """ratelimit's clock, set by the test: starts 20 s into a minute."""
    now = {"t": 1_000_040.0}
    monkeypatch.setattr(ratelimit.time, "time", lambda: now["t"])
    return now


def test_it_allows_the_limit_then_says_when_to_retry(clock):
    assert [ratelimit.hit("k", limit=3) for _ in range(3)] == [None, None, None]
    assert ratelimit.hit("k", limit=3) == 40  # the window ends 40 s from now


def test_a_new_window_starts_a_new_count(clock):
    for _ in range(3):
        ratelimit.hit("k", limit=3)
    assert ratelimit.hit("k", limit=3)
    clock["t"] += 40
    assert ratelimit.hit("k", limit=3) is None


def test_keys_are_counted_apart(clock):
    assert ratelimit.hit("a", limit=1) is None
    assert ratelimit.hit("b", limit=1) is None
    assert ratelimit.hit("a", limit=1)


def test_it_limits_each_visitor(settings, clock):
    settings.CHAT_RATE_PER_VISITOR = 2
    for _ in range(2):
        ratelimit.chat_message_check(bot_id=1, visitor="carla", ip="203.0.113.5")
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.chat_message_check(bot_id=1, visitor="carla", ip="203.0.113.5")
    assert refused.value.retry_after == 40
    assert "more than 2 messages a minute" in refused.value.message
    assert "wait 40 seconds" in refused.value.message
    # Another visitor behind the same address is not held back by Carla.
    ratelimit.chat_message_check(bot_id=1, visitor="dan", ip="203.0.113.5")


def test_it_limits_each_address_across_visitors_and_bots(settings, clock):
    settings.CHAT_RATE_PER_IP = 3
    for bot_id, visitor in [(1, "a"), (1, "b"), (2, "c")]:
        ratelimit.chat_message_check(bot_id=bot_id, visitor=visitor, ip="203.0.113.5")
    with pytest.raises(ratelimit.RateLimited) as refused:
        ratelimit.chat_message_check(bot_id=3, visitor="d", ip="203.0.113.5")
    assert "from your network" in refused.value.message
    ratelimit.chat_message_check(bot_id=3, visitor="d", ip="198.51.100.7")


def test_the_client_ip_is_the_peer_unless_behind_our_proxy(settings):
    settings.SECURE_PROXY_SSL_HEADER = None
    spoofed = "6.6.6.6, 198.51.100.7"
    assert ratelimit.client_ip(remote_addr="10.0.0.2", forwarded_for=spoofed) == "10.0.0.2"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    # Only the hop our proxy appended counts; what the client wrote before it is ignored.
    assert ratelimit.client_ip(remote_addr="10.0.0.2", forwarded_for=spoofed) == "198.51.100.7"
    assert ratelimit.client_ip(remote_addr="10.0.0.2", forwarded_for=None) == "10.0.0.2"
