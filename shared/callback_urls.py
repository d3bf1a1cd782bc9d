"""Callback URLs must not turn Veil into a proxy into its own network (server-side request forgery).

Only http(s) with a host name or public address; every address the name resolves to must be public,
unless the operator allows private ones. Checked when a job is submitted and again before each delivery,
since DNS can change in between.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

MAX_LENGTH = 2048


class UnsafeCallbackUrl(ValueError):
    """The reason is a fixed phrase, never the URL itself."""


def _is_public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not (address.is_private or address.is_loopback or address.is_link_local or address.is_multicast
                or address.is_reserved or address.is_unspecified or not address.is_global)


def resolve(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        raise UnsafeCallbackUrl("the callback host does not resolve") from None
    return [ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos]


def check_callback_url(url: str, *, allow_private: bool) -> str:
    if len(url) > MAX_LENGTH:
        raise UnsafeCallbackUrl("the callback URL is too long")
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeCallbackUrl("the callback URL is malformed") from None
    if parts.scheme not in ("http", "https"):
        raise UnsafeCallbackUrl("only http and https callback URLs are allowed")
    if not parts.hostname:
        raise UnsafeCallbackUrl("the callback URL has no host")
    if parts.username or parts.password:
        raise UnsafeCallbackUrl("credentials in callback URLs are not allowed")
    if not allow_private:
        addresses = resolve(parts.hostname, port)
        if not addresses or not all(_is_public(a) for a in addresses):
            raise UnsafeCallbackUrl("callbacks to loopback, private or reserved addresses are refused")
    return url
