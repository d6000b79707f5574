"""Where a webhook may point: a public address over https, checked again at connect time.

A controller types a URL; without this check it could make the platform call the cloud's
metadata service, a database in the VPC or a port on the host. Both checks resolve the name and
judge every address it resolves to, so a name with one public and one private record is refused,
and the dispatcher connects to the very address that passed (`resolve_public`), so a DNS answer
that changes between check and connect gains nothing.

The list of refused networks is explicit rather than `ipaddress.is_global`, whose meaning
changed between Python 3.11 (local) and 3.13 (Lambda).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from rightsdesk.kernel.errors import InvalidInput

FIELD = "webhook_url"
MAX_URL_LENGTH = 2048

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "169.254.170.2", "169.254.169.253")
)

_V4_REFUSED = tuple(
    ipaddress.IPv4Network(n)
    for n in (
        "0.0.0.0/8",  # "this network", the unspecified address
        "10.0.0.0/8",
        "100.64.0.0/10",  # carrier-grade NAT
        "127.0.0.0/8",
        "169.254.0.0/16",  # link-local, the metadata service
        "172.16.0.0/12",
        "192.0.0.0/24",  # IETF protocol assignments
        "192.0.2.0/24",  # documentation
        "192.88.99.0/24",  # 6to4 relay anycast
        "192.168.0.0/16",
        "198.18.0.0/15",  # benchmarking
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",  # multicast
        "240.0.0.0/4",  # reserved, broadcast
    )
)

# Only global unicast (2000::/3) may be reached, minus these; everything else is refused outright.
_V6_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_V6_REFUSED = tuple(
    ipaddress.IPv6Network(n)
    for n in (
        "2001::/23",  # IETF protocol assignments, Teredo among them
        "2001:db8::/32",  # documentation
        "3fff::/20",  # documentation
    )
)
# Addresses that carry an IPv4 address inside: judged by that address.
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


class UnsafeUrl(InvalidInput):
    """A webhook URL that must not be called. `fields` names the reason as a stable code."""

    code = "webhook_url_refused"


def _refuse(reason: str, message: str) -> UnsafeUrl:
    return UnsafeUrl(message, fields={FIELD: reason})


def embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, NAT64 or 6to4), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_loopback(address: IPAddress) -> bool:
    inner = embedded_ipv4(address)
    return (inner or address).is_loopback


def is_public(address: IPAddress) -> bool:
    """True when `address` is an ordinary internet address (what a controller's endpoint has)."""
    if address in METADATA_ADDRESSES:
        return False
    inner = embedded_ipv4(address)
    if inner is not None:
        return is_public(inner)
    if isinstance(address, ipaddress.IPv4Address):
        return not any(address in network for network in _V4_REFUSED)
    return address in _V6_GLOBAL_UNICAST and not any(address in network for network in _V6_REFUSED)


def _parse(url: str, allow_loopback_http: bool) -> tuple[str, str, int]:
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
        raise _refuse("invalid_url", "the webhook URL is not a valid URL")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise _refuse("invalid_url", "the webhook URL is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not allow_loopback_http):
        raise _refuse("https_required", "the webhook URL must use https")
    # user:password@ invites parser confusion (`https://good@169.254.169.254`); signatures authenticate instead.
    if parts.username is not None or parts.password is not None:
        raise _refuse("credentials_in_url", "the webhook URL must not contain a user name or password")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise _refuse("invalid_url", "the webhook URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


def _addresses(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError, OSError):
        raise _refuse("unresolvable", "the webhook host name does not resolve") from None
    found: list[IPAddress] = []
    for info in infos:
        # A link-local IPv6 answer carries a zone ("fe80::1%eth0"); the zone does not change the verdict.
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in found:
            found.append(address)
    if not found:
        raise _refuse("unresolvable", "the webhook host name does not resolve")
    return found


def _judge(scheme: str, addresses: list[IPAddress], allow_loopback_http: bool) -> None:
    for address in addresses:
        if allow_loopback_http and is_loopback(address):
            continue
        if not is_public(address):
            raise _refuse("non_public_address", "the webhook URL must point at a public internet address")
        if scheme == "http":
            raise _refuse("https_required", "the webhook URL must use https")


def check_url(url: str, *, allow_loopback_http: bool) -> None:
    """Raise InvalidInput (field `webhook_url`) unless `url` is https to public addresses only.

    `allow_loopback_http` is for the local run: it lets loopback addresses through, over http
    or https; plain http anywhere else stays refused.
    """
    resolve_public(url, allow_loopback_http)


def resolve_public(url: str, allow_loopback_http: bool) -> tuple[str, int, str]:
    """(host, port, ip) to connect to: the same checks as `check_url`, made now.

    Connect to `ip` and send `host` as TLS server name and Host header, so the address that was
    judged is the one used.
    """
    scheme, host, port = _parse(url, allow_loopback_http)
    addresses = _addresses(host, port)
    _judge(scheme, addresses, allow_loopback_http)
    first = addresses[0]
    # A mapped address is an IPv4 one; Lambda's network may have no IPv6 route at all.
    connect_to = first.ipv4_mapped if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped else first
    return host, port, str(connect_to)
