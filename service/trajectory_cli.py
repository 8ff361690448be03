"""``sovrisk trajectory``: providers' scores quarter by quarter (METHODS v2 §10)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from sovrisk.service.executor_option import add_executor_argument
from sovrisk.service.source import add_source_arguments, open_source

if TYPE_CHECKING:
    from sovrisk.models.graph.series import Quarter
    from sovrisk.models.scoring.trajectory import TrajectoryPoint

#: Sub-score column heads, in SUB_SCORES order.
_HEADS = ("CONC", "STRUCT", "GEO", "EXPORT", "RESIL", "TAIL")
#: The pool whose shortfall the table shows (the one the questions are about).
SHOWN_POOL = "cowos"


def _quarter(text: str) -> Quarter:
    from sovrisk.models.graph.series import Quarter

    try:
        return Quarter.parse(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid quarter {text!r}: use YYYYQn") from None


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "trajectory",
        help="providers' scores quarter by quarter (fleets, capacities, regimes of each date)",
        description="One row per quarter per provider, each scored as of the quarter's last "
        "day: composite and sub-scores (0-100, higher = riskier), own-silicon share, the "
        "share of own silicon the merchant fleet's chokepoints would cut, and the CoWoS "
        "shortfall by allocation rule.",
    )
    p.add_argument("providers", nargs="*", help="provider ids (default all)")
    p.add_argument("--from", dest="first", type=_quarter, help="first quarter, e.g. 2024Q1")
    p.add_argument("--to", dest="last", type=_quarter, help="last quarter, e.g. 2027Q4")
    p.add_argument("--horizon", type=float, default=13.0, help="headline horizon in weeks")
    add_source_arguments(p)
    p.add_argument("--json", action="store_true", help="JSON in the proto JSON mapping")
    add_executor_argument(p)


def run(args: argparse.Namespace) -> int:

    from sovrisk.models.scoring.params import ScoringParams
    from sovrisk.models.scoring.trajectory import trajectory
    from sovrisk.service import converters as conv

    engine = open_source(args).engine
    for p in args.providers:
        if p not in engine.provider_ids:
            raise engine.graph.not_found("provider", p)
    providers = list(args.providers) or list(engine.provider_ids)
    default_first, default_last = conv.quarter_range(engine, "", "")
    first, last = args.first or default_first, args.last or default_last
    params = ScoringParams.build(as_of=engine.graph.info.as_of, horizon_weeks=args.horizon)

    def progress(q: Quarter) -> None:
        if sys.stderr.isatty():
            print(f"\rscoring {q} ...", end="", file=sys.stderr)

    rows = trajectory(engine, providers, first, last, params, progress=progress)
    if sys.stderr.isatty():
        print("\r" + " " * 20 + "\r", end="", file=sys.stderr)
    if args.json:
        docs = [conv.canonical_dict(conv.trajectory_row_to_proto(r)) for r in rows]
        print(json.dumps(docs, indent=1))
    else:
        print(render(rows, {p: engine.graph.nodes[p].name for p in providers}))
    return 0


def render(rows: Sequence[TrajectoryPoint], names: dict[str, str]) -> str:
    """One table per provider; notes (a quarter outside a series) below each."""
    out: list[str] = []
    for pid in dict.fromkeys(r.provider for r in rows):
        mine = [r for r in rows if r.provider == pid]
        out.append(f"{names.get(pid, pid)} ({pid})")
        out.append(
            f"  {'quarter':<8}{'score':>6} "
            + " ".join(f"{h:>6}" for h in _HEADS)
            + f" {'own%':>5} {'own#':>5} {'shared':>6}  {SHOWN_POOL} lost pro/res/cus"
        )
        notes: list[str] = []
        for r in mine:
            a = r.assessment
            subs = " ".join(
                f"{s.score:>6.1f}" if s.available else f"{'-':>6}" for s in a.sub_scores
            )
            sov = a.sovereignty
            own = f"{100 * sov.own_silicon_share:>5.0f}" if sov else f"{'-':>5}"
            units = (
                f"{100 * r.own_silicon_unit_share:>5.0f}"
                if r.own_silicon_unit_share is not None
                else f"{'-':>5}"
            )
            shared = f"{sov.shared_exposure:>6.2f}" if sov else f"{'-':>6}"
            pool = next((p for p in a.capacity if p.pool == SHOWN_POOL), None)
            lost = "/".join(f"{v:.3f}" for _, v in pool.shortfall) if pool is not None else "-"
            out.append(f"  {r.quarter:<8}{a.composite:>6.1f} {subs} {own} {units} {shared}  {lost}")
            notes.extend(n for n in r.notes if n not in notes)
        out.extend(f"  note: {n}" for n in notes)
        out.append("")
    out.append(
        "Scores 0-100, higher = riskier. own% = own silicon's share of accelerator compute, "
        "own# = of chips delivered; shared = share of own silicon the merchant fleet's "
        f"chokepoint firms would cut at the headline horizon; {SHOWN_POOL} lost = supply lost "
        "to the pool's shortfall under pro rata / reservations first / custom first."
    )
    return "\n".join(out)
