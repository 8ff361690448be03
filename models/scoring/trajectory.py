"""Scores over time (METHODS v2 §10): one row per quarter per provider.

Each row is the provider's assessment as of the quarter's last day, so the quarter's fleet
mix, its pools' capacities and the regimes in force on that day move together. Rows carry
the composite and sub-scores, the loss units, the sovereignty measures and the series notes
(a quarter outside a series says so). Engines are built once per quarter
(:meth:`RiskEngine.at`), so a second trajectory over the same quarters costs only the
assessments.

The quarters are independent: with an executor other than this thread
(``--executor ray...``, ``models.engine.executor``), each quarter not yet scored here is a
task that rebuilds the stored graph's engine from the graph and supplements (shared, put
once) and scores that quarter, with the same bits as here.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.executor import Executor, LocalExecutor, default_executor
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.bundle import Supplements
from sovrisk.models.graph.series import FleetBasis, Quarter, quarters
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.assessment import LossUnits, PoolShortfall, RiskAssessment, RiskBand
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

#: Longest trajectory served in one call (ten years of quarters).
MAX_TRAJECTORY_QUARTERS = 40

#: Rows of quarters scored by a cluster, kept here (they warm no engine of this process) so a
#: repeated trajectory is not sent out again; bounded: a row holds ~0.1 MB of assessment.
MAX_REMOTE_ROWS = 400
_RemoteKey = tuple[str, str, str, tuple[str, ...], ScoringParams]
_remote_rows: OrderedDict[_RemoteKey, list[TrajectoryPoint]] = OrderedDict()
_remote_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class TrajectoryPoint:
    quarter: str
    provider: str
    assessment: RiskAssessment
    #: Own silicon's share of the quarter's new accelerators by count (the compute share is
    #: ``assessment.sovereignty.own_silicon_share``); None without a unit or share series.
    own_silicon_unit_share: float | None
    #: Accelerators delivered in the quarter (fleet.csv units), None where not given.
    new_units: float | None

    @property
    def composite(self) -> float:
        return self.assessment.composite

    @property
    def band(self) -> RiskBand:
        return self.assessment.band

    @property
    def loss_units(self) -> LossUnits | None:
        return self.assessment.loss_units

    @property
    def capacity(self) -> tuple[PoolShortfall, ...]:
        return self.assessment.capacity

    @property
    def notes(self) -> tuple[str, ...]:
        return self.assessment.series_notes


def check_range(first: Quarter, last: Quarter) -> list[Quarter]:
    """The quarters from ``first`` to ``last``; raises InvalidParameterError when the range is
    reversed or longer than :data:`MAX_TRAJECTORY_QUARTERS`."""
    if last < first:
        raise InvalidParameterError(
            [FieldViolation("end_quarter", str(last), f"is before start_quarter {first}")]
        )
    span = quarters(first, last)
    if len(span) > MAX_TRAJECTORY_QUARTERS:
        raise InvalidParameterError(
            [
                FieldViolation(
                    "end_quarter",
                    str(last),
                    f"{len(span)} quarters from {first}: at most {MAX_TRAJECTORY_QUARTERS}",
                )
            ]
        )
    return span


def trajectory(
    engine: RiskEngine,
    providers: Sequence[str],
    first: Quarter,
    last: Quarter,
    params: ScoringParams,
    *,
    progress: Callable[[Quarter], None] | None = None,
    executor: Executor | None = None,
) -> list[TrajectoryPoint]:
    """Every provider's assessment at the end of every quarter from ``first`` to ``last``
    (``params.as_of`` is replaced by each quarter's last day), quarter by quarter, providers
    in the order given.

    ``executor`` (default: :func:`default_executor`) scores the quarters this process has not
    scored yet, one task each, when it is anything but this thread; ``progress`` is then
    reported per quarter as the results are merged."""
    span = check_range(first, last)
    executor = executor or default_executor()
    remote: dict[Quarter, list[TrajectoryPoint]] = {}
    if not (isinstance(executor, LocalExecutor) and executor.threads == 1):
        origin, wanted = engine.origin, tuple(providers)

        def key(q: Quarter) -> _RemoteKey:
            return (origin.content_key, origin.graph_version, str(q), wanted, params)

        with _remote_lock:
            for q in span:
                if key(q) in _remote_rows:
                    remote[q] = _remote_rows[key(q)]
                    _remote_rows.move_to_end(key(q))
        cold = [q for q in span if q not in remote and _to_send(engine, q)]
        if cold:
            # Threads here share this engine (and warm its caches); a cluster gets the recipe.
            shared: RiskEngine | _Recipe = engine
            if not isinstance(executor, LocalExecutor):
                shared = _Recipe(
                    origin.graph,
                    origin.supplements,
                    origin.graph_version,
                    origin.tail_samples,
                )
            parts = executor.map(_quarter_rows, (shared, wanted, params), cold)
            remote.update(zip(cold, parts, strict=True))
            if not isinstance(executor, LocalExecutor):
                with _remote_lock:
                    for q, part in zip(cold, parts, strict=True):
                        _remote_rows[key(q)] = part
                    while sum(map(len, _remote_rows.values())) > MAX_REMOTE_ROWS:
                        _remote_rows.popitem(last=False)
    rows: list[TrajectoryPoint] = []
    for quarter in span:
        checkpoint()
        if progress is not None:
            progress(quarter)
        if quarter in remote:
            rows.extend(remote[quarter])
        else:
            rows.extend(_rows(engine, tuple(providers), quarter, params))
    return rows


@dataclass(frozen=True, slots=True)
class _Recipe:
    """What a cluster worker needs to rebuild the stored graph's engine (the analytics cache
    stays here: a worker computes)."""

    graph: SupplyGraph
    supplements: Supplements
    graph_version: str
    tail_samples: int


def _quarter_rows(
    shared: tuple[RiskEngine | _Recipe, tuple[str, ...], ScoringParams], quarter: Quarter
) -> list[TrajectoryPoint]:
    """One quarter's rows: an executor's task (module-level, so a cluster worker imports it
    by name)."""
    checkpoint()
    source, providers, params = shared
    engine = (
        source
        if isinstance(source, RiskEngine)
        else RiskEngine(
            source.graph,
            source.supplements,
            graph_version=source.graph_version,
            tail_samples=source.tail_samples,
        )
    )
    return _rows(engine, providers, quarter, params)


def _to_send(engine: RiskEngine, quarter: Quarter) -> bool:
    """Whether the quarter goes to the executor: its engine is the stored graph's (a what-if
    engine speaks for its own quarter; a worker rebuilds only the stored graph's), and has
    not scored here yet (then it costs only cached lookups, and a worker would recompute its
    analytics, seconds; what-if weights and other parameters reuse them too)."""
    dated = engine.at(quarter.end)
    return (
        dated is engine.origin.at(quarter.end) and not dated._assess_standard.cache_info().currsize
    )


def _rows(
    engine: RiskEngine, providers: Sequence[str], quarter: Quarter, params: ScoringParams
) -> list[TrajectoryPoint]:
    series = engine.supplements.series
    at = replace(params, as_of=quarter.end)
    dated = engine.at(quarter.end)
    rows: list[TrajectoryPoint] = []
    for pid in providers:
        assessment = engine.assess(pid, at)
        mix = series.fleet_mix(pid, quarter, FleetBasis.NEW)
        own = None
        if mix is not None:
            owner = dated.graph.nodes[pid].owner
            own = sum(s for c, s in mix.value.shares.items() if dated.graph.nodes[c].owner == owner)
        units = mix.value.total_units if mix is not None and not mix.extrapolated else None
        rows.append(TrajectoryPoint(str(quarter), pid, assessment, own, units))
    return rows


#: A report's default window: three years back and a year ahead of its date.
DEFAULT_QUARTERS_BACK, DEFAULT_QUARTERS_AHEAD = 11, 4


def default_window(engine: RiskEngine, quarter: Quarter) -> tuple[Quarter, Quarter] | None:
    """The quarters a report shows around ``quarter``: three years back and one ahead,
    within the fleet series (None without one)."""
    span = engine.supplements.series.fleet_span()
    if span is None:
        return None
    first = max(span[0], quarter.shift(-DEFAULT_QUARTERS_BACK))
    last = min(span[1], quarter.shift(DEFAULT_QUARTERS_AHEAD))
    return (first, last) if first <= last else None
