"""The client address (service/clients.py): the TCP peer, or the right-most
untrusted X-Forwarded-For entry when the peer is a trusted proxy."""

from __future__ import annotations

import ipaddress

import pytest

from service.clients import MAX_HOPS, address_key, client_address, site_key

TRUSTED = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("fd00::/8"))


@pytest.mark.parametrize(
    ("peer", "forwarded", "client"),
    [
        # An untrusted peer is the client, whatever it claims.
        ("203.0.113.9", "198.51.100.1", "203.0.113.9"),
        ("203.0.113.9", None, "203.0.113.9"),
        # A trusted proxy: the entry it appended.
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # Several hops: skip every trusted one from the right; what the client
        # itself put on the left is never reached.
        ("10.0.0.2", "1.1.1.1, 198.51.100.1, 10.9.9.9, 10.1.1.1", "198.51.100.1"),
        ("fd00::2", "2001:db8::7, fd00::9", "2001:db8::7"),
        # Every hop trusted: the left-most one.
        ("10.0.0.2", "10.3.3.3, 10.4.4.4", "10.3.3.3"),
        # No header from a trusted proxy: the proxy itself.
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        # Ports and brackets, as some proxies write them.
        ("10.0.0.2", "198.51.100.1:5123", "198.51.100.1"),
        ("10.0.0.2", "[2001:db8::7]:443", "2001:db8::7"),
        ("10.0.0.2", "[2001:db8::7]", "2001:db8::7"),
        # An IPv4 client seen through an IPv6 socket.
        ("10.0.0.2", "::ffff:198.51.100.1", "198.51.100.1"),
        ("::ffff:10.0.0.2", "198.51.100.1", "198.51.100.1"),
        # Junk ends the walk at the last hop we trust: never a key the client picks.
        ("10.0.0.2", "garbage", "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1, garbage", "10.0.0.2"),
        ("10.0.0.2", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "198.51.100.1, unknown, 10.1.1.1", "10.1.1.1"),
        ("10.0.0.2", ",,, ,", "10.0.0.2"),
        ("10.0.0.2", "\x00\u202e; DROP TABLE", "10.0.0.2"),
        ("10.0.0.2", "1.2.3.4:5:6", "10.0.0.2"),
        ("10.0.0.2", "[::1", "10.0.0.2"),
        ("10.0.0.2", "999.1.1.1", "10.0.0.2"),
    ],
)
def test_the_client_address(peer, forwarded, client):
    assert client_address(peer, forwarded, TRUSTED) == client


def test_without_trusted_proxies_the_header_is_not_even_read():
    assert client_address("10.0.0.2", "198.51.100.1", ()) == "10.0.0.2"


def test_no_peer_is_unknown():
    assert client_address(None, "198.51.100.1", TRUSTED) == "-"
    assert client_address(None, None, ()) == "-"


def test_a_long_chain_of_trusted_hops_is_walked_only_so_far():
    chain = ", ".join(["198.51.100.1"] + [f"10.0.0.{i}" for i in range(1, 200)])
    assert client_address("10.0.0.2", chain, TRUSTED) == f"10.0.0.{200 - MAX_HOPS}"


@pytest.mark.parametrize("trusted", [(), TRUSTED])
def test_an_ipv4_client_on_a_dual_stack_socket_is_its_ipv4_address(trusted):
    assert client_address("::ffff:203.0.113.9", None, trusted) == "203.0.113.9"
    assert client_address("::FFFF:203.0.113.9", None, trusted) == "203.0.113.9"
    # Other IPv6 peers are left exactly as the socket wrote them.
    assert client_address("2001:db8::7", None, trusted) == "2001:db8::7"
    assert client_address("::1", None, trusted) == "::1"


@pytest.mark.parametrize(
    ("client", "key", "site"),
    [
        ("203.0.113.9", "203.0.113.9", None),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "2001:db8:1::/48"),
        ("2001:db8:1:ffff::1", "2001:db8:1:ffff::/64", "2001:db8:1::/48"),
        ("::1", "::/64", "::/48"),
        ("-", "-", None),
        ("/run/todo.sock", "/run/todo.sock", None),
    ],
)
def test_the_keys_a_client_is_counted_under(client, key, site):
    assert address_key(client) == key
    assert site_key(client) == site
