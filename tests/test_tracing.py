"""OpenTelemetry tracing: the request spans of both transports and the service's own spans
(engine build, scoring, simulation batches, store commit) with their parents, the trace id
on the JSON request lines, the OTLP exporters (on protobuf 7), and nothing at all when the
environment does not ask for tracing."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from aiohttp import web
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sovrisk.service import tracing
from sovrisk.service.auth import TokenAuthenticator
from sovrisk.service.gateway.server import start_gateway
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2_grpc, risk_pb2, risk_pb2_grpc
from sovrisk.service.logs import HANDLER_NAME, JsonFormatter
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server
from sovrisk.service.tracing import TracingConfigError, TracingSettings, settings_from_env
from tests.conftest import SMALL
from tests.serverproc import ROOT, free_port, spawn_server
from tests.test_server import rpc_error
from tests.test_server_versions import EDITOR, TOKENS, _resplit

SCORE = "/sovrisk.v1.RiskService/ScoreProvider"
SIMULATE = "/sovrisk.v1.RiskService/SimulateDisruptions"
BATCH = "/sovrisk.v1.GraphService/BatchUpdateGraph"
#: A caller's W3C trace context: the server continues this trace.
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
TRACEPARENT = f"00-{CALLER_TRACE}-00f067aa0ba902b7-01"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    """Tracing on for this test only, every span kept in memory (no global provider left)."""
    spans = InMemorySpanExporter()
    configured = tracing.configure_tracing(exporter=spans, set_global=False)
    assert configured is not None
    try:
        yield spans
    finally:
        configured.shutdown()


@pytest.fixture
def request_log() -> Iterator[io.StringIO]:
    """The JSON request lines of both transports."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.set_name(HANDLER_NAME + "-tracing-test")
    loggers = [logging.getLogger(name) for name in ("sovrisk.requests", "sovrisk.gateway")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.removeHandler(handler)
            logger.setLevel(level)


def _named(spans: Sequence[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [s for s in spans if s.name == name]


def _parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


def _span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def _trace_id(span: ReadableSpan) -> str:
    assert span.context is not None
    return format(span.context.trace_id, "032x")


def _children(spans: Sequence[ReadableSpan], parent: ReadableSpan, name: str) -> list[ReadableSpan]:
    return [s for s in _named(spans, name) if _parent_id(s) == _span_id(parent)]


async def _until(
    exporter: InMemorySpanExporter, done: Callable[[Sequence[ReadableSpan]], bool]
) -> Sequence[ReadableSpan]:
    """The finished spans once ``done`` holds (a server span ends as its answer goes out)."""
    for _ in range(100):
        spans = exporter.get_finished_spans()
        if done(spans):
            return spans
        await asyncio.sleep(0.05)
    return exporter.get_finished_spans()


async def test_requests_and_the_work_they_do_are_traced(
    exporter: InMemorySpanExporter, request_log: io.StringIO, tmp_path: Path
) -> None:
    store = str(tmp_path / "store" / "sovrisk.db")
    GraphRegistry.open(store, seed=SMALL).close()  # seeded: the next start builds version 1
    registry = GraphRegistry.open(store)
    auth = TokenAuthenticator(env={"SOVRISK_TOKENS": TOKENS})
    running = await start_server(registry, port=0, auth=auth)
    gateway = await start_gateway(registry, port=0, auth=auth)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            risk = risk_pb2_grpc.RiskServiceStub(channel)
            graph = graph_pb2_grpc.GraphServiceStub(channel)
            await risk.ScoreProvider(
                risk_pb2.ScoreProviderRequest(name="providers/p"),
                metadata=(("traceparent", TRACEPARENT),),
            )
            missing = await rpc_error(
                risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/zz"))
            )
            assert missing.code() is grpc.StatusCode.NOT_FOUND
            messages = [
                m
                async for m in risk.SimulateDisruptions(
                    risk_pb2.SimulateDisruptionsRequest(samples=500, seed=3)
                )
            ]
            assert messages[-1].HasField("result")
            await graph.BatchUpdateGraph(_resplit(), metadata=EDITOR)
        async with (
            aiohttp.ClientSession() as session,
            session.get(f"http://127.0.0.1:{gateway.port}/v1/providers/p:score") as response,
        ):
            assert response.status == 200
        http_name = "GET /v1/{name=providers/*}:score"
        spans = await _until(exporter, lambda s: bool(_named(s, http_name)))
    finally:
        await gateway.stop()
        await running.stop(0)

    # -- the request spans: one SERVER span per RPC, named after the method ----------------
    score_calls = _named(spans, SCORE)
    assert len(score_calls) == 2
    ok_call, missing_call = sorted(score_calls, key=lambda s: s.start_time or 0)
    assert ok_call.attributes is not None and missing_call.attributes is not None
    assert ok_call.attributes["rpc.service"] == "sovrisk.v1.RiskService"
    assert ok_call.attributes["rpc.method"] == "ScoreProvider"
    assert ok_call.attributes["rpc.grpc.status_code"] == 0
    assert missing_call.attributes["rpc.grpc.status_code"] == grpc.StatusCode.NOT_FOUND.value[0]
    assert _trace_id(ok_call) == CALLER_TRACE  # the caller's trace goes on
    [simulate_call] = _named(spans, SIMULATE)
    [batch_call] = _named(spans, BATCH)
    [http] = _named(spans, http_name)
    assert http.attributes is not None and http.attributes["rpc.method"] == SCORE

    # -- the service's own spans, under the request that caused them -----------------------
    builds = _named(spans, "sovrisk.engine.build")
    # one at start (the store's latest version), one for the commit's version
    assert [b.attributes["sovrisk.graph_version"] for b in builds if b.attributes] == [
        "graph/versions/1",
        "graph/versions/2",
    ]
    assert builds[0].parent is None and builds[0].attributes is not None
    nodes = builds[0].attributes["sovrisk.nodes"]
    assert isinstance(nodes, int) and nodes > 0
    [score] = _children(spans, ok_call, "sovrisk.score")
    assert score.attributes is not None and score.attributes["sovrisk.provider"] == "p"
    assert _children(spans, ok_call, "sovrisk.score.intervals")
    assert _children(spans, http, "sovrisk.score"), "the gateway's request has its scoring"
    [simulation] = _children(spans, simulate_call, "sovrisk.simulate")
    assert simulation.attributes is not None and simulation.attributes["sovrisk.samples"] == 500
    batches = _children(spans, simulation, "sovrisk.simulate.batch")
    assert batches and batches[-1].attributes is not None
    assert batches[-1].attributes["sovrisk.samples_done"] == 500
    [commit] = _children(spans, batch_call, "sovrisk.store.commit")
    assert commit.attributes is not None
    assert commit.attributes["sovrisk.graph_version"] == "graph/versions/2"
    assert commit.attributes["sovrisk.changes"] == 2
    assert _children(spans, commit, "sovrisk.store.write")
    assert _children(spans, commit, "sovrisk.engine.build")

    # -- the request lines carry the trace id of their request ------------------------------
    lines = [json.loads(x) for x in request_log.getvalue().splitlines()]
    by_method: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_method.setdefault(f"{line.get('transport')} {line.get('method')}", []).append(line)
    assert [x["trace_id"] for x in by_method[f"grpc {SCORE}"]] == [
        CALLER_TRACE,
        _trace_id(missing_call),
    ]
    [simulate_line] = by_method[f"grpc {SIMULATE}"]
    assert simulate_line["trace_id"] == _trace_id(simulate_call)
    [http_line] = by_method[f"http {SCORE}"]
    assert http_line["trace_id"] == _trace_id(http)


def test_the_environment_decides_whether_tracing_is_on() -> None:
    off = settings_from_env({})
    assert not off.enabled and "OTEL_TRACES_EXPORTER" in off.reason
    on = settings_from_env({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"})
    assert on == TracingSettings(("otlp",), "grpc", "http://collector:4317")
    http = settings_from_env(
        {
            "OTEL_TRACES_EXPORTER": "otlp,console",
            "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc",
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf",  # the signal's own wins
        }
    )
    assert http == TracingSettings(("otlp", "console"), "http/protobuf", "http://localhost:4318")
    assert "OTLP http/protobuf to http://localhost:4318" in http.describe()
    for disabled in (
        {"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"},
        {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317"},
    ):
        assert not settings_from_env(disabled).enabled
    with pytest.raises(TracingConfigError, match="unknown exporter jaeger"):
        settings_from_env({"OTEL_TRACES_EXPORTER": "jaeger"})
    with pytest.raises(TracingConfigError, match="http/json"):
        settings_from_env(
            {"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}
        )
    assert tracing.check({"OTEL_TRACES_EXPORTER": "zipkin"})[0] is False
    assert tracing.check({}) == (True, off.describe())


#: Run in a fresh interpreter: serve a request with no OTEL_* variable, then report what
#: OpenTelemetry left in the process.
_UNCONFIGURED = """
import asyncio, json, sys
import grpc
from sovrisk.service import tracing
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc
from sovrisk.service.registry import GraphRegistry
from sovrisk.service.server import start_server

async def main():
    assert tracing.configure_tracing() is None
    registry = GraphRegistry.from_directory(sys.argv[1])
    running = await start_server(registry, port=0)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            stub = risk_pb2_grpc.RiskServiceStub(channel)
            await stub.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
    finally:
        await running.stop(0)

asyncio.run(main())
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry")))
"""


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return {**env, **extra}


@pytest.mark.parametrize(
    "env",
    [{}, {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9"}],
    ids=["no OTEL variables", "OTEL_SDK_DISABLED"],
)
def test_without_configuration_no_sdk_is_installed_or_imported(env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _UNCONFIGURED, str(SMALL)],
        cwd=ROOT,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1]) == []  # no SDK, not even the API


def test_the_cli_fast_path_imports_no_opentelemetry() -> None:
    code = (
        "import sys\n"
        "from sovrisk.service import cli\n"
        "try:\n    cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print([m for m in sys.modules if m.startswith('opentelemetry')], file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"


# -- the OTLP exporters, against an in-test collector -------------------------------------


Exports = list[trace_service_pb2.ExportTraceServiceRequest]


async def _http_collector(
    received: Exports,
) -> web.AppRunner:
    async def traces(request: web.Request) -> web.Response:
        body = await request.read()
        if request.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        received.append(trace_service_pb2.ExportTraceServiceRequest.FromString(body))
        return web.Response(
            body=trace_service_pb2.ExportTraceServiceResponse().SerializeToString(),
            content_type="application/x-protobuf",
        )

    app = web.Application()
    app.router.add_post("/v1/traces", traces)
    runner = web.AppRunner(app)
    await runner.setup()
    return runner


def _exported(
    received: Exports,
) -> dict[str, dict[str, str]]:
    """Span name -> the service.name of its resource, over every export received."""
    found: dict[str, dict[str, str]] = {}
    for export in received:
        for resource_spans in export.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    found[span.name] = resource
    return found


@pytest.mark.parametrize("protocol", ["grpc", "http/protobuf"])
async def test_the_otlp_exporters_deliver_spans(
    protocol: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    received: Exports = []
    port = free_port()
    if protocol == "grpc":
        from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

        class Collector(trace_service_pb2_grpc.TraceServiceServicer):
            async def Export(
                self, request: trace_service_pb2.ExportTraceServiceRequest, context: Any
            ) -> trace_service_pb2.ExportTraceServiceResponse:
                received.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        server = grpc.aio.server()
        add = trace_service_pb2_grpc.add_TraceServiceServicer_to_server
        add(Collector(), server)  # type: ignore[no-untyped-call]
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        stop: Callable[[], Any] = lambda: server.stop(0)  # noqa: E731
    else:
        runner = await _http_collector(received)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        stop = runner.cleanup
    for key in [k for k in os.environ if k.startswith("OTEL_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_INSECURE", "true")
    try:
        configured = tracing.configure_tracing(set_global=False)
        assert configured is not None
        with tracing.span("sovrisk.test", {"sovrisk.graph_version": "graph/versions/1"}):
            pass
        await asyncio.to_thread(configured.shutdown, 10.0)  # the collector runs on this loop
    finally:
        await stop()
    exported = _exported(received)
    assert exported["sovrisk.test"]["service.name"] == "sovrisk"


@pytest.mark.smoke
async def test_sovrisk_serve_exports_its_spans_when_asked() -> None:
    received: Exports = []
    collector_port = free_port()
    runner = await _http_collector(received)
    await web.TCPSite(runner, "127.0.0.1", collector_port).start()
    env = {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector_port}",
        "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
        "OTEL_SERVICE_NAME": "sovrisk-smoke",
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    with tempfile.TemporaryDirectory() as tmp:
        server = spawn_server(
            data=str(SMALL),
            store=str(Path(tmp) / "store"),
            log=Path(tmp) / "server.log",
            env={**_clean_env(), **env},
        )
        try:
            async with grpc.aio.insecure_channel(server.target) as channel:
                stub = risk_pb2_grpc.RiskServiceStub(channel)
                await stub.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/p"))
            for _ in range(100):
                if SCORE in _exported(received):
                    break
                await asyncio.sleep(0.1)
        finally:
            server.stop()
            await runner.cleanup()
    exported = _exported(received)
    assert exported[SCORE]["service.name"] == "sovrisk-smoke", server.output()
    assert exported["sovrisk.score"]["service.name"] == "sovrisk-smoke"
