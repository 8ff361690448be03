"""The correlated Monte Carlo (models/analysis/simulation.py), checked against hand-enumerated
cases.

The hand graph ``additive``: provider p takes 0.6 of its fleet from chip a (sited USA) and 0.4
from chip b (half KOR, half USA); no buffers. Event e1 takes all of a (p = 0.1, lasts 26
weeks); event e2 takes all Korean capacity (p = 0.3, 13 weeks), i.e. half of b. While both
are active the loss is 0.8, e1 alone 0.6, e2 alone 0.2. The annual loss (model v2: the
duration-weighted share of a year's supply lost) is enumerable:

    e1 alone  0.6 x 26/52 = 0.30                                 prob 0.1 x 0.7 = 0.07
    e2 alone  0.2 x 13/52 = 0.05                                 prob 0.9 x 0.3 = 0.27
    both      0.6 x (26 - 13)/52 + 0.8 x 13/52 = 0.15 + 0.2 = 0.35   prob 0.03
    none      0                                                  prob 0.63

mean 0.045, Pr(loss > 0.5) = 0, Pr(loss > 0) = 0.37; VaR95 = 0.3 (the CDF reaches 0.90 at
0.05 and 0.97 at 0.3) and CVaR95 = (0.03 x 0.35 + 0.02 x 0.3) / 0.05 = 0.33.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from sovrisk.models.analysis.simulation import (
    DRAW_BLOCK,
    NODE_FAILURES_ID,
    Cancelled,
    NodeFailures,
    Progress,
    SimulationResult,
    horizon_probability,
    member_exposure,
    pert_shape,
    sample_pert,
    simulate,
)
from sovrisk.models.engine.compiled import CompiledGraph, compile_graph
from sovrisk.models.errors import InvalidParameterError, NotFoundError
from sovrisk.models.graph.events import Event, EventMode, Pert, load_events
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.risk_engine import RiskEngine

DATA = Path(__file__).resolve().parent.parent / "data"
N = 20_000


def additive() -> CompiledGraph:
    return CompiledGraph.from_arrays(
        ["p", "a", "b", "c"],
        np.array([0, 0], dtype=np.int64),
        np.array([1, 2], dtype=np.int64),
        ["fleet", "fleet"],
        np.array([0.6, 0.4]),
        [(1, "USA", 1.0), (2, "KOR", 0.5), (2, "USA", 0.5), (3, "TWN", 1.0)],
    )


E1 = Event(
    id="e1",
    probability=0.1,
    severity=Pert.fixed(1.0),
    duration=Pert.fixed(26.0),
    member_nodes=frozenset({"a"}),
)
E2 = Event(
    id="e2",
    probability=0.3,
    severity=Pert.fixed(1.0),
    duration=Pert.fixed(13.0),
    member_countries=frozenset({"KOR"}),
)
#: Hits node c, which no provider uses.
E3 = Event(id="e3", probability=0.5, severity=Pert(0.2, 0.5, 0.9), member_nodes=frozenset({"c"}))


def run_additive(n: int = N, seed: int = 1, **kwargs: object) -> SimulationResult:
    options: dict[str, object] = {"providers": ["p"], "node_failures": None} | kwargs
    return simulate(additive(), [E1, E2], n, seed, **options)  # type: ignore[arg-type]


def exact(outcomes: list[tuple[float, float]]) -> dict[str, float]:
    """Mean, Pr(loss > 0.5), Pr(loss > 0), VaR95 and CVaR95 of a discrete loss distribution
    given as (probability, loss) pairs (the quantile function integrated over [0.95, 1])."""
    ordered = sorted(outcomes, key=lambda o: o[1])
    cdf, var = 0.0, ordered[-1][1]
    for p, loss in ordered:
        cdf += p
        if cdf >= 0.95 - 1e-12:
            var = loss
            break
    tail, remaining = 0.0, 0.05
    for p, loss in reversed(ordered):
        take = min(p, remaining)
        tail += take * loss
        remaining -= take
        if remaining <= 1e-15:
            break
    return {
        "mean": math.fsum(p * loss for p, loss in outcomes),
        "shortfall": math.fsum(p for p, loss in outcomes if loss > 0.5),
        "any": math.fsum(p for p, loss in outcomes if loss > 0.0),
        "var95": var,
        "cvar95": tail / 0.05,
    }


# -- BetaPERT -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pert", [Pert(0.1, 0.3, 0.9), Pert(1.0, 4.0, 12.0), Pert(0.0, 0.0, 1.0), Pert(0.2, 1.0, 1.0)]
)
def test_pert_mean_is_min_4mode_max_over_6(pert: Pert) -> None:
    draws = sample_pert(np.random.default_rng(5), pert, 200_000)
    expected = (pert.low + 4 * pert.mode + pert.high) / 6
    se = draws.std(ddof=1) / math.sqrt(len(draws))
    assert abs(draws.mean() - expected) < 4 * se
    assert draws.min() >= pert.low and draws.max() <= pert.high
    # The PERT variance (mu - min)(max - mu) / 7 holds for lambda = 4 when the mode is central;
    # the mean formula holds always.
    assert pert.mean == pytest.approx(expected)


def test_pert_shape_and_fixed_values() -> None:
    assert pert_shape(Pert(0.0, 0.5, 1.0)) == (3.0, 3.0)
    assert pert_shape(Pert(0.0, 0.0, 1.0)) == (1.0, 5.0)
    assert pert_shape(Pert.fixed(0.4)) == (1.0, 1.0)
    fixed = sample_pert(np.random.default_rng(0), Pert.fixed(0.4), 10)
    assert np.all(fixed == 0.4)


def test_horizon_probability_constant_hazard() -> None:
    assert horizon_probability(0.19, 104.0, 52.0) == pytest.approx(0.1)
    assert horizon_probability(0.1, 52.0, 52.0) == pytest.approx(0.1)
    assert horizon_probability(1.0, 10.0, 52.0) == 1.0
    two_years = Event(
        id="x",
        probability=0.19,
        horizon_weeks=104.0,
        severity=Pert.fixed(1.0),
        member_nodes=frozenset({"a"}),
    )
    result = simulate(additive(), [two_years], N, 3, providers=["p"], node_failures=None)
    occurred = result.provider("p").attribution("x").occurrences / N
    assert abs(occurred - 0.1) < 3 * math.sqrt(0.1 * 0.9 / N)


# -- the enumerated two-event case ---------------------------------------------------------------


def test_two_independent_events_match_enumeration() -> None:
    truth = exact([(0.63, 0.0), (0.27, 0.05), (0.07, 0.3), (0.03, 0.35)])
    assert truth["mean"] == pytest.approx(0.045)
    assert truth["var95"] == 0.3 and truth["cvar95"] == pytest.approx(0.33)
    p = run_additive().provider("p")
    assert abs(p.mean_loss - truth["mean"]) < 3 * p.mean_loss_se
    assert p.eal == p.mean_loss
    assert p.prob_shortfall == truth["shortfall"] == 0.0
    assert abs(p.prob_any_loss - truth["any"]) < 3 * p.prob_any_loss_se
    assert p.p50 == 0.0
    assert p.p95 == p.var95 == pytest.approx(truth["var95"])
    # CVaR95 = 0.3 + 0.05 x (samples at 0.35) / (5 % of N): its sd is
    # 0.05 x sqrt(N x 0.03 x 0.97) / (0.05 N).
    sd_cvar = 0.05 * math.sqrt(N * 0.03 * 0.97) / (0.05 * N)
    assert abs(p.cvar95 - truth["cvar95"]) < 4 * sd_cvar
    assert p.p50 <= p.p95 <= p.cvar95 <= 1.0
    # the exceedance curve: 1 in 10 is the 0.9 quantile (0.05: the CDF is 0.90 at 0.05),
    # 1 in 25 the 0.96 quantile (0.3), 1 in 100 the 0.99 quantile (0.35)
    assert p.loss_at(10) == pytest.approx(0.05)
    assert p.loss_at(25) == pytest.approx(0.3)
    assert p.loss_at(100) == pytest.approx(0.35)


def test_buffers_delay_the_annual_loss() -> None:
    # p <- a (buffer 4 weeks: p's inventory of chips) <- t (buffer 26: an installed base).
    # An event takes all of a for 13 weeks, every year: the loss reaches p after 4 weeks, so
    # the year loses 13/52 x (1 - 4/13) = 9/52 of its supply. One on t for 13 weeks: a
    # keeps producing on its installed tools (13 < 26): nothing is lost.
    cg = CompiledGraph.from_arrays(
        ["p", "a", "t"],
        np.array([0, 1], dtype=np.int64),
        np.array([1, 2], dtype=np.int64),
        ["fleet", "lithography"],
        np.array([1.0, 1.0]),
        [(1, "USA", 1.0), (2, "NLD", 1.0)],
        buffers=np.array([4.0, 26.0]),
    )
    on_a = Event(
        id="a-down",
        probability=1.0,
        severity=Pert.fixed(1.0),
        duration=Pert.fixed(13.0),
        member_nodes=frozenset({"a"}),
    )
    p = simulate(cg, [on_a], 100, 0, providers=["p"], node_failures=None).provider("p")
    assert p.mean_loss == pytest.approx(9 / 52, abs=1e-12)
    on_t = Event(
        id="t-down",
        probability=1.0,
        severity=Pert.fixed(1.0),
        duration=Pert.fixed(13.0),
        member_nodes=frozenset({"t"}),
    )
    q = simulate(cg, [on_t], 100, 0, providers=["p"], node_failures=None).provider("p")
    assert q.mean_loss == 0.0
    # For 52 weeks: t's loss reaches a after 26 weeks (half the year: f = 1 - 26/52 = .5) and
    # p sees a's averaged loss behind its own 4 weeks: 1 - (1 - .5) = .5 of a, felt at
    # f = 1 - 4/52: 52/52 x .5 x 48/52 = 0.461538...
    long = Event(
        id="t-year",
        probability=1.0,
        severity=Pert.fixed(1.0),
        duration=Pert.fixed(52.0),
        member_nodes=frozenset({"t"}),
    )
    r = simulate(cg, [long], 100, 0, providers=["p"], node_failures=None).provider("p")
    assert r.mean_loss == pytest.approx(0.5 * 48 / 52, abs=1e-12)


def test_a_blockade_stops_cross_border_edges_only() -> None:
    # additive: p (USA, home) <- a (USA) .6 and b (half KOR, half USA) .4. A KOR blockade
    # stops the flow b -> p for the half of b's output sited in KOR: loss .4 x .5 = .2 while
    # it lasts (13 of 52 weeks): 0.05. A USA blockade stops nothing that crosses a border
    # except b's Korean half shipping in: also .2; a is domestic.
    for country in ("KOR", "USA"):
        event = Event(
            id="x",
            probability=1.0,
            severity=Pert.fixed(1.0),
            duration=Pert.fixed(13.0),
            member_countries=frozenset({country}),
            mode=EventMode.BLOCKADE,
        )
        cg = CompiledGraph.from_arrays(
            ["p", "a", "b", "c"],
            np.array([0, 0], dtype=np.int64),
            np.array([1, 2], dtype=np.int64),
            ["fleet", "fleet"],
            np.array([0.6, 0.4]),
            [(1, "USA", 1.0), (2, "KOR", 0.5), (2, "USA", 0.5), (3, "TWN", 1.0)],
            # where output crosses borders from: the sites, and the provider at home (USA)
            location_rows=[(0, "USA", 1.0), (1, "USA", 1.0), (2, "KOR", 0.5), (2, "USA", 0.5)],
        )
        p = simulate(cg, [event], 50, 0, providers=["p"], node_failures=None)
        assert p.provider("p").mean_loss == pytest.approx(0.2 * 13 / 52, abs=1e-12), country


def test_durations_longer_than_the_horizon_count_as_the_horizon() -> None:
    forever = Event(
        id="x",
        probability=1.0,
        severity=Pert.fixed(1.0),
        duration=Pert.fixed(200.0),
        member_nodes=frozenset({"a"}),
    )
    p = simulate(additive(), [forever], 50, 0, providers=["p"], node_failures=None).provider("p")
    assert p.mean_loss == pytest.approx(0.6)  # 52/52 x 0.6: the whole year


# -- independent node failures -------------------------------------------------------------------


def chain() -> CompiledGraph:
    """Provider p needs chip a, which needs tool t: both single points of failure."""
    return CompiledGraph.from_arrays(
        ["p", "a", "t"],
        np.array([0, 1], dtype=np.int64),
        np.array([1, 2], dtype=np.int64),
        ["fleet", "lithography"],
        np.array([1.0, 1.0]),
        [(1, "USA", 1.0), (2, "NLD", 1.0)],
    )


def test_independent_failures_match_enumeration() -> None:
    # One site each (a: USA, t: NLD), each failing whole for 4 weeks with probability 0.1:
    # whenever anything fails the loss is total for 4 weeks (both at once: still 4 weeks).
    failures = NodeFailures(probability=0.1, severity=Pert.fixed(1.0), duration=Pert.fixed(4.0))
    p = simulate(chain(), [], N, 2, providers=["p"], node_failures=failures).provider("p")
    truth = 1 - 0.9**2  # a's or t's site fails; the provider itself never does
    assert abs(p.prob_any_loss - truth) < 3 * p.prob_any_loss_se
    assert p.mean_loss == pytest.approx(p.prob_any_loss * 4 / 52, abs=1e-12)
    off = p.attribution(NODE_FAILURES_ID)
    assert off.mean_loss_without == 0.0 and off.mean_loss_delta == p.mean_loss
    assert off.occurrences == round(p.prob_any_loss * N)


def test_site_failures_take_the_sites_share() -> None:
    # b is half KOR, half USA: a failed site takes half of b (severity 1), i.e. .2 of p, for
    # 4 weeks; only b's sites may fail here (a excluded).
    failures = NodeFailures(
        probability=0.2,
        severity=Pert.fixed(1.0),
        duration=Pert.fixed(4.0),
        overrides=(("a", 0.0), ("c", 0.0)),
    )
    p = simulate(additive(), [], 4000, 3, providers=["p"], node_failures=failures)
    prob = p.provider("p")
    # one site down: .2 x 4/52; both: .4 x 4/52
    assert prob.loss_at(100) == pytest.approx(0.4 * 4 / 52)
    # Pr(both) = .04 > 1 %: the 1-in-100 year has b's two sites down, the 1-in-25 year one
    assert prob.loss_at(25) == pytest.approx(0.2 * 4 / 52)


def test_failure_overrides_and_severity() -> None:
    only_a = NodeFailures(probability=0.1, severity=Pert.fixed(1.0), overrides=(("t", 0.0),))
    p = simulate(chain(), [], N, 2, providers=["p"], node_failures=only_a).provider("p")
    assert abs(p.prob_any_loss - 0.1) < 3 * p.prob_any_loss_se
    half = NodeFailures(
        probability=0.1, severity=Pert.fixed(0.5), duration=only_a.duration, overrides=(("t", 0.0),)
    )
    q = simulate(chain(), [], N, 2, providers=["p"], node_failures=half).provider("p")
    assert q.mean_loss == pytest.approx(p.mean_loss / 2)  # same draws, half the severity
    assert q.prob_shortfall == 0.0


def test_default_failures_skip_providers_and_aggregate_markets() -> None:
    graph = load_dataset(DATA)
    result = simulate(graph, [], 4000, 0)
    assert result.node_failures is not None and result.node_failures.probability == 0.01
    drivers = [a.driver for a in result.providers[0].attributions]
    assert drivers == [NODE_FAILURES_ID]
    from sovrisk.models.analysis.simulation import _failure_sites

    nodes, shares, _ = _failure_sites(
        compile_graph(graph), graph, {p.id for p in graph.providers()}, result.node_failures, 52.0
    )
    eligible = {compile_graph(graph).ids[i] for i in nodes}
    assert not eligible & {p.id for p in graph.providers()}
    assert not {n for n in eligible if "aggregate_market" in graph.nodes[n].tags}
    assert "tsmc-n3" in eligible and "asml-euv" in eligible
    # chip families, design teams and EDA licences have no sites: they never fail on their own
    assert not {n for n in eligible if graph.nodes[n].kind.value in ("accelerator", "designer")}
    # one row per site: a node's sites' shares sum to 1
    for nid in ("tsmc-n3", "skhynix-hbm3e"):
        k = compile_graph(graph).index[nid]
        assert shares[nodes == k].sum() == pytest.approx(1.0)


# -- reproducibility -----------------------------------------------------------------------------


def test_same_seed_same_numbers_different_seed_different() -> None:
    first = run_additive(3000, seed=9, keep_drivers=True)
    second = run_additive(3000, seed=9, keep_drivers=True)
    other = run_additive(3000, seed=10, keep_drivers=True)
    assert first == second
    assert first.drivers is not None and second.drivers is not None
    assert np.array_equal(first.drivers.x, second.drivers.x)
    assert np.array_equal(first.drivers.loss, second.drivers.loss)
    assert other.drivers is not None
    assert not np.array_equal(first.drivers.x, other.drivers.x)
    assert first.providers != other.providers


@pytest.fixture(scope="module")
def bundled() -> tuple[SupplyGraph, tuple[Event, ...]]:
    graph = load_dataset(DATA)
    return graph, load_events(DATA / "events.csv", graph)


def test_results_do_not_depend_on_batch_size(
    bundled: tuple[SupplyGraph, tuple[Event, ...]],
) -> None:
    graph, events = bundled
    n = DRAW_BLOCK + 476  # spans two random-number blocks
    runs = [simulate(graph, events, n, 21, batch_size=b, keep_drivers=True) for b in (7, 512, n)]
    for run in runs[1:]:
        assert run == runs[0]
        assert run.drivers is not None and runs[0].drivers is not None
        assert np.array_equal(run.drivers.x, runs[0].drivers.x)
        assert np.array_equal(run.drivers.loss, runs[0].drivers.loss)
    # A shorter run is the prefix of a longer one.
    short = simulate(graph, events, 300, 21, keep_drivers=True)
    assert short.drivers is not None and runs[0].drivers is not None
    assert np.array_equal(short.drivers.loss, runs[0].drivers.loss[:300])


def test_engine_graph_and_compiled_inputs_agree(
    bundled: tuple[SupplyGraph, tuple[Event, ...]],
) -> None:
    graph, events = bundled
    plain = [e for e in events if not e.member_tags and not e.regime]
    providers = ["aws", "alibaba-cloud"]
    by_graph = simulate(graph, plain, 500, 4, providers=providers)
    by_engine = simulate(RiskEngine(graph), plain, 500, 4, providers=providers)
    assert by_graph == by_engine
    # A bare compiled graph knows no kinds or tags: every non-provider node may fail, so pass
    # the same failures explicitly off to compare.
    a = simulate(graph, plain, 500, 4, providers=providers, node_failures=None)
    b = simulate(compile_graph(graph), plain, 500, 4, providers=providers, node_failures=None)
    assert a == b


# -- attribution ---------------------------------------------------------------------------------


def test_switching_off_the_only_loss_source_removes_the_loss() -> None:
    e1 = Event(
        id="e1", probability=0.3, severity=Pert(0.2, 0.5, 0.9), member_nodes=frozenset({"a"})
    )
    result = simulate(additive(), [e1, E3], 5000, 3, providers=["p"], node_failures=None)
    p = result.provider("p")
    assert p.mean_loss > 0.005
    only = p.attribution("e1")
    assert only.mean_loss_without == 0.0 and only.cvar95_without == 0.0
    assert only.mean_loss_delta == p.mean_loss and only.cvar95_delta == p.cvar95
    idle = p.attribution("e3")
    assert idle.occurrences > 0
    assert idle.mean_loss_delta == 0.0 and idle.cvar95_delta == 0.0
    assert [a.driver for a in p.attributions] == ["e1", "e3"]  # largest CVaR95 delta first


def test_attribution_of_additive_events_is_exact() -> None:
    # Switching e2 off turns "both" years (0.35) into e1-alone years (0.30) and e2-alone years
    # (0.05) into 0: every e2 year loses exactly 0.05 with it. Switching e1 off turns both
    # into 0.05 and e1-alone into 0: every e1 year loses 0.3.
    p = run_additive(5000).provider("p")
    for event, weight in (("e1", 0.3), ("e2", 0.05)):
        a = p.attribution(event)
        assert a.mean_loss_delta == pytest.approx(weight * a.occurrences / 5000, abs=1e-12)
    with pytest.raises(NotFoundError):
        p.attribution("nope")


# -- progress and cancellation -------------------------------------------------------------------


def test_progress_reports_monotone_samples_and_running_estimates() -> None:
    seen: list[Progress] = []
    result = run_additive(5000, batch_size=700, progress=seen.append)
    done = [s.samples_done for s in seen]
    assert done == sorted(set(done)) and done[-1] == 5000 and len(done) == math.ceil(5000 / 700)
    assert all(s.n_samples == 5000 and s.providers == ("p",) for s in seen)
    p = result.provider("p")
    assert seen[-1].mean_loss[0] == pytest.approx(p.mean_loss, abs=1e-15)
    assert seen[-1].p95_loss[0] == p.p95


def test_should_stop_cancels_between_batches() -> None:
    calls = 0

    def stop_on_third() -> bool:
        nonlocal calls
        calls += 1
        return calls == 3

    with pytest.raises(Cancelled) as info:
        run_additive(5000, batch_size=100, should_stop=stop_on_third)
    assert info.value.samples_done == 200
    with pytest.raises(Cancelled) as at_once:
        run_additive(5000, should_stop=lambda: True)
    assert at_once.value.samples_done == 0


# -- members -------------------------------------------------------------------------------------


def test_member_exposure_on_the_small_fixture(small_graph: SupplyGraph) -> None:
    cg = compile_graph(small_graph)

    def exposure(**members: object) -> dict[str, float]:
        event = Event(id="x", probability=0.1, severity=Pert.fixed(1.0), **members)  # type: ignore[arg-type]
        m = member_exposure(event, cg, small_graph)
        return {nid: float(m[cg.index[nid]]) for nid in cg.ids if m[cg.index[nid]] > 0}

    assert exposure(member_countries=frozenset({"TWN"})) == {"f1": 1.0}
    assert exposure(member_countries=frozenset({"KOR"})) == {"f2": 0.5, "m1": 1.0}
    assert exposure(member_countries=frozenset({"KOR", "USA"})) == {
        "a": 1.0,
        "b": 1.0,
        "f2": 1.0,
        "m1": 1.0,
        "m2": 1.0,
    }
    assert exposure(member_tags=frozenset({"advanced_ai_chip"})) == {"a": 1.0}
    assert exposure(regime="nl-euv") == {"t": 1.0}  # destination (CHN) dropped
    # A node covered several ways takes the largest cover.
    both = exposure(member_countries=frozenset({"KOR"}), member_nodes=frozenset({"f2"}))
    assert both == {"f2": 1.0, "m1": 1.0}


def test_regime_exposure_is_the_engines_bound_over_severity(
    bundled: tuple[SupplyGraph, tuple[Event, ...]],
) -> None:
    graph, _ = bundled
    engine = RiskEngine(graph)
    for regime in graph.regimes.values():
        event = Event(id="x", probability=0.1, severity=Pert.fixed(1.0), regime=regime.id)
        m = member_exposure(event, engine.compiled, graph)
        np.testing.assert_allclose(m * regime.severity, engine._bound[regime.id], atol=1e-12)


def test_fixture_events_run_on_the_small_graph(small_graph: SupplyGraph) -> None:
    events = load_events(Path(__file__).parent / "fixtures" / "events_small.csv", small_graph)
    result = simulate(small_graph, events, 2000, 5)
    p = result.provider("p")
    assert 0.0 < p.mean_loss < 1.0
    assert {a.driver for a in p.attributions} == {e.id for e in events} | {NODE_FAILURES_ID}


# -- the bundled data ----------------------------------------------------------------------------


def test_bundled_simulation_is_coherent(bundled: tuple[SupplyGraph, tuple[Event, ...]]) -> None:
    graph, events = bundled
    n = 2000
    result = simulate(graph, events, n, 7, keep_drivers=True)
    assert [p.provider for p in result.providers] == sorted(p.id for p in graph.providers())
    assert result.drivers is not None
    x, loss = result.drivers.x, result.drivers.loss
    assert x.shape == (n, len(events) + 1) and loss.shape == (n, len(result.providers))
    assert result.drivers.drivers == (*(e.id for e in events), NODE_FAILURES_ID)
    assert not x.flags.writeable and not loss.flags.writeable
    assert np.all((x[:, :-1] >= 0) & (x[:, :-1] <= 1))
    for k, p in enumerate(result.providers):
        assert 0.0 <= p.p50 <= p.p95 <= p.cvar95 <= 1.0
        assert p.var95 == p.p95
        assert p.mean_loss == pytest.approx(loss[:, k].mean(), abs=1e-15)
        assert p.mean_loss_se == pytest.approx(loss[:, k].std(ddof=1) / math.sqrt(n))
        assert p.prob_shortfall == pytest.approx(np.mean(loss[:, k] > 0.5))
        assert p.loss_at(10) <= p.loss_at(25) <= p.loss_at(100) <= 1.0
        assert {a.driver for a in p.attributions} == {*result.drivers.drivers}
        for e, event in enumerate(events):
            assert p.attribution(event.id).occurrences == int(np.count_nonzero(x[:, e] > 0))
    # US providers are not reached by the China-bound control events.
    aws = result.provider("aws")
    assert abs(aws.attribution("us-controls-tightening").mean_loss_delta) < 1e-12
    assert (
        result.provider("alibaba-cloud").attribution("us-controls-tightening").mean_loss_delta > 0
    )


# -- bad parameters ------------------------------------------------------------------------------


def test_bad_parameters_are_named() -> None:
    cg = additive()
    cases: list[tuple[dict[str, object], str]] = [
        ({"n_samples": 0}, "n_samples"),
        ({"seed": -1}, "seed"),
        ({"batch_size": 0}, "batch_size"),
        ({"horizon_weeks": 0.0}, "horizon_weeks"),
        ({"threshold": 1.5}, "threshold"),
        ({"providers": None}, "providers"),
        (
            {
                "events": [
                    Event(
                        id="e",
                        probability=2.0,
                        severity=Pert.fixed(1.0),
                        member_nodes=frozenset({"a"}),
                    )
                ]
            },
            "events[0].probability",
        ),
        (
            {
                "events": [
                    Event(
                        id="e",
                        probability=0.1,
                        severity=Pert.fixed(1.0),
                        member_tags=frozenset({"t"}),
                    )
                ]
            },
            "events[0].member_tags",
        ),
        ({"events": [E1, E1]}, "events[1].id"),
        (
            {
                "events": [
                    Event(
                        id=NODE_FAILURES_ID,
                        probability=0.1,
                        severity=Pert.fixed(1.0),
                        member_nodes=frozenset({"a"}),
                    )
                ]
            },
            "events[0].id",
        ),
        ({"node_failures": NodeFailures(probability=-0.1)}, "node_failures.probability"),
        ({"node_failures": NodeFailures(duration=Pert(3, 2, 1))}, "node_failures.duration_mode"),
    ]
    for change, field in cases:
        args: dict[str, object] = {
            "events": [E1],
            "n_samples": 10,
            "seed": 0,
            "providers": ["p"],
        } | change
        with pytest.raises(InvalidParameterError) as info:
            simulate(cg, **args)  # type: ignore[arg-type]
        assert field in {v.field for v in info.value.violations}, (field, info.value)
    with pytest.raises(NotFoundError):
        simulate(cg, [E1], 10, 0, providers=["nobody"])
