"""The grpc.aio server: sovrisk services, health checking, reflection, graceful shutdown."""

from __future__ import annotations

import asyncio
import errno
import logging
import signal
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.models.scoring.uncertainty import cached_uncertainty, check_draws
from sovrisk.service.auth import AuthError, TokenAuthenticator
from sovrisk.service.gateway.server import start_gateway
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from sovrisk.service.interceptors import RequestLoggingInterceptor
from sovrisk.service.metrics import start_metrics_server
from sovrisk.service.paths import (
    DEFAULT_DATA_DIR,
    default_store,
    default_tokens_file,
    store_exists,
)
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.servicers import GraphServicer, RiskServicer
from sovrisk.service.store import open_store
from sovrisk.service.text_report import ranking_table

log = logging.getLogger("sovrisk.server")

MAX_MESSAGE_BYTES = 32 * 1024 * 1024
GRACE_SECONDS = 5.0

#: Keepalive: ping idle clients every 60 s, tolerate client pings every 10 s (no data needed).
SERVER_OPTIONS: Sequence[tuple[str, int]] = (
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 60_000),
    ("grpc.keepalive_timeout_ms", 20_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.http2.min_ping_interval_without_data_ms", 10_000),
    ("grpc.http2.max_pings_without_data", 0),
    # gRPC sets SO_REUSEPORT by default: a second server on a taken port would start silently
    # and split the clients between the two. Off, the bind fails and we say so.
    ("grpc.so_reuseport", 0),
)

SERVICE_NAMES: tuple[str, ...] = (
    graph_pb2.DESCRIPTOR.services_by_name["GraphService"].full_name,
    risk_pb2.DESCRIPTOR.services_by_name["RiskService"].full_name,
)


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    registry: GraphRegistry

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING
            if serving
            else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("", *SERVICE_NAMES):
            await self.health.set(name, status)

    async def stop(self, grace: float = GRACE_SECONDS) -> None:
        await self.set_serving(False)
        await self.server.stop(grace)
        self.registry.close()


async def start_server(
    registry: GraphRegistry,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    auth: TokenAuthenticator | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> RunningServer:
    """Build and start a server on ``host:port`` (0 = any free port); SERVING once started.

    Without ``auth`` no token is valid, so the editing methods are UNAUTHENTICATED.
    """
    server = grpc.aio.server(
        interceptors=[RequestLoggingInterceptor(), *interceptors], options=SERVER_OPTIONS
    )
    graph_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(registry, auth), server)
    risk_pb2_grpc.add_RiskServiceServicer_to_server(RiskServicer(registry), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (
            *SERVICE_NAMES,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ),
        server,
    )
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio raises on a failed bind
        bound = 0
    if bound == 0:
        raise PortInUse(host, port, "--port")
    await server.start()
    running = RunningServer(server, bound, health_servicer, registry)
    await running.set_serving(registry.ready)
    return running


class PortInUse(OSError):
    """The port is taken (by another sovrisk or anything else): one line says which flag
    chooses another."""

    def __init__(self, host: str, port: int, flag: str) -> None:
        super().__init__(
            f"cannot listen on {host}:{port}: the port is in use (another `sovrisk serve`?); "
            f"stop it or choose another port with {flag}"
        )


def ensure_port_free(host: str, port: int | None, flag: str) -> None:
    """Raise :class:`PortInUse` if ``host:port`` cannot be bound, before the seconds of
    loading and warming that precede serving (0 and None: nothing to check)."""
    if not port:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(host, port, flag) from None
            raise


@dataclass(frozen=True)
class ServeConfig:
    """Where the server keeps its state and how it is reached."""

    data_dir: str | Path = DEFAULT_DATA_DIR  # seeds an empty store
    store: str = field(default_factory=default_store)  # a directory / .db, or postgresql://
    tokens: Path | None = field(default_factory=default_tokens_file)
    host: str = "127.0.0.1"
    port: int = 50051
    poll_interval: float = 2.0  # seconds between checks for other replicas' versions
    print_ranking: bool = False
    grpc: bool = True  # serve the gRPC API
    http_port: int | None = None  # also (or only) serve the HTTP/JSON gateway on this port
    interval_draws: int = 0  # draws behind score intervals when a request does not say
    cors_origins: tuple[str, ...] = ()  # browser origins the gateway answers (CORS)
    allowed_hosts: tuple[str, ...] = ()  # Host headers the gateway answers (() = default)
    metrics_port: int | None = None  # Prometheus /metrics on this port (None: off)


def _warn_if_seed_differs(registry: GraphRegistry, data_dir: str | Path) -> None:
    store, version = registry.store, registry.version
    if store is None or version is None:
        return
    if DatasetFiles.from_directory(data_dir).digest != store.files(version.id).digest:
        log.warning(
            "%s differs from the latest stored version (%s): the store wins. To serve the "
            "folder, commit it: sovrisk import %s",
            data_dir,
            version.name,
            data_dir,
        )


async def _warm_intervals(registry: GraphRegistry, print_ranking: bool) -> None:
    """Compute the default score intervals in the background once serving (the draws take
    ~2-5 s each on the bundled data), so the first request that wants them finds them
    cached; with ``--print-ranking``, print the ranking again with them."""
    engine = registry.engine
    params = engine.default_params()
    draws = registry.interval_draws
    log.info("computing score intervals in the background (%d draws)", draws)
    try:
        uncertainty = await asyncio.to_thread(cached_uncertainty, engine, params, draws)
    except Exception:  # pragma: no cover - logged, the server keeps serving without them
        log.exception("score intervals failed")
        return
    log.info("score intervals ready (%d draws)", draws)
    if print_ranking and uncertainty is not None:
        print("\n" + ranking_table(engine.assess_all(params), uncertainty), flush=True)


@dataclass(frozen=True)
class ConfigCheck:
    what: str
    ok: bool
    detail: str


def check_config(config: ServeConfig) -> list[ConfigCheck]:
    """What `serve` would need, checked without serving (`sovrisk serve --check-config`):
    the ports, the store, the seed folder of an empty store, the token file."""
    checks: list[ConfigCheck] = []
    ports = [("--port", config.port if config.grpc else None)]
    ports += [("--http-port", config.http_port), ("--metrics-port", config.metrics_port)]
    for flag, port in ports:
        if port is None:
            continue
        try:
            ensure_port_free(config.host, port, flag)
            checks.append(ConfigCheck(flag, True, f"{config.host}:{port} is free"))
        except OSError as exc:
            checks.append(ConfigCheck(flag, False, str(exc)))
    try:
        if not store_exists(config.store):
            raise FileNotFoundError("does not exist yet")
        store = open_store(config.store)
        latest = store.latest()
        store.close()
        detail = f"{latest.name} ({latest.dataset_version})" if latest else "empty: will be seeded"
        checks.append(ConfigCheck("--store", True, f"{config.store}: {detail}"))
        seeds = latest is None
    except FileNotFoundError:
        checks.append(ConfigCheck("--store", True, f"{config.store}: will be created and seeded"))
        seeds = True
    except Exception as exc:  # any failure to open is the finding: say it, do not raise
        checks.append(ConfigCheck("--store", False, f"{config.store}: {exc}"))
        seeds = False
    if seeds:
        files = DatasetFiles.from_directory(config.data_dir)
        checks.append(ConfigCheck("--data", True, f"{config.data_dir}: {len(files)} files"))
    auth = TokenAuthenticator(config.tokens)
    try:
        count = auth.token_count()
        checks.append(ConfigCheck("--tokens", True, f"{config.tokens}: {count} token(s)"))
    except AuthError as exc:
        checks.append(ConfigCheck("--tokens", False, f"{config.tokens}: {exc}"))
    return checks


async def serve(config: ServeConfig) -> None:
    """Open the store (seeding it from the dataset folder on first start), serve until
    SIGINT/SIGTERM, then drain and stop."""
    if config.grpc:
        ensure_port_free(config.host, config.port, "--port")
    ensure_port_free(config.host, config.http_port, "--http-port")
    ensure_port_free(config.host, config.metrics_port, "--metrics-port")
    registry = GraphRegistry.open(config.store, seed=config.data_dir)
    registry.interval_draws = check_draws(config.interval_draws, "--interval-draws")
    _warn_if_seed_differs(registry, config.data_dir)
    auth = TokenAuthenticator(config.tokens)
    if not auth.configured:
        log.warning(
            "no bearer tokens configured: editing methods will be UNAUTHENTICATED. "
            "Create one with: sovrisk token create --principal NAME --role editor"
        )
    host, port = config.host, config.port
    graph = registry.graph
    # Warm the per-version analytics (resilience LPs, tail Monte Carlo, cut sets) before the
    # health check says SERVING, so the first request does not pay for them.
    ranking = registry.engine.assess_all(registry.engine.default_params())
    running = await start_server(registry, host=host, port=port, auth=auth) if config.grpc else None
    gateway = (
        await start_gateway(
            registry,
            host=host,
            port=config.http_port,
            auth=auth,
            cors_origins=config.cors_origins,
            allowed_hosts=config.allowed_hosts or None,
        )
        if config.http_port is not None
        else None
    )
    if gateway is not None:
        log.info("HTTP/JSON gateway on http://%s:%d (OpenAPI at /openapi.json)", host, gateway.port)
    if config.metrics_port is not None:
        bound_metrics = start_metrics_server(host, config.metrics_port)
        log.info("Prometheus metrics on http://%s:%d/metrics", host, bound_metrics)
    poller = (
        asyncio.create_task(registry.poll_store(config.poll_interval))
        if config.poll_interval > 0
        else None
    )
    where = [f"gRPC {host}:{running.port}"] if running else []
    where += [f"HTTP http://{host}:{gateway.port}"] if gateway else []
    log.info(
        "sovrisk serving %s (%s) on %s (%d nodes, dataset as of %s)",
        registry.version.name if registry.version else "-",
        graph.version_id,
        ", ".join(where),
        len(graph.nodes),
        graph.info.as_of.isoformat(),
    )
    if config.print_ranking:
        print(ranking_table(ranking), flush=True)
        if running:
            print(
                f"\nsovrisk gRPC API on {host}:{running.port} "
                "(health, reflection; try: grpcurl -plaintext "
                f"{host}:{running.port} list). Ctrl-C stops.",
                flush=True,
            )
        if gateway:
            print(
                f"sovrisk HTTP/JSON gateway on http://{host}:{gateway.port} "
                f"(try: curl http://{host}:{gateway.port}/v1/providers/aws:score; "
                "OpenAPI at /openapi.json)",
                flush=True,
            )
    intervals = (
        asyncio.create_task(_warm_intervals(registry, config.print_ranking))
        if registry.interval_draws > 0
        else None
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiters = {asyncio.create_task(stop.wait())}
    if running:
        waiters.add(asyncio.create_task(running.server.wait_for_termination()))
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: NOT_SERVING, draining for up to %.0f s", GRACE_SECONDS)
    registry.stop_watchers()
    if poller is not None:
        poller.cancel()
    if intervals is not None:
        intervals.cancel()
    if gateway:
        await gateway.stop()
    if running:
        await running.stop()
    else:
        registry.close()
    for waiter in waiters:
        waiter.cancel()
