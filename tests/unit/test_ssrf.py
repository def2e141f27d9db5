"""The SSRF guard's address rules, in every spelling an attacker might use."""

from __future__ import annotations

import ipaddress

import pytest

from core import ssrf
from core.errors import ValidationError
from core.httpspec import configure, validate


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "loopback"),
        ("127.1", "loopback"),
        ("2130706433", "loopback"),
        ("0x7f000001", "loopback"),
        ("0177.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "link-local"),
        ("100.64.0.1", "shared"),
        ("0.0.0.0", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("[::1]", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:169.254.169.254", "link-local"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
    ],
)
def test_internal_addresses_are_blocked_in_every_spelling(host: str, reason: str) -> None:
    ip = ssrf.literal_ip(host)
    assert ip is not None, host
    why = ssrf.blocked_reason(ip)
    assert why is not None and reason in why, (host, why)


@pytest.mark.parametrize("host", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "[2001:4860:4860::8888]"])
def test_public_addresses_are_allowed(host: str) -> None:
    ip = ssrf.literal_ip(host)
    assert ip is not None and ssrf.blocked_reason(ip) is None


@pytest.mark.parametrize("host", ["example.com", "localhost", "1.2.3.4.example", "0x", ""])
def test_names_are_not_literals(host: str) -> None:
    assert ssrf.literal_ip(host) is None


def test_the_allow_list_takes_cidrs_and_names() -> None:
    allow = ssrf.Allow.parse("127.0.0.0/8, internal.example.com ,10.0.0.5")
    ssrf.check("x", ipaddress.ip_address("127.0.0.9"), allow)
    ssrf.check("internal.example.com", ipaddress.ip_address("10.9.9.9"), allow)
    ssrf.check("y", ipaddress.ip_address("10.0.0.5"), allow)
    with pytest.raises(ssrf.BlockedDestination, match="TASKER_HTTP_ALLOW"):
        ssrf.check("y", ipaddress.ip_address("10.0.0.6"), allow)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://2130706433/", "http://[::ffff:127.0.0.1]:8080/x",
                                 "https://169.254.169.254/latest/meta-data/", "http://0x7f.1/"])
def test_a_literal_blocked_address_is_refused_at_submit_time(url: str) -> None:
    configure(300.0, "")
    with pytest.raises(ValidationError, match="blocked destination"):
        validate({"url": url})


def test_an_allowed_literal_address_is_accepted() -> None:
    configure(300.0, "127.0.0.0/8")
    try:
        assert validate({"url": "http://127.0.0.1:8080/x"})["url"] == "http://127.0.0.1:8080/x"
    finally:
        configure(300.0, "")
