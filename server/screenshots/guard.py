"""Server-side request forgery guard: which addresses a render may reach.

Only public unicast addresses pass. Refused: private ranges (10/8, 172.16/12, 192.168/16,
fc00::/7), shared address space (100.64/10), loopback (127/8, ::1), link-local (169.254/16 with
the cloud metadata address 169.254.169.254, fe80::/10), unspecified, multicast, reserved and
documentation ranges, and IPv6 forms that embed a refused IPv4 address (IPv4-mapped ``::ffff:``,
NAT64 ``64:ff9b::/96``, 6to4, Teredo). A host is refused when *any* of its addresses is, so a
name cannot mix a public address with a private one. The development setting
``SCREENSHOT_ALLOW_LOOPBACK`` lets loopback through (tests, the demo page) and nothing else.

The check runs twice: in web before a render is queued (a clear 422 for the agent), and in the
renderer's proxy for the page, every subresource and every redirect, on the address it then
connects to, so a name that resolves differently the second time (DNS rebinding) gains nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from server.errors import ErrorCode, Invalid

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], Awaitable[list[str]]]
"""host, port -> the addresses it resolves to (text form)."""

_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_METADATA = frozenset(
    ipaddress.ip_address(address)
    for address in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200", "169.254.170.2")
)


class AddressRefused(Invalid):
    """The page or one of its requests would reach an address renders must not reach."""

    code = ErrorCode.ADDRESS_NOT_ALLOWED


@dataclass(frozen=True, slots=True)
class AddressPolicy:
    allow_loopback: bool = False

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` is refused (a short phrase), or None when a render may reach it."""
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return self.refusal(embedded)
        if address in _METADATA:
            return "a cloud metadata address"
        if address.is_loopback:
            return None if self.allow_loopback else "a loopback address"
        if address.is_link_local:
            return "a link-local address"
        if address.is_unspecified or address.is_multicast:
            return "not a unicast address"
        if address.is_private:
            return "a private address"
        if not address.is_global:
            return "not a public address"
        return None


def _embedded_ipv4(address: IPAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(address, ipaddress.IPv6Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The system's resolver (getaddrinfo in a thread, through the event loop)."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def checked_addresses(
    host: str, port: int, policy: AddressPolicy, resolver: Resolver = system_resolver
) -> list[IPAddress]:
    """Resolve ``host`` and return its addresses, or raise :class:`AddressRefused` naming why.

    An IP literal is not resolved. Resolution failures are refusals too: nothing is rendered
    from a host that cannot be checked.
    """
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        addresses: list[IPAddress] = [ipaddress.ip_address(literal.split("%", 1)[0])]
    except ValueError:
        try:
            names = await resolver(literal, port)
        except (OSError, UnicodeError) as error:
            raise AddressRefused(f"The host {literal!r} does not resolve ({error}).") from None
        addresses = [ipaddress.ip_address(name.split("%", 1)[0]) for name in names]
    if not addresses:
        raise AddressRefused(f"The host {literal!r} has no address.")
    for address in addresses:
        reason = policy.refusal(address)
        if reason is not None:
            raise AddressRefused(f"The host {literal!r} resolves to {address}, {reason}.")
    return addresses
