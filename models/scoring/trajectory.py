"""Scores over time (METHODS v2 §10): one row per quarter per provider.

Each row is the provider's assessment as of the quarter's last day, so the quarter's fleet
mix, its pools' capacities and the regimes in force on that day move together. Rows carry
the composite and sub-scores, the loss units, the sovereignty measures and the series notes
(a quarter outside a series says so). Engines are built once per quarter
(:meth:`RiskEngine.at`), so a second trajectory over the same quarters costs only the
assessments.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.series import FleetBasis, Quarter, quarters
from sovrisk.models.scoring.assessment import LossUnits, PoolShortfall, RiskAssessment, RiskBand
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

#: Longest trajectory served in one call (ten years of quarters).
MAX_TRAJECTORY_QUARTERS = 40


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
) -> list[TrajectoryPoint]:
    """Every provider's assessment at the end of every quarter from ``first`` to ``last``
    (``params.as_of`` is replaced by each quarter's last day), quarter by quarter, providers
    in the order given."""
    span = check_range(first, last)
    series = engine.supplements.series
    rows: list[TrajectoryPoint] = []
    for quarter in span:
        checkpoint()
        if progress is not None:
            progress(quarter)
        at = replace(params, as_of=quarter.end)
        dated = engine.at(quarter.end)
        for pid in providers:
            assessment = engine.assess(pid, at)
            mix = series.fleet_mix(pid, quarter, FleetBasis.NEW)
            own = None
            if mix is not None:
                owner = dated.graph.nodes[pid].owner
                own = sum(
                    s for c, s in mix.value.shares.items() if dated.graph.nodes[c].owner == owner
                )
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
