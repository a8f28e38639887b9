"""Which addresses the fetcher may connect to: an IP in any spelling ``inet_aton`` accepts, the public-unicast rule
(looking inside IPv6 forms that embed an IPv4 address) and the ``fetch_allowlist`` exemptions. Pure functions, no
I/O: the fetcher (:mod:`adpipeline.media.fetch`) resolves a host once and checks every answer here."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence


def parse_ip_literal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP written in any spelling inet_aton accepts (decimal, hex, octal, short forms) or IPv6, else None."""
    text = host.strip("[]")
    try:
        return ipaddress.ip_address(text.split("%")[0])
    except ValueError:
        pass
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    numbers = []
    for part in parts:
        try:
            if part.lower().startswith("0x"):
                numbers.append(int(part, 16))
            elif len(part) > 1 and part.startswith("0"):
                numbers.append(int(part, 8))
            else:
                numbers.append(int(part, 10))
        except ValueError:
            return None
    *head, last = numbers
    if any(n > 255 for n in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = 0
    for n in head:
        value = value * 256 + n
    value = value * 256 ** (5 - len(numbers)) + last
    return ipaddress.IPv4Address(value)


def is_blocked_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """True for anything but a public unicast address, looking inside IPv6 forms that embed an IPv4 address."""
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [address]
    if isinstance(address, ipaddress.IPv6Address):
        for embedded in (address.ipv4_mapped, address.sixtofour, address.teredo[1] if address.teredo else None):
            if embedded is not None:
                candidates.append(embedded)
        if address in ipaddress.IPv6Network("64:ff9b::/96") or address in ipaddress.IPv6Network("::/96"):
            candidates.append(ipaddress.IPv4Address(int(address) & 0xFFFFFFFF))
    return any(not a.is_global or a.is_multicast or a.is_reserved for a in candidates)


class Allowlist:
    """``fetch_allowlist`` entries: ``host``, ``host:port``, an IP, ``ip:port``, or a CIDR."""

    def __init__(self, entries: Sequence[str]) -> None:
        self.hosts: set[tuple[str, int | None]] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for entry in entries:
            entry = entry.strip().lower()
            if "/" in entry:
                self.networks.append(ipaddress.ip_network(entry, strict=False))
                continue
            host, port = entry, None
            if entry.count(":") == 1 or (entry.startswith("[") and "]:" in entry):
                host, _, port_text = entry.rpartition(":")
                port = int(port_text)
            self.hosts.add((host.strip("[]"), port))

    def host_allowed(self, host: str, port: int) -> bool:
        return (host, None) in self.hosts or (host, port) in self.hosts

    def address_allowed(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, port: int) -> bool:
        return self.host_allowed(str(address), port) or any(address in net for net in self.networks)
