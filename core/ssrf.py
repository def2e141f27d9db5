"""The SSRF guard: an HTTP task may not reach loopback, private, link-local (including cloud
metadata), shared, unspecified, multicast or reserved addresses, in any spelling (IPv4-mapped
IPv6, ``http://2130706433/``, ``0x7f.1``), unless an operator allows them with
``TASKER_HTTP_ALLOW`` (CIDRs and host names).

Literal addresses are refused when the task is submitted; names are resolved by the tasker
just before connecting and the connection goes to an address that was checked (no window for
DNS rebinding).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import socket
from urllib.parse import urlsplit

IP = ipaddress.IPv4Address | ipaddress.IPv6Address
_SHARED = ipaddress.ip_network("100.64.0.0/10")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class BlockedDestination(OSError):
    """The destination is an address Tasker may not call. Not worth retrying."""


def blocked_reason(ip: IP) -> str | None:
    """Why ``ip`` may not be called, or None if it may."""
    if isinstance(ip, ipaddress.IPv6Address):
        mapped = ip.ipv4_mapped or (ip.sixtofour if ip.sixtofour else None)
        if ip in _NAT64:
            mapped = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if mapped is not None:
            inner = blocked_reason(mapped)
            return f"{inner} (inside IPv6 {ip})" if inner else None
    if ip.is_unspecified:
        return "unspecified address"
    if ip.is_loopback:
        return "loopback address"
    if ip.is_link_local:
        return "link-local address (includes cloud metadata)"
    if isinstance(ip, ipaddress.IPv4Address) and ip in _SHARED:
        return "shared address space (100.64.0.0/10)"
    if ip.is_multicast:
        return "multicast address"
    if ip.is_reserved:
        return "reserved address"
    if ip.is_private:
        return "private address"
    if not ip.is_global:
        return "non-global address"
    return None


def literal_ip(host: str) -> IP | None:
    """The address a host names literally, in any spelling libc would accept, else None."""
    host = host.strip("[]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(c in "0123456789abcdefxABCDEFX." for c in host) and not host.endswith("."):
        try:  # legacy forms: 2130706433, 0x7f000001, 0177.0.0.1, 127.1
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


@dataclasses.dataclass(frozen=True)
class Allow:
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, text: str) -> Allow:
        networks, hosts = [], set()
        for item in (x.strip() for x in text.split(",")):
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def host_allowed(self, host: str) -> bool:
        return host.lower().rstrip(".") in self.hosts

    def ip_allowed(self, ip: IP) -> bool:
        return any(ip in net for net in self.networks)


def check(host: str, ip: IP, allow: Allow) -> None:
    """Raise BlockedDestination if ``host`` (resolved to ``ip``) may not be called."""
    if allow.host_allowed(host) or allow.ip_allowed(ip):
        return
    reason = blocked_reason(ip)
    if reason:
        raise BlockedDestination(f"blocked destination: {host} is {ip}, a {reason}; "
                                 "an operator can allow it with TASKER_HTTP_ALLOW")


def check_url_literal(url: str, allow: Allow) -> None:
    """Submit-time check: a URL whose host is a literal blocked address."""
    host = urlsplit(url).hostname or ""
    ip = literal_ip(host)
    if ip is not None:
        check(host, ip, allow)
