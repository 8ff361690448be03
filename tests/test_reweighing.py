"""A what-if weighting reuses the published assessment (RiskEngine._assess_what_if): every
sub-score is the same, only the composite, band, contributions, floor, vector, provenance,
notes and checks move. The reweighed assessment must equal a full computation, field for
field, on the bundled data and at another date; other parameters (alpha, top_k) still take
the full path."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

DATA = Path(__file__).resolve().parent.parent / "data"

WEIGHTINGS = [
    {"structural": 0.9},
    {"tail": 1.0, "resilience": 0.0},
    {"concentration": 0.0, "geopolitical": 0.7, "export_control": 0.05},
    {"structural": 0.2 + 1e-5},  # the benchmark's kind: a weighting nobody else uses
]


@pytest.fixture(scope="module")
def engine() -> RiskEngine:
    graph, supplements = load_bundle(DATA)
    return RiskEngine(graph, supplements)


@pytest.mark.parametrize("weights", WEIGHTINGS)
@pytest.mark.parametrize("as_of", [None, dt.date(2025, 3, 1)])
def test_a_reweighed_assessment_equals_a_full_computation(
    engine: RiskEngine, weights: dict[str, float], as_of: dt.date | None
) -> None:
    params = ScoringParams.build(as_of=as_of or engine.graph.info.as_of, weights=weights)
    assert not params.is_standard and params.with_published_weights().is_standard
    dated = engine.at(params.as_of)
    for pid in ("aws", "google-cloud", "coreweave"):
        fast = engine.assess(pid, params)
        full = dated._assess_uncached(pid, params)
        assert fast.to_dict() == full.to_dict()
        assert fast.raw_scores == full.raw_scores
        published = engine.assess(pid, params.with_published_weights())
        assert [s.score for s in fast.sub_scores] == [s.score for s in published.sub_scores]


def test_a_weighting_is_not_recomputed_other_parameters_are(
    engine: RiskEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(Speed is measured in benchmarks/bench_memory.py: 0.3 ms reweighed vs ~35 ms.)"""
    engine.assess("aws", engine.default_params())  # the published assessment, computed once
    computed: list[ScoringParams] = []
    full = RiskEngine._assess_uncached

    def counting(self: RiskEngine, pid: str, params: ScoringParams) -> object:
        computed.append(params)
        return full(self, pid, params)

    monkeypatch.setattr(RiskEngine, "_assess_uncached", counting)
    for i in range(20):
        weights = {"structural": 0.3 + i * 1e-4}
        engine.assess("aws", ScoringParams.build(as_of=engine.graph.info.as_of, weights=weights))
    assert computed == []
    tilted = ScoringParams.build(as_of=engine.graph.info.as_of, alpha=0.5)
    assert tilted.with_published_weights() == tilted  # not a weighting: the full path
    engine.assess("aws", tilted)
    assert computed == [tilted]
