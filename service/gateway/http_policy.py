"""The gateway's HTTP-level policies, apart from the RPC mapping: which Host names it answers
(DNS rebinding), which browser origins may call it (CORS), gzip, and the ``WWW-Authenticate``
challenge of 401 answers."""

from __future__ import annotations

import ipaddress
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Middleware = Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]

#: Host names of a loopback-bound gateway (any port).
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
ANY = "*"
#: JSON and text bodies above this many bytes are gzipped for clients that accept it.
GZIP_MIN_BYTES = 1024
_COMPRESSIBLE = ("application/json", "application/javascript", "text/")
CORS_METHODS = "GET, POST, OPTIONS"
CORS_HEADERS = "Authorization, Content-Type"
#: Headers a browser script may read: the download's file name, the 401 challenge.
CORS_EXPOSE = "Content-Disposition, WWW-Authenticate"
CORS_MAX_AGE = "600"
REALM = "sovrisk"


def host_name(header: str) -> str:
    """The name of a Host header: ``[::1]:8080`` -> ``::1``, ``LocalHost.:80`` -> ``localhost``."""
    host = header.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    if host.count(":") == 1:  # name:port (a bare IPv6 address has several colons)
        host = host.rsplit(":", 1)[0]
    return host.rstrip(".")


def is_loopback(host: str) -> bool:
    name = host_name(host) if host.startswith("[") else host.strip().lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def default_allowed_hosts(bind_host: str) -> tuple[str, ...] | None:
    """Bound to loopback: only loopback names (and the bound one), so a web page whose name
    an attacker re-points at 127.0.0.1 cannot reach the API. Bound elsewhere (0.0.0.0, a LAN
    address): any name (None), since clients use whatever name routes to the machine."""
    if not is_loopback(bind_host):
        return None
    return tuple(dict.fromkeys((*LOOPBACK_HOSTS, host_name(bind_host))))


def _origin(value: str) -> str:
    return value.strip().rstrip("/").lower()


@dataclass(frozen=True)
class HttpPolicy:
    """``allowed_hosts`` None (or containing ``*``) answers any Host; ``cors_origins`` empty
    sends no CORS headers and refuses preflights; ``*`` allows every origin."""

    cors_origins: tuple[str, ...] = ()
    allowed_hosts: tuple[str, ...] | None = None

    @classmethod
    def of(cls, cors_origins: Sequence[str], allowed_hosts: Sequence[str] | None) -> HttpPolicy:
        hosts = None if allowed_hosts is None else tuple(host_name(h) for h in allowed_hosts)
        if hosts is not None and ANY in hosts:
            hosts = None
        return cls(tuple(_origin(o) for o in cors_origins), hosts)

    def host_allowed(self, header: str | None) -> bool:
        # No Host header: not a browser (browsers always send it), so no rebinding either.
        return (
            self.allowed_hosts is None
            or header is None
            or (host_name(header) in self.allowed_hosts)
        )

    def origin_allowed(self, origin: str | None) -> bool:
        if origin is None or not self.cors_origins:
            return False
        return ANY in self.cors_origins or _origin(origin) in self.cors_origins


def _vary(response: web.StreamResponse, header: str) -> None:
    present = [v.strip() for v in response.headers.get("Vary", "").split(",") if v.strip()]
    if header not in present:
        response.headers["Vary"] = ", ".join([*present, header])


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == "OPTIONS"
        and "Origin" in request.headers
        and "Access-Control-Request-Method" in request.headers
    )


def preflight_response(request: web.Request) -> web.Response:
    """An allowed origin's preflight answer (204, no body)."""
    response = web.Response(status=204)
    response.headers.update(
        {
            "Access-Control-Allow-Methods": CORS_METHODS,
            "Access-Control-Allow-Headers": CORS_HEADERS,
            "Access-Control-Max-Age": CORS_MAX_AGE,
        }
    )
    return response


def add_cors_headers(
    policy: HttpPolicy, request: web.Request, response: web.StreamResponse
) -> None:
    """Allow an allowed origin to read the response (set before its headers are sent, so
    streamed NDJSON answers get them too)."""
    origin = request.headers.get("Origin")
    if policy.cors_origins:
        _vary(response, "Origin")  # the answer depends on Origin: caches must key on it
    if origin is None or not policy.origin_allowed(origin):
        return
    response.headers["Access-Control-Allow-Origin"] = origin
    response.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE


def add_challenge(request: web.Request, response: web.StreamResponse) -> None:
    """RFC 6750: a 401 names the scheme and realm, and says whether a given token was bad."""
    if response.status != 401 or "WWW-Authenticate" in response.headers:
        return
    challenge = f'Bearer realm="{REALM}"'
    if request.headers.get("Authorization"):
        challenge += ', error="invalid_token"'
    response.headers["WWW-Authenticate"] = challenge


def maybe_gzip(request: web.Request, response: web.StreamResponse) -> None:
    """gzip a whole JSON or text body above GZIP_MIN_BYTES when the client accepts it. A
    streamed (already prepared) response is left alone: NDJSON lines must reach the client
    as they are written, not when a compressor's block fills."""
    if not isinstance(response, web.Response) or response.prepared:
        return
    body = response.body
    if not isinstance(body, bytes) or len(body) < GZIP_MIN_BYTES:
        return
    if not response.content_type.startswith(_COMPRESSIBLE):
        return
    _vary(response, "Accept-Encoding")
    if "gzip" in request.headers.get("Accept-Encoding", "").lower():
        response.enable_compression(web.ContentCoding.gzip)
