"""A server's memory under what-if traffic: many distinct weightings over several versions.

    .venv/bin/python benchmarks/bench_memory.py                 # 30,000 calls (issue 13)
    .venv/bin/python benchmarks/bench_memory.py --calls 3000    # a quicker look

Starts ``sovrisk serve`` on the bundled data in a temporary store, commits four edits (five
versions in all), then sends ``ScoreProvider`` calls from ``--clients`` threads, each with
weights no other call used, cycling over the seven providers and the five versions (BASIC
view, so the wire is not what is measured). The server's resident set size (VmRSS from
/proc) is sampled as the calls go; the target (issue 13) is under 500 MB after 30,000 calls.
Before the fixes of issue 13 the same traffic grew a server from 240 MB to 2.27 GB (an
unbounded cache of ~90 KB assessments per engine) and each weighting recomputed the 16
uncertainty draws.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from google.protobuf import field_mask_pb2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks.serve_process import serve_process
from sovrisk.service.grpc_gen.sovrisk.v1 import (
    graph_pb2,
    graph_pb2_grpc,
    risk_pb2,
    risk_pb2_grpc,
    version_pb2,
)

TARGET_MB = 500.0
PROVIDERS = (
    "aws",
    "google-cloud",
    "microsoft-azure",
    "meta",
    "oracle-oci",
    "coreweave",
    "alibaba-cloud",
)
VERSIONS = 5
TOKEN = "bench-token"


def _rss_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of a process in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields[key] = int(value.split()[0]) / 1024
    return fields["VmRSS"], fields["VmHWM"]


def _wait_ready(channel: grpc.Channel, proc: subprocess.Popen[bytes]) -> None:
    risk = risk_pb2_grpc.RiskServiceStub(channel)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("bench_memory: the server exited; see its serve.log")
        try:
            risk.ScoreProvider(risk_pb2.ScoreProviderRequest(name="providers/aws"), timeout=10)
            return
        except grpc.RpcError:
            time.sleep(0.5)
    raise SystemExit("bench_memory: the server did not answer within 300 s")


def _make_versions(channel: grpc.Channel) -> None:
    """Four renames of one node: five versions, each with its own engine in the server."""
    graph = graph_pb2_grpc.GraphServiceStub(channel)
    auth = (("authorization", f"Bearer {TOKEN}"),)
    for n in range(1, VERSIONS):
        change = version_pb2.GraphChange(
            upsert_node=version_pb2.NodeRecord(id="aws", name=f"Amazon Web Services (v{n + 1})"),
            update_mask=field_mask_pb2.FieldMask(paths=["name"]),
        )
        graph.BatchUpdateGraph(
            graph_pb2.BatchUpdateGraphRequest(
                parent="graph",
                base_version=f"graph/versions/{n}",
                changes=[change],
                message=f"bench version {n + 1}",
            ),
            metadata=auth,
            timeout=120,
        )


def _request(i: int) -> risk_pb2.ScoreProviderRequest:
    # A weighting no other call uses: structural and tail vary with i (steps of 1e-5, 1e-4).
    weights = risk_pb2.ScoringWeights(
        structural=0.2 + (i % 1000) * 1e-5, tail=0.1 + (i // 1000) * 1e-4
    )
    return risk_pb2.ScoreProviderRequest(
        name=f"providers/{PROVIDERS[i % len(PROVIDERS)]}",
        graph_version=f"graph/versions/{1 + (i // len(PROVIDERS)) % VERSIONS}",
        weights=weights,
        view=risk_pb2.ASSESSMENT_VIEW_BASIC,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=30_000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--samples", type=int, default=10, help="RSS samples along the way")
    args = parser.parse_args(argv)

    with (
        serve_process("memory", {"SOVRISK_TOKENS": f"bench:editor:{TOKEN}"}) as server,
        grpc.insecure_channel(server.target) as channel,
    ):
        proc = server.proc
        _wait_ready(channel, proc)
        _make_versions(channel)
        risk = risk_pb2_grpc.RiskServiceStub(channel)
        for v in range(1, VERSIONS + 1):  # every version's engine built and warm
            for provider in PROVIDERS:
                risk.ScoreProvider(
                    risk_pb2.ScoreProviderRequest(
                        name=f"providers/{provider}", graph_version=f"graph/versions/{v}"
                    ),
                    timeout=600,
                )
        baseline, _ = _rss_mb(proc.pid)
        print(f"server pid {proc.pid}: {VERSIONS} versions warm, RSS {baseline:.0f} MB")

        counter = iter(range(args.calls))
        lock = threading.Lock()
        errors: list[str] = []
        done = [0]

        def client() -> None:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                try:
                    risk.ScoreProvider(_request(i), timeout=600)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")
                with lock:
                    done[0] += 1

        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.clients)]
        for t in threads:
            t.start()
        step = max(1, args.calls // args.samples)
        next_mark = step
        while any(t.is_alive() for t in threads):
            time.sleep(0.5)
            if done[0] >= next_mark:
                rss, _ = _rss_mb(proc.pid)
                elapsed = time.perf_counter() - started
                print(f"  {done[0]:>7,} calls  {elapsed:7.1f} s  RSS {rss:6.0f} MB")
                next_mark += step
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        rss, peak = _rss_mb(proc.pid)

    met = rss < TARGET_MB and not errors
    print(
        f"{args.calls:,} ScoreProvider calls with distinct weights over {VERSIONS} versions, "
        f"{args.clients} clients: {elapsed:.1f} s ({args.calls / elapsed:.0f} calls/s), "
        f"{len(errors)} errors"
    )
    print(
        f"server RSS: {baseline:.0f} MB warm -> {rss:.0f} MB after (peak {peak:.0f} MB); "
        f"target < {TARGET_MB:.0f} MB: {'met' if met else 'MISSED'}"
    )
    for e in errors[:5]:
        print("  error:", e)
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
