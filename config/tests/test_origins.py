"""config.origins: this server's own origin is exact (scheme, host, port), default ports
written or not."""

from __future__ import annotations

import pytest

from config.origins import addressed_origin, origin_is_own, own_origins


@pytest.fixture(autouse=True)
def _site(settings):
    settings.SITE_URL = "https://support.acme.example"
    settings.ALLOWED_HOSTS = ["support.acme.example", "127.0.0.1"]


@pytest.mark.parametrize(
    ("origin", "own"),
    [
        ("https://support.acme.example", True),
        ("https://support.acme.example:443", True),  # the default port, written out
        ("HTTPS://Support.Acme.Example", True),
        ("http://support.acme.example", False),
        ("https://support.acme.example:8443", False),
        ("https://shop.acme.example", False),
        ("null", False),
        ("", False),
        (None, False),
    ],
)
def test_sites_origin_is_own_exactly(origin, own):
    assert origin_is_own(origin) is own


def test_the_origin_a_request_was_addressed_to_normalises_default_ports():
    addressed = addressed_origin(scheme="http", host="127.0.0.1:80")
    assert origin_is_own("http://127.0.0.1", addressed=addressed)
    assert not origin_is_own("http://127.0.0.1:8000", addressed=addressed)
    behind_proxy = addressed_origin(scheme="http", host="127.0.0.1", forwarded_proto="https")
    assert origin_is_own("https://127.0.0.1", addressed=behind_proxy)
    assert not origin_is_own("http://127.0.0.1", addressed=behind_proxy)


def test_a_host_outside_allowed_hosts_is_no_origin_of_ours():
    assert addressed_origin(scheme="http", host="evil.example:8000") is None
    assert addressed_origin(scheme="http", host=None) is None
    assert addressed_origin(scheme="gopher", host="127.0.0.1") is None


def test_own_origins_are_listed_once_each_as_browsers_write_them():
    addressed = addressed_origin(scheme="https", host="support.acme.example:443")
    assert own_origins(addressed=addressed) == ["https://support.acme.example"]
    local = addressed_origin(scheme="http", host="127.0.0.1:8000")
    assert own_origins(addressed=local) == [
        "https://support.acme.example",
        "http://127.0.0.1:8000",
    ]
