"""Cached reads at wire speed: each read RPC's rate against the health check's, in one run.

    .venv/bin/python benchmarks/bench_serve.py                 # 20,000 calls per case
    .venv/bin/python benchmarks/bench_serve.py --calls 5000    # quicker

Starts ``sovrisk serve`` on the bundled data (a temporary store, the defaults a user gets),
warms every case once, then drives each with h2load (Debian ``nghttp2-client``: gRPC over
HTTP/2 from C, so the client is not what is measured) with ``--streams`` calls in flight on
one connection. Reports requests per second, that rate as a fraction of
``grpc.health.v1.Health/Check`` (the server's own per-call floor: interceptors, HTTP/2,
protobuf), and p50/p99 latency from h2load's per-request log. Targets (issue 14): cached
ScoreProvider (BASIC and FULL) and ListProviderScores >= 80 % of the health check's rate, p99
<= 10 ms at 16 in flight. Before the response cache: ScoreProvider FULL 417 req/s, 9.6 % of
the health check's 4,365.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks.serve_process import serve_process
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, risk_pb2_grpc

TARGET_FRACTION = 0.80
TARGET_P99_MS = 10.0


@dataclass(frozen=True)
class Case:
    name: str
    path: str  # /package.Service/Method
    request: Message
    targeted: bool  # counts against the targets


CASES = [
    Case("Health/Check", "/grpc.health.v1.Health/Check", health_pb2.HealthCheckRequest(), False),
    Case(
        "ScoreProvider BASIC",
        "/sovrisk.v1.RiskService/ScoreProvider",
        risk_pb2.ScoreProviderRequest(name="providers/aws", view=risk_pb2.ASSESSMENT_VIEW_BASIC),
        True,
    ),
    Case(
        "ScoreProvider FULL",
        "/sovrisk.v1.RiskService/ScoreProvider",
        risk_pb2.ScoreProviderRequest(name="providers/aws"),
        True,
    ),
    Case(
        "ListProviderScores",
        "/sovrisk.v1.RiskService/ListProviderScores",
        risk_pb2.ListProviderScoresRequest(),
        True,
    ),
]


@dataclass(frozen=True)
class Result:
    case: Case
    rate: float
    p50_ms: float
    p99_ms: float
    response_bytes: int


def _frame(message: Message) -> bytes:
    """A gRPC length-prefixed message: not compressed, 4-byte big-endian length."""
    data = message.SerializeToString()
    return struct.pack(">BI", 0, len(data)) + data


def _warm(channel: grpc.Channel) -> dict[str, int]:
    """Every case once (the first ScoreProvider computes the intervals: ~1 min), and the
    size of each response."""
    sizes: dict[str, int] = {}
    for case in CASES:
        if case.path.startswith("/grpc.health"):
            response: Message = health_pb2_grpc.HealthStub(channel).Check(case.request, timeout=60)
        else:
            stub = risk_pb2_grpc.RiskServiceStub(channel)
            method = getattr(stub, case.path.rsplit("/", 1)[1])
            response = method(case.request, timeout=600)
        sizes[case.name] = response.ByteSize()
    return sizes


def _h2load(
    port: int, case: Case, calls: int, streams: int, folder: Path
) -> tuple[float, list[float]]:
    frame = folder / "frame.bin"
    frame.write_bytes(_frame(case.request))
    log = folder / "h2load.log"
    log.unlink(missing_ok=True)
    out = subprocess.run(
        [
            "h2load",
            "-n", str(calls), "-c", "1", "-m", str(streams),
            "-H", "content-type: application/grpc", "-H", "te: trailers",
            "-d", str(frame), "--log-file", str(log),
            f"http://127.0.0.1:{port}{case.path}",
        ],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    rate = next(
        float(line.split(",")[1].split()[0])
        for line in out.stdout.splitlines()
        if line.startswith("finished in")
    )
    # --log-file: start time (us since the epoch), HTTP status, duration (us) per request
    durations = [int(line.split("\t")[2]) / 1000 for line in log.read_text().splitlines()]
    statuses = {line.split("\t")[1] for line in log.read_text().splitlines()}
    if statuses != {"200"}:
        raise SystemExit(f"bench_serve: {case.name}: HTTP statuses {statuses}")
    return rate, durations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=20_000, help="calls per case")
    parser.add_argument("--streams", type=int, default=16, help="calls in flight")
    args = parser.parse_args(argv)
    if shutil.which("h2load") is None:
        raise SystemExit("bench_serve: h2load not found: apt-get install nghttp2-client")

    results: list[Result] = []
    with serve_process("serve") as server:
        with grpc.insecure_channel(server.target) as channel:
            deadline = time.monotonic() + 300
            while True:
                try:
                    sizes = _warm(channel)
                    break
                except grpc.RpcError:
                    if server.proc.poll() is not None or time.monotonic() > deadline:
                        raise SystemExit("bench_serve: no server; see serve.log") from None
                    time.sleep(1)
        for case in CASES:
            rate, durations = _h2load(server.port, case, args.calls, args.streams, server.state)
            cuts = statistics.quantiles(durations, n=100)
            results.append(Result(case, rate, cuts[49], cuts[98], sizes[case.name]))

    ceiling = results[0].rate
    print(f"{args.calls:,} calls per case, {args.streams} in flight on one connection (h2load)")
    print(
        f"{'case':<22}{'bytes':>9}{'req/s':>9}{'of health':>11}{'p50 ms':>9}{'p99 ms':>9}  target"
    )
    met_all = True
    for r in results:
        fraction = r.rate / ceiling
        if r.case.targeted:
            met = fraction >= TARGET_FRACTION and r.p99_ms <= TARGET_P99_MS
            met_all &= met
            verdict = "met" if met else "MISSED"
        else:
            verdict = "(ceiling)"
        print(
            f"{r.case.name:<22}{r.response_bytes:>9,}{r.rate:>9,.0f}{100 * fraction:>10.1f}%"
            f"{r.p50_ms:>9.2f}{r.p99_ms:>9.2f}  {verdict}"
        )
    target = f">= {100 * TARGET_FRACTION:.0f} % of the health check, p99 <= {TARGET_P99_MS:g} ms"
    print(f"targets: {target}")
    return 0 if met_all else 1


if __name__ == "__main__":
    raise SystemExit(main())
