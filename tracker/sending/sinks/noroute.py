"""Why a connection failed, in a few words, and when macOS's Local Network privacy may be why.

From macOS 15 a process macOS holds responsible for itself (tracker's LaunchAgent; a third-party terminal app)
may reach addresses on the local network only once the user allowed it (Apple's TN3179). Until then a connection
to one fails with EHOSTUNREACH, "No route to host", exactly as when the network has no route: so on macOS, to a
private or link-local address, the message says both and how to allow it. Not seen on a real Mac.
"""

from __future__ import annotations

import errno
import ipaddress
from collections.abc import Callable
from typing import NamedTuple

from tracker import macos_privacy
from tracker.sending.sinks.resolving import addresses

# The connection just looked the name up: a second lookup answers from the system's cache, or not in this time.
LOOKUP_SECONDS = 2.0
# What Local Network privacy covers: RFC 1918, link-local, unique local and link-local IPv6.
LOCAL_NETWORKS = tuple(ipaddress.ip_network(network) for network in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "fc00::/7", "fe80::/10"))


class Why(NamedTuple):
    """Why a request got no answer: a few words, and a sentence of advice when there is one to give."""

    words: str
    advice: str | None = None


def addresses_of(host: str) -> list[str]:
    """The addresses `host` names: itself when it is one, else what it resolves to within LOOKUP_SECONDS (none
    when it does not, or not in time). Through the bounded lookup the connection used: telling why it failed
    waits LOOKUP_SECONDS at most."""
    try:
        return [str(ipaddress.ip_address(host.split("%", 1)[0]))]  # an IPv6 scope (fe80::1%en0) is no part of it
    except ValueError:
        pass
    try:
        return [str(info[4][0]) for info in addresses(host, 0, within=LOOKUP_SECONDS)]
    except (OSError, UnicodeError):  # NotResolvedInTime is an OSError too
        return []


def on_local_network(host: str, resolve: Callable[[str], list[str]] = addresses_of) -> bool:
    """Whether `host` is, or resolves to, a private or link-local address."""
    for address in resolve(host):
        try:
            parsed = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            continue
        if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
            parsed = parsed.ipv4_mapped
        if any(parsed in network for network in LOCAL_NETWORKS):
            return True
    return False


def why_unreachable(error: OSError, host: str, on_macos: bool | None = None,
                    resolve: Callable[[str], list[str]] = addresses_of) -> Why:
    """Why connecting to `host` failed with `error`; `on_macos` None: as this machine is."""
    if error.errno != errno.EHOSTUNREACH:  # 65 on macOS, 113 on Linux
        return Why(error.strerror or "cannot connect")
    on_macos = macos_privacy.running_on_macos() if on_macos is None else on_macos
    if on_macos and on_local_network(host, resolve):
        return Why("no route to host", macos_privacy.local_network_sentence(macos_privacy.grantee()))
    return Why("no route to host")
