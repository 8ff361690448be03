"""OpenTelemetry tracing: off unless the standard ``OTEL_*`` variables ask for it.

``sovrisk serve`` calls :func:`configure_tracing`. It does nothing (and imports nothing) unless
``OTEL_TRACES_EXPORTER`` names an exporter (``otlp``, ``console``) or an OTLP endpoint is set
(``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT``), and never when
``OTEL_SDK_DISABLED=true`` or ``OTEL_TRACES_EXPORTER=none``. Once on, it installs the SDK's
``TracerProvider`` (service name ``sovrisk`` unless ``OTEL_SERVICE_NAME`` says otherwise), an
OTLP exporter (gRPC, or HTTP with ``OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf``) configured
by its own ``OTEL_EXPORTER_OTLP_*`` variables, and instruments the gRPC aio server and the
aiohttp gateway (one SERVER span per request, continuing a caller's ``traceparent``).

The rest of the service marks its expensive steps with :func:`span` (engine builds, scoring,
simulations and their batches, store commits). These helpers need only the OpenTelemetry API,
and only when something has loaded it: without tracing they cost a dictionary look-up. The
domain (``sovrisk.models``) knows nothing of tracing. docs/operations.md lists the spans.
"""

from __future__ import annotations

import contextlib
import contextvars
import importlib.util
import logging
import os
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Span, Tracer

log = logging.getLogger("sovrisk.tracing")

T = TypeVar("T")
#: Span attribute values this module sets.
Attributes = Mapping[str, str | bool | int | float]

#: ``service.name`` of the resource when ``OTEL_SERVICE_NAME`` (or ``OTEL_RESOURCE_ATTRIBUTES``)
#: does not name one.
SERVICE_NAME = "sovrisk"
#: The instrumentation scope of the service's own spans.
TRACER_NAME = "sovrisk"
#: Seconds :meth:`Tracing.shutdown` waits for the last spans to be exported.
SHUTDOWN_SECONDS = 3.0
EXPORTERS = ("otlp", "console")
PROTOCOLS = ("grpc", "http/protobuf")
DEFAULT_ENDPOINTS = {"grpc": "http://localhost:4317", "http/protobuf": "http://localhost:4318"}
#: gRPC codes that make a server span an error (OpenTelemetry's gRPC conventions: the others
#: are the client's problem and show as ``rpc.grpc.status_code`` only).
SERVER_ERROR_CODES = frozenset(
    {"UNKNOWN", "DEADLINE_EXCEEDED", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS"}
)
#: The distributions tracing needs (all in the ``server`` extra).
REQUIRED_MODULES = {
    "opentelemetry.sdk": "opentelemetry-sdk",
    "opentelemetry.instrumentation.grpc": "opentelemetry-instrumentation-grpc",
    "opentelemetry.instrumentation.aiohttp_server": "opentelemetry-instrumentation-aiohttp-server",
}
EXPORTER_MODULES = {
    "grpc": ("opentelemetry.exporter.otlp.proto.grpc", "opentelemetry-exporter-otlp-proto-grpc"),
    "http/protobuf": (
        "opentelemetry.exporter.otlp.proto.http",
        "opentelemetry-exporter-otlp-proto-http",
    ),
}


class TracingConfigError(ValueError):
    """The ``OTEL_*`` variables ask for tracing this server cannot do."""


@dataclass(frozen=True, slots=True)
class TracingSettings:
    """What the environment asks for: ``exporters`` empty means off (``reason`` says why)."""

    exporters: tuple[str, ...] = ()
    protocol: str = "grpc"
    endpoint: str = ""
    reason: str = ""

    @property
    def enabled(self) -> bool:
        return bool(self.exporters)

    def describe(self) -> str:
        if not self.enabled:
            return f"off ({self.reason})"
        shown = {"otlp": f"OTLP {self.protocol} to {self.endpoint}", "console": "console (stdout)"}
        parts = [shown.get(name, name) for name in self.exporters]
        return "on: " + ", ".join(parts)


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _first(env: Mapping[str, str], *keys: str) -> str:
    """The first of ``keys`` set to a non-blank value (the signal-specific one comes first)."""
    return next((v.strip() for k in keys if (v := env.get(k, "")).strip()), "")


def settings_from_env(env: Mapping[str, str] | None = None) -> TracingSettings:
    """Read the standard variables; raises :class:`TracingConfigError` for an exporter or
    protocol this server does not have (a typo should not silently drop every trace)."""
    env = os.environ if env is None else env
    if _true(env.get("OTEL_SDK_DISABLED")):
        return TracingSettings(reason="OTEL_SDK_DISABLED=true")
    named = [n.strip().lower() for n in env.get("OTEL_TRACES_EXPORTER", "").split(",")]
    named = [n for n in named if n]
    endpoint = _first(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
    if not named:
        if not endpoint:
            return TracingSettings(
                reason="set OTEL_TRACES_EXPORTER=otlp or OTEL_EXPORTER_OTLP_ENDPOINT to enable"
            )
        named = ["otlp"]
    if "none" in named:
        return TracingSettings(reason="OTEL_TRACES_EXPORTER=none")
    unknown = [n for n in named if n not in EXPORTERS]
    if unknown:
        raise TracingConfigError(
            f"OTEL_TRACES_EXPORTER: unknown exporter {', '.join(unknown)!s}; "
            f"this server has {', '.join(EXPORTERS)} (or none)"
        )
    protocol = (
        _first(env, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL").lower()
        or "grpc"
    )
    if "otlp" in named and protocol not in PROTOCOLS:
        raise TracingConfigError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL: {protocol!r} is not supported; "
            f"use {' or '.join(PROTOCOLS)}"
        )
    return TracingSettings(
        exporters=tuple(dict.fromkeys(named)),
        protocol=protocol,
        endpoint=endpoint or DEFAULT_ENDPOINTS.get(protocol, ""),
    )


def missing_packages(settings: TracingSettings) -> list[str]:
    """The distributions ``settings`` needs that are not installed (without importing them)."""
    needed = dict(REQUIRED_MODULES)
    if "otlp" in settings.exporters:
        module, package = EXPORTER_MODULES[settings.protocol]
        needed[module] = package
    missing = []
    for module, package in needed.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            missing.append(package)
    return missing


def check(env: Mapping[str, str] | None = None) -> tuple[bool, str]:
    """``sovrisk serve --check-config``'s line: (ok, what tracing would do)."""
    try:
        settings = settings_from_env(env)
    except TracingConfigError as exc:
        return False, str(exc)
    if settings.enabled and (missing := missing_packages(settings)):
        return False, f"{settings.describe()}, but {', '.join(missing)} not installed"
    return True, settings.describe()


# -- the active configuration ----------------------------------------------------------------


@dataclass
class _Active:
    provider: TracerProvider | None = None
    tracer: Tracer | None = None  # the configured provider's, else the API's global one
    instrumentors: list[Any] = field(default_factory=list)


_active = _Active()


@dataclass
class Tracing:
    """Tracing as :func:`configure_tracing` set it up; :meth:`shutdown` flushes and undoes it."""

    provider: TracerProvider
    settings: TracingSettings

    def shutdown(self, timeout: float = SHUTDOWN_SECONDS) -> None:
        """Export what is still queued, waiting at most ``timeout`` seconds (an unreachable
        collector must not hold the server's exit), and stop tracing."""
        for instrumentor in _active.instrumentors:
            instrumentor.uninstrument()
        _active.instrumentors.clear()
        if _active.provider is self.provider:
            _active.provider = None
            _active.tracer = None
        flush = threading.Thread(target=self.provider.shutdown, name="otel-shutdown", daemon=True)
        flush.start()
        flush.join(timeout)
        if flush.is_alive():
            log.warning(
                "tracing: spans not exported within %.0f s were dropped (%s)",
                timeout,
                self.settings.describe(),
            )


def configure_tracing(
    settings: TracingSettings | None = None,
    *,
    exporter: SpanExporter | None = None,
    set_global: bool = True,
) -> Tracing | None:
    """Install tracing if ``settings`` (default: read from the environment) enable it; None
    (and nothing imported) when they do not.

    ``exporter`` (tests: the SDK's ``InMemorySpanExporter``) enables tracing whatever the
    environment says and receives every span as it ends. ``set_global``: also make the
    provider OpenTelemetry's global one (what a server wants; a test that must not leave a
    provider behind passes False). Instruments the gRPC aio servers and aiohttp applications
    created afterwards. Raises :class:`TracingConfigError` when the environment asks for
    tracing this install cannot do.
    """
    if exporter is None:
        settings = settings if settings is not None else settings_from_env()
        if not settings.enabled:
            return None
        missing = missing_packages(settings)
        if missing:
            raise TracingConfigError(
                f"tracing is on ({settings.describe()}) but {', '.join(missing)} "
                "is not installed: pip install 'sovrisk[server]'"
            )
    else:
        settings = TracingSettings(exporters=(type(exporter).__name__,))
    if _active.provider is not None:
        raise RuntimeError("tracing is already configured in this process")

    from opentelemetry import trace
    from opentelemetry.instrumentation.aiohttp_server import AioHttpServerInstrumentor
    from opentelemetry.instrumentation.grpc import GrpcAioInstrumentorServer
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.version": _version()})
    if str(resource.attributes.get("service.name", "")).startswith("unknown_service"):
        resource = resource.merge(Resource({"service.name": SERVICE_NAME}))
    provider = TracerProvider(resource=resource)  # sampler and limits: OTEL_TRACES_SAMPLER...
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    for name in settings.exporters if exporter is None else ():
        provider.add_span_processor(BatchSpanProcessor(_exporter(name, settings.protocol)))
    if set_global:
        trace.set_tracer_provider(provider)
    grpc_server = GrpcAioInstrumentorServer()  # type: ignore[no-untyped-call]
    instrumentors: list[Any] = [grpc_server, AioHttpServerInstrumentor()]
    with warnings.catch_warnings():
        # its subclass of web.Application (how it adds its middleware) warns at creation
        warnings.filterwarnings("ignore", "Inheritance class", DeprecationWarning)
        for instrumentor in instrumentors:
            instrumentor.instrument(tracer_provider=provider)
    _active.provider = provider
    _active.tracer = provider.get_tracer(TRACER_NAME, _version())
    _active.instrumentors = instrumentors
    log.info("tracing %s (service %s)", settings.describe(), resource.attributes["service.name"])
    return Tracing(provider, settings)


def _exporter(name: str, protocol: str) -> SpanExporter:
    """The exporter ``name``; it reads its own ``OTEL_EXPORTER_OTLP_*`` variables (endpoint,
    headers, certificate, compression, timeout)."""
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if protocol == "http/protobuf":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
            OTLPSpanExporter as HttpExporter,
        )

        return HttpExporter()
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
        OTLPSpanExporter as GrpcExporter,
    )

    return GrpcExporter()


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sovrisk")
    except PackageNotFoundError:
        return "unknown"


# -- helpers for the service's own spans -----------------------------------------------------


def _tracer() -> Tracer | None:
    """The tracer for the service's spans; None when OpenTelemetry was never loaded (tracing
    is off and nothing else in the process uses it), so a span costs nothing."""
    if _active.tracer is not None:
        return _active.tracer
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    # A proxy: it follows a global provider set later (e.g. by opentelemetry-instrument).
    _active.tracer = trace.get_tracer(TRACER_NAME)
    return _active.tracer


class SpanHandle:
    """The span :func:`span` opened (or nothing, when tracing is off): set attributes that are
    known only once the work is done."""

    __slots__ = ("_span",)

    def __init__(self, span: Span | None) -> None:
        self._span = span

    def set(self, key: str, value: str | bool | int | float) -> None:
        if self._span is not None:
            self._span.set_attribute(key, value)


_NO_SPAN = SpanHandle(None)


@contextlib.contextmanager
def span(name: str, attributes: Attributes | None = None) -> Iterator[SpanHandle]:
    """A span around the block, child of the current one (the request's); an exception that
    leaves the block is recorded on it and marks it as an error."""
    tracer = _tracer()
    if tracer is None:
        yield _NO_SPAN
        return
    with tracer.start_as_current_span(name, attributes=attributes) as current:
        yield SpanHandle(current)


class BatchSpans:
    """Spans for the batches of a loop seen only through its progress callback: each
    :meth:`end` records a span from the previous call (or the creation) to now, as a child of
    the span current at creation."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.tracer = _tracer()
        self.started = time.time_ns()
        self.index = 0
        self.parent: Context | None = None
        if self.tracer is not None:
            from opentelemetry import context as otel_context

            self.parent = otel_context.get_current()

    def end(self, attributes: Attributes) -> None:
        now = time.time_ns()
        if self.tracer is not None:
            batch = self.tracer.start_span(
                self.name,
                context=self.parent,
                start_time=self.started,
                attributes={**attributes, "sovrisk.batch.index": self.index},
            )
            batch.end(end_time=now)
        self.started = now
        self.index += 1


def in_current_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to the caller's ``contextvars`` context, for a worker thread: the work it
    does there is traced as part of the request (thread pools do not carry the context)."""
    ctx = contextvars.copy_context()

    def run(*args: Any) -> T:
        return ctx.run(fn, *args)

    return run


def record_rpc_code(name: str, number: int | None) -> None:
    """The gRPC status of the request on its server span (the interceptor knows it even when
    the servicer aborted with a rich status, which the instrumentation does not see)."""
    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if not current.is_recording():
        return
    if number is not None:
        current.set_attribute("rpc.grpc.status_code", number)
    if name in SERVER_ERROR_CODES:
        current.set_status(trace.Status(trace.StatusCode.ERROR, name))


def name_http_span(method: str, route: str, rpc_method: str, code: str) -> None:
    """Name the gateway request's span after its route template (the instrumentation only sees
    the catch-all ``/v1/{tail}``) and record the RPC it maps to and its outcome."""
    if "opentelemetry.trace" not in sys.modules:
        return
    from opentelemetry import trace

    current = trace.get_current_span()
    if current.is_recording():
        current.update_name(f"{method} {route}")
        current.set_attribute("http.route", route)
        current.set_attribute("rpc.method", rpc_method)
        current.set_attribute("sovrisk.code", code)


def current_trace_id() -> str | None:
    """The current span's trace id (32 hex digits), for log lines; None outside a span."""
    if "opentelemetry.trace" not in sys.modules:
        return None
    from opentelemetry import trace

    ctx = trace.get_current_span().get_span_context()
    return format(ctx.trace_id, "032x") if ctx.is_valid else None
