"""Ray for sweeps: Monte Carlo samples per second here, on one Ray worker and on two.

    .venv/bin/python benchmarks/bench_ray.py                    # 100,000 samples, bundled data
    .venv/bin/python benchmarks/bench_ray.py --samples 40000    # quicker

Needs the `ray` extra. Starts a throwaway Ray cluster on loopback (benchmarks/ray_cluster.py:
a head with no CPUs and one-CPU worker nodes), then simulates the bundled data's events
(``models.analysis.simulation.simulate``, seed 7) in this process, on the cluster with one
worker, and with a second worker added, side by side in one run. Checks that the three give
the same bits. Targets (issue 14, item 5): identical results; two workers >= 1.3x one worker's
rate (this machine has two cores, and the driver and the raylets share them).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script

from benchmarks.ray_cluster import local_cluster
from sovrisk.models.analysis.simulation import SimulationResult, simulate
from sovrisk.models.engine.executor import Executor, LocalExecutor
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.service.ray_executor import RayExecutor

TARGET_SPEEDUP = 1.3
DATA = Path(__file__).resolve().parent.parent / "data"


def run(engine: RiskEngine, samples: int, executor: Executor) -> tuple[SimulationResult, float]:
    started = time.perf_counter()
    result = simulate(engine, engine.supplements.events, samples, 7, executor=executor)
    return result, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=100_000)
    args = parser.parse_args(argv)
    graph, supplements = load_bundle(DATA)
    engine = RiskEngine(graph, supplements)
    run(engine, 2000, LocalExecutor())  # warm: imports, the numba kernel, the plan

    rows: list[tuple[str, float, SimulationResult]] = []
    local, seconds = run(engine, args.samples, LocalExecutor(threads=2))
    rows.append(("this process, 2 threads", seconds, local))
    with local_cluster(workers=1) as cluster:
        ray = RayExecutor(cluster.address)
        run(engine, 2000, ray)  # warm the worker
        result, seconds = run(engine, args.samples, ray)
        rows.append(("Ray, 1 worker", seconds, result))
        cluster.add_worker()
        deadline = time.monotonic() + 60
        while ray.parallelism < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        run(engine, 2000, ray)  # warm the new worker
        result, seconds = run(engine, args.samples, ray)
        rows.append(("Ray, 2 workers", seconds, result))
        spread = len({node for node, _ in ray.last_workers})

    print(f"Monte Carlo of the bundled events, {args.samples:,} samples, seed 7")
    print(f"{'executor':<26}{'seconds':>9}{'samples/s':>12}  identical to this process")
    for name, secs, result in rows:
        same = result.providers == local.providers
        print(f"{name:<26}{secs:>9.2f}{args.samples / secs:>12,.0f}  {same}")
    identical = all(r.providers == local.providers for _, _, r in rows)
    speedup = rows[1][1] / rows[2][1]
    met_speedup = speedup >= TARGET_SPEEDUP
    print(f"two workers ran ranges on {spread} nodes")
    print(f"target identical results: {'met' if identical else 'MISSED'}")
    print(
        f"target 2 workers >= {TARGET_SPEEDUP}x 1 worker: {speedup:.2f}x "
        f"({'met' if met_speedup else 'MISSED'})"
    )
    return 0 if identical and met_speedup else 1


if __name__ == "__main__":
    raise SystemExit(main())
