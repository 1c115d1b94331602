"""Who is calling: the client address (API.md "Limits"), the one answer the
rate limits and the access line use. Imports nothing of the service."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
UNKNOWN = "-"
# Hops of X-Forwarded-For looked at, from the right: more is a loop or junk.
MAX_HOPS = 16


def client_address(peer: str | None, forwarded: str | None, trusted: Sequence[Network]) -> str:
    """The TCP peer; or, when the peer is a trusted proxy, the right-most
    X-Forwarded-For entry that is not one. An entry that is not an address
    ends the walk at the last trusted hop, so a client cannot pick its own
    key by sending junk."""
    if not trusted or not peer:  # the default: no parsing at all
        return peer or UNKNOWN
    hop = _address(peer)
    if hop is None or not _is_trusted(hop, trusted):
        return peer
    for entry in reversed((forwarded or "").split(",")[-MAX_HOPS:]):
        address = _address(entry)
        if address is None:
            break
        hop = address
        if not _is_trusted(hop, trusted):
            break
    return str(hop)


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
