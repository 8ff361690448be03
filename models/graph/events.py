"""Disruption events for the correlated Monte Carlo (METHODS §7): schema, checks and loader.

An event is a common cause (a region, a chokepoint) or a regime action that, when it occurs
(probability ``probability`` over ``horizon_weeks``), takes a fraction ``severity`` of the
capacity of every member node, for ``duration`` weeks. Severity and duration are BetaPERT
ranges (min, most likely, max). Members are nodes, nodes carrying a tag, countries (a node
loses its capacity share sited there) and, for a regime action, an export-control regime's
reach (see :mod:`models.analysis.simulation`).

Events are data (``data/events.csv``, loaded by :func:`load_events` with the file / line /
field error style of :mod:`models.graph.loader`) and can be built in code::

    Event(id="tw-blockade", name="Taiwan blockade", probability=0.03,
          severity=Pert(0.4, 0.7, 1.0), duration=Pert(4, 16, 52),
          member_countries=frozenset({"TWN"}))

:func:`event_problems` is the one set of value and membership checks, shared by the loader
(which reports file and line) and :func:`models.analysis.simulation.simulate` (which reports
``events[i].field`` as an :class:`~models.errors.InvalidParameterError`).
"""

from __future__ import annotations

import datetime as dt
import enum
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sovrisk.models.errors import DataIssue, DataValidationError, FieldViolation
from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.models.graph.loader import ID_RE, ISO3_RE, Root, _Row, _rows
from sovrisk.models.graph.schema import Quality

if TYPE_CHECKING:
    from sovrisk.models.graph.supply_graph import SupplyGraph

#: Weeks in the default horizon: probabilities in events.csv are "within the next year".
DEFAULT_HORIZON_WEEKS = 52.0
#: Driver id the simulation gives the independent node failures; no event may take it.
INDEPENDENT_FAILURES_ID = "independent_failures"

EVENT_COLUMNS = (
    "id",
    "name",
    "kind",
    "probability",
    "horizon_weeks",
    "severity_min",
    "severity_mode",
    "severity_max",
    "duration_min",
    "duration_mode",
    "duration_max",
    "member_countries",
    "member_nodes",
    "member_tags",
    "regime",
    "quality",
    "source",
    "as_of",
)
#: The full header as written (the optional ``mode`` after ``regime``, then ``notes``).
EVENT_HEADER = (*EVENT_COLUMNS[:15], "mode", *EVENT_COLUMNS[15:], "notes")


class EventMode(enum.StrEnum):
    """How a country member loses its capacity (METHODS v2 §2): ``site_loss`` (conflict,
    disaster: the sites there lose ``severity`` of their capacity) or ``blockade`` (the edges
    that cross the country's border deliver ``1 - severity`` of their flow; domestic edges go
    on). Node and tag members always lose capacity."""

    SITE_LOSS = "site_loss"
    BLOCKADE = "blockade"


class EventKind(enum.StrEnum):
    """``common_cause``: a region or chokepoint shock; ``regime_action``: a government act."""

    COMMON_CAUSE = "common_cause"
    REGIME_ACTION = "regime_action"


@dataclass(frozen=True, slots=True)
class Pert:
    """A BetaPERT range (min, most likely, max), as in FAIR; lambda = 4.

    ``low == mode == high`` is a fixed value. The mean is ``(low + 4 mode + high) / 6``.
    """

    low: float
    mode: float
    high: float

    @classmethod
    def fixed(cls, value: float) -> Pert:
        return cls(value, value, value)

    @property
    def mean(self) -> float:
        return (self.low + 4.0 * self.mode + self.high) / 6.0


#: Default severity of an independent node failure (the whole node is down).
FULL_OUTAGE = Pert(1.0, 1.0, 1.0)
#: Default duration of an event or node failure, in weeks.
DEFAULT_DURATION = Pert(1.0, 4.0, 12.0)


@dataclass(frozen=True, slots=True)
class Event:
    """One disruption event. Only ``id``, ``probability``, ``severity`` and at least one member
    are needed to build one in code; the rest has defaults (quality C, no sources)."""

    id: str
    probability: float  # of occurring at least once within horizon_weeks, in [0, 1]
    severity: Pert  # fraction of a member's capacity lost, each of (low, mode, high) in [0, 1]
    duration: Pert = DEFAULT_DURATION  # weeks
    name: str = ""
    kind: EventKind = EventKind.COMMON_CAUSE
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS
    member_countries: frozenset[str] = frozenset()
    member_nodes: frozenset[str] = frozenset()
    member_tags: frozenset[str] = frozenset()
    regime: str | None = None  # id of a regime in regimes.csv whose reach the event activates
    mode: EventMode = EventMode.SITE_LOSS  # how its member countries lose capacity
    quality: Quality = Quality.C
    sources: tuple[str, ...] = ()
    as_of: dt.date | None = None
    notes: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        # Accept any iterable of ids in code (lists, sets): store hashable, order-free sets.
        for name in ("member_countries", "member_nodes", "member_tags"):
            value = getattr(self, name)
            if not isinstance(value, frozenset):
                object.__setattr__(self, name, frozenset(value))
        if not isinstance(self.sources, tuple):
            object.__setattr__(self, "sources", tuple(self.sources))

    @property
    def label(self) -> str:
        return self.name or self.id


@dataclass(frozen=True, slots=True)
class EventContext:
    """What event members are checked against: the ids a graph (or compiled graph) knows.

    ``tags`` and ``regimes`` are None when only a compiled graph is at hand (it carries
    neither); an event naming tags or a regime is then rejected.
    """

    nodes: frozenset[str]
    countries: frozenset[str]
    tags: frozenset[str] | None
    regimes: frozenset[str] | None

    @classmethod
    def of_graph(cls, graph: SupplyGraph) -> EventContext:
        return cls(
            nodes=frozenset(graph.nodes),
            countries=frozenset(graph.countries),
            tags=frozenset(t for n in graph.nodes.values() for t in n.tags),
            regimes=frozenset(graph.regimes),
        )

    @classmethod
    def of_ids(cls, nodes: Iterable[str], countries: Iterable[str]) -> EventContext:
        """Bare node and country ids (a compiled graph: no tags, no regimes)."""
        return cls(
            nodes=frozenset(nodes),
            countries=frozenset(countries),
            tags=None,
            regimes=None,
        )


#: A problem found in an event: (field, offending value, message). Field names are the
#: events.csv column names.
Problem = tuple[str, str, str]


def pert_problems(prefix: str, pert: Pert, low: float, high: float | None) -> list[Problem]:
    """Range and ordering checks of one PERT triple (``prefix_min/_mode/_max`` columns)."""
    problems: list[Problem] = []
    values = (("min", pert.low), ("mode", pert.mode), ("max", pert.high))
    for suffix, value in values:
        name = f"{prefix}_{suffix}"
        if not math.isfinite(value):
            problems.append((name, f"{value!r}", "must be a finite number"))
        elif value < low:
            problems.append((name, f"{value:g}", f"must be >= {low:g}"))
        elif high is not None and value > high:
            problems.append((name, f"{value:g}", f"must be <= {high:g}"))
    if problems:
        return problems
    if pert.mode < pert.low:
        problems.append(
            (f"{prefix}_mode", f"{pert.mode:g}", f"must be >= {prefix}_min ({pert.low:g})")
        )
    if pert.high < pert.mode:
        problems.append(
            (f"{prefix}_max", f"{pert.high:g}", f"must be >= {prefix}_mode ({pert.mode:g})")
        )
    return problems


def member_problems(
    countries: Iterable[str],
    nodes: Iterable[str],
    tags: Iterable[str],
    regime: str | None,
    context: EventContext,
) -> list[Problem]:
    """Every member must exist; an event needs at least one member."""
    problems: list[Problem] = []
    countries, nodes, tags = list(countries), list(nodes), list(tags)
    for code in countries:
        if not ISO3_RE.fullmatch(code):
            problems.append(("member_countries", code, "must be an ISO 3166-1 alpha-3 code"))
        elif code not in context.countries:
            problems.append(("member_countries", code, "unknown country (not in the dataset)"))
    for nid in nodes:
        if nid not in context.nodes:
            problems.append(("member_nodes", nid, "unknown node id (not in nodes.csv)"))
    for tag in tags:
        if context.tags is None:
            problems.append(("member_tags", tag, "tags need the dataset, not a compiled graph"))
        elif tag not in context.tags:
            problems.append(("member_tags", tag, "no node carries this tag"))
    if regime:
        if context.regimes is None:
            problems.append(("regime", regime, "regimes need the dataset, not a compiled graph"))
        elif regime not in context.regimes:
            problems.append(("regime", regime, "unknown regime id (not in regimes.csv)"))
    if not (countries or nodes or tags or regime):
        problems.append(
            (
                "member_nodes",
                "",
                "an event needs members: give member_countries, member_nodes, member_tags "
                "or regime",
            )
        )
    return problems


def event_problems(event: Event, context: EventContext) -> list[Problem]:
    """Every problem with an event built in code (the loader checks the same things)."""
    problems: list[Problem] = []
    if not ID_RE.fullmatch(event.id):
        problems.append(("id", event.id, "must be a lowercase slug matching [a-z0-9][a-z0-9._-]*"))
    elif event.id == INDEPENDENT_FAILURES_ID:
        problems.append(("id", event.id, "is reserved for the independent node failures"))
    if not (math.isfinite(event.probability) and 0.0 <= event.probability <= 1.0):
        problems.append(("probability", f"{event.probability!r}", "must be in [0, 1]"))
    if not (math.isfinite(event.horizon_weeks) and event.horizon_weeks > 0.0):
        problems.append(("horizon_weeks", f"{event.horizon_weeks!r}", "must be > 0"))
    problems += pert_problems("severity", event.severity, 0.0, 1.0)
    problems += pert_problems("duration", event.duration, 0.0, None)
    problems += member_problems(
        sorted(event.member_countries),
        sorted(event.member_nodes),
        sorted(event.member_tags),
        event.regime,
        context,
    )
    problems += mode_problems(event.mode, event.member_countries)
    return problems


def mode_problems(mode: EventMode, countries: Iterable[str]) -> list[Problem]:
    """A blockade closes borders: it needs member countries."""
    if mode is EventMode.BLOCKADE and not list(countries):
        return [("mode", str(mode), "a blockade needs member_countries (the borders it closes)")]
    return []


def event_violations(events: Iterable[Event], context: EventContext) -> list[FieldViolation]:
    """:func:`event_problems` of a list of events, named ``events[i].field`` for an API."""
    violations: list[FieldViolation] = []
    seen: set[str] = set()
    for i, event in enumerate(events):
        for name, value, message in event_problems(event, context):
            violations.append(FieldViolation(f"events[{i}].{name}", value, message))
        if event.id in seen:
            violations.append(FieldViolation(f"events[{i}].id", event.id, "duplicate event id"))
        seen.add(event.id)
    return violations


def _file_in(path: str | Path) -> tuple[Root, str]:
    file = Path(path)
    return file.parent, file.name


def load_events(path: str | Path | DatasetFiles, graph: SupplyGraph) -> tuple[Event, ...]:
    """Read and validate an events file (``data/events.csv``) against ``graph``.

    Raises :class:`DataValidationError` listing every problem with its file, line (header =
    line 1) and field. Blank lines and ``#`` lines are ignored, as in every dataset file.
    Members must exist in ``graph``; sources must be ids of ``graph.sources``.
    """
    root, name = (path, "events.csv") if isinstance(path, DatasetFiles) else _file_in(path)
    issues: list[DataIssue] = []
    context = EventContext.of_graph(graph)
    events: list[Event] = []
    seen: set[str] = set()
    for row in _rows(root, name, EVENT_COLUMNS, issues):
        eid = row.ident("id")
        if eid == INDEPENDENT_FAILURES_ID:
            row.fail("id", "is reserved for the independent node failures")
        kind: EventKind | None = None
        kind_raw = row.text("kind")
        if kind_raw:
            try:
                kind = EventKind(kind_raw)
            except ValueError:
                row.fail("kind", "unknown event kind; one of " + ", ".join(EventKind))
        probability = row.number("probability", low=0.0, high=1.0)
        horizon = row.number("horizon_weeks", low=0.0)
        if horizon is not None and horizon <= 0.0:
            row.fail("horizon_weeks", "must be > 0")
        severity = _pert(row, "severity", 0.0, 1.0)
        duration = _pert(row, "duration", 0.0, None)
        countries = row.items("member_countries")
        nodes = row.items("member_nodes")
        tags = row.items("member_tags")
        regime = row.text("regime", required=False) or None
        for name, value, message in member_problems(countries, nodes, tags, regime, context):
            row.fail(name, message, value)
        mode = EventMode.SITE_LOSS
        mode_raw = row.text("mode", required=False)
        if mode_raw:
            try:
                mode = EventMode(mode_raw)
            except ValueError:
                row.fail("mode", "unknown mode; one of " + ", ".join(EventMode))
        for name, value, message in mode_problems(mode, countries):
            row.fail(name, message, value)
        provenance = row.provenance(graph.sources)
        if eid in seen:
            row.fail("id", "duplicate event id")
        seen.add(eid)
        if (
            row.ok
            and kind is not None
            and probability is not None
            and horizon is not None
            and severity is not None
            and duration is not None
        ):
            events.append(
                Event(
                    id=eid,
                    name=row.text("name", required=False),
                    kind=kind,
                    probability=probability,
                    horizon_weeks=horizon,
                    severity=severity,
                    duration=duration,
                    member_countries=frozenset(countries),
                    member_nodes=frozenset(nodes),
                    member_tags=frozenset(tags),
                    regime=regime,
                    mode=mode,
                    quality=provenance.quality,
                    sources=provenance.sources,
                    as_of=provenance.as_of,
                    notes=row.text("notes", required=False),
                )
            )
    if issues:
        raise DataValidationError(issues)
    return tuple(events)


def _pert(row: _Row, prefix: str, low: float, high: float | None) -> Pert | None:
    """Parse ``prefix_min/_mode/_max`` of a loader row and check their order."""
    values = [row.number(f"{prefix}_{s}", low=low, high=high) for s in ("min", "mode", "max")]
    if any(v is None for v in values):
        return None
    lo, mode, hi = (float(v) for v in values if v is not None)
    pert = Pert(lo, mode, hi)
    problems = pert_problems(prefix, pert, low, high)
    for name, value, message in problems:
        row.fail(name, message, value)
    return None if problems else pert
