"""Print the bundled-data tables of docs/resilience.md §7 (Markdown), so the figures there
come from the code and can be re-checked: ``python scripts/resilience_tables.py [DATASET]``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

from sovrisk.models.analysis.contention import contention_analysis
from sovrisk.models.analysis.cutsets import minimal_cut_sets
from sovrisk.models.analysis.resilience import resilience_analysis
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.scoring.risk_engine import RiskEngine

DEFAULT_DATA = Path(__file__).resolve().parent.parent / "data"
CONTENTION_ROWS = ("group:cowos", "tsmc-cowos-l", "group:hbm", "skhynix-hbm3e")


def _weeks(value: float) -> str:
    return "∞" if math.isinf(value) else f"{value:.1f}"


def main(data: Path) -> None:
    engine = RiskEngine(*load_bundle(data))
    supplements = engine.supplements
    if supplements.resilience is None:
        raise SystemExit(f"{data} has no resilience.csv")
    print(f"dataset {engine.graph.version_id}\n")

    started = time.perf_counter()
    res = resilience_analysis(engine, supplements.resilience, supplements.demand)
    seconds = time.perf_counter() - started
    print(
        "Demand weights: "
        + ", ".join(f"{p} {w:.3f}" for p, w in sorted(res.demand, key=lambda r: -r[1]))
    )
    print(
        f"\nresilience: {len(res.nodes)} nodes, {res.lp_solves} LPs, {seconds:.1f} s; "
        f"flagged {len(res.flagged)}; at TTR low "
        f"{sum(n.flag_at_ttr_low for n in res.nodes)}, at TTR high "
        f"{sum(n.flag_at_ttr_high for n in res.nodes)}\n"
    )
    print("| node | TTR (low–high) | buffer | spare | TTS | PI | lost share of window | REI |")
    print("|---|---|---|---|---|---|---|---|")
    for n in res.flagged:
        print(
            f"| `{n.node}` | {n.ttr_weeks:g} ({n.ttr_low:g}–{n.ttr_high:g}) | "
            f"{n.inventory_weeks:g} | {n.spare_capacity:g} | {_weeks(n.tts_weeks)} | "
            f"{n.pi:.2f} | {100 * n.lost_fraction:.1f} % | {n.rei:.3f} |"
        )
    near = [
        n
        for n in res.nodes
        if not n.flag and not math.isinf(n.tts_weeks) and n.tts_weeks < 1.25 * n.ttr_weeks
    ]
    print(
        "\nNear misses (TTS < 1.25 TTR): "
        + (
            ", ".join(f"`{n.node}` ({_weeks(n.tts_weeks)} vs {n.ttr_weeks:g})" for n in near)
            or "none"
        )
    )
    print(
        "Flagged at TTR high: "
        + ", ".join(
            f"`{n.node}` ({_weeks(n.tts_weeks)} vs {n.ttr_high:g})"
            for n in res.nodes
            if n.flag_at_ttr_high and not n.flag
        )
    )

    print("\n| provider | score | worst node (I_P × u) | next drivers (lost % of demand) |")
    print("|---|---|---|---|")
    for p in res.providers:
        if not p.drivers:
            print(f"| {p.provider} | {p.score:.1f} | — | |")
            continue
        worst, rest = p.drivers[0], p.drivers[1:4]
        print(
            f"| {p.provider} | {p.score:.1f} | `{worst.node}` "
            f"({worst.impact:.2f} × {worst.unbuffered:.2f}) | "
            + ", ".join(f"`{d.node}` {100 * d.lost_fraction:.1f}" for d in rest)
            + " |"
        )

    for threshold in (0.5, 0.25):
        started = time.perf_counter()
        cuts = minimal_cut_sets(engine, threshold)
        seconds = time.perf_counter() - started
        print(
            f"\nCut sets at {threshold}: {cuts.pair_scenarios} pair scenarios, "
            f"{cuts.evaluate_calls} evaluate call(s), {seconds:.2f} s"
        )
        print("\n| provider | singletons | minimal pairs | top singleton | top pair (a(P) left) |")
        print("|---|---|---|---|---|")
        for pc in cuts.providers:
            single = next((c for c in pc.cut_sets if len(c.nodes) == 1), None)
            pair = next((c for c in pc.cut_sets if len(c.nodes) == 2), None)
            print(
                f"| {pc.provider} | {pc.singletons} | {pc.pairs} | "
                + (f"`{single.nodes[0]}` ({single.retained:.2g})" if single else "—")
                + " | "
                + (f"`{pair.nodes[0]}` + `{pair.nodes[1]}` ({pair.retained:.2f})" if pair else "—")
                + " |"
            )

    contention = contention_analysis(engine, supplements.demand)
    grid = " / ".join(f"{f:g}" for f in contention.shortfalls)
    print(f"\n| bottleneck | buyer | flow | demand share | dependence | lost at f = {grid} |")
    print("|---|---|---|---|---|---|")
    for key in CONTENTION_ROWS:
        b = contention.bottleneck(key)
        for i, pc in enumerate(b.providers):
            head = f"`{key}` (buyer HHI {b.buyer_hhi:,.0f})" if i == 0 else ""
            lost = " / ".join(f"{s.lost:.3f}" for s in pc.shortfalls)
            print(
                f"| {head} | {pc.provider} | {pc.flow:.3f} | {100 * pc.demand_share:.1f} % | "
                f"{pc.dependence:.3f} | {lost} |"
            )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_DATA)
