"""The risk engine on tests/fixtures/small, every number worked out by hand.

The fixture: provider p (USA) runs 60 % of its fleet on chip a and 40 % on chip b.
a needs logic_die from f1 (TWN) and memory from m1 (KOR) / m2 (USA) half each;
b needs logic_die from f1 / f2 (KOR .5, USA .5) half each and memory from m1;
both fabs need lithography from t (NLD). Country risk: USA 30, TWN 60, KOR 40, NLD 20.
Regimes: us-chip (USA, severity .5, every destination, reaches tag advanced_ai_chip = chip a,
2024-01-01 to 2025-01-01 exclusive) and nl-euv (NLD, severity 1, reaches tag euv = t, binds
only CHN destinations, from 2023-09-01).

Model v2 (METHODS v2): Leontief capacity a(j) = min(up(j), min_b sum s e). The fixture has no
buffers, so every horizon equals the long run and each impact below is the same at 13 weeks.
"""

from __future__ import annotations

import datetime as dt
import math
import random

import pytest

from sovrisk.models.errors import InvalidParameterError, NotFoundError
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.assessment import (
    Check,
    CheckStatus,
    RiskAssessment,
    RiskBand,
    RiskVector,
)
from sovrisk.models.scoring.params import DEFAULT_TOP_K, DEFAULT_WEIGHTS, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine
from tests.conftest import SMALL, SMALL_AS_OF, DatasetCopy

ABS = 1e-6

# Effective layer weights: present layers accelerator .10, foundry .20, memory .15,
# lithography .10 renormalised over their sum .55 (design, packaging, substrate, ... absent).
W = {"accelerator": 0.10 / 0.55, "foundry": 0.20 / 0.55, "memory": 0.15 / 0.55}
W["lithography"] = 0.10 / 0.55
# concentration = sum_layer w × (firm HHI + country HHI) / 200
#   = (.1 × 76 + .2 × 67 + .15 × 58 + .1 × 100) / .55 = 39.7 / .55
CONCENTRATION = (0.1 * 76 + 0.2 * 67 + 0.15 * 58 + 0.1 * 100) / 0.55  # 72.181818...
# geopolitical (v2: expected loss). No events.csv in the fixture, so only the governance
# events: p(c) = .01 × wgi_risk(c) / 100, severity .5 of the sites there (site loss):
#   USA (a, b, m2 at .5, f2 at .75): a = min(.5, 1, .5 + .25) = .5, b = min(.5, .875, 1) = .5
#       -> a(p) = .5, L = .5;  p = .003
#   TWN (f1 at .5): a = .5, b = min(1, .25 + .5, 1) = .75 -> a(p) = .6, L = .4;  p = .003
#   KOR (m1 at .5, f2 at .75): a = min(1, 1, .25 + .5) = .75, b = min(1, .875, .5) = .5
#       -> a(p) = .45 + .2 = .65, L = .35;  p = .004
#   NLD (t at .5): f1 = f2 = .5 -> a = b = .5 -> L = .5;  p = .002
# g = .003 × .5 + .003 × .4 + .004 × .35 + .002 × .5 = .0015 + .0012 + .0014 + .001 = .0051
GEO_LOSS = 0.0051
GEOPOLITICAL = 100 * GEO_LOSS / (GEO_LOSS + 0.02)  # 20.318725...
# structural (v2): SPOF t -> band [50, 100]: 50 + 50 × breadth, breadth = mean of the top 10
# headline impacts (1 + .8 + .7 + .6 + .4 + .3 + .2) / 10 = .4
STRUCTURAL = 70.0
# export (v2): 100 × (.5 × bound .3 + .5 × mean of the 3 largest foreign vetoes (NLD 1, TWN .8,
# KOR .7) = .833333)
EXPORT = 100 * (0.5 * 0.3 + 0.5 * (1.0 + 0.8 + 0.7) / 3)  # 56.666667


@pytest.fixture(scope="module")
def assessment(small_engine: RiskEngine, default_params: ScoringParams) -> RiskAssessment:
    return small_engine.assess("p", default_params)


def on(engine: RiskEngine, day: str) -> RiskAssessment:
    return engine.assess("p", ScoringParams.build(as_of=dt.date.fromisoformat(day)))


def check(a: RiskAssessment, check_id: str) -> Check:
    return next(c for c in a.checks if c.id == check_id)


# -- baseline and flows --------------------------------------------------------------------------


def test_default_as_of_is_the_dataset_date(small_engine: RiskEngine) -> None:
    assert small_engine.default_params().as_of == SMALL_AS_OF == dt.date(2024, 6, 1)


def test_baseline_retains_everything_but_the_regimes_in_force(
    assessment: RiskAssessment, small_engine: RiskEngine
) -> None:
    # every up = 1 and every category's shares sum to 1: a(p) = 1 before the regimes;
    # us-chip (in force, felt: no buffer) halves a's deliveries -> 1 - bound .3 = .7
    assert small_engine.baseline[small_engine.compiled.index["p"]] == pytest.approx(1.0)
    assert assessment.retained_capacity == pytest.approx(0.7, abs=ABS)


def test_flows(small_engine: RiskEngine) -> None:
    cg = small_engine.compiled
    x = small_engine.flows[:, small_engine.provider_ids.index("p")]
    flows = {nid: float(x[cg.index[nid]]) for nid in cg.ids}
    # a .6, b .4; f1 = .6 + .4 × .5 = .8; f2 = .4 × .5 = .2; m1 = .6 × .5 + .4 = .7;
    # m2 = .6 × .5 = .3; t = .8 + .2 = 1
    expected = {"p": 1, "a": 0.6, "b": 0.4, "f1": 0.8, "f2": 0.2, "m1": 0.7, "m2": 0.3, "t": 1}
    assert flows == pytest.approx(expected, abs=ABS)


# -- structural ----------------------------------------------------------------------------------


def test_structural_impacts_ranked(assessment: RiskAssessment) -> None:
    # I(t) = 1 (both fabs need t); I(f1) = 1 - .4 × .5 = .8; I(m1) = 1 - .6 × .5 = .7;
    # I(a) = .6; I(b) = .4; I(m2) = 1 - (.6 × .5 + .4) = .3; I(f2) = 1 - (.6 + .4 × .5) = .2
    got = [(i.node, i.impact) for i in assessment.structural_impacts]
    assert [n for n, _ in got] == ["t", "f1", "m1", "a", "b", "m2", "f2"]
    assert [v for _, v in got] == pytest.approx([1.0, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2], abs=ABS)
    assert [i.node for i in assessment.structural_impacts if i.is_spof] == ["t"]
    assert assessment.spof_count == 1


def test_structural_evidence_paths_follow_the_largest_shares(assessment: RiskAssessment) -> None:
    paths = {i.node: i.evidence_path for i in assessment.structural_impacts}
    # most-relied-on path p -> a (.6) -> f1 (1) -> t (1)
    assert paths["t"] == ("p", "a", "f1", "t")
    assert paths["m1"] == ("p", "b", "m1")  # .4 × 1 = .4 beats .6 × .5 = .3
    assert paths["f2"] == ("p", "b", "f2")


def test_structural_sub_score(assessment: RiskAssessment) -> None:
    # a SPOF (t): 50 + 50 × (1 + .8 + .7 + .6 + .4 + .3 + .2) / 10 = 50 + 50 × .4 = 70
    assert assessment.sub_score("structural").score == pytest.approx(STRUCTURAL, abs=ABS)


def test_structural_default_top_k_is_25(small_engine: RiskEngine) -> None:
    # 50 + 50 × 4.0 / 25 = 58
    assert DEFAULT_TOP_K == 25
    a = small_engine.assess("p", small_engine.default_params())
    assert a.sub_score("structural").score == pytest.approx(58.0, abs=ABS)


def test_aggregate_market_is_reported_but_not_a_spof(small_copy: DatasetCopy) -> None:
    # Tag the tool t as a whole commodity market: its impact is still 1 and reported, but it
    # is no longer a SPOF and drops out of the structural sum. No SPOF nor near-SPOF left
    # (f1 .8): band [0, 40): 40 × (.8 + .7 + .6 + .4 + .3 + .2) / 10 = 40 × .3 = 12.
    small_copy.replace("nodes.csv", "lithography,euv,", "lithography,euv;aggregate_market,")
    engine = RiskEngine(small_copy.load())
    a = engine.assess("p", ScoringParams.build(as_of=SMALL_AS_OF, top_k=10))
    t = next(i for i in a.structural_impacts if i.node == "t")
    assert t.impact == pytest.approx(1.0) and t.aggregate_market and not t.is_spof
    assert a.spof_count == 0
    assert a.sub_score("structural").score == pytest.approx(12.0, abs=ABS)
    assert next(c for c in a.checks if c.id == "structural.spof").status.value == "pass"


def test_firm_impacts(assessment: RiskAssessment) -> None:
    # one node per firm here, so firm impacts equal node impacts: ToolCo 1, FabOne .8, ...
    firms = {f.firm: f.impact for f in assessment.firm_impacts}
    assert firms == pytest.approx(
        {
            "ToolCo": 1.0,
            "FabOne": 0.8,
            "MemOne": 0.7,
            "ChipCo A": 0.6,
            "ChipCo B": 0.4,
            "MemTwo": 0.3,
            "FabTwo": 0.2,
        }
    )
    assert assessment.firm_impacts[0].firm == "ToolCo"


def test_equal_country_impacts_rank_by_exposure(assessment: RiskAssessment) -> None:
    # NLD and USA both cut 100 %; USA carries more of p's sourcing (exposure .3 vs .1818)
    assert [c.country for c in assessment.country_impacts] == ["USA", "NLD", "TWN", "KOR"]


def test_structural_top_k_override(small_engine: RiskEngine) -> None:
    # top_k = 2: 50 + 50 × (1 + .8) / 2 = 95; top_k = 20: 50 + 50 × 4.0 / 20 = 60; 1: 100
    for top_k, expected in [(2, 95.0), (20, 60.0), (1, 100.0)]:
        params = ScoringParams.build(as_of=SMALL_AS_OF, top_k=top_k)
        score = small_engine.assess("p", params).sub_score("structural").score
        assert score == pytest.approx(expected, abs=ABS)


# -- concentration -------------------------------------------------------------------------------


def test_layers(assessment: RiskAssessment) -> None:
    layers = {lc.layer: lc for lc in assessment.layers}
    assert set(layers) == {"accelerator", "foundry", "memory", "lithography"}
    # (firm HHI, country HHI):
    # accelerator: ChipCo A 60, ChipCo B 40 -> 3600 + 1600 = 5200; all USA -> 10000
    # foundry: FabOne 80, FabTwo 20 -> 6400 + 400 = 6800;
    #          TWN .8, KOR .2 × .5 = .1, USA .1 -> 6400 + 100 + 100 = 6600
    # memory: MemOne 70 (KOR), MemTwo 30 (USA) -> 4900 + 900 = 5800 for both
    # lithography: ToolCo / NLD 100 -> 10000
    expected = {
        "accelerator": (5200, 10000),
        "foundry": (6800, 6600),
        "memory": (5800, 5800),
        "lithography": (10000, 10000),
    }
    for name, (firm, country) in expected.items():
        lc = layers[name]
        assert lc.firm_hhi == pytest.approx(firm, abs=ABS)
        assert lc.country_hhi == pytest.approx(country, abs=ABS)
        assert lc.score == pytest.approx((firm + country) / 200, abs=ABS)
        assert lc.weight == pytest.approx(W[name], abs=1e-12)
    assert math.fsum(lc.weight for lc in assessment.layers) == pytest.approx(1.0)


def test_foundry_layer_shares_and_top(assessment: RiskAssessment) -> None:
    foundry = next(lc for lc in assessment.layers if lc.layer == "foundry")
    assert [(s.key, s.share) for s in foundry.firm_shares] == [
        ("FabOne", pytest.approx(0.8)),
        ("FabTwo", pytest.approx(0.2)),
    ]
    # KOR and USA tie at .1: listed by key
    assert [(s.key, s.share) for s in foundry.country_shares] == [
        ("TWN", pytest.approx(0.8)),
        ("KOR", pytest.approx(0.1)),
        ("USA", pytest.approx(0.1)),
    ]
    assert (foundry.firm_top.key, foundry.firm_top.share) == ("FabOne", pytest.approx(0.8))
    assert (foundry.country_top.key, foundry.country_top.share) == ("TWN", pytest.approx(0.8))
    assert foundry.country_top.display_name == "Taiwan"
    # N_eff = 10,000 / 6,800 = 1.470588...
    assert foundry.firm_n_eff == pytest.approx(10_000 / 6_800)
    assert foundry.cr1_over_65  # 80 % > 65 %
    # 6,800 > 2,500 (DOJ 2010 high), > 1,800 (DOJ 2023 high), > 4,000 (EU line)
    assert [b.label for b in foundry.firm_bands] == [
        "highly concentrated",
        "highly concentrated",
        "strategic dependency",
    ]


def test_concentration_sub_score(assessment: RiskAssessment) -> None:
    # (0.1 × 76 + 0.2 × 67 + 0.15 × 58 + 0.1 × 100) / 0.55 = 72.181818
    assert round(CONCENTRATION, 6) == 72.181818
    assert assessment.sub_score("concentration").score == pytest.approx(CONCENTRATION, abs=ABS)


# -- geopolitical --------------------------------------------------------------------------------


def test_geopolitical_sub_score(assessment: RiskAssessment) -> None:
    # g = .0051 (module doc) -> 100 × .0051 / (.0051 + .02) = 20.318725
    assert round(GEOPOLITICAL, 6) == 20.318725
    assert assessment.geopolitical_expected_loss == pytest.approx(GEO_LOSS, abs=1e-12)
    assert assessment.sub_score("geopolitical").score == pytest.approx(GEOPOLITICAL, abs=ABS)


def test_geopolitical_contributions_per_country(assessment: RiskAssessment) -> None:
    rows = {r.country: r for r in assessment.geopolitical_contributions}
    # expected loss per country (module doc) and its share of the sub-score's points;
    # exposure(c) = sum_layer w × E(c) is reported beside it:
    # USA (.1 × 1 + .2 × .1 + .15 × .3) / .55 = .3; KOR .125 / .55; TWN .16 / .55; NLD .1 / .55
    expected = {
        "USA": (0.0015, 0.3, 30),
        "KOR": (0.0014, 0.125 / 0.55, 40),
        "TWN": (0.0012, 0.16 / 0.55, 60),
        "NLD": (0.0010, 0.1 / 0.55, 20),
    }
    assert [r.country for r in assessment.geopolitical_contributions] == list(expected)
    for iso3, (loss, exposure, risk) in expected.items():
        assert rows[iso3].expected_loss == pytest.approx(loss, abs=1e-12)
        assert rows[iso3].exposure == pytest.approx(exposure, abs=ABS)
        assert rows[iso3].country_risk == risk
        assert rows[iso3].contribution == pytest.approx(GEOPOLITICAL * loss / GEO_LOSS, abs=ABS)
        assert rows[iso3].events == (f"governance:{iso3}",)
    total = math.fsum(r.contribution for r in assessment.geopolitical_contributions)
    assert total == pytest.approx(GEOPOLITICAL, abs=ABS)


def test_country_impacts(assessment: RiskAssessment) -> None:
    got = {c.country: c.impact for c in assessment.country_impacts}
    # NLD: t lost -> 1; USA: a, b (and m2) lost -> 1;
    # TWN: f1 lost -> 1 - .4 × .5 = .8; KOR: m1 lost, f2 halved -> a = .5, b = 0 -> 1 - .3 = .7
    assert got == pytest.approx({"NLD": 1.0, "USA": 1.0, "TWN": 0.8, "KOR": 0.7}, abs=ABS)
    # ranked by impact, ties by the provider's exposure there (USA .3 > NLD .1818)
    assert [c.country for c in assessment.country_impacts] == ["USA", "NLD", "TWN", "KOR"]
    nld = assessment.country_impacts[1]
    assert nld.evidence_path == ("p", "a", "f1", "t", "country:NLD")
    assert nld.country_risk == 20


# -- export controls -----------------------------------------------------------------------------


def test_export_controls_on_default_date(assessment: RiskAssessment) -> None:
    # us-chip binds half of chip a: a(a) = .5 -> a(p) = .6 × .5 + .4 = .7 -> bound .3
    assert assessment.bound_now == pytest.approx(0.3, abs=ABS)
    regimes = {r.regime: r for r in assessment.regimes}
    assert regimes["us-chip"].in_force and regimes["us-chip"].binds_provider
    assert regimes["us-chip"].veto == pytest.approx(0.3, abs=ABS)
    assert regimes["us-chip"].reached_nodes == 1  # chip a
    # nl-euv is in force but binds only CHN destinations; p is USA-based
    assert regimes["nl-euv"].in_force and not regimes["nl-euv"].binds_provider
    assert regimes["nl-euv"].veto == 0.0
    assert regimes["nl-euv"].reached_nodes == 1  # tool t


def test_jurisdictional_vetoes(assessment: RiskAssessment) -> None:
    vetoes = {j.country: (j.veto, j.foreign) for j in assessment.jurisdictions}
    # NLD: t's site lost -> 1 (nl-euv's bound on t changes nothing further);
    # USA (home): a, b lost -> 1; TWN: f1 lost -> .8; KOR: m1 lost, f2 halved -> .7
    assert vetoes == {
        "NLD": (pytest.approx(1.0, abs=ABS), True),
        "USA": (pytest.approx(1.0, abs=ABS), False),
        "TWN": (pytest.approx(0.8, abs=ABS), True),
        "KOR": (pytest.approx(0.7, abs=ABS), True),
    }
    assert assessment.largest_foreign_veto is not None
    assert assessment.largest_foreign_veto.country == "NLD"
    assert assessment.largest_foreign_veto.veto == pytest.approx(1.0, abs=ABS)
    assert assessment.jurisdictions_over_half == 3  # NLD 1.0, TWN .8, KOR .7 (USA is home)


def test_export_control_sub_score(assessment: RiskAssessment) -> None:
    # 100 × (.5 × .3 + .5 × (1 + .8 + .7) / 3) = 15 + 41.666667 = 56.666667
    assert assessment.sub_score("export_control").score == pytest.approx(EXPORT, abs=ABS)


NO_BOUND = 100 * 0.5 * (1.0 + 0.8 + 0.7) / 3  # 41.666667


@pytest.mark.parametrize(
    ("day", "us_chip", "nl_euv", "bound", "export"),
    [
        ("2023-06-01", False, False, 0.0, NO_BOUND),  # before both: 100 × (.5 × 0 + .5 × .8333)
        ("2023-08-31", False, False, 0.0, NO_BOUND),
        ("2023-09-01", False, True, 0.0, NO_BOUND),  # nl-euv from its first day, binds CHN only
        ("2023-12-31", False, True, 0.0, NO_BOUND),
        ("2024-01-01", True, True, 0.3, EXPORT),  # inclusive start; no buffer: felt at once
        ("2024-12-31", True, True, 0.3, EXPORT),
        ("2025-01-01", False, True, 0.0, NO_BOUND),  # effective_to is the first day not in force
        ("2026-06-01", False, True, 0.0, NO_BOUND),
    ],
)
def test_regimes_follow_the_as_of_date(
    small_engine: RiskEngine, day: str, us_chip: bool, nl_euv: bool, bound: float, export: float
) -> None:
    a = on(small_engine, day)
    in_force = {r.regime: r.in_force for r in a.regimes}
    assert in_force == {"us-chip": us_chip, "nl-euv": nl_euv}
    assert a.bound_now == pytest.approx(bound, abs=ABS)
    assert a.sub_score("export_control").score == pytest.approx(export, abs=ABS)
    # regimes not in force never bind
    assert all(r.veto == 0.0 for r in a.regimes if not r.in_force)
    assert a.provenance.as_of.isoformat() == day


def test_regime_origin_and_destination_reach(small_copy: DatasetCopy) -> None:
    # Rewrite us-chip: severity 1, reaches every foundry_process, but only TWN-sited capacity.
    # f1 is all TWN -> bound 1; f2 has no TWN site -> unbound.
    # a = min(0, 1) = 0; b = min(.5 × 0 + .5 × 1, 1) = .5 -> a(p) = .2 -> bound .8
    # export = 100 × (.5 × .8 + .5 × .833333) = 81.666667
    small_copy.replace(
        "regimes.csv",
        "2024-01-01,2025-01-01,0.5,,advanced_ai_chip,,,,",
        "2024-01-01,2025-01-01,1,foundry_process,,,TWN,USA,",
    )
    engine = RiskEngine(small_copy.load())
    a = engine.assess("p", engine.default_params())
    assert a.bound_now == pytest.approx(0.8, abs=ABS)
    assert a.sub_score("export_control").score == pytest.approx(81.666667, abs=ABS)
    regimes = {r.regime: r for r in a.regimes}
    assert regimes["us-chip"].reached_nodes == 1  # f1 only: f2 has no TWN capacity
    # The USA jurisdiction veto is unchanged (its own sites already stop everything).
    # TWN now: f1's site lost -> still .8 (us-chip is issued by USA, not TWN).
    vetoes = {j.country: j.veto for j in a.jurisdictions}
    assert vetoes["TWN"] == pytest.approx(0.8, abs=ABS)

    # The same regime aimed only at CHN destinations no longer binds p.
    small_copy.replace(
        "regimes.csv", "TWN,USA,A,fixture,binds every", "TWN,CHN,A,fixture,binds every"
    )
    engine = RiskEngine(small_copy.load())
    a = engine.assess("p", engine.default_params())
    assert a.bound_now == pytest.approx(0.0, abs=ABS)
    assert not next(r for r in a.regimes if r.regime == "us-chip").binds_provider


# -- composite -----------------------------------------------------------------------------------


def test_contributions(assessment: RiskAssessment) -> None:
    subs = {s.key: s for s in assessment.sub_scores}
    # .25 × 72.181818 = 18.045455; .3 × 70 = 21; .25 × 20.318725 = 5.079681;
    # .2 × 56.666667 = 11.333333
    assert subs["concentration"].contribution == pytest.approx(18.045455, abs=ABS)
    assert subs["structural"].contribution == pytest.approx(21.0, abs=ABS)
    assert subs["geopolitical"].contribution == pytest.approx(5.079681, abs=ABS)
    assert subs["export_control"].contribution == pytest.approx(11.333333, abs=ABS)
    # No resilience or events data in the fixture: those two are unavailable (weight 0) and
    # the defaults .20/.24/.20/.16 renormalise over the rest to .25/.30/.25/.20.
    assert {k: s.weight for k, s in subs.items()} == pytest.approx(
        {
            "concentration": 0.25,
            "structural": 0.30,
            "geopolitical": 0.25,
            "export_control": 0.20,
            "resilience": 0.0,
            "tail": 0.0,
        }
    )
    assert not subs["resilience"].available and not subs["tail"].available


def test_composite_is_the_weighted_sum_without_a_critical_sub_score(
    assessment: RiskAssessment,
) -> None:
    # weighted sum 18.045455 + 21 + 5.079681 + 11.333333 = 55.458469; the largest sub-score
    # (72.18) is below 80, so the floor (.8 × 72.18 = 57.75) does not apply (v1 applied it)
    weighted = math.fsum(s.contribution for s in assessment.sub_scores)
    assert weighted == pytest.approx(55.458469, abs=ABS)
    assert assessment.composite == pytest.approx(55.458469, abs=ABS)
    assert assessment.floor_uplift == 0.0 and not assessment.floor_applied
    assert assessment.floor_alpha == 0.8 and assessment.critical_threshold == 80.0
    assert assessment.band is RiskBand.HIGH  # 50 <= 55.5 < 75


def test_a_critical_sub_score_switches_the_floor_on(small_engine: RiskEngine) -> None:
    # top_k 1: structural 50 + 50 × 1 = 100 >= 80 (critical); weighted 18.045455 + 30 +
    # 5.079681 + 11.333333 = 64.458469 < floor .8 × 100 = 80 -> composite 80, uplift 15.541531
    a = small_engine.assess("p", ScoringParams.build(as_of=SMALL_AS_OF, top_k=1))
    assert a.composite == pytest.approx(80.0, abs=ABS)
    assert a.floor_uplift == pytest.approx(15.541531, abs=ABS)
    assert a.floor_applied
    # top_k 2: structural 95 is critical: .8 × 95 = 76 > weighted 62.958469 -> 76
    two = small_engine.assess("p", ScoringParams.build(as_of=SMALL_AS_OF, top_k=2))
    assert two.floor_applied and two.composite == pytest.approx(76.0, abs=ABS)
    # a critical threshold above every sub-score switches it off: the weighted sum
    off = small_engine.assess("p", ScoringParams.build(as_of=SMALL_AS_OF, top_k=2, critical=96.0))
    assert not off.floor_applied and off.floor_uplift == 0.0
    assert off.composite == pytest.approx(18.045455 + 0.3 * 95 + 5.079681 + 11.333333, abs=ABS)


def test_contributions_plus_uplift_add_up_exactly(assessment: RiskAssessment) -> None:
    total = math.fsum(s.contribution for s in assessment.sub_scores) + assessment.floor_uplift
    assert math.isclose(total, assessment.composite, rel_tol=0, abs_tol=1e-9)


def test_contributions_add_up_for_random_weight_overrides(small_engine: RiskEngine) -> None:
    rng = random.Random(20240601)
    for _ in range(40):
        weights = {k: rng.choice([0.0, rng.random()]) for k in DEFAULT_WEIGHTS}
        if sum(v for k, v in weights.items() if k not in {"resilience", "tail"}) == 0:
            weights["structural"] = 0.5
        alpha = rng.random()
        params = ScoringParams.build(as_of=SMALL_AS_OF, weights=weights, alpha=alpha)
        a = small_engine.assess("p", params)
        total = math.fsum(s.contribution for s in a.sub_scores) + a.floor_uplift
        assert math.isclose(total, a.composite, rel_tol=0, abs_tol=1e-9)
        # composite = sum w s, or max(sum w s, alpha × max s) with a critical sub-score (>= 80)
        available = [s for s in a.sub_scores if s.available]
        norm = sum(dict(params.weights)[s.key] for s in available)
        weighted = sum(dict(params.weights)[s.key] / norm * s.score for s in available)
        worst = max(s.score for s in a.sub_scores)
        floor = alpha * worst if worst >= 80 else 0.0
        assert a.composite == pytest.approx(max(weighted, floor), abs=1e-5)
        assert a.floor_uplift >= 0.0


def test_alpha_zero_gives_the_plain_weighted_sum(small_engine: RiskEngine) -> None:
    a = small_engine.assess("p", ScoringParams.build(as_of=SMALL_AS_OF, alpha=0.0, top_k=1))
    # structural 100 is critical but alpha 0: 18.045455 + 30 + 5.079681 + 11.333333
    assert a.composite == pytest.approx(64.458469, abs=ABS)
    assert a.floor_uplift == 0.0


# -- checks --------------------------------------------------------------------------------------


def test_spof_check(assessment: RiskAssessment) -> None:
    c = check(assessment, "structural.spof")
    assert c.status is CheckStatus.FAIL
    assert c.evidence_path == ("p", "a", "f1", "t")
    assert c.observed == 1.0  # one SPOF
    assert "'lithography' of 'f1'" in c.remediation


def test_concentration_checks(assessment: RiskAssessment) -> None:
    foundry = check(assessment, "concentration.foundry")
    assert foundry.status is CheckStatus.FAIL  # FabOne and TWN at 80 % > 65 %
    assert foundry.observed == pytest.approx(80.0)
    assert foundry.evidence_path == ("p", "a", "f1")
    # every present layer has one check: all over 65 % here (accelerator: USA 100 %)
    ids = sorted(
        c.id
        for c in assessment.checks
        if c.id.startswith("concentration.") and not c.id.startswith("concentration.category.")
    )
    assert ids == [
        f"concentration.{n}" for n in ("accelerator", "foundry", "lithography", "memory")
    ]


def test_category_checks(assessment: RiskAssessment) -> None:
    # per input category over p's sourcing (consumer flow x share):
    # fleet: ChipCo A .6 / B .4, all USA -> FAIL (country 100 %)
    # logic_die: a (.6 x 1 from f1) + b (.4 x .5 f1, .4 x .5 f2) -> FabOne .8, FabTwo .2 -> FAIL
    # memory: a (.3 m1, .3 m2) + b (.4 m1) -> MemOne .7 -> FAIL
    # lithography: f1 .8 + f2 .2 from t -> ToolCo 100 % -> FAIL
    cats = {c.category: c for c in assessment.categories}
    assert set(cats) == {"fleet", "logic_die", "memory", "lithography"}
    assert cats["logic_die"].flow == pytest.approx(1.0)
    assert cats["logic_die"].firm_hhi == pytest.approx(80**2 + 20**2)
    assert cats["memory"].firm_top.key == "MemOne"
    assert cats["memory"].firm_top.share == pytest.approx(0.7)
    assert cats["lithography"].country_top.key == "NLD"
    c = check(assessment, "concentration.category.lithography")
    assert c.status is CheckStatus.FAIL and c.observed == pytest.approx(100.0)
    assert "no supplier of it besides ToolCo" in c.remediation


def test_country_impact_check(assessment: RiskAssessment) -> None:
    c = check(assessment, "geopolitical.country_impact")
    assert c.status is CheckStatus.FAIL  # USA (and NLD) 1.0 >= .5
    assert c.observed == pytest.approx(1.0)
    assert c.evidence_path[-1] == "country:USA"


@pytest.mark.parametrize(
    ("day", "status"),
    [("2024-06-01", CheckStatus.FAIL), ("2023-06-01", CheckStatus.PASS)],
)
def test_export_in_force_check(small_engine: RiskEngine, day: str, status: CheckStatus) -> None:
    # 2024-06-01: bound .3 >= .10 -> FAIL; 2023-06-01: nothing in force binds p -> PASS
    c = check(on(small_engine, day), "export_control.in_force")
    assert c.status is status
    if status is CheckStatus.FAIL:
        assert c.observed == pytest.approx(0.3)
        assert c.evidence_path == ("regime:us-chip", "p", "a")
    else:
        assert c.observed == 0.0


def test_foreign_veto_check(assessment: RiskAssessment) -> None:
    c = check(assessment, "export_control.foreign_veto")
    assert c.status is CheckStatus.FAIL  # NLD 1.0 >= .5
    assert "3 jurisdiction(s)" in c.reason


def test_missing_layers_check_is_inconclusive(assessment: RiskAssessment) -> None:
    c = check(assessment, "data.layers")
    assert c.status is CheckStatus.INCONCLUSIVE
    assert "packaging, substrate" in c.reason
    assert c.observed == 2.0


def test_data_quality_check(assessment: RiskAssessment) -> None:
    # flow-weighted C share: p's fleet edges .6 + .4 are C (flow 1 × shares 1 = 1);
    # a's memory (B) .6 × .5 × 2 = .6; b's edges (A) .4 × (.5 + .5 + 1) = .8;
    # f1 (A) .8 × 1; f2 (A) .2 × 1; a's logic (A) .6. Total 1 + .6 + .8 + .8 + .2 + .6 = 4
    # C = 1 / 4 = .25 (<= .5: PASS); B = .6 / 4 = .15; A = 2.4 / 4 = .6
    c = check(assessment, "data.quality")
    assert c.status is CheckStatus.PASS
    assert assessment.coverage.flow_share_c == pytest.approx(0.25)
    assert assessment.coverage.flow_share_b == pytest.approx(0.15)
    assert assessment.coverage.flow_share_a == pytest.approx(0.6)
    assert assessment.coverage.edges_total == 10
    assert assessment.coverage.edges_with_range == 1  # p -> a has 0.5..0.7


@pytest.mark.parametrize("day", ["2023-06-01", "2024-06-01", "2025-01-01"])
def test_every_check_has_a_reason_and_a_remediation(small_engine: RiskEngine, day: str) -> None:
    a = on(small_engine, day)
    # spof, near-spof, 4 layers, 4 categories, country, in_force, veto, quality, layers,
    # resilience, tail
    assert len(a.checks) == 17
    for c in a.checks:
        assert c.reason.strip(), c.id
        assert c.remediation.strip(), c.id
        assert c.title.strip(), c.id


def test_zero_layer_weight_does_not_hide_data_or_checks(small_engine: RiskEngine) -> None:
    # Weighting foundry 0 changes the scores, not what data exists: foundry is still modelled
    # (FabOne 80 % / TWN 80 %) so only packaging and substrate are missing and the foundry
    # concentration check still FAILs.
    params = ScoringParams.build(as_of=SMALL_AS_OF, layer_weights={"foundry": 0.0})
    a = small_engine.assess("p", params)
    assert "foundry" not in check(a, "data.layers").reason
    assert check(a, "data.layers").observed == 2.0
    assert check(a, "concentration.foundry").status is CheckStatus.FAIL


# -- parameters ----------------------------------------------------------------------------------


def test_weight_override_is_normalised() -> None:
    # defaults .20/.24/.20/.16/.10/.10 with structural -> 1.0: total 1.76, each / 1.76
    params = ScoringParams.build(as_of=SMALL_AS_OF, weights={"structural": 1.0})
    weights = dict(params.weights)
    assert math.fsum(weights.values()) == pytest.approx(1.0, abs=1e-12)
    assert weights == pytest.approx(
        {
            "concentration": 0.20 / 1.76,
            "structural": 1.0 / 1.76,
            "geopolitical": 0.20 / 1.76,
            "export_control": 0.16 / 1.76,
            "resilience": 0.10 / 1.76,
            "tail": 0.10 / 1.76,
        },
        abs=1e-12,
    )


def test_single_weight_scores_that_sub_score(small_engine: RiskEngine) -> None:
    # only structural weighted: 70; no sub-score is critical (max 72.18 < 80): no floor
    zero_others = {
        "concentration": 0.0,
        "geopolitical": 0.0,
        "export_control": 0.0,
        "resilience": 0.0,
        "tail": 0.0,
    }
    params = ScoringParams.build(
        as_of=SMALL_AS_OF, weights={**zero_others, "structural": 1.0}, top_k=10
    )
    assert dict(params.weights)["structural"] == 1.0
    a = small_engine.assess("p", params)
    assert a.sub_score("structural").contribution == pytest.approx(70.0, abs=ABS)
    assert a.composite == pytest.approx(70.0, abs=ABS)
    assert a.floor_uplift == 0.0


@pytest.mark.parametrize(
    ("kwargs", "field", "value"),
    [
        ({"weights": {"structural": -0.1}}, "weights.structural", "-0.1"),
        ({"weights": {"structural": float("nan")}}, "weights.structural", "nan"),
        ({"weights": {"structural": float("inf")}}, "weights.structural", "inf"),
        ({"weights": {"structural": 1.5}}, "weights.structural", "1.5"),
        ({"weights": {"robustness": 0.5}}, "weights.robustness", "0.5"),
        ({"layer_weights": {"foundry": -1.0}}, "layer_weights.foundry", "-1.0"),
        ({"layer_weights": {"provider": 0.2}}, "layer_weights.provider", "0.2"),
        ({"alpha": 1.2}, "alpha", "1.2"),
        ({"alpha": float("nan")}, "alpha", "nan"),
        ({"top_k": 0}, "top_k", "0"),
        ({"export_now_weight": -0.5}, "export_now_weight", "-0.5"),
        ({"horizon_weeks": 12.0}, "horizon_weeks", "12.0"),
        ({"critical": 0.0}, "critical", "0.0"),
    ],
)
def test_invalid_parameters_name_field_and_value(kwargs: dict, field: str, value: str) -> None:
    with pytest.raises(InvalidParameterError) as info:
        ScoringParams.build(as_of=SMALL_AS_OF, **kwargs)
    assert [(v.field, v.value) for v in info.value.violations] == [(field, value)]
    assert info.value.violations[0].description
    assert field in str(info.value)


def test_all_zero_weights_are_rejected() -> None:
    zeros = dict.fromkeys(DEFAULT_WEIGHTS, 0.0)
    with pytest.raises(InvalidParameterError) as info:
        ScoringParams.build(as_of=SMALL_AS_OF, weights=zeros)
    [violation] = info.value.violations
    assert violation.field == "weights"
    assert "positive" in violation.description


def test_every_bad_parameter_is_reported() -> None:
    with pytest.raises(InvalidParameterError) as info:
        ScoringParams.build(
            as_of=SMALL_AS_OF,
            weights={"structural": -1.0, "geopolitical": float("nan"), "bogus": 0.1},
            alpha=-0.1,
        )
    fields = sorted(v.field for v in info.value.violations)
    assert fields == ["alpha", "weights.bogus", "weights.geopolitical", "weights.structural"]


def test_params_are_a_stable_cache_key() -> None:
    a = ScoringParams.build(as_of=SMALL_AS_OF, weights={"structural": 0.24})
    b = ScoringParams.build(as_of=SMALL_AS_OF)
    assert a == b and hash(a) == hash(b)  # 0.24 is the default: same parameters
    strings = a.as_strings()
    assert strings["as_of"] == "2024-06-01"
    assert strings["weights.structural"] == repr(0.24)
    assert strings["alpha"] == "0.8"


# -- risk vector ---------------------------------------------------------------------------------


def test_risk_vector_round_trip(assessment: RiskAssessment, small_graph: SupplyGraph) -> None:
    text = assessment.risk_vector
    # composite 55.458469 -> 55.5; 72.181818 -> 72.2; 70 -> 70.0; 20.318725 -> 20.3;
    # 56.666667 -> 56.7; resilience and tail unavailable: "-"
    assert text == (
        "SOVRISK:2/P:p/S:55.5/CO:72.2/ST:70.0/GE:20.3/EX:56.7/RE:-/TA:-/D:2024-06-01/H:"
        + small_graph.content_hash[:12]
    )
    vector = RiskVector.parse(text)
    assert str(vector) == text
    assert vector.provider == "p"
    assert vector.composite == 55.5
    assert dict(vector.sub_scores) == {
        "concentration": 72.2,
        "structural": 70.0,
        "geopolitical": 20.3,
        "export_control": 56.7,
    }
    assert vector.as_of == dt.date(2024, 6, 1)
    assert RiskVector.parse(f"  {text}\n") == vector  # surrounding whitespace is tolerated


GOOD = (
    "SOVRISK:2/P:p/S:57.7/CO:72.2/ST:40.0/GE:39.2/EX:65.0/RE:12.0/TA:-/D:2024-06-01/H:0123456789ab"
)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "SOVRISK:1" + GOOD[len("SOVRISK:2") :],  # the v1 format
        GOOD.replace("/RE:12.0", ""),  # a sub-score missing (v2 carries every one)
        GOOD.replace("P:p", "P:AWS"),  # provider not a slug
        GOOD.replace("S:57.7", "S:57"),  # no decimal
        GOOD.replace("S:57.7", "S:57.75"),  # two decimals
        GOOD.replace("S:57.7", "S:-5.0"),  # negative
        GOOD.replace("S:57.7", "S:100.1"),  # above 100
        GOOD.replace("CO:72.2", "CO:999.9"),  # sub-score above 100
        GOOD.replace("/ST:40.0", ""),  # missing sub-score
        GOOD.replace("CO:72.2/ST:40.0", "ST:40.0/CO:72.2"),  # out of order
        GOOD.replace("D:2024-06-01", "D:2024/06/01"),
        GOOD.replace("H:0123456789ab", "H:0123456789AB"),  # upper-case hash
        GOOD.replace("H:0123456789ab", "H:0123456789a"),  # 11 hex digits
        GOOD + "/X:1.0",  # trailing field
    ],
)
def test_malformed_risk_vectors_are_rejected(text: str) -> None:
    RiskVector.parse(GOOD)  # the template itself is fine
    with pytest.raises(ValueError):
        RiskVector.parse(text)


# -- lookups, reproducibility, chokepoints -------------------------------------------------------


def test_unknown_provider(small_engine: RiskEngine, default_params: ScoringParams) -> None:
    with pytest.raises(NotFoundError) as info:
        small_engine.assess("nosuch", default_params)
    assert (info.value.resource_type, info.value.resource_name) == ("provider", "nosuch")
    # a supply node is not a provider either
    with pytest.raises(NotFoundError):
        small_engine.assess("a", default_params)


def test_results_are_reproducible(default_params: ScoringParams) -> None:
    first = RiskEngine(load_dataset(SMALL)).assess("p", default_params)
    second = RiskEngine(load_dataset(SMALL)).assess("p", default_params)
    assert first == second
    assert first.provenance.dataset_hash == second.provenance.dataset_hash
    assert len(first.provenance.dataset_hash) == 64
    assert first.risk_vector == second.risk_vector


def test_provenance(assessment: RiskAssessment, small_graph: SupplyGraph) -> None:
    prov = assessment.provenance
    assert prov.dataset_hash == small_graph.content_hash
    assert prov.dataset_version == f"1+{small_graph.content_hash[:12]}"
    assert prov.dataset_name == "small fixture"
    assert prov.as_of == SMALL_AS_OF
    params = dict(prov.parameters)
    assert params["as_of"] == "2024-06-01" and params["top_k"] == "10"


def test_assess_all(small_engine: RiskEngine, default_params: ScoringParams) -> None:
    results = small_engine.assess_all(default_params)
    assert [r.provider for r in results] == ["p"]
    assert results[0] == small_engine.assess("p", default_params)


def test_node_chokepoints(small_engine: RiskEngine) -> None:
    ranked = small_engine.node_chokepoints(0.5)
    # ranked by providers cut >= .5, then mean impact: t 1, f1 .8, m1 .7, a .6 (>= .5), then
    # b .4, m2 .3, f2 .2; the provider itself is not a chokepoint
    assert [nid for nid, _ in ranked] == ["t", "f1", "m1", "a", "b", "m2", "f2"]
    assert ranked[0] == ("t", [("p", pytest.approx(1.0))])


def test_country_chokepoints(small_engine: RiskEngine) -> None:
    ranked = small_engine.country_chokepoints(0.5)
    assert [c for c, _ in ranked] == ["NLD", "USA", "TWN", "KOR"]
    impacts = {c: v for c, [(_, v)] in ranked}
    assert impacts == pytest.approx({"NLD": 1.0, "USA": 1.0, "TWN": 0.8, "KOR": 0.7})


def test_regime_binds_only_deliveries_to_its_destinations(small_copy: DatasetCopy) -> None:
    # A KOR-destination rule on the tool t binds t's deliveries to fabs sited in KOR only:
    # f1 (TWN) keeps t; f2 is half in KOR, so its t share is scaled by 1 - 1 x .5 = .5 and
    # a(f2) = .5. Chip b: logic .5 x 1 + .5 x .5 = .75, memory 1 -> .75.
    # P = .6 x 1 + .4 x .75 = .9 -> veto .1 (and bound now .3 + ... see below).
    small_copy.append(
        "regimes.csv",
        "kr-tool,USA,KOR tool rule,rule,X 1,,2024-01-01,,1,,euv,,,KOR,A,fixture,",
    )
    engine = RiskEngine(small_copy.load())
    a = engine.assess("p", ScoringParams.build(as_of=SMALL_AS_OF, top_k=10))
    rule = next(r for r in a.regimes if r.regime == "kr-tool")
    assert rule.in_force and rule.binds_provider
    assert rule.veto == pytest.approx(0.1, abs=ABS)
    # In force it is a standing restriction on tools: the installed base keeps producing, so
    # it binds nothing today (only us-chip's .3); as a new shock (the veto) it costs .1.
    assert a.bound_now == pytest.approx(0.3, abs=ABS)


def test_what_if_weights_do_not_grow_or_evict_the_shared_cache(small_engine: RiskEngine) -> None:
    """40 distinct weightings keep at most CUSTOM_CACHE assessments and leave the published
    one cached (each distinct weighting once stayed, 4,096 per engine: 2 GB on a server)."""
    from sovrisk.models.scoring.risk_engine import CUSTOM_CACHE

    params = small_engine.default_params()
    assert params.is_standard
    first = small_engine.assess("p", params)
    for k in range(40):
        custom = ScoringParams.build(as_of=params.as_of, weights={"structural": 0.3 + k / 100})
        assert not custom.is_standard
        small_engine.assess("p", custom)
    engine = small_engine.at(params.as_of)
    assert engine._assess_custom.cache_info().currsize == CUSTOM_CACHE
    assert small_engine.assess("p", params) is first  # still the cached object
    later = ScoringParams.build(as_of=params.as_of, horizon_weeks=26)
    assert later.is_standard  # dates and horizons are the shared kind
