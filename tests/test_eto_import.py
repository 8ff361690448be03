"""The CSET/ETO importer (models/eto.py, docs/eto-import.md).

The ETO data is CC BY-NC 4.0 and never copied into this repository: every expectation below is
computed from the files in ``../shared/reference/eto`` at test time (only the two headline HHI
values of the brief are written down), and the tests skip where that folder is absent.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from collections import defaultdict
from functools import cache
from pathlib import Path

import pytest

from sovrisk.models.analysis.concentration import hhi
from sovrisk.models.engine.compiled import compile_graph
from sovrisk.models.graph.eto import (
    CAPACITY_CATEGORY,
    FIRM_TAG,
    FLEET_CATEGORY,
    INPUT_TAG,
    OUTPUT_FILES,
    PRODUCERS_CATEGORY,
    PROVIDER_ID,
    RESIDUAL_COUNTRY,
    RESIDUAL_TAG,
    SOURCE_ID,
    STAGE_TAG,
    SUBTYPES_CATEGORY,
    convert_eto,
)
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, NodeKind
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.params import DEFAULT_LAYER_WEIGHTS

ROOT = Path(__file__).resolve().parents[1]
ETO = Path(__file__).resolve().parents[2] / "shared" / "reference" / "eto"
OWN_FILES = (ROOT / "models" / "eto.py", Path(__file__), ROOT / "docs" / "eto-import.md")
ISO3 = re.compile(r"^[A-Z]{3}$")

#: FACTS §1.2: country HHI of EUV (ETO input N20) and ArF-immersion (N22) lithography, 2025.
EXPECTED_HHI = {"N20": 10_000.0, "N22": 9_861.0}


@pytest.fixture(scope="module")
def eto() -> Path:
    if not (ETO / "provision.csv").is_file():
        pytest.skip(f"ETO reference data not present at {ETO} (CC BY-NC, not in the repo)")
    return ETO


@pytest.fixture(scope="module")
def files(eto: Path) -> dict[str, bytes]:
    return convert_eto(eto)


@pytest.fixture(scope="module")
def graph(files: dict[str, bytes], tmp_path_factory: pytest.TempPathFactory) -> SupplyGraph:
    folder = tmp_path_factory.mktemp("eto-dataset")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return load_dataset(folder)


@cache
def _table(eto: Path, name: str) -> list[dict[str, str]]:
    with (eto / name).open(encoding="utf-8-sig", newline="") as handle:
        return list(csv.DictReader(handle))


def _latest(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Rows of the latest year that has a share (else of the latest year)."""
    if not rows:
        return []
    with_share = [int(r["year"]) for r in rows if r["share_provided"]]
    year = max(with_share) if with_share else max(int(r["year"]) for r in rows)
    return [r for r in rows if int(r["year"]) == year]


def _direct_country_shares(eto: Path, target: str) -> dict[str, float]:
    """ETO country rows of one input, latest year, unattributed rows pooled, as fractions."""
    kinds = {r["provider_id"]: r["provider_type"] for r in _table(eto, "providers.csv")}
    rows = [r for r in _table(eto, "provision.csv") if r["provided_id"] == target]
    shares: dict[str, float] = defaultdict(float)
    for r in _latest(rows):
        if kinds[r["provider_id"]] == "country" and r["share_provided"]:
            name = r["provider_name"]
            shares[name if ISO3.fullmatch(name) else RESIDUAL_COUNTRY] += float(r["share_provided"])
    total = math.fsum(shares.values())
    return {c: v / total for c, v in shares.items() if v > 0} if total > 0 else {}


def _graph_country_shares(graph: SupplyGraph, node: str) -> dict[str, float]:
    """Country split of a node's suppliers (edge share x supplier site share)."""
    shares: dict[str, float] = defaultdict(float)
    for edge in graph.inputs(node):
        if edge.category == PRODUCERS_CATEGORY:
            for site in graph.sites[edge.supplier]:
                shares[site.country] += edge.share * site.share
    return dict(shares)


def test_conversion_gives_exactly_the_loader_files_and_loads(
    files: dict[str, bytes], graph: SupplyGraph
) -> None:
    assert tuple(files) == OUTPUT_FILES
    assert len(graph.providers()) == 1 and graph.providers()[0].id == PROVIDER_ID
    assert "CC BY-NC 4.0" in graph.info.licence
    assert graph.sources[SOURCE_ID].publisher.startswith("Center for Security")
    assert "CC BY-NC 4.0" in graph.sources[SOURCE_ID].notes
    assert graph.sources[SOURCE_ID].date == "2025"
    assert graph.info.as_of == dt.date(2025, 12, 31)
    assert graph.regimes == {}


@pytest.mark.parametrize("input_id", sorted(EXPECTED_HHI))
def test_lithography_country_hhi_matches_facts_and_provision(
    eto: Path, graph: SupplyGraph, input_id: str
) -> None:
    ours = hhi(_graph_country_shares(graph, f"eto-{input_id.lower()}"))
    direct = hhi(_direct_country_shares(eto, input_id))
    assert ours == pytest.approx(EXPECTED_HHI[input_id], abs=1)
    assert ours == pytest.approx(direct, abs=1e-6)


def test_every_input_keeps_etos_country_split(eto: Path, graph: SupplyGraph) -> None:
    groups = {r["is_type_of_id"] for r in _table(eto, "sequence.csv") if r["is_type_of_id"]}
    checked = 0
    for row in _table(eto, "inputs.csv"):
        direct = _direct_country_shares(eto, row["input_id"])
        if not direct:
            continue
        node = f"eto-{row['input_id'].lower()}"
        sited = {s.country: s.share for s in graph.sites[node]}
        assert sited == pytest.approx(direct, abs=1e-9), row["input_id"]
        if row["input_id"] not in groups:  # markets: the suppliers carry the same split
            assert _graph_country_shares(graph, node) == pytest.approx(direct, abs=1e-9)
        checked += 1
    assert checked >= 80


def test_node_and_edge_counts_follow_the_eto_files(eto: Path, graph: SupplyGraph) -> None:
    inputs = _table(eto, "inputs.csv")
    sequence = _table(eto, "sequence.csv")
    providers = {r["provider_id"]: r for r in _table(eto, "providers.csv")}
    provision = _table(eto, "provision.csv")
    stages = {r["stage_id"] for r in _table(eto, "stages.csv")}
    relations = {(r["input_id"], r["goes_into_id"]) for r in sequence if r["goes_into_id"]}
    relations |= {(r["input_id"], r["is_type_of_id"]) for r in sequence if r["is_type_of_id"]}
    groups = {r["is_type_of_id"] for r in sequence if r["is_type_of_id"]}
    by_target: dict[str, list[dict[str, str]]] = defaultdict(list)
    for r in provision:
        by_target[r["provided_id"]].append(r)

    firms = 0
    for item in inputs:
        if item["input_id"] in groups or not by_target[item["input_id"]]:
            continue
        rows = _latest(by_target[item["input_id"]])
        countries = _direct_country_shares(eto, item["input_id"])
        named = [
            r
            for r in rows
            if providers[r["provider_id"]]["provider_type"] == "organization"
            and ISO3.fullmatch(providers[r["provider_id"]]["country"])
            and (not countries or providers[r["provider_id"]]["country"] in countries)
        ]
        with_share = [r for r in named if r["share_provided"] and float(r["share_provided"]) > 0]
        firms += len(with_share) if any(r["share_provided"] for r in named) else len(named)
    stage_nodes = sum(len(_direct_country_shares(eto, sid)) for sid in stages)
    process_stages = [r["stage_id"] for r in inputs if r["type"] == "process" and r["stage_id"]]
    capacity_edges = sum(len(_direct_country_shares(eto, sid)) for sid in process_stages)

    def tagged(tag: str) -> set[str]:
        return {n.id for n in graph.nodes.values() if tag in n.tags}

    assert tagged(INPUT_TAG) == {f"eto-{r['input_id'].lower()}" for r in inputs}
    assert len(tagged(FIRM_TAG)) == firms
    assert len(tagged(STAGE_TAG)) == stage_nodes
    residuals = tagged(RESIDUAL_TAG)
    assert len(graph.nodes) == len(inputs) + firms + len(residuals) + stage_nodes + 1

    inputs_ids = tagged(INPUT_TAG)
    relation_edges = [
        e for e in graph.edges if e.consumer in inputs_ids and e.supplier in inputs_ids
    ]
    assert len(relation_edges) == len(relations)
    assert {(e.supplier, e.consumer) for e in relation_edges} == {
        (f"eto-{a.lower()}", f"eto-{b.lower()}") for a, b in relations
    }
    by_category: dict[str, int] = defaultdict(int)
    for e in graph.edges:
        by_category[e.category] += 1
    assert by_category[PRODUCERS_CATEGORY] == firms + len(residuals)
    assert by_category[CAPACITY_CATEGORY] == capacity_edges
    assert by_category[SUBTYPES_CATEGORY] == sum(1 for r in sequence if r["is_type_of_id"])
    assert by_category[FLEET_CATEGORY] == 1
    assert len(graph.edges) == len(relations) + firms + len(residuals) + capacity_edges + 1


def test_every_record_names_the_eto_source_with_quality_and_date(graph: SupplyGraph) -> None:
    records = [
        *(n.provenance for n in graph.nodes.values()),
        *(e.provenance for e in graph.edges),
        *(s.provenance for group in graph.sites.values() for s in group),
    ]
    assert records
    for p in records:
        assert SOURCE_ID in p.sources
        assert p.quality.value in {"A", "C"}
        assert dt.date(2019, 1, 1) <= p.as_of <= graph.info.as_of
    # market shares are ETO figures (A); the synthetic provider is an estimate (C)
    assert graph.nodes[PROVIDER_ID].provenance.quality.value == "C"
    assert all(e.provenance.quality.value == "A" for e in graph.inputs("eto-n20"))
    for node in graph.nodes.values():
        if INPUT_TAG in node.tags or STAGE_TAG in node.tags or RESIDUAL_TAG in node.tags:
            assert AGGREGATE_MARKET_TAG in node.tags


def test_conversion_is_deterministic(eto: Path, files: dict[str, bytes]) -> None:
    again = convert_eto(eto)
    assert again == files
    assert all(again[name] for name in OUTPUT_FILES)


def test_countries_reuse_the_base_table_and_estimate_the_rest(
    eto: Path, graph: SupplyGraph, tmp_path: Path
) -> None:
    base = ROOT / "data"
    with (base / "country_risk.csv").open(encoding="utf-8") as handle:
        bundled = {r["iso3"]: r for r in csv.DictReader(handle)}
    for code, country in graph.countries.items():
        if code in bundled:
            assert country.risk == pytest.approx(float(bundled[code]["risk"]))
            assert country.name == bundled[code]["name"]
        else:
            assert country.provenance.quality.value == "C"
    assert RESIDUAL_COUNTRY in graph.countries and "NLD" in bundled
    # a base table without NLD: NLD becomes an estimated row, nothing else changes shape
    (tmp_path / "country_risk.csv").write_text(
        "".join(
            line
            for line in (base / "country_risk.csv").read_text(encoding="utf-8").splitlines(True)
            if not line.startswith("NLD,")
        ),
        encoding="utf-8",
    )
    (tmp_path / "sources.csv").write_bytes((base / "sources.csv").read_bytes())
    rows = convert_eto(eto, base=tmp_path)["country_risk.csv"].decode().splitlines()
    nld = next(r for r in rows if r.startswith("NLD,"))
    assert ",C," in nld and "2023" not in nld.split(",")[2]


def test_weighted_layers_hold_producers_and_concentrate_on_firms(graph: SupplyGraph) -> None:
    # Aggregates sit outside the scored layers, so per-layer HHI counts producers only.
    for node in graph.nodes.values():
        aggregate = INPUT_TAG in node.tags or node.kind is NodeKind.PROVIDER
        assert (node.layer in DEFAULT_LAYER_WEIGHTS) != aggregate, node.id
    cg = compile_graph(graph)
    flow = cg.flows([cg.index[PROVIDER_ID]])[:, 0]
    firms: dict[str, float] = defaultdict(float)
    countries: dict[str, float] = defaultdict(float)
    for i, nid in enumerate(cg.ids):
        node = graph.nodes[nid]
        if flow[i] > 0 and node.layer == "lithography":
            firms[node.owner] += flow[i]
            for site in graph.sites[nid]:
                countries[site.country] += flow[i] * site.share
    euv_firm = graph.nodes[graph.inputs("eto-n20")[0].supplier].owner
    assert max(firms, key=lambda f: firms[f]) == euv_firm
    assert 5_000 < hhi(firms) < 10_000
    assert 5_000 < hhi(countries) < 10_000
    assert graph.nodes["eto-n20"].kind is NodeKind.EQUIPMENT


def test_no_eto_provider_names_in_the_repository_files(eto: Path) -> None:
    names = set()
    for r in _table(eto, "providers.csv"):
        if r["provider_type"] == "organization" and ISO3.fullmatch(r["country"]):
            names |= {n.strip() for n in (r["provider_name"], r["alias"]) if n.strip()}
    assert len(names) > 300
    pattern = re.compile(
        r"(?<![A-Za-z0-9])(?:"
        + "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        + r")(?![A-Za-z0-9])"
    )
    for path in OWN_FILES:
        if path.is_file():
            found = sorted(set(pattern.findall(path.read_text(encoding="utf-8"))))
            assert not found, f"{path.name} contains ETO provider names: {found}"
