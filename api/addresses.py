"""Whether a URL our own worker is to connect to (a webhook's) reaches the public internet: decided
by the addresses its host resolves to, so every spelling of an address (127.1, 0177.0.0.1,
2130706433, localhost., [::1], a name that resolves to 10.0.0.5) is judged by where it leads.

A private, loopback, link-local or otherwise non-global address is refused unless
WEBHOOKS_ALLOW_PRIVATE_ADDRESSES is on (local development). The deliverer checks again, on the
address it actually connects to; this check at creation says so early.
"""

import ipaddress
import socket
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

Resolver = Callable[[str, int], Iterable[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (the system's resolver, as a connection would use it)."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def url_problem(url: str, *, allow_private: bool, resolver: Resolver | None = None) -> str | None:
    """What is wrong with `url` as a webhook's; None when every address it leads to is public.
    `resolver` defaults to the system's (`resolve`)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return "The webhook URL is not a valid URL."
    allowed_schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in allowed_schemes or not parts.hostname:
        return "The webhook URL must be an https:// URL."
    found = _addresses(parts.hostname, port, resolver or resolve)
    if not found:
        return f"The webhook URL's host {parts.hostname!r} does not resolve."
    if not allow_private and not all(is_public(address) for address in found):
        return "The webhook URL leads to a private, loopback or link-local address, which webhooks may not reach."
    return None


def _addresses(host: str, port: int, resolver: Resolver) -> list[str]:
    try:
        return list(resolver(host, port))
    except (OSError, UnicodeError):
        return []


def is_public(address: str) -> bool:
    """A global unicast address: not private, loopback, link-local, multicast, reserved or unspecified
    (an IPv4 address mapped into IPv6 is judged as the IPv4 address it is)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast
