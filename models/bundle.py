"""A dataset folder as one unit: the graph plus the optional supplementary tables that
the resilience, tail and contention analytics read (events, resilience, provider demand)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from models.events import Event, load_events
from models.graph import SupplyGraph
from models.loader import load_dataset
from models.resilience import ProviderDemand, ResilienceData, load_provider_demand, load_resilience

EVENTS_FILE = "events.csv"
RESILIENCE_FILE = "resilience.csv"
DEMAND_FILE = "provider_demand.csv"


@dataclass(frozen=True, eq=False)
class Supplements:
    """Optional tables beside the graph. Missing ones make their sub-scores unavailable (and
    their checks INCONCLUSIVE): missing data is not zero risk."""

    events: tuple[Event, ...] = ()
    resilience: ResilienceData | None = None
    demand: ProviderDemand | None = None
    digest: str = field(default="")  # sha256 of the files read, for provenance


def load_supplements(path: str | Path, graph: SupplyGraph) -> Supplements:
    root = Path(path)
    digest = hashlib.sha256()
    for name in (EVENTS_FILE, RESILIENCE_FILE, DEMAND_FILE):
        file = root / name
        if file.is_file():
            digest.update(name.encode() + b"\0" + file.read_bytes())
    events_file, resilience_file, demand_file = (
        root / EVENTS_FILE,
        root / RESILIENCE_FILE,
        root / DEMAND_FILE,
    )
    return Supplements(
        events=load_events(events_file, graph) if events_file.is_file() else (),
        resilience=load_resilience(resilience_file, graph) if resilience_file.is_file() else None,
        demand=load_provider_demand(demand_file, graph) if demand_file.is_file() else None,
        digest=digest.hexdigest(),
    )


def load_bundle(path: str | Path) -> tuple[SupplyGraph, Supplements]:
    """The validated graph and its supplementary tables from a dataset folder."""
    graph = load_dataset(path)
    return graph, load_supplements(path, graph)
