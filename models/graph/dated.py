"""The graph as of a quarter: each provider's fleet edges replaced by its dated mix.

``edges.csv``'s fleet rows are the dataset's snapshot; ``fleet.csv`` (new supply) says how the
mix moves from quarter to quarter (:mod:`models.graph.series`). Fleet rows count chips; fleet
edges are shares of compute, so each chip's count is weighed by its ``compute_h100e``
(nodes.csv) before normalising. :func:`graph_at` rebuilds only the providers' ``fleet``
edges, so every supply tree below the chips is shared, and returns the very same graph object
when nothing changes (callers cache engines by identity).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace

from sovrisk.models.graph.schema import NodeKind, SupplyEdge
from sovrisk.models.graph.series import DatedSeries, FleetBasis, FleetMix, Interpolated, Quarter
from sovrisk.models.graph.supply_graph import SupplyGraph

FLEET_CATEGORY = "fleet"
#: Shares that differ by less than this are the same mix: edges.csv writes the snapshot's
#: fleet shares to 4 decimals (rounded to sum to 1), so the quarter of the dataset's as-of
#: date uses the stored graph itself rather than a copy that differs in the fifth decimal.
SAME_SHARE = 2e-4


@dataclass(frozen=True, eq=False)
class DatedGraph:
    """The graph as of ``quarter``, the dated mixes it used and what was extrapolated."""

    quarter: Quarter
    graph: SupplyGraph
    fleets: dict[str, Interpolated[FleetMix]]
    notes: tuple[str, ...]


def graph_at(graph: SupplyGraph, series: DatedSeries, date: dt.date | Quarter) -> DatedGraph:
    """``graph`` with each provider's fleet edges set to its ``new`` mix in the quarter of
    ``date``; providers without a fleet series keep their edges."""
    quarter = date if isinstance(date, Quarter) else Quarter.of(date)
    fleets: dict[str, Interpolated[FleetMix]] = {}
    for node in graph.providers():
        mix = series.fleet_mix(node.id, quarter, FleetBasis.NEW)
        if mix is not None:
            fleets[node.id] = mix
    notes = tuple(m.note for m in fleets.values() if m.note)
    changed = {
        pid: m for pid, m in fleets.items() if not _same(graph, pid, compute_shares(graph, m.value))
    }
    if not changed:
        return DatedGraph(quarter, graph, fleets, notes)
    kept = [e for e in graph.edges if not (e.consumer in changed and e.category == FLEET_CATEGORY)]
    added = [edge for pid, mix in changed.items() for edge in _fleet_edges(graph, series, pid, mix)]
    dated = SupplyGraph(
        info=graph.info,
        sources=graph.sources,
        countries=graph.countries,
        nodes=graph.nodes,
        edges=[*kept, *added],
        sites=graph.sites,
        regimes=graph.regimes,
    )
    return DatedGraph(quarter, dated, fleets, notes)


def fleet_shares(graph: SupplyGraph, provider: str) -> dict[str, float]:
    return {e.supplier: e.share for e in graph.inputs(provider) if e.category == FLEET_CATEGORY}


def compute_shares(graph: SupplyGraph, mix: FleetMix) -> dict[str, float]:
    """The mix as shares of compute (chip counts weighed by ``compute_h100e``)."""
    return mix.weighted({c: graph.nodes[c].compute_h100e or 1.0 for c in mix.shares})


def _same(graph: SupplyGraph, provider: str, shares: dict[str, float]) -> bool:
    current = fleet_shares(graph, provider)
    if set(current) != set(shares):
        return False
    return all(abs(current[c] - shares[c]) < SAME_SHARE for c in current)


def _fleet_edges(
    graph: SupplyGraph, series: DatedSeries, provider: str, mix: Interpolated[FleetMix]
) -> list[SupplyEdge]:
    existing = {e.supplier: e for e in graph.inputs(provider) if e.category == FLEET_CATEGORY}
    points = {
        (p.period, p.chip): p
        for p in series.fleet
        if p.provider == provider and p.basis is FleetBasis.NEW
    }
    edges = []
    for chip, share in compute_shares(graph, mix.value).items():
        assert graph.nodes[chip].kind is NodeKind.ACCELERATOR
        point = points.get((mix.before, chip)) or points.get((mix.after, chip))
        assert point is not None  # a blended chip is in one of the two points
        provenance = point.provenance
        note = f"dated mix {mix.quarter}" + (f" ({mix.note})" if mix.note else "")
        base = existing.get(chip)
        if base is not None:
            edges.append(
                replace(
                    base,
                    share=share,
                    share_low=share,
                    share_high=share,
                    provenance=provenance,
                    notes=note,
                )
            )
        else:
            edges.append(
                SupplyEdge(provider, FLEET_CATEGORY, chip, share, share, share, provenance, note)
            )
    return edges
