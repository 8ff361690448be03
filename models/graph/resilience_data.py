"""Resilience and demand tables (``resilience.csv``, ``provider_demand.csv``): records and
loaders with the file / line / field errors of :mod:`models.graph.loader`.

The analysis that reads them (TTR/TTS linear programs) is :mod:`models.analysis.resilience`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.models.graph.loader import Root, _Row, _rows
from sovrisk.models.graph.schema import NodeKind, Provenance
from sovrisk.models.graph.supply_graph import SupplyGraph

RESILIENCE_FILE = "resilience.csv"
DEMAND_FILE = "provider_demand.csv"

RESILIENCE_COLUMNS = (
    "node",
    "ttr_weeks",
    "quality",
    "source",
    "as_of",
)
DEMAND_COLUMNS = ("provider", "demand_weight", "quality", "source", "as_of")

#: Upper bounds the loader accepts (ten years; surge capacity of ten times baseline).
MAX_WEEKS = 520.0
MAX_SPARE = 10.0


# -- data ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ResilienceRecord:
    """One row of resilience.csv: how fast a node recovers and what buffers its output."""

    node: str
    ttr_weeks: float  # central time to recover full output after a severe site-level stop
    ttr_low: float
    ttr_high: float
    spare_capacity: float  # fraction of baseline output the node can add (surge)
    provenance: Provenance
    notes: str = ""


@dataclass(frozen=True, slots=True)
class ResilienceData:
    """Validated resilience rows, keyed by node id (sorted)."""

    records: Mapping[str, ResilienceRecord]

    def __contains__(self, node_id: object) -> bool:
        return node_id in self.records

    def __len__(self) -> int:
        return len(self.records)

    def get(self, node_id: str) -> ResilienceRecord | None:
        return self.records.get(node_id)


@dataclass(frozen=True, slots=True)
class DemandRecord:
    """One row of provider_demand.csv: how much accelerator supply a provider buys."""

    provider: str
    demand_weight: float  # e.g. 2026 capex, US$ bn; only ratios matter
    demand_low: float
    demand_high: float
    provenance: Provenance
    notes: str = ""
    #: Capital expenditure (US$ bn a year), the base of "capex at risk"; None: not given.
    capex_usd_bn: float | None = None
    #: Accelerators taken in a year, the base of "accelerators not delivered"; None: unknown.
    intake_units: float | None = None


@dataclass(frozen=True, slots=True)
class ProviderDemand:
    """Validated demand weights, keyed by provider id (sorted)."""

    records: Mapping[str, DemandRecord]

    def weights(self) -> dict[str, float]:
        return {pid: r.demand_weight for pid, r in self.records.items()}


def _csv_target(path: str | Path | DatasetFiles, default_name: str) -> tuple[Root, str]:
    if isinstance(path, DatasetFiles):
        return path, default_name
    target = Path(path)
    if target.is_dir():
        return target, default_name
    return target.parent, target.name


def load_resilience(path: str | Path | DatasetFiles, graph: SupplyGraph) -> ResilienceData:
    """Read and validate resilience.csv (a file, or a dataset folder holding one).

    Raises :class:`DataValidationError` listing every problem with its file, line and field:
    unknown or non-producing nodes, duplicate rows, TTR not positive or outside
    ``ttr_low <= ttr_weeks <= ttr_high``, negative spare capacity, unknown sources. Buffers
    (inventory cover, installed-base service buffers) are the graph's (``nodes.csv``
    ``buffer_weeks``, ``edges.csv`` overrides): the LP and the capacity engine share them.
    """
    root, name = _csv_target(path, RESILIENCE_FILE)
    issues: list[DataIssue] = []
    records: dict[str, ResilienceRecord] = {}
    for row in _rows(root, name, RESILIENCE_COLUMNS, issues):
        nid = row.ident("node")
        ttr = _positive(row, "ttr_weeks", required=True)
        low = _positive(row, "ttr_low", required=False)
        high = _positive(row, "ttr_high", required=False)
        if "inventory_weeks" in row.values:
            row.fail(
                "inventory_weeks",
                "moved in model v2: give the node's buffer as nodes.csv buffer_weeks",
            )
        spare = row.number("spare_capacity", required=False, low=0.0, high=MAX_SPARE)
        provenance = row.provenance(graph.sources)
        if nid and nid not in graph.nodes:
            row.fail("node", "unknown node id (not in nodes.csv)")
        elif nid and graph.nodes[nid].kind is NodeKind.PROVIDER:
            row.fail("node", "a provider is a consumer: it has no recovery time")
        if ttr is not None and low is not None and low > ttr:
            row.fail("ttr_low", f"must be <= ttr_weeks ({ttr:g})")
        if ttr is not None and high is not None and high < ttr:
            row.fail("ttr_high", f"must be >= ttr_weeks ({ttr:g})")
        if nid in records:
            row.fail("node", "duplicate row for this node")
        if row.ok and ttr is not None:
            records[nid] = ResilienceRecord(
                node=nid,
                ttr_weeks=ttr,
                ttr_low=ttr if low is None else low,
                ttr_high=ttr if high is None else high,
                spare_capacity=0.0 if spare is None else spare,
                provenance=provenance,
                notes=row.text("notes", required=False),
            )
    if issues:
        raise DataValidationError(issues)
    return ResilienceData(dict(sorted(records.items())))


def load_provider_demand(path: str | Path | DatasetFiles, graph: SupplyGraph) -> ProviderDemand:
    """Read and validate provider_demand.csv (a file, or a dataset folder holding one).

    Every provider of the graph needs exactly one row with a positive ``demand_weight``
    (optional ``demand_low <= demand_weight <= demand_high``); rows naming anything but a
    provider are rejected. Raises :class:`DataValidationError` with file, line and field.
    """
    root, name = _csv_target(path, DEMAND_FILE)
    issues: list[DataIssue] = []
    records: dict[str, DemandRecord] = {}
    mentioned: set[str] = set()
    for row in _rows(root, name, DEMAND_COLUMNS, issues):
        pid = row.ident("provider")
        mentioned.add(pid)
        weight = _positive(row, "demand_weight", required=True, limit=math.inf)
        low, high = row.bounds(weight, "demand_low", "demand_high", "demand_weight", low=0.0)
        capex = row.number("capex_usd_bn", required=False, low=0.0, high=1e5)
        intake = row.number("intake_units", required=False, low=0.0, high=1e9)
        provenance = row.provenance(graph.sources)
        row.node_of_kind("provider", pid, graph.nodes, NodeKind.PROVIDER)
        if pid in records:
            row.fail("provider", "duplicate row for this provider")
        if row.ok and weight is not None:
            records[pid] = DemandRecord(
                provider=pid,
                demand_weight=weight,
                demand_low=weight if low is None else low,
                demand_high=weight if high is None else high,
                capex_usd_bn=capex,
                intake_units=intake,
                provenance=provenance,
                notes=row.text("notes", required=False),
            )
    unreadable = any(
        i.field == "(file)" or i.message == "required column is missing" for i in issues
    )
    if not unreadable:
        issues.extend(
            DataIssue(name, 0, "provider", p.id, "provider has no demand row")
            for p in graph.providers()
            if p.id not in mentioned
        )
    if issues:
        raise DataValidationError(issues)
    return ProviderDemand(dict(sorted(records.items())))


def _positive(row: _Row, field: str, *, required: bool, limit: float = MAX_WEEKS) -> float | None:
    value = row.number(field, required=required, low=0.0, high=limit)
    if value is not None and value <= 0.0:
        row.fail(field, "must be > 0")
        return None
    return value
