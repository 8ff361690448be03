"""A dataset folder as one unit: the graph plus the optional supplementary tables that
the resilience, tail and contention analytics read (events, resilience, provider demand)
and the dated series (fleets, capacities, allocations, alternates, capex)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.models.graph.events import Event, load_events
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.resilience_data import (
    ProviderDemand,
    ResilienceData,
    load_provider_demand,
    load_resilience,
)
from sovrisk.models.graph.series import SERIES_FILES, DatedSeries, load_series
from sovrisk.models.graph.supply_graph import SupplyGraph

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
    #: Fleets, capacities, allocations, alternates and capex by date (each may be empty).
    series: DatedSeries = field(default_factory=DatedSeries)
    digest: str = field(default="")  # sha256 of the files read, for provenance


def load_supplements(path: str | Path | DatasetFiles, graph: SupplyGraph) -> Supplements:
    files = path if isinstance(path, DatasetFiles) else DatasetFiles.from_directory(path)
    digest = hashlib.sha256()
    for name in (EVENTS_FILE, RESILIENCE_FILE, DEMAND_FILE, *SERIES_FILES):
        if name in files:
            digest.update(name.encode() + b"\0" + files[name])
    return Supplements(
        events=load_events(files, graph) if EVENTS_FILE in files else (),
        resilience=load_resilience(files, graph) if RESILIENCE_FILE in files else None,
        demand=load_provider_demand(files, graph) if DEMAND_FILE in files else None,
        series=load_series(files, graph),
        digest=digest.hexdigest(),
    )


def load_bundle(path: str | Path | DatasetFiles) -> tuple[SupplyGraph, Supplements]:
    """The validated graph and its supplementary tables from a dataset folder or its files."""
    files = path if isinstance(path, DatasetFiles) else DatasetFiles.from_directory(path)
    graph = load_dataset(files if isinstance(path, DatasetFiles) else path)
    return graph, load_supplements(files, graph)
