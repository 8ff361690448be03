"""Prometheus metrics (prometheus-client): what an operator graphs and alerts on.

Requests by transport, method and code with latency histograms and in-flight gauges (gRPC
through the logging interceptor, HTTP through the gateway), engine builds, heavy jobs admitted
and refused, store commit time, simulated samples (and samples per second), response-cache
hits and misses, and the time of each per-version analysis. ``sovrisk serve --metrics-port N``
exposes them on ``http://HOST:N/metrics``.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from sovrisk.models.scoring.risk_engine import ANALYSIS_OBSERVERS

#: Seconds: from a cached read (~1 ms) to a million-sample simulation (minutes).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120)

REQUESTS = Counter(
    "sovrisk_requests_total",
    "Requests answered, by transport, method and code",
    ["transport", "method", "code"],
)
LATENCY = Histogram(
    "sovrisk_request_duration_seconds",
    "Time to answer a request (a stream: until it ends), by transport and method",
    ["transport", "method"],
    buckets=LATENCY_BUCKETS,
)
IN_FLIGHT = Gauge("sovrisk_requests_in_flight", "Requests being answered now", ["transport"])
ENGINE_BUILDS = Counter(
    "sovrisk_engine_builds_total", "Graph versions compiled into an engine (validation included)"
)
ENGINE_BUILD_SECONDS = Histogram(
    "sovrisk_engine_build_seconds", "Time to validate and compile one graph version"
)
HEAVY_JOBS = Gauge("sovrisk_heavy_jobs", "Heavy jobs admitted (running or queued)")
OVERLOADED = Counter(
    "sovrisk_overloaded_total", "Heavy requests refused with RESOURCE_EXHAUSTED (pool full)"
)
COMMIT_SECONDS = Histogram("sovrisk_store_commit_seconds", "Time to validate and commit a version")
SIMULATED_SAMPLES = Counter("sovrisk_simulation_samples_total", "Monte Carlo samples simulated")
SIMULATION_RATE = Gauge(
    "sovrisk_simulation_samples_per_second", "Samples per second of the last simulation batch"
)
RESPONSE_CACHE = Counter(
    "sovrisk_response_cache_requests_total",
    "Published reads looked up in the serialised-response cache, by result (hit, miss)",
    ["result"],
)
ANALYTICS = Counter(
    "sovrisk_analytics_total",
    "Per-version analytics asked of the store-backed cache, by kind and outcome (loaded: "
    "read back; computed: computed and stored here; waited: another replica computed it; "
    "unstored: the store was unreachable)",
    ["kind", "outcome"],
)
ANALYSIS_SECONDS = Histogram(
    "sovrisk_analysis_seconds",
    "Per-version analytics (cut sets, contention, resilience, tail, intervals), by analysis",
    ["analysis"],
    buckets=LATENCY_BUCKETS,
)


def _observe_analysis(analysis: str, seconds: float) -> None:
    ANALYSIS_SECONDS.labels(analysis).observe(seconds)


ANALYSIS_OBSERVERS.append(_observe_analysis)


def record_request(transport: str, method: str, code: str, seconds: float) -> None:
    REQUESTS.labels(transport, method, code).inc()
    LATENCY.labels(transport, method).observe(seconds)


def start_metrics_server(host: str, port: int) -> int:
    """Serve ``/metrics`` on ``host:port`` (0 = any free port) in a daemon thread; the port."""
    server, _ = start_http_server(port, addr=host)
    return int(server.server_port)
