"""config.netguard: the one client for addresses tenants type refuses private networks before it
connects, on the first request and on every redirect."""

from __future__ import annotations

import ipaddress

import httpx2 as httpx
import pytest

from config.netguard import AddressRefused, guarded_client

PUBLIC = "http://93.184.215.14/"  # an address literal: checked without a DNS lookup


class Network:
    """Stands for the internet: answers every request that gets past the guard, and records it.
    A request to the public page is redirected to `redirect_to` when that is set."""

    def __init__(self, redirect_to: str = "") -> None:
        self.redirect_to = redirect_to
        self.reached: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.reached.append(str(request.url))
        if self.redirect_to and str(request.url) == PUBLIC:
            return httpx.Response(302, headers={"Location": self.redirect_to})
        return httpx.Response(200, text="inside")


def _get(url: str, network: Network, *, allow_private: bool = False) -> httpx.Response:
    transport = httpx.MockTransport(network)
    with guarded_client(
        allow_private=allow_private, follow_redirects=True, transport=transport
    ) as http:
        return http.get(url)


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8000/admin/", "http://[::1]/", "http://10.0.0.5/"]
)
def test_it_refuses_a_private_address_without_connecting(url):
    network = Network()
    with pytest.raises(AddressRefused) as info:
        _get(url, network)
    assert info.value.ip is not None and not info.value.ip.is_global
    assert "is on a private network" in str(info.value)
    assert network.reached == []


def test_it_refuses_a_public_page_that_redirects_inward():
    network = Network(redirect_to="http://169.254.169.254/latest/meta-data/")
    with pytest.raises(AddressRefused) as info:
        _get(PUBLIC, network)
    assert info.value.ip == ipaddress.ip_address("169.254.169.254")
    assert network.reached == [PUBLIC], "the redirect's target was never requested"


def test_it_follows_a_redirect_to_another_public_address():
    network = Network(redirect_to="http://93.184.215.15/moved")
    assert _get(PUBLIC, network).text == "inside"
    assert network.reached == [PUBLIC, "http://93.184.215.15/moved"]


def test_private_addresses_pass_when_allowed():
    network = Network()
    assert _get("http://127.0.0.1/", network, allow_private=True).status_code == 200
    assert network.reached == ["http://127.0.0.1/"]


def test_it_refuses_what_is_not_http_even_when_private_networks_are_allowed():
    network = Network(redirect_to="file:///etc/passwd")
    with pytest.raises(AddressRefused, match="is not an http or https address"):
        _get(PUBLIC, network, allow_private=True)
    assert network.reached == [PUBLIC]
