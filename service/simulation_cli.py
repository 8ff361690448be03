"""``sovrisk simulate``: the Monte Carlo from the command line, with a progress line."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from sovrisk.models.analysis import simulation as sim
from sovrisk.models.analysis.sensitivity import SensitivityResult, sensitivity
from sovrisk.models.graph.events import load_events
from sovrisk.models.scoring.risk_engine import SIMULATION_MEASURES
from sovrisk.service import converters as conv
from sovrisk.service import simulation_converters as sim_conv
from sovrisk.service.source import open_source


def _progress(p: sim.Progress) -> None:
    if sys.stderr.isatty():
        width = 30
        filled = int(width * p.samples_done / max(1, p.n_samples))
        bar = "#" * filled + "." * (width - filled)
        print(f"\r[{bar}] {p.samples_done:,}/{p.n_samples:,}", end="", file=sys.stderr)
        if p.samples_done >= p.n_samples:
            print(file=sys.stderr)


def render(
    result: sim.SimulationResult, sens: SensitivityResult | None, names: dict[str, str]
) -> str:
    lines = [
        f"{result.n_samples:,} samples, seed {result.seed}, {len(result.events)} events"
        + (", independent node failures" if result.node_failures else ""),
        *textwrap.wrap(SIMULATION_MEASURES, 100),
        "",
        f"{'provider':<26} {'mean':>6} {'±se':>6} {'P50':>6} {'P95':>6} {'CVaR95':>7} "
        f"{'Pr(a<.5)':>9}  top drivers (CVaR95 contribution)",
    ]
    ranked = sorted(result.providers, key=lambda p: (-p.cvar95, p.provider))
    for p in ranked:
        drivers = ", ".join(f"{a.driver} {a.cvar95_delta:+.3f}" for a in p.attributions[:3])
        lines.append(
            f"{names.get(p.provider, p.provider)[:26]:<26} {p.mean_loss:>6.3f} "
            f"{p.mean_loss_se:>6.4f} {p.p50:>6.3f} {p.p95:>6.3f} {p.cvar95:>7.3f} "
            f"{p.prob_shortfall:>9.3f}  {drivers}"
        )
    if sens is not None:
        lines += ["", "Driver importance (permutation importance; standardised coefficient):"]
        for ps in sens.providers:
            top = ", ".join(
                f"{d.driver} {d.permutation_importance:.3f} ({d.standardized_coefficient:+.2f})"
                for d in ps.drivers[:3]
            )
            lines.append(f"  {names.get(ps.provider, ps.provider)[:26]:<26} {top}")
    return "\n".join(lines)


def run_from_args(args: argparse.Namespace) -> int:
    engine = open_source(args).engine
    graph, supplements = engine.graph, engine.supplements
    events = load_events(Path(args.events), graph) if args.events else supplements.events
    failures = sim.DEFAULT_NODE_FAILURES
    if args.node_failure_probability is not None:
        failures = replace(failures, probability=args.node_failure_probability)
    providers = [p.strip() for p in args.providers.split(",") if p.strip()] or None
    result = sim.simulate(
        engine,
        events,
        args.samples,
        args.seed,
        providers=providers,
        node_failures=failures,
        keep_drivers=args.sensitivity,
        progress=_progress,
    )
    sens = sensitivity(result) if args.sensitivity else None
    names = {p: graph.nodes[p].name for p in engine.provider_ids}
    if args.json:
        provenance = conv.result_provenance_to_proto(
            engine.provenance(engine.default_params(), samples=str(args.samples))
        )
        provenance.seed = args.seed
        message = sim_conv.result_to_proto(result, sens, names, provenance)
        doc = conv.canonical_dict(message)
        print(json.dumps(doc, indent=2))
    else:
        print(render(result, sens, names))
    return 0
