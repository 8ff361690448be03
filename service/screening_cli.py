"""``sovrisk screen``: screen a supplier master list against the graph's firms and an
export-control entity list.

    sovrisk screen SUPPLIERS.csv [--entities data/screening/entity_list.csv | --csl CSL.csv]
                   [--data DIR] [--owner-aliases FILE] [--threshold MATCH]
                   [--review-threshold REVIEW] [--json]

Prints one line per supplier (entity-list decision, best candidate, score, Federal Register
citation, graph firm, reason) and the disclaimer: a match is evidence for review, not a
compliance determination. Exit code 0 whatever the findings; 2 for unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from sovrisk.models.screening.thresholds import DEFAULT_MATCH_THRESHOLD, DEFAULT_REVIEW_THRESHOLD
from sovrisk.service.paths import DEFAULT_DATA_DIR
from sovrisk.service.source import add_source_arguments, open_source

if TYPE_CHECKING:
    from sovrisk.models.screening.matching import Candidate, EntityEntry, ScreeningResult

SCREENING_DIR = DEFAULT_DATA_DIR / "screening"
DEFAULT_ENTITIES = SCREENING_DIR / "entity_list.csv"
DEFAULT_OWNER_ALIASES = SCREENING_DIR / "owner_aliases.csv"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    screen = sub.add_parser(
        "screen",
        help="screen a supplier list against the graph's firms and an entity list",
        description="Match a supplier master list (CSV: name, country, optional spend and "
        "category) against the graph's firms and export-control entity-list entries. A match "
        "is evidence for review, not a compliance determination.",
    )
    screen.add_argument("file", help="supplier list CSV (name, country[, spend, category])")
    source = screen.add_mutually_exclusive_group()
    source.add_argument(
        "--entities",
        default=str(DEFAULT_ENTITIES),
        help="entity-list CSV in the bundled format (default: the bundled, cited subset)",
    )
    source.add_argument(
        "--csl",
        help="a Consolidated Screening List CSV downloaded from trade.gov (replaces --entities)",
    )
    screen.add_argument(
        "--csl-source",
        action="append",
        default=[],
        metavar="TEXT",
        help="with --csl: keep only lists whose name contains TEXT, e.g. 'Entity List' "
        "(repeatable; default: every list)",
    )
    screen.add_argument(
        "--no-graph", action="store_true", help="screen against the entity list only"
    )
    add_source_arguments(screen)
    screen.add_argument(
        "--owner-aliases",
        default=str(DEFAULT_OWNER_ALIASES),
        help="owner,alias CSV of registered/former names of the graph's firms ('' = none)",
    )
    screen.add_argument(
        "--threshold",
        type=float,
        default=DEFAULT_MATCH_THRESHOLD,
        help=f"score for 'match' (default {DEFAULT_MATCH_THRESHOLD})",
    )
    screen.add_argument(
        "--review-threshold",
        type=float,
        default=DEFAULT_REVIEW_THRESHOLD,
        help=f"score for 'review' (default {DEFAULT_REVIEW_THRESHOLD})",
    )
    screen.add_argument("--json", action="store_true", help="JSON instead of a table")


def _shown(path: str) -> str:
    """A path relative to the working directory when it lies inside it."""
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return path


def _entities(args: argparse.Namespace) -> tuple[list[EntityEntry], str]:
    from sovrisk.models.screening.matching import load_csl, load_entity_list

    if args.csl:
        entries = load_csl(args.csl, sources=args.csl_source or None)
        return entries, f"{_shown(args.csl)} (Consolidated Screening List)"
    return load_entity_list(args.entities), _shown(args.entities)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "~"


def _graph_cell(c: Candidate | None) -> str:
    from sovrisk.models.screening.matching import Decision

    if c is None or c.decision is Decision.NO_MATCH:
        return "-"
    return f"{c.target} {c.score:.2f}" + (" ?" if c.decision is Decision.REVIEW else "")


def render(result: ScreeningResult, source: str) -> str:
    from sovrisk.models.screening.matching import Decision

    t = result.thresholds
    lines = [
        f"Supplier screening: {source} ({len(result.rows)} suppliers)",
        f"entity list: {result.entity_source} ({result.n_entities} entries); graph: "
        + (
            f"dataset {result.graph_version} ({result.n_firms} firms)"
            if result.graph_version
            else "none"
        ),
        f"decision: match >= {t.match:.2f}, review >= {t.review:.2f}, else no match "
        "(scores 0-1; '?' = review)",
        "",
        f"{'#':>3}  {'supplier':<34} {'cty':<3}  {'decision':<8}  "
        f"{'best entity-list candidate':<34} {'score':>5}  {'FR citation':<12} "
        f"{'graph firm':<26} reason",
    ]
    for i, r in enumerate(result.rows, 1):
        best = r.best_entity
        flagged = best is not None and best.decision is not Decision.NO_MATCH
        graph = r.best_graph
        reason_from = best if flagged else graph
        reason = (
            reason_from.reason
            if reason_from is not None and reason_from.decision is not Decision.NO_MATCH
            else "no candidate at or above the review threshold"
        )
        lines.append(
            f"{i:>3}  {_cut(r.row.name, 34):<34} {r.row.country or '-':<3}  "
            f"{str(r.decision).upper() if flagged else 'clear':<8}  "
            f"{_cut(best.target, 34) if flagged and best else '-':<34} "
            f"{(f'{best.score:.2f}' if flagged and best else '-'):>5}  "
            f"{(best.citation if flagged and best else '-'):<12} "
            f"{_cut(_graph_cell(graph), 26):<26} {reason}"
        )
    counts = result.counts()
    lines += [
        "",
        f"entity list: {counts['match']} match, {counts['review']} review, "
        f"{counts['no match']} clear of {len(result.rows)} suppliers; graph firms: "
        f"{sum(1 for r in result.rows if r.graph_decision is not Decision.NO_MATCH)} recognised.",
        result.disclaimer,
    ]
    return "\n".join(lines)


def cmd_screen(args: argparse.Namespace) -> int:
    from sovrisk.models.screening.matching import (
        SupplierScreener,
        load_owner_aliases,
        load_suppliers,
    )

    try:
        entities, entity_source = _entities(args)
        graph = None if args.no_graph else open_source(args).engine.graph
        owner_aliases = load_owner_aliases(args.owner_aliases) if args.owner_aliases else None
        screener = SupplierScreener(
            match_threshold=args.threshold, review_threshold=args.review_threshold
        ).fit(entities, graph, owner_aliases=owner_aliases, entity_source=entity_source)
        names = {c.name: iso for iso, c in graph.countries.items()} if graph else None
        rows = load_suppliers(args.file, names)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    result = screener.screen(rows)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(render(result, _shown(args.file)))
    return 0
