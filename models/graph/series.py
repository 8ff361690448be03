"""Dated series (METHODS v2 §10): fleets, capacities, allocations, alternates and capex by
quarter or year, with the loader's file / line / field errors and the interpolation rule.

Five optional tables beside the graph:

- ``fleet.csv``: each provider's accelerator mix per quarter, ``new`` supply (delivered in the
  quarter) and ``installed`` base (in service at its end), in units where a source gives them;
- ``capacity.csv``: capacity, yield and demand of a constrained **pool** per quarter (a pool is
  a node id or a tag naming several nodes, e.g. ``cowos``);
- ``allocation.csv``: who claims a pool's capacity per quarter (``demand_share``) and what they
  hold under long-term reservations (``reserved_share``);
- ``alternates.csv``: suppliers that could be qualified in place of an incumbent, with a lead
  time and the spare capacity they would bring;
- ``capex.csv``: each provider's capital expenditure per year.

**Time resolution is the quarter.** A date selects the quarter it falls in. A quarter with a
data point takes it; a quarter between two points is linear in the quarter index between them
(units when both points give units, else shares); a quarter before the first or after the last
point takes the nearest point **and says so** (:attr:`Interpolated.note`), never silently.
Within a quarter the value is constant, so a trajectory has one row per quarter and an engine
is built at most once per quarter.
"""

from __future__ import annotations

import datetime as dt
import enum
import math
import re
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.models.graph.loader import SHARE_TOLERANCE, _Row, _rows
from sovrisk.models.graph.schema import NodeKind, Provenance
from sovrisk.models.graph.supply_graph import SupplyGraph

FLEET_FILE = "fleet.csv"
CAPACITY_FILE = "capacity.csv"
ALLOCATION_FILE = "allocation.csv"
ALTERNATES_FILE = "alternates.csv"
CAPEX_FILE = "capex.csv"
SERIES_FILES = (FLEET_FILE, CAPACITY_FILE, ALLOCATION_FILE, ALTERNATES_FILE, CAPEX_FILE)

_PROVENANCE = ("quality", "source", "as_of")
FLEET_HEADER = (
    "provider",
    "period",
    "basis",
    "chip",
    "units",
    "units_low",
    "units_high",
    "share",
    *_PROVENANCE,
    "notes",
)
CAPACITY_HEADER = (
    "pool",
    "period",
    "capacity",
    "capacity_low",
    "capacity_high",
    "unit",
    "yield",
    "demand",
    "demand_low",
    "demand_high",
    *_PROVENANCE,
    "notes",
)
ALLOCATION_HEADER = (
    "pool",
    "period",
    "claimant",
    "demand_share",
    "reserved_share",
    *_PROVENANCE,
    "notes",
)
ALTERNATES_HEADER = (
    "supplier",
    "alternate",
    "category",
    "lead_weeks",
    "lead_low",
    "lead_high",
    "spare",
    "spare_low",
    "spare_high",
    *_PROVENANCE,
    "notes",
)
CAPEX_HEADER = (
    "provider",
    "year",
    "capex_usd_bn",
    "capex_low",
    "capex_high",
    "ai_share",
    *_PROVENANCE,
    "notes",
)

#: Claimant of a pool's capacity that stands for everyone not named.
OTHER_CLAIMANT = "other"
#: Bounds the loader accepts: ten years of lead time; an alternate ten times the incumbent.
MAX_LEAD_WEEKS = 520.0
MAX_SPARE = 10.0
FIRST_YEAR, LAST_YEAR = 2000, 2100

_QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")


# -- quarters ------------------------------------------------------------------------------------


@dataclass(frozen=True, order=True, slots=True)
class Quarter:
    """A calendar quarter, e.g. ``Quarter(2026, 4)`` = ``2026Q4``."""

    year: int
    q: int

    @classmethod
    def parse(cls, text: str) -> Quarter:
        match = _QUARTER_RE.fullmatch(text.strip())
        if not match:
            raise ValueError(f"not a quarter YYYYQn: {text!r}")
        return cls(int(match.group(1)), int(match.group(2)))

    @classmethod
    def of(cls, date: dt.date) -> Quarter:
        return cls(date.year, (date.month - 1) // 3 + 1)

    @property
    def index(self) -> int:
        """Quarters since year 0: consecutive quarters differ by 1 (for interpolation)."""
        return self.year * 4 + self.q - 1

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, 3 * self.q - 2, 1)

    @property
    def end(self) -> dt.date:
        nxt = self.shift(1).start
        return nxt - dt.timedelta(days=1)

    def shift(self, quarters: int) -> Quarter:
        k = self.index + quarters
        return Quarter(k // 4, k % 4 + 1)

    def __str__(self) -> str:
        return f"{self.year}Q{self.q}"


def quarters(first: Quarter, last: Quarter) -> list[Quarter]:
    """Every quarter from ``first`` to ``last`` inclusive."""
    return [first.shift(k) for k in range(last.index - first.index + 1)]


# -- records -------------------------------------------------------------------------------------


class FleetBasis(enum.StrEnum):
    NEW = "new"  # accelerators delivered in the quarter: the supply a disruption cuts
    INSTALLED = "installed"  # in service at the quarter's end


@dataclass(frozen=True, slots=True)
class FleetPoint:
    provider: str
    period: Quarter
    basis: FleetBasis
    chip: str
    units: float | None
    units_low: float | None
    units_high: float | None
    share: float | None
    provenance: Provenance
    notes: str = ""


@dataclass(frozen=True, slots=True)
class CapacityPoint:
    """A pool's capacity per month, the share of it that yields good output, and what its
    customers want (same unit)."""

    pool: str
    period: Quarter
    capacity: float
    capacity_low: float
    capacity_high: float
    unit: str
    yield_: float
    demand: float | None
    demand_low: float | None
    demand_high: float | None
    provenance: Provenance
    notes: str = ""


@dataclass(frozen=True, slots=True)
class AllocationPoint:
    pool: str
    period: Quarter
    claimant: str  # a designer or accelerator node id, or "other"
    demand_share: float
    reserved_share: float
    provenance: Provenance
    notes: str = ""


@dataclass(frozen=True, slots=True)
class Alternate:
    """``alternate`` could take up to ``spare`` of what ``supplier`` delivers in ``category``,
    once qualified, ``lead_weeks`` after the need arises (METHODS v2 §10)."""

    supplier: str
    alternate: str
    category: str
    lead_weeks: float
    lead_low: float
    lead_high: float
    spare: float
    spare_low: float
    spare_high: float
    provenance: Provenance
    notes: str = ""


@dataclass(frozen=True, slots=True)
class CapexPoint:
    provider: str
    year: int
    capex_usd_bn: float
    capex_low: float
    capex_high: float
    ai_share: float | None
    provenance: Provenance
    notes: str = ""


# -- interpolation -------------------------------------------------------------------------------

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Interpolated(Generic[T]):
    """A series' value for one quarter, with the points it came from.

    ``note`` is empty inside the series; outside it says which point was reused, so a
    response never reuses the last value silently.
    """

    quarter: Quarter
    value: T
    before: Quarter  # the point at or before the quarter (the first point if earlier)
    after: Quarter  # the point at or after it (the last point if later)
    weight: float  # of ``after``: 0 at ``before``, 1 at ``after``
    note: str = ""

    @property
    def extrapolated(self) -> bool:
        return bool(self.note)


def _bracket(
    points: Sequence[Quarter], quarter: Quarter, what: str
) -> tuple[Quarter, Quarter, float, str]:
    """The points around ``quarter`` (sorted ``points``), the weight of the later one, and a
    note when the quarter lies outside the points."""
    first, last = points[0], points[-1]
    if quarter < first:
        return (
            first,
            first,
            0.0,
            f"{quarter} is before the first {what} point ({first}): {first} used",
        )
    if quarter > last:
        return last, last, 0.0, f"{quarter} is after the last {what} point ({last}): {last} used"
    after = next(p for p in points if p >= quarter)
    if after == quarter:
        return after, after, 0.0, ""
    before = max(p for p in points if p < quarter)
    weight = (quarter.index - before.index) / (after.index - before.index)
    return before, after, weight, ""


def _blend(a: Mapping[str, float], b: Mapping[str, float], w: float) -> dict[str, float]:
    keys = sorted(set(a) | set(b))
    return {k: (1.0 - w) * a.get(k, 0.0) + w * b.get(k, 0.0) for k in keys}


def _normalised(values: Mapping[str, float]) -> dict[str, float]:
    total = math.fsum(values.values())
    if total <= 0.0:
        return {}
    return {k: v / total for k, v in sorted(values.items()) if v > 0.0}


@dataclass(frozen=True, slots=True)
class FleetMix:
    """A provider's accelerator mix in one quarter, by chip count: ``shares`` sum to 1;
    ``units`` when both points around the quarter give units."""

    shares: dict[str, float]
    units: dict[str, float] | None

    @property
    def total_units(self) -> float | None:
        return None if self.units is None else math.fsum(self.units.values())

    def weighted(self, per_unit: Mapping[str, float]) -> dict[str, float]:
        """Shares of ``per_unit``-weighted totals (e.g. compute in H100-equivalents)."""
        return _normalised({c: s * per_unit[c] for c, s in self.shares.items()})


@dataclass(frozen=True, slots=True)
class CapacityState:
    pool: str
    unit: str
    capacity: float  # per month
    yield_: float
    demand: float | None  # per month; None: no demand figure, so no standing shortfall

    @property
    def output(self) -> float:
        """Good output per month: capacity x yield."""
        return self.capacity * self.yield_

    @property
    def served(self) -> float:
        """Share of demand the good output can serve, at most 1 (1 without a demand figure)."""
        if self.demand is None or self.demand <= 0.0:
            return 1.0
        return min(1.0, self.output / self.demand)


@dataclass(frozen=True, slots=True)
class Claim:
    claimant: str
    demand_share: float
    reserved_share: float


@dataclass(frozen=True, eq=False)
class DatedSeries:
    """Every dated table of a dataset (each may be empty)."""

    fleet: tuple[FleetPoint, ...] = ()
    capacity: tuple[CapacityPoint, ...] = ()
    allocation: tuple[AllocationPoint, ...] = ()
    alternates: tuple[Alternate, ...] = ()
    capex: tuple[CapexPoint, ...] = ()
    _fleet: dict[tuple[str, FleetBasis], dict[Quarter, list[FleetPoint]]] = field(
        default_factory=dict, repr=False
    )

    def __post_init__(self) -> None:
        grouped: dict[tuple[str, FleetBasis], dict[Quarter, list[FleetPoint]]] = defaultdict(
            lambda: defaultdict(list)
        )
        for p in self.fleet:
            grouped[(p.provider, p.basis)][p.period].append(p)
        self._fleet.update({k: dict(sorted(v.items())) for k, v in sorted(grouped.items())})

    def __bool__(self) -> bool:
        return bool(self.fleet or self.capacity or self.allocation or self.alternates or self.capex)

    # -- fleets --

    def fleet_providers(self, basis: FleetBasis = FleetBasis.NEW) -> list[str]:
        return sorted({p for p, b in self._fleet if b is basis})

    def fleet_quarters(self, provider: str, basis: FleetBasis = FleetBasis.NEW) -> list[Quarter]:
        return list(self._fleet.get((provider, basis), {}))

    def fleet_span(self, basis: FleetBasis = FleetBasis.NEW) -> tuple[Quarter, Quarter] | None:
        """The first and last quarter with a fleet point of any provider (None: no series)."""
        known = [q for (_, b), points in self._fleet.items() if b is basis for q in points]
        return (min(known), max(known)) if known else None

    def fleet_mix(
        self, provider: str, quarter: Quarter, basis: FleetBasis = FleetBasis.NEW
    ) -> Interpolated[FleetMix] | None:
        """The provider's mix in ``quarter`` (None: no series for it)."""
        points = self._fleet.get((provider, basis))
        if not points:
            return None
        before, after, w, note = _bracket(list(points), quarter, f"{basis} fleet {provider}")
        a, b = points[before], points[after]
        if all(p.units is not None for p in (*a, *b)):
            units = _blend(
                {p.chip: p.units or 0.0 for p in a}, {p.chip: p.units or 0.0 for p in b}, w
            )
            units = {k: v for k, v in units.items() if v > 0.0}
            mix = FleetMix(_normalised(units), units)
        else:
            shares = _blend(_shares(a), _shares(b), w)
            mix = FleetMix(_normalised(shares), None)
        return Interpolated(quarter, mix, before, after, w, note)

    # -- pools --

    def pools(self) -> list[str]:
        return sorted({p.pool for p in self.capacity} | {p.pool for p in self.allocation})

    def capacity_at(self, pool: str, quarter: Quarter) -> Interpolated[CapacityState] | None:
        rows = sorted((p for p in self.capacity if p.pool == pool), key=lambda p: p.period)
        if not rows:
            return None
        by_q = {p.period: p for p in rows}
        before, after, w, note = _bracket(list(by_q), quarter, f"capacity {pool}")
        a, b = by_q[before], by_q[after]
        demand = (
            None if a.demand is None or b.demand is None else (1.0 - w) * a.demand + w * b.demand
        )
        state = CapacityState(
            pool,
            a.unit,
            (1.0 - w) * a.capacity + w * b.capacity,
            (1.0 - w) * a.yield_ + w * b.yield_,
            demand,
        )
        return Interpolated(quarter, state, before, after, w, note)

    def claims_at(self, pool: str, quarter: Quarter) -> Interpolated[tuple[Claim, ...]] | None:
        rows = [p for p in self.allocation if p.pool == pool]
        if not rows:
            return None
        by_q: dict[Quarter, list[AllocationPoint]] = defaultdict(list)
        for p in rows:
            by_q[p.period].append(p)
        points = sorted(by_q)
        before, after, w, note = _bracket(points, quarter, f"allocation {pool}")
        demand = _blend(
            {p.claimant: p.demand_share for p in by_q[before]},
            {p.claimant: p.demand_share for p in by_q[after]},
            w,
        )
        reserved = _blend(
            {p.claimant: p.reserved_share for p in by_q[before]},
            {p.claimant: p.reserved_share for p in by_q[after]},
            w,
        )
        claims = tuple(
            Claim(c, demand.get(c, 0.0), reserved.get(c, 0.0))
            for c in sorted(set(demand) | set(reserved))
        )
        return Interpolated(quarter, claims, before, after, w, note)

    # -- capex --

    def capex_at(self, provider: str, year: int) -> Interpolated[float] | None:
        rows = sorted((p for p in self.capex if p.provider == provider), key=lambda p: p.year)
        if not rows:
            return None
        by_q = {Quarter(p.year, 4): p.capex_usd_bn for p in rows}
        quarter = Quarter(year, 4)
        before, after, w, note = _bracket(list(by_q), quarter, f"capex {provider}")
        value = (1.0 - w) * by_q[before] + w * by_q[after]
        return Interpolated(quarter, value, before, after, w, note.replace("Q4", ""))

    def alternates_for(self, supplier: str, category: str) -> list[Alternate]:
        return [a for a in self.alternates if a.supplier == supplier and a.category == category]


def _shares(points: Iterable[FleetPoint]) -> dict[str, float]:
    """A point's mix as shares, whether it was given in shares or in units."""
    rows = list(points)
    if rows and all(p.units is not None for p in rows):
        return _normalised({p.chip: p.units or 0.0 for p in rows})
    return {p.chip: p.share or 0.0 for p in rows}


# -- loading -------------------------------------------------------------------------------------


def load_series(files: DatasetFiles, graph: SupplyGraph) -> DatedSeries:
    """Read and validate the dated tables present in ``files`` (each is optional).

    Raises :class:`DataValidationError` listing every problem with file, line and field.
    """
    issues: list[DataIssue] = []
    fleet = _load_fleet(files, graph, issues) if FLEET_FILE in files else ()
    capacity = _load_capacity(files, graph, issues) if CAPACITY_FILE in files else ()
    allocation = _load_allocation(files, graph, issues) if ALLOCATION_FILE in files else ()
    alternates = _load_alternates(files, graph, issues) if ALTERNATES_FILE in files else ()
    capex = _load_capex(files, graph, issues) if CAPEX_FILE in files else ()
    if issues:
        raise DataValidationError(issues)
    return DatedSeries(
        tuple(fleet), tuple(capacity), tuple(allocation), tuple(alternates), tuple(capex)
    )


def _quarter(row: _Row, name: str = "period") -> Quarter | None:
    raw = row.text(name)
    if not raw:
        return None
    try:
        quarter = Quarter.parse(raw)
    except ValueError:
        row.fail(name, "must be a quarter YYYYQn, e.g. 2026Q4")
        return None
    if not FIRST_YEAR <= quarter.year <= LAST_YEAR:
        row.fail(name, f"year must be within {FIRST_YEAR}-{LAST_YEAR}")
        return None
    return quarter


def _load_fleet(
    files: DatasetFiles, graph: SupplyGraph, issues: list[DataIssue]
) -> list[FleetPoint]:
    points: list[FleetPoint] = []
    seen: set[tuple[str, Quarter, FleetBasis, str]] = set()
    groups: dict[tuple[str, Quarter, FleetBasis], list[tuple[_Row, FleetPoint]]] = defaultdict(list)
    for row in _rows(files, FLEET_FILE, FLEET_HEADER[:4] + _PROVENANCE, issues):
        pid, chip = row.ident("provider"), row.ident("chip")
        period = _quarter(row)
        basis_raw = row.text("basis")
        try:
            basis = FleetBasis(basis_raw) if basis_raw else None
        except ValueError:
            row.fail("basis", "must be 'new' (delivered in the quarter) or 'installed'")
            basis = None
        units = row.number("units", required=False, low=0.0, high=1e9)
        low, high = row.bounds(units, "units_low", "units_high", "units", low=0.0, high=1e9)
        share = row.number("share", required=False, low=0.0, high=1.0)
        provenance = row.provenance(graph.sources)
        row.node_of_kind("provider", pid, graph.nodes, NodeKind.PROVIDER)
        row.node_of_kind("chip", chip, graph.nodes, NodeKind.ACCELERATOR)
        if chip in graph.nodes and graph.nodes[chip].compute_h100e is None:
            row.fail(
                "chip",
                "has no compute_h100e in nodes.csv: fleet rows count chips, and the fleet "
                "edges they set are compute shares",
            )
        if units is None and share is None:
            row.fail("units", "give units or share")
        if units is not None and share is not None:
            row.fail("share", "give units or share, not both")
        key = (pid, period, basis, chip)
        if period is not None and basis is not None:
            if key in seen:
                row.fail("chip", "duplicate row for this provider, period and basis")
            seen.add((pid, period, basis, chip))
        if row.ok and period is not None and basis is not None:
            point = FleetPoint(
                pid,
                period,
                basis,
                chip,
                units,
                low,
                high,
                share,
                provenance,
                row.text("notes", required=False),
            )
            points.append(point)
            groups[(pid, period, basis)].append((row, point))
    for (pid, period, basis), members in groups.items():
        with_units = [p for _, p in members if p.units is not None]
        if with_units and len(with_units) != len(members):
            row = members[0][0]
            row.fail("units", f"{pid} {period} {basis}: give units in every row or in none")
        elif not with_units:
            total = math.fsum(p.share or 0.0 for _, p in members)
            if abs(total - 1.0) > SHARE_TOLERANCE:
                members[-1][0].fail(
                    "share", f"{pid} {period} {basis}: shares sum to {total:.4f}, not 1"
                )
        elif math.fsum(p.units or 0.0 for _, p in members) <= 0.0:
            members[0][0].fail("units", f"{pid} {period} {basis}: no units at all")
    return points


def _pool_members(graph: SupplyGraph, pool: str) -> list[str]:
    """The nodes a pool names: the node itself, or every node carrying the tag."""
    if pool in graph.nodes:
        return [pool]
    return sorted(nid for nid, node in graph.nodes.items() if pool in node.tags)


def pool_members(graph: SupplyGraph, pool: str) -> list[str]:
    return _pool_members(graph, pool)


def _check_pool(row: _Row, graph: SupplyGraph, pool: str) -> None:
    if pool and not _pool_members(graph, pool):
        row.fail("pool", "names no node: give a node id or a tag carried by nodes")


def _load_capacity(
    files: DatasetFiles, graph: SupplyGraph, issues: list[DataIssue]
) -> list[CapacityPoint]:
    points: list[CapacityPoint] = []
    seen: dict[tuple[str, Quarter], str] = {}
    units: dict[str, str] = {}
    for row in _rows(
        files, CAPACITY_FILE, ("pool", "period", "capacity", "unit", *_PROVENANCE), issues
    ):
        pool = row.text("pool")
        period = _quarter(row)
        capacity = row.number("capacity", low=0.0, high=1e12)
        if capacity is not None and capacity <= 0.0:
            row.fail("capacity", "must be > 0")
        low, high = row.bounds(capacity, "capacity_low", "capacity_high", "capacity", low=0.0)
        unit = row.text("unit")
        yield_ = row.number("yield", required=False, low=0.0, high=1.0)
        if yield_ is not None and yield_ <= 0.0:
            row.fail("yield", "must be > 0 (a fraction of good output)")
        demand = row.number("demand", required=False, low=0.0, high=1e12)
        d_low, d_high = row.bounds(demand, "demand_low", "demand_high", "demand", low=0.0)
        provenance = row.provenance(graph.sources)
        _check_pool(row, graph, pool)
        if pool in units and unit and unit != units[pool]:
            row.fail("unit", f"pool {pool} is in {units[pool]}: one unit per pool")
        if period is not None and (pool, period) in seen:
            row.fail("period", "duplicate row for this pool and period")
        if row.ok and period is not None and capacity is not None:
            seen[(pool, period)] = unit
            units.setdefault(pool, unit)
            points.append(
                CapacityPoint(
                    pool,
                    period,
                    capacity,
                    capacity if low is None else low,
                    capacity if high is None else high,
                    unit,
                    1.0 if yield_ is None else yield_,
                    demand,
                    d_low,
                    d_high,
                    provenance,
                    row.text("notes", required=False),
                )
            )
    return points


def claimant_kind_ok(graph: SupplyGraph, claimant: str) -> bool:
    if claimant == OTHER_CLAIMANT:
        return True
    node = graph.nodes.get(claimant)
    return node is not None and node.kind in (NodeKind.DESIGNER, NodeKind.ACCELERATOR)


def _load_allocation(
    files: DatasetFiles, graph: SupplyGraph, issues: list[DataIssue]
) -> list[AllocationPoint]:
    points: list[AllocationPoint] = []
    groups: dict[tuple[str, Quarter], list[tuple[_Row, AllocationPoint]]] = defaultdict(list)
    for row in _rows(
        files, ALLOCATION_FILE, ("pool", "period", "claimant", "demand_share", *_PROVENANCE), issues
    ):
        pool = row.text("pool")
        period = _quarter(row)
        claimant = row.ident("claimant")
        demand = row.number("demand_share", low=0.0, high=1.0)
        reserved = row.number("reserved_share", required=False, low=0.0, high=1.0)
        provenance = row.provenance(graph.sources)
        _check_pool(row, graph, pool)
        if claimant and not claimant_kind_ok(graph, claimant):
            row.fail(
                "claimant",
                "must be a designer or accelerator node id, or 'other' (everyone not named)",
            )
        if period is not None and any(
            p.claimant == claimant for _, p in groups.get((pool, period), [])
        ):
            row.fail("claimant", "duplicate row for this pool, period and claimant")
        if row.ok and period is not None and demand is not None:
            point = AllocationPoint(
                pool,
                period,
                claimant,
                demand,
                reserved or 0.0,
                provenance,
                row.text("notes", required=False),
            )
            points.append(point)
            groups[(pool, period)].append((row, point))
    for (pool, period), members in groups.items():
        total = math.fsum(p.demand_share for _, p in members)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            members[-1][0].fail(
                "demand_share", f"{pool} {period}: demand shares sum to {total:.4f}, not 1"
            )
        reserved = math.fsum(p.reserved_share for _, p in members)
        if reserved > 1.0 + SHARE_TOLERANCE:
            members[-1][0].fail(
                "reserved_share", f"{pool} {period}: reservations sum to {reserved:.4f} > 1"
            )
    return points


def _load_alternates(
    files: DatasetFiles, graph: SupplyGraph, issues: list[DataIssue]
) -> list[Alternate]:
    rows_out: list[Alternate] = []
    seen: set[tuple[str, str, str]] = set()
    for row in _rows(
        files,
        ALTERNATES_FILE,
        ("supplier", "alternate", "category", "lead_weeks", "spare", *_PROVENANCE),
        issues,
    ):
        supplier, alternate = row.ident("supplier"), row.ident("alternate")
        category = row.text("category")
        lead = row.number("lead_weeks", low=0.0, high=MAX_LEAD_WEEKS)
        lead_low, lead_high = row.bounds(
            lead, "lead_low", "lead_high", "lead_weeks", low=0.0, high=MAX_LEAD_WEEKS
        )
        spare = row.number("spare", low=0.0, high=MAX_SPARE)
        spare_low, spare_high = row.bounds(
            spare, "spare_low", "spare_high", "spare", low=0.0, high=MAX_SPARE
        )
        provenance = row.provenance(graph.sources)
        for name, nid in (("supplier", supplier), ("alternate", alternate)):
            if nid and nid not in graph.nodes:
                row.fail(name, "unknown node id (not in nodes.csv)")
        if supplier and supplier == alternate:
            row.fail("alternate", "must differ from the supplier")
        if (
            supplier in graph.nodes
            and category
            and not any(e.category == category for e in graph.outputs(supplier))
        ):
            row.fail("category", f"{supplier} supplies nobody in category '{category}'")
        if supplier in graph.nodes and alternate in graph.nodes:
            consumers = {e.consumer for e in graph.outputs(supplier) if e.category == category}
            if alternate in consumers or _upstream(graph, alternate) & consumers:
                row.fail("alternate", f"{alternate} draws on a consumer of {supplier}: a cycle")
        if (supplier, alternate, category) in seen:
            row.fail("alternate", "duplicate row for this supplier, alternate and category")
        seen.add((supplier, alternate, category))
        if row.ok and lead is not None and spare is not None:
            rows_out.append(
                Alternate(
                    supplier,
                    alternate,
                    category,
                    lead,
                    lead if lead_low is None else lead_low,
                    lead if lead_high is None else lead_high,
                    spare,
                    spare if spare_low is None else spare_low,
                    spare if spare_high is None else spare_high,
                    provenance,
                    row.text("notes", required=False),
                )
            )
    return rows_out


def _upstream(graph: SupplyGraph, node: str) -> set[str]:
    """Every node ``node`` draws on, directly or not."""
    seen: set[str] = set()
    stack = [node]
    while stack:
        for edge in graph.inputs(stack.pop()):
            if edge.supplier not in seen:
                seen.add(edge.supplier)
                stack.append(edge.supplier)
    return seen


def _load_capex(
    files: DatasetFiles, graph: SupplyGraph, issues: list[DataIssue]
) -> list[CapexPoint]:
    points: list[CapexPoint] = []
    seen: set[tuple[str, int]] = set()
    for row in _rows(files, CAPEX_FILE, ("provider", "year", "capex_usd_bn", *_PROVENANCE), issues):
        pid = row.ident("provider")
        year = row.number("year", low=FIRST_YEAR, high=LAST_YEAR)
        if year is not None and year != int(year):
            row.fail("year", "must be a whole year")
        capex = row.number("capex_usd_bn", low=0.0, high=1e5)
        low, high = row.bounds(capex, "capex_low", "capex_high", "capex_usd_bn", low=0.0, high=1e5)
        ai_share = row.number("ai_share", required=False, low=0.0, high=1.0)
        provenance = row.provenance(graph.sources)
        row.node_of_kind("provider", pid, graph.nodes, NodeKind.PROVIDER)
        if year is not None and (pid, int(year)) in seen:
            row.fail("year", "duplicate row for this provider and year")
        if row.ok and year is not None and capex is not None:
            seen.add((pid, int(year)))
            points.append(
                CapexPoint(
                    pid,
                    int(year),
                    capex,
                    capex if low is None else low,
                    capex if high is None else high,
                    ai_share,
                    provenance,
                    row.text("notes", required=False),
                )
            )
    return points
