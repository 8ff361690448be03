"""Geopolitical risk as expected loss (METHODS v2 §4).

Each country (or region) carries events with an annual probability and a severity: the
conflict, blockade and disaster events of ``events.csv`` that name member countries, plus one
**governance event** per country derived from its World Bank governance rating (a
disruptive political or regulatory act: expropriation, sanctions, unrest), so that every
country's governance counts, not only those with a hand-written event. Then

    GEO_P = sum over events e of  p_e x L_P(e, h)

the expected annual share of supply lost at the headline horizon ``h``, with ``L_P(e, h)``
the provider's loss at the event's mean severity (a site loss or a blockade, as the event
says). Each event's term is credited to its member countries (split evenly), which gives
the per-country contributions. An average of 0-100 ratings, as in version 1, can never
exceed the riskiest country's rating and barely moves between providers; an expected loss
moves with what the provider actually sources from where.

The governance event of country c has probability ``GOVERNANCE_RATE x wgi_risk(c) / 100``
and severity ``GOVERNANCE_SEVERITY``: its WGI-derived risk without the hand-set conflict
overlay, whose place the explicit Taiwan Strait and Korean peninsula events take (so nothing
is counted twice). docs/methodology.md gives the reasoning for both constants.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sovrisk.models.engine.compiled import EdgeTerm, FloatArray
from sovrisk.models.engine.impacts import ImpactModel
from sovrisk.models.graph.events import Event, EventKind, EventMode

#: Annual probability of a governance event at a WGI-derived risk of 100 (the worst rating).
GOVERNANCE_RATE = 0.01
#: Share of a country's sited capacity a governance event takes.
GOVERNANCE_SEVERITY = 0.5
#: The 0-100 mapping: ``100 g / (g + GEO_HALF)``, 50 at an expected loss of 2 % a year.
GEO_HALF = 0.02
GOVERNANCE_PREFIX = "governance:"


@dataclass(frozen=True, slots=True)
class CountryEventSpec:
    """One event of the geopolitical sum: annual probability, mean severity, members."""

    id: str
    name: str
    countries: tuple[str, ...]
    probability: float  # over 52 weeks
    severity: float
    mode: EventMode
    source: str  # "events.csv" or "wgi"


def country_events(model: ImpactModel, events: Sequence[Event]) -> tuple[CountryEventSpec, ...]:
    """The explicit country events of ``events`` (common-cause events naming countries) and a
    governance event for every country with sites in the graph."""
    graph, cg = model.graph, model.compiled
    specs: list[CountryEventSpec] = []
    for e in events:
        if e.kind is not EventKind.COMMON_CAUSE or not e.member_countries:
            continue
        annual = 1.0 - (1.0 - e.probability) ** (52.0 / e.horizon_weeks)
        specs.append(
            CountryEventSpec(
                e.id,
                e.label,
                tuple(sorted(e.member_countries)),
                min(1.0, annual),
                e.severity.mean,
                e.mode,
                "events.csv",
            )
        )
    for iso3 in cg.countries:
        record = graph.countries.get(iso3)
        if record is None:
            continue
        specs.append(
            CountryEventSpec(
                GOVERNANCE_PREFIX + iso3,
                f"Governance event in {record.name}",
                (iso3,),
                GOVERNANCE_RATE * record.wgi_risk / 100.0,
                GOVERNANCE_SEVERITY,
                EventMode.SITE_LOSS,
                "wgi",
            )
        )
    return tuple(specs)


def event_loss_curves(model: ImpactModel, specs: Sequence[CountryEventSpec]) -> FloatArray:
    """``L_P(e, h)`` for every event, curve horizon and provider: ``(horizons, providers,
    events)``, one batch (site losses as ``up`` columns, blockades as edge terms)."""
    cg = model.compiled
    col = {c: k for k, c in enumerate(cg.countries)}
    sites = np.asarray(cg.sites.toarray())
    up = np.ones((cg.n_nodes, len(specs)))
    terms: list[EdgeTerm] = []
    for k, spec in enumerate(specs):
        cols = [col[c] for c in spec.countries if c in col]
        if not cols:
            continue
        if spec.mode is EventMode.BLOCKADE:
            exposure = np.minimum(1.0, sum(cg.border_exposure(c) for c in cols))
            coefficient = np.zeros(len(specs))
            coefficient[k] = spec.severity
            terms.append(EdgeTerm(np.asarray(exposure, dtype=np.float64), coefficient))
        else:
            share = np.minimum(1.0, sites[:, cols].sum(axis=1))
            up[:, k] = 1.0 - spec.severity * share
    if not specs:
        return np.zeros((len(model.node_curve), len(model.provider_ids), 0))
    return 1.0 - model.curve(up, edge_terms=terms)


def geo_score(expected_loss: float) -> float:
    """The 0-100 geopolitical sub-score of an expected annual loss (monotone, 50 at
    :data:`GEO_HALF`, never saturating)."""
    g = max(0.0, expected_loss)
    return 100.0 * g / (g + GEO_HALF) if math.isfinite(g) else 100.0
