"""Precision / recall / F1 of supplier screening per threshold, on the labelled set.

    .venv/bin/python scripts/eval_screening.py [--labelled FILE] [--errors]

Scores ``tests/fixtures/screening/labelled_names.csv`` with the bundled entity list, the bundled
dataset's firms and ``data/screening/owner_aliases.csv``, then prints, for each target (entity
list, graph firms) and for both together, the confusion counts and precision/recall/F1 of "the
best candidate scoring at least the threshold is the labelled target". The thresholds of
``models.screening.matching`` (DEFAULT_MATCH_THRESHOLD, DEFAULT_REVIEW_THRESHOLD) were chosen
from this table; docs/screening.md records it. ``--errors`` lists the rows wrong at the chosen
thresholds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sovrisk.models.graph.loader import load_dataset  # noqa: E402
from sovrisk.models.screening.matching import (  # noqa: E402
    DEFAULT_MATCH_THRESHOLD,
    DEFAULT_REVIEW_THRESHOLD,
    LabelledName,
    SupplierRow,
    SupplierScreener,
    TargetKind,
    ThresholdMetrics,
    evaluate,
    load_entity_list,
    load_labelled,
    load_owner_aliases,
    threshold_grid,
)

LABELLED = ROOT / "tests" / "fixtures" / "screening" / "labelled_names.csv"
ENTITIES = ROOT / "data" / "screening" / "entity_list.csv"
OWNER_ALIASES = ROOT / "data" / "screening" / "owner_aliases.csv"
DATA = ROOT / "data"


def build_screener() -> SupplierScreener:
    return SupplierScreener().fit(
        load_entity_list(ENTITIES),
        load_dataset(DATA),
        owner_aliases=load_owner_aliases(OWNER_ALIASES),
        entity_source=str(ENTITIES.relative_to(ROOT)),
    )


def table(title: str, metrics: list[ThresholdMetrics]) -> str:
    lines = [
        title,
        f"{'threshold':>9} {'TP':>4} {'FP':>4} {'FN':>4} {'TN':>4} "
        f"{'precision':>9} {'recall':>7} {'F1':>6}",
    ]
    for m in metrics:
        mark = ""
        if abs(m.threshold - DEFAULT_MATCH_THRESHOLD) < 1e-9:
            mark = "  <- match"
        elif abs(m.threshold - DEFAULT_REVIEW_THRESHOLD) < 1e-9:
            mark = "  <- review"
        lines.append(
            f"{m.threshold:>9.2f} {m.tp:>4} {m.fp:>4} {m.fn:>4} {m.tn:>4} "
            f"{m.precision:>9.3f} {m.recall:>7.3f} {m.f1:>6.3f}{mark}"
        )
    return "\n".join(lines)


def errors(screener: SupplierScreener, labelled: list[LabelledName]) -> str:
    result = screener.screen(SupplierRow(name=x.name, country=x.country) for x in labelled)
    lines = [f"rows wrong at the review threshold {DEFAULT_REVIEW_THRESHOLD:.2f}:"]
    for x, r in zip(labelled, result.rows, strict=True):
        best = r.best_entity if x.kind is TargetKind.ENTITY else r.best_graph
        got = best.target if best and best.score >= DEFAULT_REVIEW_THRESHOLD else ""
        if got != x.expected:
            score = f"{best.score:.2f} {best.target}" if best else "-"
            lines.append(
                f"  {x.kind:<6} {x.name[:44]:<44} expected {x.expected or '-'!s:<28.28} "
                f"best {score}  [{x.variation}]"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labelled", default=str(LABELLED))
    parser.add_argument("--errors", action="store_true", help="list the rows still wrong")
    args = parser.parse_args(argv)
    labelled = load_labelled(args.labelled)
    screener = build_screener()
    results = evaluate(screener, labelled, threshold_grid())
    n = {k: sum(1 for x in labelled if str(x.kind) == k) for k in ("entity", "graph")}
    titles = {
        "entity": f"Entity list ({n['entity']} labelled rows)",
        "graph": f"Graph firms ({n['graph']} labelled rows)",
        "all": f"Both targets ({len(labelled)} labelled rows)",
    }
    print(f"Supplier screening on {Path(args.labelled).name}: best candidate >= threshold vs label")
    print(
        f"chosen thresholds: match >= {DEFAULT_MATCH_THRESHOLD:.2f}, "
        f"review >= {DEFAULT_REVIEW_THRESHOLD:.2f}\n"
    )
    for key in ("entity", "graph", "all"):
        print(table(titles[key], results[key]))
        print()
    if args.errors:
        print(errors(screener, labelled))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
