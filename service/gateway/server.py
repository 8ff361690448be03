"""Run the gateway: an aiohttp server over the same servicers as the gRPC server."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import cast

from aiohttp import web

from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.gateway.app import build_app
from sovrisk.service.gateway.http_policy import default_allowed_hosts
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, risk_pb2
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.servicers import GraphServicer, RiskServicer

#: Longest request line (method, URL, version) the gateway parses.
MAX_REQUEST_LINE_BYTES = 64 * 1024
#: Seconds handlers still running at shutdown get before they are cancelled.
SHUTDOWN_SECONDS = 3.0

SERVICES = (
    graph_pb2.DESCRIPTOR.services_by_name["GraphService"],
    risk_pb2.DESCRIPTOR.services_by_name["RiskService"],
)


@dataclass
class RunningGateway:
    runner: web.AppRunner
    port: int

    async def stop(self) -> None:
        await self.runner.cleanup()


def gateway_app(
    registry: GraphRegistry,
    auth: TokenAuthenticator | None = None,
    *,
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] | None = None,
    require_read_token: bool = False,
) -> web.Application:
    auth = auth or TokenAuthenticator(env={})
    servicers = {
        SERVICES[0].full_name: GraphServicer(registry, auth),
        SERVICES[1].full_name: RiskServicer(registry),
    }
    return build_app(
        servicers,
        SERVICES,
        cors_origins=cors_origins,
        allowed_hosts=allowed_hosts,
        read_auth=auth if require_read_token else None,
        auth=auth,
    )


async def start_gateway(
    registry: GraphRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    auth: TokenAuthenticator | None = None,
    cors_origins: Sequence[str] = (),
    allowed_hosts: Sequence[str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    require_read_token: bool = False,
) -> RunningGateway:
    """Start serving on ``host:port`` (0 = any free port).

    ``cors_origins``: browser origins allowed to call the API (``*`` = any; default none).
    ``allowed_hosts``: Host header names answered (``*`` = any); None means the loopback
    names when ``host`` is loopback (DNS rebinding protection), else any.
    ``ssl_context``: serve HTTPS only (``sovrisk.service.tls.ServerTls.ssl_context``).
    ``require_read_token``: every ``/v1/`` route needs a valid bearer token of any role (401
    with ``WWW-Authenticate: Bearer`` without one); ``/healthz``, ``/openapi.json`` and
    ``/docs`` stay open.
    """
    hosts = default_allowed_hosts(host) if allowed_hosts is None else allowed_hosts
    app = gateway_app(
        registry,
        auth,
        cors_origins=cors_origins,
        allowed_hosts=hosts,
        require_read_token=require_read_token,
    )
    # Request lines up to 64 KiB reach the app, which answers in AIP-193 JSON (aiohttp's own
    # parser would answer a 20 kB URL with plain text); longer ones are refused by aiohttp.
    runner = web.AppRunner(
        app,
        access_log=None,
        max_line_size=MAX_REQUEST_LINE_BYTES,
        shutdown_timeout=SHUTDOWN_SECONDS,  # aiohttp's default waits 60 s for open handlers
    )
    await runner.setup()
    site = web.TCPSite(runner, host, port, ssl_context=ssl_context)
    await site.start()
    server = cast(asyncio.Server, site._server)  # its socket tells the port when port=0
    bound = int(server.sockets[0].getsockname()[1])
    return RunningGateway(runner, bound)
