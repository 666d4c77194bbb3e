"""The mock never delivers to itself.

A webhook pointed at the mock's own API (`/_mock/reset`, a redeliver route)
would wipe it or loop. Two guards: a webhook URL that resolves to the address
the server was reached on is refused (422), and every delivery carries a
marker header (`DELIVERY_MARKER`) that the API refuses, so no loop can form
through a proxy or a receiver that forwards the request either.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from urllib.parse import urlsplit

from mock_qrm.contract.errors import FieldErrors

RESOLVE_TIMEOUT = 2.0


def _is_this_machine(ip: str, reached_ip: str) -> bool:
    """`ip` is the address the server was reached on, or any address of this machine."""
    try:
        address = ipaddress.ip_address(ip.split("%", 1)[0])
    except ValueError:
        return False
    if ip == reached_ip or address.is_loopback or address.is_unspecified:
        return True
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    with contextlib.suppress(OSError), socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((ip, 0))  # only an address of this machine can be bound
        return True
    return False


async def refuse_own_address(url: str, reached: tuple[str, int] | None) -> None:
    """422 if `url` leads back to this server (`reached`: the address and port it listens on)."""
    if reached is None:
        return
    reached_ip, reached_port = reached
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # the URL validator has said what is wrong with it
    host = parts.hostname
    if port != reached_port or not host:
        return
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            infos = await asyncio.get_running_loop().getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            )
    except (OSError, TimeoutError, UnicodeError):
        return  # unresolvable now; the marker header still stops a loop
    if any(_is_this_machine(str(info[4][0]), reached_ip) for info in infos):
        raise FieldErrors(
            {
                "url": [
                    f"{host}:{port} is this mock QRM server itself: point the webhook at"
                    " your receiver (a delivery to the mock's own API would loop)"
                ]
            }
        )
