"""Silicon sovereignty of a provider (METHODS v2 §10): design sovereignty against supply
sovereignty.

- **Own-silicon share**: the share of the provider's accelerator supply designed in-house (a
  chip whose ``owner`` is the provider's owner, e.g. Amazon's Trainium for AWS).
- **Largest merchant vendor**: the owner of the largest share of the rest (e.g. NVIDIA) and
  that share: the dependence own silicon is meant to reduce.
- **Shared chokepoints**: supplier firms (every node a firm owns, below the chips and their
  designers) whose loss would cut at least ``threshold`` of the provider's merchant silicon at
  the horizon (default 13 weeks). For each, the share of its **own** silicon the same loss
  would cut. ``shared_exposure`` is the largest of those: own silicon that still runs through
  the chokepoints of the merchant fleet. Design sovereignty without supply sovereignty reads
  as a high own-silicon share with a shared exposure near 1 (a custom chip made at the same
  foundry, packaged on the same CoWoS lines, with the same HBM).

The horizon matters: in the long run every chip of every provider stops with the lithography
tools' installed base (ASML, Zeiss), so the long-run answer is 1 for everyone and says
nothing. At 13 weeks the installed bases and licences are still running and the answer is the
one the question is about: foundry, packaging and memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sovrisk.models.engine.compiled import FloatArray
from sovrisk.models.engine.impacts import HEADLINE_HORIZON, ImpactModel
from sovrisk.models.graph.dated import FLEET_CATEGORY
from sovrisk.models.graph.schema import NodeKind

#: A chokepoint of the merchant fleet cuts at least this share of it (long run).
DEFAULT_THRESHOLD = 0.5
#: Chip-level kinds that are the silicon itself, not its supply chain.
_NOT_CHOKEPOINTS = (NodeKind.PROVIDER, NodeKind.ACCELERATOR, NodeKind.DESIGNER)


@dataclass(frozen=True, slots=True)
class SharedChokepoint:
    firm: str
    merchant_impact: float  # share of merchant silicon its loss cuts (long run)
    own_impact: float  # share of own silicon the same loss cuts


@dataclass(frozen=True, slots=True)
class Sovereignty:
    provider: str
    own_silicon_share: float  # of the accelerator supply (fleet shares), 0-1
    own_chips: tuple[str, ...]
    largest_merchant: str  # owner of the largest merchant share ('' with no merchant silicon)
    largest_merchant_share: float
    #: Largest share of own silicon cut by a chokepoint of the merchant fleet (0 without own
    #: or without merchant silicon).
    shared_exposure: float
    shared_chokepoints: tuple[SharedChokepoint, ...]  # by own impact, then merchant impact
    threshold: float
    horizon_weeks: float


def firm_knockouts(model: ImpactModel, horizon: float) -> tuple[tuple[str, ...], FloatArray]:
    """``a`` of every node (rows) at ``horizon`` with each supplier firm's nodes knocked out
    (columns: the firms returned), once per engine and horizon."""
    cg = model.compiled
    kinds = {n.id: n.kind for n in model.graph.nodes.values()}
    firms = tuple(
        f for f in model.firms if all(kinds[n] not in _NOT_CHOKEPOINTS for n in model.firm_nodes(f))
    )

    def build() -> FloatArray:
        up = np.ones((cg.n_nodes, len(firms)))
        for k, firm in enumerate(firms):
            up[[cg.index[n] for n in model.firm_nodes(firm)], k] = 0.0
        return cg.evaluate(up, horizon=horizon)

    return firms, model.graph.memo(f"firm_knockouts:{id(cg)}:{horizon!r}", build)


def sovereignty(
    model: ImpactModel,
    provider: str,
    threshold: float = DEFAULT_THRESHOLD,
    horizon: float = HEADLINE_HORIZON,
) -> Sovereignty:
    graph, cg = model.graph, model.compiled
    owner = graph.nodes[provider].owner
    fleet = {e.supplier: e.share for e in graph.inputs(provider) if e.category == FLEET_CATEGORY}
    own = {c: s for c, s in fleet.items() if graph.nodes[c].owner == owner}
    merchant = {c: s for c, s in fleet.items() if c not in own}
    by_vendor: dict[str, float] = {}
    for chip, share in merchant.items():
        vendor = graph.nodes[chip].owner
        by_vendor[vendor] = by_vendor.get(vendor, 0.0) + share
    vendor, vendor_share = max(sorted(by_vendor.items()), key=lambda kv: kv[1], default=("", 0.0))
    own_total, merchant_total = math.fsum(own.values()), math.fsum(merchant.values())
    shared: list[SharedChokepoint] = []
    if own_total > 0 and merchant_total > 0:
        firms, a = firm_knockouts(model, horizon)
        own_rows = np.array([cg.index[c] for c in own])
        own_w = np.array(list(own.values())) / own_total
        merch_rows = np.array([cg.index[c] for c in merchant])
        merch_w = np.array(list(merchant.values())) / merchant_total
        merchant_cut = 1.0 - merch_w @ a[merch_rows]
        own_cut = 1.0 - own_w @ a[own_rows]
        for j in np.flatnonzero(merchant_cut >= threshold - 1e-12).tolist():
            shared.append(SharedChokepoint(firms[j], float(merchant_cut[j]), float(own_cut[j])))
    shared.sort(key=lambda s: (-s.own_impact, -s.merchant_impact, s.firm))
    return Sovereignty(
        provider=provider,
        own_silicon_share=own_total,
        own_chips=tuple(sorted(own)),
        largest_merchant=vendor,
        largest_merchant_share=vendor_share,
        shared_exposure=shared[0].own_impact if shared else 0.0,
        shared_chokepoints=tuple(shared),
        threshold=threshold,
        horizon_weeks=horizon,
    )
