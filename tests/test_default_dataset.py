"""The bundled dataset: coverage, provenance, the acceptance facts, and outside cross-checks.

The CSET/ETO data is read from ``../shared/reference/eto`` as an outside reference only
(CC BY-NC 4.0: never copied into this repository); those tests skip where it is absent.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from sovrisk.models.analysis.concentration import hhi
from sovrisk.models.graph.bundle import load_bundle, load_supplements
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.schema import UNSITED_KINDS, NodeKind
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.risk_engine import RiskEngine

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data"
ETO = ROOT.parent / "shared" / "reference" / "eto"
WGI_FULL = ROOT.parent / "shared" / "reference" / "wgi" / "wgi_2024update_1996_2023_long.csv"

PROVIDERS = {"aws", "google-cloud", "microsoft-azure", "meta", "oracle-oci", "coreweave",
             "alibaba-cloud"}  # fmt: skip
ACCELERATORS = {
    "nvidia-h100", "nvidia-h200", "nvidia-b200", "nvidia-gb200", "nvidia-gb300", "amd-mi300x",
    "amd-mi355x", "aws-trainium2", "aws-trainium3", "aws-inferentia2", "google-tpu-v5p",
    "google-tpu-v6e", "google-tpu-v7", "microsoft-maia-100", "microsoft-maia-200", "meta-mtia",
}  # fmt: skip


@pytest.fixture(scope="module")
def graph() -> SupplyGraph:
    return load_dataset(DATA)


@pytest.fixture(scope="module")
def engine(graph: SupplyGraph) -> RiskEngine:
    return RiskEngine(graph, load_supplements(DATA, graph))


def test_covers_the_providers_and_accelerator_families(graph: SupplyGraph) -> None:
    providers = {n.id for n in graph.providers()}
    assert providers >= PROVIDERS
    accelerators = {n.id for n in graph.nodes.values() if n.kind is NodeKind.ACCELERATOR}
    assert accelerators >= ACCELERATORS
    assert any("t-head" in a for a in accelerators)  # Alibaba's own silicon
    assert len(accelerators) >= 15
    for kind in NodeKind:
        assert graph.counts_by_kind().get(str(kind), 0) > 0, f"no {kind} nodes"


def test_every_record_carries_source_quality_and_date(graph: SupplyGraph) -> None:
    records = [
        *(n.provenance for n in graph.nodes.values()),
        *(e.provenance for e in graph.edges),
        *(s.provenance for group in graph.sites.values() for s in group),
        *(r.provenance for r in graph.regimes.values()),
    ]
    for p in records:
        assert p.sources and all(s in graph.sources for s in p.sources)
        assert p.as_of > dt.date(1990, 1, 1)
    # disagreeing sources are kept as ranges somewhere in the data
    assert sum(1 for e in graph.edges if e.share_low < e.share_high) >= 10


def test_every_production_node_is_sited_and_countries_have_risk(graph: SupplyGraph) -> None:
    # v2: chip families, design teams and EDA licences are not production capacity and have
    # no sites (a chip family crosses borders where its packaging is)
    for nid, node in graph.nodes.items():
        if node.kind is NodeKind.PROVIDER:
            continue
        if node.kind in UNSITED_KINDS:
            assert nid not in graph.sites, nid
            continue
        assert math.isclose(sum(s.share for s in graph.sites[nid]), 1.0, abs_tol=1e-3)
        assert all(s.country in graph.countries for s in graph.sites[nid])
    trainium3 = graph.location("aws-trainium3")
    assert trainium3 and math.isclose(sum(trainium3.values()), 1.0)


def test_aws_chokepoints_tsmc_cowos_and_taiwan(engine: RiskEngine) -> None:
    a = engine.assess("aws", engine.default_params())
    nodes = {i.node: i.impact for i in a.structural_impacts}
    # 2026Q4 supply: Rubin and Trainium3 on N3 (0.72), GB300 on N4 (0.21); N5 is Trainium2's
    # tail (0.02)
    assert nodes["tsmc-n3"] > 0.5 and nodes["tsmc-n4"] > 0.1
    cowos = {n for n in nodes if "cowos" in n and n.startswith("tsmc")}
    assert cowos and max(nodes[n] for n in cowos) > 0.3
    assert a.country_impacts[0].country == "TWN"
    # Once buffers run out Taiwan cuts 0.982: only the qualifiable alternates outside Taiwan
    # (Samsung SF3, Amkor and Intel packaging; alternates.csv) keep the rest going.
    assert a.country_impacts[0].long_run == pytest.approx(0.982, abs=0.005)
    assert 0.5 < a.country_impacts[0].impact < 0.99  # within a quarter: inventory still covers
    firms = {f.firm: f.impact for f in a.firm_impacts}
    # all of TSMC lost for good: 0.980 (TSMC also makes the host CPUs' and network chips'
    # dies), the rest from the alternates qualified by then (Samsung SF3 for N3/N4, OSAT and
    # Intel packaging for CoWoS)
    assert firms["TSMC"] == pytest.approx(0.980, abs=0.005)
    total = math.fsum(s.contribution for s in a.sub_scores) + a.floor_uplift
    assert total == pytest.approx(a.composite, abs=1e-9)


def test_regime_timeline(engine: RiskEngine) -> None:
    def in_force(day: str) -> set[str]:
        a = engine.assess("aws", engine.default_params(dt.date.fromisoformat(day)))
        return {r.regime for r in a.regimes if r.in_force}

    before = in_force("2022-10-06")
    assert not any(r.startswith("us-bis-2022-10") for r in before)
    assert {"us-bis-2022-10-advanced-computing", "us-bis-2022-10-sme"} <= in_force("2022-10-07")
    assert "us-bis-2025-01-ai-diffusion" in in_force("2025-03-01")
    assert "us-bis-2025-01-ai-diffusion" not in in_force("2025-06-01")


def test_us_chip_controls_bind_alibaba_not_aws(engine: RiskEngine) -> None:
    params = engine.default_params()
    alibaba = engine.assess("alibaba-cloud", params)
    aws = engine.assess("aws", params)
    binding = {r.regime for r in alibaba.regimes if r.binds_provider and r.veto > 0}
    assert any(r.startswith("us-bis") for r in binding)
    chip_rules = {
        r.id for r in engine.graph.regimes.values() if r.reach_tags & {"advanced_ai_chip", "hbm"}
    }
    assert not any(r.regime in chip_rules and r.binds_provider for r in aws.regimes)
    # US tool rules (destination CHN) reach AWS only through China-sited suppliers in its tree
    # (substrate plants, transceiver lasers): each at most 1.4 % of supply as a new shock
    # (us-bis-2024-12-sme-eda 0.0142, us-bis-2022-10-sme 0.0105 on 2026-12-01).
    tool_rules = [r for r in aws.regimes if r.regime.startswith("us-bis") and r.binds_provider]
    assert tool_rules and all(r.veto < 0.02 for r in tool_rules)
    assert alibaba.bound_now > aws.bound_now


def test_every_provider_scores_in_range_reproducibly(engine: RiskEngine) -> None:
    params = engine.default_params()
    first = engine.assess_all(params)
    second = RiskEngine(*load_bundle(DATA)).assess_all(params)
    assert [a.risk_vector for a in first] == [a.risk_vector for a in second]
    for a in first:
        assert 0 <= a.composite <= 100
        assert all(0 <= s.score <= 100 for s in a.sub_scores)


def test_country_risk_table_matches_its_rebuild(tmp_path: Path) -> None:
    out = tmp_path / "country_risk.csv"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "build_country_risk.py"), "--out", str(out)],
        check=True,
        cwd=ROOT,
    )
    assert out.read_text(encoding="utf-8") == (DATA / "country_risk.csv").read_text(
        encoding="utf-8"
    )


def _eto_country_shares(input_id: str) -> dict[str, float]:
    providers = {}
    with (ETO / "providers.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            providers[row["provider_id"]] = row["provider_type"]
    shares: dict[str, float] = defaultdict(float)
    with (ETO / "provision.csv").open(encoding="utf-8-sig") as handle:
        for row in csv.DictReader(handle):
            if (
                row["provided_id"] == input_id
                and row["year"] == "2025"
                and providers.get(row["provider_id"]) == "country"
                and row["share_provided"]
            ):
                shares[row["provider_name"]] += float(row["share_provided"]) / 100.0
    return dict(shares)


def _our_country_shares(graph: SupplyGraph, consumer: str, category: str) -> dict[str, float]:
    shares: dict[str, float] = defaultdict(float)
    for edge in graph.inputs(consumer):
        if edge.category == category:
            for site in graph.sites[edge.supplier]:
                shares[site.country] += edge.share * site.share
    return dict(shares)


@pytest.mark.skipif(not (ETO / "provision.csv").is_file(), reason="ETO reference not present")
@pytest.mark.parametrize(
    ("eto_input", "category", "expected_hhi"),
    [("N20", "euv_lithography", 10_000), ("N22", "duv_lithography", 9_861)],
)
def test_lithography_country_hhi_matches_eto(
    graph: SupplyGraph, eto_input: str, category: str, expected_hhi: int
) -> None:
    # FACTS §1.2: EUV 10,000 (NLD 100); ArF immersion 9,861 (NLD 99.3, JPN 0.7).
    eto = hhi(_eto_country_shares(eto_input))
    ours = hhi(_our_country_shares(graph, "tsmc-n5", category))
    assert eto == pytest.approx(expected_hhi, abs=1)
    assert ours == pytest.approx(eto, abs=1)


def test_all_six_sub_scores_have_data(engine: RiskEngine) -> None:
    for a in engine.assess_all(engine.default_params()):
        assert all(s.available for s in a.sub_scores), a.provider
        assert math.fsum(s.weight for s in a.sub_scores) == pytest.approx(1.0, abs=1e-12)
        total = math.fsum(s.contribution for s in a.sub_scores) + a.floor_uplift
        assert total == pytest.approx(a.composite, abs=1e-9)
        statuses = {c.id: c.status.value for c in a.checks}
        assert statuses["resilience.tts_vs_ttr"] in {"pass", "fail"}
        assert statuses["tail.annual_loss"] in {"pass", "fail"}
