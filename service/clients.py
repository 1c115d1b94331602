"""Who is calling: the client address (API.md "Limits"), the one answer the
rate limits, the password queue and the access line use. Imports nothing of
the service."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "-"
# Hops of X-Forwarded-For looked at, from the right: more is a loop or junk.
MAX_HOPS = 16
# An IPv6 client is keyed by its /64 (one host commonly holds the whole /64);
# a /48 is what one site or subscriber is usually given.
IPV6_CLIENT_PREFIX = 64
IPV6_SITE_PREFIX = 48


def client_address(peer: str | None, forwarded: str | None, trusted: Sequence[Network]) -> str:
    """The TCP peer; or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For entry that is not one. An entry that is not an address
    ends the walk at the last trusted hop, so a client cannot pick its own
    key by sending junk. An IPv4 address is the same client however it
    arrives: `::ffff:a.b.c.d` (a dual-stack socket) is `a.b.c.d`."""
    if not peer:
        return UNKNOWN
    if not trusted:  # the default: only the peer, an IPv4-mapped one unwrapped
        address = _address(peer) if peer.startswith(("::ffff:", "::FFFF:")) else None
        return peer if address is None else str(address)
    hop = _address(peer)
    if hop is None:
        return peer  # a unix socket's peer, as it is
    if not _is_trusted(hop, trusted):
        return str(hop)
    for entry in reversed((forwarded or "").split(",")[-MAX_HOPS:]):
        address = _address(entry)
        if address is None:
            break
        hop = address
        if not _is_trusted(hop, trusted):
            break
    return str(hop)


def address_key(client: str) -> str:
    """The key one client is counted under: its address, an IPv6 one cut to
    its /64. Anything that is not an address (a unix socket's peer) as it is."""
    if ":" not in client:
        return client
    return _network(client, IPV6_CLIENT_PREFIX) or client


def site_key(client: str) -> str | None:
    """The /48 an IPv6 client's /64 belongs to; None for anything else."""
    if ":" not in client:
        return None
    return _network(client, IPV6_SITE_PREFIX)


def _network(client: str, prefix: int) -> str | None:
    try:
        return str(ipaddress.IPv6Network(f"{client}/{prefix}", strict=False))
    except ValueError:
        return None


def _address(text: str) -> Address | None:
    """An address, as proxies write them: bare, `[v6]`, `v4:port` or `[v6]:port`."""
    text = text.strip()
    if text.startswith("["):
        text, closed, port = text[1:].partition("]")
        if not closed or (port and not port.startswith(":")):
            return None
    elif text.count(":") == 1:  # v4:port; a v6 address has at least two colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def _is_trusted(address: Address, trusted: Sequence[Network]) -> bool:
    return any(address in network for network in trusted)
