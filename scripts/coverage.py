"""Data coverage per provider: the share of what each score rests on that is sourced (A/B).

    python scripts/coverage.py [DATA_DIR] [--as-of YYYY-MM-DD]

By flow (data/README.md, "Coverage"): supply edges, production sites, regimes and events, and
their mean; the targets of the data-truth work (>= 60 % A/B edges for every US provider,
>= 40 % for Alibaba) are checked and the exit code says whether they hold.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sovrisk.models.graph.bundle import load_bundle  # noqa: E402
from sovrisk.models.scoring.risk_engine import RiskEngine  # noqa: E402

#: Edge coverage targets (A/B by flow): Chinese providers have a thinner public record.
TARGETS = {"CHN": 0.40}
DEFAULT_TARGET = 0.60


def _pct(value: float | None) -> str:
    return "   n/a" if value is None else f"{100 * value:5.1f}%"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", nargs="?", default=str(ROOT / "data"))
    parser.add_argument("--as-of", type=dt.date.fromisoformat)
    args = parser.parse_args(argv)
    graph, supplements = load_bundle(args.data)
    engine = RiskEngine(graph, supplements)
    params = engine.default_params(args.as_of)
    print(f"dataset {graph.version_id}, as of {params.as_of.isoformat()} (A/B share by flow)")
    print(
        f"{'provider':<16} {'edges':>6} {'sites':>6} {'regimes':>7} {'events':>6} "
        f"{'mean':>6}  target"
    )
    held = True
    for pid in engine.provider_ids:
        a = engine.assess(pid, params)
        c = a.coverage
        target = TARGETS.get(a.home_country, DEFAULT_TARGET)
        ok = c.edges_share_ab >= target
        held &= ok
        print(
            f"{pid:<16} {_pct(c.edges_share_ab)} {_pct(c.sites_share_ab)} "
            f"{_pct(c.regimes_share_ab):>7} {_pct(c.events_share_ab)} {_pct(c.overall_share_ab)}"
            f"  edges >= {100 * target:.0f}%: {'holds' if ok else 'FAILS'}"
        )
    return 0 if held else 1


if __name__ == "__main__":
    sys.exit(main())
