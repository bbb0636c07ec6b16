"""Address and URL rules of the outbound guard, without any network traffic.

Only literal IP addresses, "localhost" and a name under the reserved `.invalid` TLD are
resolved here: the machine running the suite has no internet access.
"""

import ipaddress

import pytest

from apps.net.netguard import OutboundRefused, check_address, parse_http_url, pin

ALWAYS_REFUSED = [
    "169.254.169.254",  # cloud metadata service
    "169.254.0.1",  # link-local
    "fe80::1",  # IPv6 link-local
    "fd00:ec2::254",  # AWS IMDS over IPv6
    "100.100.100.200",  # Alibaba Cloud metadata
    "0.0.0.0",
    "::ffff:169.254.169.254",  # IPv4-mapped metadata address
    "2002:a9fe:a9fe::1",  # 6to4 wrapping 169.254.169.254
    "64:ff9b::a9fe:a9fe",  # NAT64 wrapping 169.254.169.254
]

PRIVATE = [
    "10.0.0.1",
    "172.16.0.1",
    "192.168.1.1",
    "127.0.0.1",
    "::1",
    "fc00::1",
    "100.64.0.1",  # carrier-grade NAT
    "::ffff:10.0.0.1",  # IPv4-mapped private address
    "::ffff:127.0.0.1",  # IPv4-mapped loopback
    "fec0::1",  # deprecated site-local, still routed inside some networks
    "2002:7f00:1::1",  # 6to4 wrapping 127.0.0.1
    "2002:a00:1::",  # 6to4 wrapping 10.0.0.1
    "64:ff9b::a00:1",  # NAT64 wrapping 10.0.0.1
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "2001:4860:4860::8888", "2002:808:808::1"]  # the last: 6to4 of 8.8.8.8


def refusal(func, *args, **kwargs) -> OutboundRefused:
    with pytest.raises(OutboundRefused) as info:
        func(*args, **kwargs)
    return info.value


@pytest.mark.parametrize("address", ALWAYS_REFUSED)
@pytest.mark.parametrize("allow_private", [False, True])
def test_it_always_refuses_link_local_and_metadata_addresses(address, allow_private):
    error = refusal(check_address, ipaddress.ip_address(address), allow_private=allow_private)
    assert error.code == "address_forbidden"


@pytest.mark.parametrize("address", PRIVATE)
def test_it_refuses_private_and_loopback_addresses_by_default(address):
    error = refusal(check_address, ipaddress.ip_address(address), allow_private=False)
    assert error.code == "address_private"
    assert "READINESS_ALLOW_PRIVATE_ENDPOINTS" in str(error)


@pytest.mark.parametrize("address", PRIVATE)
def test_it_allows_private_and_loopback_addresses_when_private_endpoints_are_allowed(address):
    assert check_address(ipaddress.ip_address(address), allow_private=True) is None


@pytest.mark.parametrize("address", ["127.0.0.1", "::1"])
def test_the_refusal_message_calls_a_loopback_address_loopback(address):
    error = refusal(check_address, ipaddress.ip_address(address), allow_private=False)
    assert "loopback" in str(error)


@pytest.mark.parametrize("address", ["224.0.0.1", "ff02::1", "240.0.0.1"])
@pytest.mark.parametrize("allow_private", [False, True])
def test_it_refuses_multicast_and_reserved_addresses_even_when_private_is_allowed(address, allow_private):
    error = refusal(check_address, ipaddress.ip_address(address), allow_private=allow_private)
    assert error.code == "address_forbidden"


@pytest.mark.parametrize("address", PUBLIC)
@pytest.mark.parametrize("allow_private", [False, True])
def test_it_allows_public_addresses(address, allow_private):
    assert check_address(ipaddress.ip_address(address), allow_private=allow_private) is None


@pytest.mark.parametrize(
    "url, expected",
    [
        ("http://example.com/v1", ("http", "example.com", 80)),
        ("https://example.com/v1", ("https", "example.com", 443)),
        ("http://example.com:8000/v1", ("http", "example.com", 8000)),
        ("  https://Example.COM:8443/  ", ("https", "example.com", 8443)),
        ("http://[::1]:9000/", ("http", "::1", 9000)),
    ],
)
def test_it_parses_scheme_host_and_port_with_default_ports(url, expected):
    assert parse_http_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.com/file",
        "file:///etc/passwd",
        "gopher://127.0.0.1:70/",
        "http://",
        "not a url",
        "",
        "//example.com/no-scheme",
        "http://host:99999/",
        "http://host:port/",
        "http://user:secret@example.com/",
        "http://user@example.com/",
        "http://[::1/",
    ],
)
def test_it_refuses_malformed_or_unsupported_urls_as_url_invalid(url):
    error = refusal(parse_http_url, url)
    assert error.code == "url_invalid"


@pytest.mark.parametrize("url", ["ftp://8.8.8.8/", "http://user:pw@8.8.8.8/", "http://8.8.8.8:70000/"])
def test_pin_refuses_an_invalid_url_before_resolving_anything(url):
    error = refusal(pin, url, allow_private=True)
    assert error.code == "url_invalid"


def test_pin_keeps_the_host_name_and_port_and_connects_to_the_literal_public_address():
    target = pin("  https://8.8.8.8:8443/v1/models ", allow_private=False)
    assert target.url == "https://8.8.8.8:8443/v1/models"
    assert target.scheme == "https"
    assert target.host == "8.8.8.8"
    assert target.port == 8443
    assert target.address == "8.8.8.8"


def test_pin_uses_the_default_port_of_the_scheme():
    assert pin("http://8.8.8.8/", allow_private=False).port == 80
    assert pin("https://8.8.8.8/", allow_private=False).port == 443


def test_pin_of_localhost_is_a_loopback_address_when_private_is_allowed():
    target = pin("http://localhost:1/", allow_private=True)
    assert target.host == "localhost"
    assert target.port == 1
    assert ipaddress.ip_address(target.address).is_loopback


def test_pin_refuses_localhost_when_private_is_not_allowed():
    error = refusal(pin, "http://localhost:1/", allow_private=False)
    assert error.code == "address_private"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/", "http://[::1]:8000/", "http://10.1.2.3/"],
)
def test_pin_refuses_literal_private_addresses_when_private_is_not_allowed(url):
    error = refusal(pin, url, allow_private=False)
    assert error.code == "address_private"


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"]
)
def test_pin_refuses_metadata_urls_even_when_private_is_allowed(url):
    error = refusal(pin, url, allow_private=True)
    assert error.code == "address_forbidden"


def test_pin_of_an_ipv6_literal_connects_to_that_address():
    target = pin("http://[::1]:8000/", allow_private=True)
    assert target.host == "::1"
    assert target.address == "::1"


def test_pin_of_an_unresolvable_name_is_a_dns_failure():
    error = refusal(pin, "http://nonexistent.invalid/", allow_private=True)
    assert error.code == "dns_failed"
    assert "nonexistent.invalid" in str(error)
