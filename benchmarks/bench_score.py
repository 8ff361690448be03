"""How long scoring every provider takes on a dataset (default: the bundled one).

    .venv/bin/python benchmarks/bench_score.py [--data DIR] [--runs N]

Reports medians over N runs of: loading and validating the dataset, building the engine
(compilation plus the knockout batches), scoring every provider, and the whole
`sovrisk score` command as a user runs it (a fresh process each time).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sovrisk.models.graph.bundle import load_bundle  # noqa: E402
from sovrisk.models.scoring.risk_engine import RiskEngine  # noqa: E402


def _median_ms(samples: list[float]) -> str:
    return f"{1000 * statistics.median(samples):8.1f} ms"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", default=str(ROOT / "data"))
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()

    load, build, score, cli = [], [], [], []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        graph, supplements = load_bundle(args.data)
        t1 = time.perf_counter()
        engine = RiskEngine(graph, supplements)
        t2 = time.perf_counter()
        ranking = engine.assess_all(engine.default_params())
        t3 = time.perf_counter()
        load.append(t1 - t0)
        build.append(t2 - t1)
        score.append(t3 - t2)
    sovrisk = Path(sys.executable).parent / "sovrisk"
    for _ in range(args.runs):
        t0 = time.perf_counter()
        subprocess.run([str(sovrisk), "score", "--data", args.data], check=True,
                       capture_output=True)  # fmt: skip
        cli.append(time.perf_counter() - t0)

    print(f"dataset {graph.version_id}: {len(graph.nodes)} nodes, {len(graph.edges)} edges, "
          f"{len(ranking)} providers; median of {args.runs} runs")  # fmt: skip
    print(f"  load + validate          {_median_ms(load)}")
    print(f"  compile + engine batches {_median_ms(build)}")
    print(f"  score all providers      {_median_ms(score)}  (incl. resilience LP, tail MC)")
    print(f"  `sovrisk score` (process){_median_ms(cli)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
