"""The webhook SSRF guard: which URLs and resolved addresses a webhook may point at."""

from __future__ import annotations

import ipaddress
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rightsdesk.kernel.errors import InvalidInput
from rightsdesk.platform import ssrf

REFUSED_V4 = [
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.0.0.0/24",
    "192.0.2.0/24",
    "192.168.0.0/16",
    "198.18.0.0/15",
    "198.51.100.0/24",
    "203.0.113.0/24",
    "224.0.0.0/4",
    "240.0.0.0/4",
]
REFUSED_V6 = ["::/128", "::1/128", "fc00::/7", "fe80::/10", "ff00::/8", "2001:db8::/32", "fec0::/10"]


def addresses_in(network: str) -> st.SearchStrategy:
    net = ipaddress.ip_network(network)
    return st.integers(int(net.network_address), int(net.broadcast_address)).map(
        lambda n: ipaddress.ip_address(n) if net.version == 4 else ipaddress.IPv6Address(n)
    )


refused_v4 = st.one_of(*(addresses_in(n) for n in REFUSED_V4))
refused_v6 = st.one_of(*(addresses_in(n) for n in REFUSED_V6))
public_v4 = (
    st.integers(0, 2**32 - 1)
    .map(ipaddress.IPv4Address)
    .filter(lambda a: not any(a in ipaddress.ip_network(n) for n in [*REFUSED_V4, "192.88.99.0/24"]))
)
# Global unicast outside the IETF and documentation blocks, and not 6to4 (judged by its IPv4 inside).
public_v6 = st.integers(int(ipaddress.IPv6Address("2400::")), int(ipaddress.IPv6Address("2fff:ffff::"))).map(
    ipaddress.IPv6Address
)


def url_for(address) -> str:
    host = f"[{address}]" if address.version == 6 else str(address)
    return f"https://{host}/webhooks/rightsdesk"


def refused_reason(url: str, *, allow_loopback_http: bool = False) -> str:
    with pytest.raises(InvalidInput) as raised:
        ssrf.check_url(url, allow_loopback_http=allow_loopback_http)
    return raised.value.fields["webhook_url"]


# ------------------------------------------------------------------ address ranges (property-based)


@settings(max_examples=300)
@given(refused_v4)
def test_every_private_loopback_link_local_or_reserved_ipv4_is_refused(address):
    assert refused_reason(url_for(address)) == "non_public_address"


@settings(max_examples=200)
@given(refused_v6)
def test_every_non_public_ipv6_is_refused(address):
    assert refused_reason(url_for(address)) == "non_public_address"


@settings(max_examples=200)
@given(refused_v4)
def test_ipv4_mapped_and_nat64_forms_of_refused_addresses_are_refused(address):
    mapped = ipaddress.IPv6Address(f"::ffff:{address}")
    nat64 = ipaddress.IPv6Address(int(ipaddress.IPv6Address("64:ff9b::")) + int(address))
    sixtofour = ipaddress.IPv6Address((0x2002 << 112) | (int(address) << 80))
    for wrapped in (mapped, nat64, sixtofour):
        assert refused_reason(url_for(wrapped)) == "non_public_address", wrapped


@settings(max_examples=300)
@given(public_v4)
def test_public_ipv4_is_accepted(address):
    ssrf.check_url(url_for(address), allow_loopback_http=False)
    assert ssrf.resolve_public(url_for(address), False) == (str(address), 443, str(address))


@settings(max_examples=200)
@given(public_v6)
def test_public_ipv6_is_accepted(address):
    ssrf.check_url(url_for(address), allow_loopback_http=False)


@settings(max_examples=100)
@given(public_v4)
def test_a_mapped_public_address_is_connected_to_over_ipv4(address):
    host, port, ip = ssrf.resolve_public(url_for(ipaddress.IPv6Address(f"::ffff:{address}")), False)
    assert ip == str(address)


# ------------------------------------------------------------------ named cases


@pytest.mark.parametrize(
    "url",
    [
        "https://169.254.169.254/latest/meta-data/",
        "https://[fd00:ec2::254]/",
        "https://[::ffff:169.254.169.254]/",
        "https://[::ffff:127.0.0.1]/",
        "https://2130706433/",  # 127.0.0.1 as one number
        "https://0x7f.1/",  # 127.0.0.1 in hex shorthand
        "https://localhost/",
        "https://100.100.100.200/",  # carrier-grade NAT (and Alibaba's metadata address)
        "https://[::]/",
        "https://0.0.0.0/",
    ],
)
def test_metadata_loopback_and_tricky_spellings_are_refused(url):
    assert refused_reason(url) == "non_public_address"


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://1.1.1.1/hook", "https_required"),
        ("ftp://1.1.1.1/hook", "https_required"),
        ("file:///etc/passwd", "https_required"),
        ("gopher://1.1.1.1/", "https_required"),
        ("https://user:pass@1.1.1.1/", "credentials_in_url"),
        ("https://1.1.1.1@169.254.169.254/", "credentials_in_url"),
        ("https:///nohost", "invalid_url"),
        ("https://1.1.1.1:99999/", "invalid_url"),
        ("https://1.1.1.1/a b", "invalid_url"),
        ("", "invalid_url"),
        ("https://" + "a" * 3000 + ".com/", "invalid_url"),
        ("https://no-such-host.invalid/", "unresolvable"),
    ],
)
def test_malformed_or_plain_urls_are_refused(url, reason):
    assert refused_reason(url) == reason


def test_the_local_run_may_use_http_on_loopback_only():
    assert ssrf.resolve_public("http://127.0.0.1:3001/webhooks/demo", True) == ("127.0.0.1", 3001, "127.0.0.1")
    ssrf.check_url("https://[::1]:8443/", allow_loopback_http=True)
    assert refused_reason("http://127.0.0.1:3001/", allow_loopback_http=False) == "https_required"
    # Loopback is the only exception: private ranges and plain http to the internet stay refused.
    assert refused_reason("http://10.1.2.3/", allow_loopback_http=True) == "non_public_address"
    assert refused_reason("https://169.254.169.254/", allow_loopback_http=True) == "non_public_address"
    assert refused_reason("http://1.1.1.1/", allow_loopback_http=True) == "https_required"


def fake_dns(monkeypatch, answers: dict[str, list[str]]) -> None:
    def getaddrinfo(host, port, *args, **kwargs):
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "unknown")
        return [
            (socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port))
            for ip in answers[host]
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_a_name_is_judged_by_every_address_it_resolves_to(monkeypatch):
    fake_dns(
        monkeypatch,
        {
            "hooks.example.com": ["93.184.216.34"],
            "mixed.example.com": ["93.184.216.34", "10.0.0.5"],
            "rebind.example.com": ["169.254.169.254"],
            "v6.example.com": ["2606:2800:220:1:248:1893:25c8:1946", "fe80::1%eth0"],
        },
    )
    assert ssrf.resolve_public("https://hooks.example.com:8443/x", False) == (
        "hooks.example.com",
        8443,
        "93.184.216.34",
    )
    assert refused_reason("https://mixed.example.com/") == "non_public_address"
    assert refused_reason("https://rebind.example.com/") == "non_public_address"
    assert refused_reason("https://v6.example.com/") == "non_public_address"


def test_connect_time_check_sees_a_changed_dns_answer(monkeypatch):
    fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    ssrf.check_url("https://hooks.example.com/", allow_loopback_http=False)
    fake_dns(monkeypatch, {"hooks.example.com": ["127.0.0.1"]})  # DNS rebinding after registration
    with pytest.raises(ssrf.UnsafeUrl):
        ssrf.resolve_public("https://hooks.example.com/", False)


def test_the_refusal_is_an_invalid_input_with_a_field_code():
    with pytest.raises(ssrf.UnsafeUrl) as raised:
        ssrf.check_url("https://10.0.0.1/", allow_loopback_http=False)
    assert isinstance(raised.value, InvalidInput)
    assert raised.value.status == 422 and raised.value.fields == {"webhook_url": "non_public_address"}
    assert "10.0.0.1" not in raised.value.message, "messages never echo what was typed"
