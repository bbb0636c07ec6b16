"""Address rules for every request to a user-given URL (probes, metrics scraping, webhooks).

Pure Python (no Django), so the probe engine uses exactly the same rules. The host is
resolved once; every resolved address must pass; the connection is then pinned to the
checked address, so a DNS answer that changes between check and connect (rebinding)
cannot redirect us to an internal service.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Refused whatever the settings say: link-local (incl. 169.254.169.254, the metadata
# service of most clouds) and the metadata addresses that are not link-local.
ALWAYS_REFUSED = [
    ipaddress.ip_network("169.254.0.0/16"),
    ipaddress.ip_network("fe80::/10"),
    ipaddress.ip_network("fd00:ec2::254/128"),  # AWS IMDS over IPv6
    ipaddress.ip_network("100.100.100.200/32"),  # Alibaba Cloud metadata
    ipaddress.ip_network("0.0.0.0/8"),
    ipaddress.ip_network("::/128"),
]


class OutboundRefused(Exception):
    """A request we will not make, with a reason a user can act on."""

    def __init__(self, message: str, *, code: str):
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class PinnedTarget:
    url: str  # the URL as the user gave it
    scheme: str
    host: str  # the name to send in Host / SNI
    port: int
    address: str  # the checked IP to connect to


NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the low 32 bits are an IPv4 address


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4 2002::/16, NAT64), if any: a
    6to4 address wrapping 127.0.0.1 or 169.254.169.254 reaches just what the IPv4 one would."""
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip in NAT64:
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_address(ip: IPAddress, *, allow_private: bool) -> None:
    wrapped = embedded_ipv4(ip)
    if wrapped is not None:
        ip = wrapped
    if any(ip in net for net in ALWAYS_REFUSED if net.version == ip.version):
        raise OutboundRefused(
            f"{ip} is a link-local or cloud-metadata address; requests there are always refused",
            code="address_forbidden",
        )
    if ip.is_multicast or (ip.is_reserved and not ip.is_loopback):  # ::1 sits in the reserved ::/8
        raise OutboundRefused(f"{ip} is a multicast or reserved address", code="address_forbidden")
    # Site-local fec0::/10 is deprecated but still routed inside some networks; Python counts it global.
    site_local = isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local
    if (not ip.is_global or site_local) and not allow_private:
        kind = "loopback" if ip.is_loopback else "private"
        raise OutboundRefused(
            f"{ip} is a {kind} address; set READINESS_ALLOW_PRIVATE_ENDPOINTS=true to allow it",
            code="address_private",
        )


def parse_http_url(url: str) -> tuple[str, str, int]:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in url.strip()):
        raise OutboundRefused("URL contains control characters", code="url_invalid")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise OutboundRefused(f"malformed URL: {exc}", code="url_invalid") from None
    if parts.scheme not in ("http", "https"):
        raise OutboundRefused("URL must start with http:// or https://", code="url_invalid")
    if not parts.hostname:
        raise OutboundRefused("URL has no host", code="url_invalid")
    if parts.username or parts.password:
        raise OutboundRefused("credentials in the URL are not allowed; use the API key field", code="url_invalid")
    return parts.scheme, parts.hostname, port or (443 if parts.scheme == "https" else 80)


def resolve(host: str, port: int) -> list[IPAddress]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise OutboundRefused(f"cannot resolve host {host!r}: {exc}", code="dns_failed") from None
    seen: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(info[4][0].split("%")[0])
        if ip not in seen:
            seen.append(ip)
    return seen


def pin(url: str, *, allow_private: bool) -> PinnedTarget:
    """Validate `url`, resolve its host once and return the address to connect to.

    Every resolved address must pass: a name that answers with one public and one internal
    address is refused rather than left to chance.
    """
    scheme, host, port = parse_http_url(url)
    addresses = resolve(host, port)
    if not addresses:
        raise OutboundRefused(f"host {host!r} has no address", code="dns_failed")
    for ip in addresses:
        check_address(ip, allow_private=allow_private)
    return PinnedTarget(url=url.strip(), scheme=scheme, host=host, port=port, address=str(addresses[0]))


def same_origin(a: str, b: str) -> bool:
    """Whether two URLs share scheme, host and port. A stored credential (an endpoint's API key, a
    connector's token) may follow an edit of its URL only within the origin it was entered for."""
    try:
        return parse_http_url(a) == parse_http_url(b)
    except OutboundRefused:
        return False  # an unreadable URL is not the origin the credential was given for
