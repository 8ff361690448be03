"""proto <-> domain for the Monte Carlo (``RiskService.SimulateDisruptions``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sovrisk.models.analysis import simulation as sim
from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph import events as ev
from sovrisk.models.scoring.risk_engine import SIMULATION_MEASURES
from sovrisk.service import converters as conv
from sovrisk.service.grpc_gen.sovrisk.v1 import common_pb2, simulation_pb2

if TYPE_CHECKING:  # scikit-learn is heavy to import; only the type is needed here
    from sovrisk.models.analysis.sensitivity import SensitivityResult

_KIND = {
    ev.EventKind.COMMON_CAUSE: simulation_pb2.EVENT_KIND_COMMON_CAUSE,
    ev.EventKind.REGIME_ACTION: simulation_pb2.EVENT_KIND_REGIME_ACTION,
}


def _pert(p: simulation_pb2.PertRange) -> ev.Pert:
    return ev.Pert(p.min, p.mode, p.max)


def _pert_to_proto(p: ev.Pert) -> simulation_pb2.PertRange:
    return simulation_pb2.PertRange(min=p.low, mode=p.mode, max=p.high)


def event_from_proto(e: simulation_pb2.DisruptionEvent, path: str) -> ev.Event:
    nodes = [
        conv.parse_name(n, "nodes", f"{path}.member_nodes[{k}]")
        for k, n in enumerate(e.member_nodes)
    ]
    regime = None
    if e.regime:
        if not e.regime.startswith("regimes/") or e.regime == "regimes/":
            raise InvalidParameterError(
                [FieldViolation(f"{path}.regime", e.regime, "must be 'regimes/{id}'")]
            )
        regime = e.regime.removeprefix("regimes/")
    kind = (
        ev.EventKind.REGIME_ACTION
        if e.kind == simulation_pb2.EVENT_KIND_REGIME_ACTION
        else ev.EventKind.COMMON_CAUSE
    )
    if e.mode not in common_pb2.CountryEventKind.values():
        raise InvalidParameterError(
            [FieldViolation(f"{path}.mode", str(e.mode), "unknown country event kind")]
        )
    mode = (
        ev.EventMode.BLOCKADE
        if e.mode == common_pb2.COUNTRY_EVENT_KIND_BLOCKADE
        else ev.EventMode.SITE_LOSS
    )
    return ev.Event(
        id=e.id,
        probability=e.probability,
        severity=_pert(e.severity),
        duration=_pert(e.duration_weeks) if e.HasField("duration_weeks") else ev.DEFAULT_DURATION,
        name=e.display_name,
        kind=kind,
        member_countries=frozenset(e.member_countries),
        member_nodes=frozenset(nodes),
        member_tags=frozenset(e.member_tags),
        regime=regime,
        mode=mode,
    )


def events_from_proto(items: list[simulation_pb2.DisruptionEvent]) -> tuple[ev.Event, ...]:
    events: list[ev.Event] = []
    violations: list[FieldViolation] = []
    for k, item in enumerate(items):
        try:
            events.append(event_from_proto(item, f"events[{k}]"))
        except InvalidParameterError as exc:
            violations += exc.violations
    if violations:
        raise InvalidParameterError(violations)
    return tuple(events)


def event_to_proto(e: ev.Event) -> simulation_pb2.DisruptionEvent:
    return simulation_pb2.DisruptionEvent(
        id=e.id,
        display_name=e.label,
        kind=_KIND[e.kind],
        probability=e.probability,
        severity=_pert_to_proto(e.severity),
        duration_weeks=_pert_to_proto(e.duration),
        member_countries=sorted(e.member_countries),
        member_nodes=[f"nodes/{n}" for n in sorted(e.member_nodes)],
        member_tags=sorted(e.member_tags),
        regime=f"regimes/{e.regime}" if e.regime else "",
        mode=common_pb2.COUNTRY_EVENT_KIND_BLOCKADE
        if e.mode is ev.EventMode.BLOCKADE
        else common_pb2.COUNTRY_EVENT_KIND_SITE_LOSS,
    )


def progress_to_proto(p: sim.Progress) -> simulation_pb2.SimulationProgress:
    return simulation_pb2.SimulationProgress(
        samples_done=p.samples_done,
        samples_total=p.n_samples,
        estimates=[
            simulation_pb2.ProviderRunningEstimate(
                provider=f"providers/{pid}", mean_loss=mean, p95_loss=p95
            )
            for pid, mean, p95 in zip(p.providers, p.mean_loss, p.p95_loss, strict=True)
        ],
    )


def result_to_proto(
    result: sim.SimulationResult,
    sensitivity: SensitivityResult | None,
    names: dict[str, str],
    provenance: common_pb2.ResultProvenance,
) -> simulation_pb2.SimulationResult:
    by_provider = {p.provider: p for p in sensitivity.providers} if sensitivity else {}
    return simulation_pb2.SimulationResult(
        samples=result.n_samples,
        providers=[
            simulation_pb2.ProviderSimulation(
                provider=f"providers/{p.provider}",
                display_name=names.get(p.provider, p.provider),
                mean_loss=p.mean_loss,
                mean_loss_se=p.mean_loss_se,
                p50_loss=p.p50,
                p95_loss=p.p95,
                prob_below_half=p.prob_shortfall,
                prob_below_half_se=p.prob_shortfall_se,
                var95=p.var95,
                cvar95=p.cvar95,
                attributions=[
                    simulation_pb2.EventAttribution(
                        event=a.driver,
                        display_name=a.name,
                        mean_loss_contribution=a.mean_loss_delta,
                        cvar95_contribution=a.cvar95_delta,
                    )
                    for a in p.attributions
                ],
                drivers=[
                    simulation_pb2.DriverImportance(
                        driver=d.driver,
                        standardized_coefficient=d.standardized_coefficient,
                        permutation_importance=d.permutation_importance,
                        rank=d.rank,
                    )
                    for d in (by_provider[p.provider].drivers if p.provider in by_provider else ())
                ],
                return_period_losses=[
                    simulation_pb2.ReturnPeriodLoss(years=y, loss=v)
                    for y, v in p.return_period_losses
                ],
            )
            for p in result.providers
        ],
        events=[event_to_proto(e) for e in result.events],
        provenance=provenance,
        # What P50, P95 and CVaR95 measure, and which of them the tail sub-score scores.
        score_interpretation=SIMULATION_MEASURES,
    )
