"""Who is asking: set once per request by the transport (the gRPC interceptor, the gateway's
middleware) and read below it without threading it through every call.

A ``contextvars`` variable follows the request's asyncio task, so the registry can count a
caller's heavy jobs (:data:`sovrisk.service.registry.MAX_HEAVY_JOBS_PER_CALLER`) and the logs
can name the principal, while no servicer signature changes.
"""

from __future__ import annotations

import ipaddress
from contextvars import ContextVar

#: The caller of the current request: ``principal:NAME`` for a valid bearer token, else
#: ``peer:ADDRESS`` (the client's IP address, without its port). Never a token.
_owner: ContextVar[str] = ContextVar("sovrisk_request_owner", default="peer:unknown")


def request_owner() -> str:
    return _owner.get()


def set_request_owner(owner: str) -> None:
    _owner.set(owner)


def owner_of(principal: str | None, peer: str) -> str:
    """The owner key of a request: the principal's name when authenticated, else the peer's
    address (gRPC writes ``ipv4:127.0.0.1:5555`` or ``ipv6:[::1]:5555``; aiohttp the bare
    address)."""
    if principal:
        return f"principal:{principal}"
    return f"peer:{peer_address(peer)}"


def peer_address(peer: str) -> str:
    """The address of a gRPC or aiohttp peer, without the port."""
    text = peer
    for prefix in ("ipv4:", "ipv6:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    else:
        if ":" not in text or text.startswith("unix:"):
            return text or "unknown"
    if text.startswith("["):
        return text[1 : text.find("]")] if "]" in text else text
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return text.rsplit(":", 1)[0]
