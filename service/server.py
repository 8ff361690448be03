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
from sovrisk.service.interceptors import ReadTokenInterceptor, RequestLoggingInterceptor
from sovrisk.service.logs import quiet_ended_calls
from sovrisk.service.memory import release_free_memory
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
from sovrisk.service.tls import ServerTls, TlsConfigError, load_server_tls
from sovrisk.service.tracing import check as check_tracing
from sovrisk.service.tracing import configure_tracing

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
    risk: RiskServicer | None = None  # its response cache, for tests and metrics

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
    tls: ServerTls | None = None,
    require_read_token: bool = False,
) -> RunningServer:
    """Build and start a server on ``host:port`` (0 = any free port); SERVING once started.

    Without ``auth`` no token is valid, so the editing methods are UNAUTHENTICATED.
    ``tls``: serve TLS only (mutual TLS when it has a client CA). ``require_read_token``:
    every GraphService/RiskService method needs a valid token of any role (health and
    reflection stay open).
    """
    quiet_ended_calls()  # a reply to a call past its deadline is not an error of ours
    read_token = (
        [ReadTokenInterceptor(auth or TokenAuthenticator(env={}), SERVICE_NAMES)]
        if require_read_token
        else []
    )
    server = grpc.aio.server(
        interceptors=[RequestLoggingInterceptor(auth), *read_token, *interceptors],
        options=SERVER_OPTIONS,
    )
    graph_pb2_grpc.add_GraphServiceServicer_to_server(GraphServicer(registry, auth), server)
    risk_servicer = RiskServicer(registry)
    risk_pb2_grpc.add_RiskServiceServicer_to_server(risk_servicer, server)
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
        address = f"{host}:{port}"
        if tls is not None:
            bound = server.add_secure_port(address, tls.grpc_credentials())
        else:
            bound = server.add_insecure_port(address)
    except RuntimeError:  # grpcio raises on a failed bind
        bound = 0
    if bound == 0:
        raise PortInUse(host, port, "--port")
    await server.start()
    running = RunningServer(server, bound, health_servicer, registry, risk_servicer)
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
    tls_cert: Path | None = None  # serve TLS (gRPC and gateway) with this certificate chain
    tls_key: Path | None = None  # ... and this key
    tls_client_ca: Path | None = None  # require client certificates signed by this CA
    require_read_token: bool = False  # every read needs a bearer token (any role)


def _warn_if_seed_differs(registry: GraphRegistry, data_dir: str | Path) -> None:
    store, version = registry.store, registry.version
    if store is None or version is None or registry.large_at(None) is not None:
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
    release_free_memory()  # the draws allocate ~150 MB for a moment
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
    count = 0
    try:
        count = auth.token_count()
        checks.append(ConfigCheck("--tokens", True, f"{config.tokens}: {count} token(s)"))
    except AuthError as exc:
        checks.append(ConfigCheck("--tokens", False, f"{config.tokens}: {exc}"))
    checks.append(_check_tls(config))
    checks.append(ConfigCheck("tracing", *check_tracing()))
    if config.require_read_token:
        ok = count > 0
        detail = "every read needs a bearer token" + (
            "" if ok else ": but no token is configured, so every read would be refused"
        )
        checks.append(ConfigCheck("--require-read-token", ok, detail))
    return checks


def _check_tls(config: ServeConfig) -> ConfigCheck:
    try:
        tls = load_server_tls(config.tls_cert, config.tls_key, config.tls_client_ca)
    except TlsConfigError as exc:
        return ConfigCheck("--tls-cert", False, str(exc))
    if tls is None:
        return ConfigCheck("--tls-cert", True, "off: gRPC and the gateway speak plaintext")
    return ConfigCheck("--tls-cert", True, tls.describe())


async def serve(config: ServeConfig) -> None:
    """Open the store (seeding it from the dataset folder on first start), serve until
    SIGINT/SIGTERM, then drain and stop."""
    tls = load_server_tls(config.tls_cert, config.tls_key, config.tls_client_ca)
    if config.grpc:
        ensure_port_free(config.host, config.port, "--port")
    ensure_port_free(config.host, config.http_port, "--http-port")
    ensure_port_free(config.host, config.metrics_port, "--metrics-port")
    tracing = configure_tracing()  # OTEL_* variables; None (and free) when they ask for none
    registry = GraphRegistry.open(config.store, seed=config.data_dir)
    registry.interval_draws = check_draws(config.interval_draws, "--interval-draws")
    _warn_if_seed_differs(registry, config.data_dir)
    auth = TokenAuthenticator(config.tokens)
    if not auth.configured:
        log.warning(
            "no bearer tokens configured: editing methods will be UNAUTHENTICATED. "
            "Create one with: sovrisk token create --principal NAME --role editor"
            + (
                "; --require-read-token: every read will be UNAUTHENTICATED too"
                if config.require_read_token
                else ""
            )
        )
    if tls is not None:
        log.info("TLS on gRPC and the gateway: %s", tls.describe())
    host, port = config.host, config.port
    # Warm the per-version analytics (resilience LPs, tail Monte Carlo, cut sets; an edge
    # table's SPOFs and top impacts) before the health check says SERVING, so the first
    # request does not pay for them.
    large = registry.large_at(None)
    if large is None:
        ranking = registry.engine.assess_all(registry.engine.default_params())
        graph = registry.graph
        serving = (
            f"{graph.version_id}; {len(graph.nodes)} nodes, dataset as of "
            f"{graph.info.as_of.isoformat()}"
        )
    else:
        large.assess_all()
        serving = f"edge table; {large.compiled.n_nodes} nodes, {len(large.provider_ids)} providers"
    release_free_memory()
    running = (
        await start_server(
            registry,
            host=host,
            port=port,
            auth=auth,
            tls=tls,
            require_read_token=config.require_read_token,
        )
        if config.grpc
        else None
    )
    gateway = (
        await start_gateway(
            registry,
            host=host,
            port=config.http_port,
            auth=auth,
            cors_origins=config.cors_origins,
            allowed_hosts=config.allowed_hosts or None,
            ssl_context=tls.ssl_context() if tls is not None else None,
            require_read_token=config.require_read_token,
        )
        if config.http_port is not None
        else None
    )
    scheme = "https" if tls is not None else "http"
    if gateway is not None:
        log.info(
            "HTTP/JSON gateway on %s://%s:%d (OpenAPI at /openapi.json)",
            scheme,
            host,
            gateway.port,
        )
    if config.metrics_port is not None:
        bound_metrics = start_metrics_server(host, config.metrics_port)
        log.info("Prometheus metrics on http://%s:%d/metrics", host, bound_metrics)
    poller = (
        asyncio.create_task(registry.poll_store(config.poll_interval))
        if config.poll_interval > 0
        else None
    )
    where = [f"gRPC{' (TLS)' if tls else ''} {host}:{running.port}"] if running else []
    where += [f"HTTP {scheme}://{host}:{gateway.port}"] if gateway else []
    log.info(
        "sovrisk serving %s (%s) on %s",
        registry.version.name if registry.version else "-",
        serving,
        ", ".join(where),
    )
    if config.print_ranking and large is None:
        print(ranking_table(ranking), flush=True)
        if running:
            grpcurl = "-cacert CA.pem" if tls else "-plaintext"
            print(
                f"\nsovrisk gRPC API on {host}:{running.port} "
                f"(health, reflection; try: grpcurl {grpcurl} "
                f"{host}:{running.port} list). Ctrl-C stops.",
                flush=True,
            )
        if gateway:
            curl = "curl --cacert CA.pem" if tls else "curl"
            print(
                f"sovrisk HTTP/JSON gateway on {scheme}://{host}:{gateway.port} "
                f"(try: {curl} {scheme}://{host}:{gateway.port}/v1/providers/aws:score; "
                "OpenAPI at /openapi.json)",
                flush=True,
            )
    intervals = (
        asyncio.create_task(_warm_intervals(registry, config.print_ranking))
        if registry.interval_draws > 0 and large is None
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
    if tracing is not None:
        tracing.shutdown()  # export the spans still queued
