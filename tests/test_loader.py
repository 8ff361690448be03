"""The validating loader: one test per kind of bad data, each naming file, line and field.

Line numbers are physical lines of the file (header = 1). In tests/fixtures/small:
nodes.csv  2 p, 3 a, 4 b, 5 f1, 6 f2, 7 m1, 8 m2, 9 t
edges.csv  2 p-fleet-a, 3 p-fleet-b, 4 a-logic_die-f1, 5 a-memory-m1, 6 a-memory-m2,
           7 b-logic_die-f1, 8 b-logic_die-f2, 9 b-memory-m1, 10 f1-litho-t, 11 f2-litho-t
sites.csv  2 a, 3 b, 4 f1 TWN, 5 f2 KOR, 6 f2 USA, 7 m1, 8 m2, 9 t
regimes.csv 2 nl-euv, 3 us-chip
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.schema import NodeKind
from sovrisk.models.graph.supply_graph import SupplyGraph
from tests.conftest import FIXTURES, SMALL, DatasetCopy

COMMENTED = FIXTURES / "commented"
EDGE_TAIL = ",,,A,fixture,2024-01-01,"  # share_low, share_high, quality, source, as_of, notes


def find(issues: list[DataIssue], file: str, row: int, field: str) -> DataIssue:
    """The issue at (file, row, field); fails listing every issue when there is none."""
    hits = [i for i in issues if (i.file, i.row, i.field) == (file, row, field)]
    assert hits, f"no issue at {file}:{row} field {field!r}; got:\n" + "\n".join(map(str, issues))
    return hits[0]


# -- the valid fixture ---------------------------------------------------------------------------


def test_valid_fixture_loads(small_graph: SupplyGraph) -> None:
    g = small_graph
    assert g.info.name == "small fixture" and g.info.version == "1"
    assert g.info.as_of.isoformat() == "2024-06-01"
    assert list(g.nodes) == ["a", "b", "f1", "f2", "m1", "m2", "p", "t"]
    assert len(g.edges) == 10
    assert sorted(g.countries) == ["CHN", "KOR", "NLD", "TWN", "USA"]
    assert sorted(g.regimes) == ["nl-euv", "us-chip"]
    assert g.nodes["p"].kind is NodeKind.PROVIDER
    assert g.nodes["t"].tags == frozenset({"euv"})
    assert [(s.country, s.share) for s in g.sites["f2"]] == [("KOR", 0.5), ("USA", 0.5)]
    fleet_a = next(e for e in g.edges if (e.consumer, e.supplier) == ("p", "a"))
    assert (fleet_a.share, fleet_a.share_low, fleet_a.share_high) == (0.6, 0.5, 0.7)
    fleet_b = next(e for e in g.edges if (e.consumer, e.supplier) == ("p", "b"))
    assert (fleet_b.share_low, fleet_b.share_high) == (0.4, 0.4)  # blank range = the share
    assert g.regimes["us-chip"].effective_to is not None
    assert g.regimes["nl-euv"].destination_countries == frozenset({"CHN"})
    assert g.countries["TWN"].risk == 60.0


def test_content_hash_is_stable() -> None:
    first, second = load_dataset(SMALL), load_dataset(SMALL)
    assert first.content_hash == second.content_hash
    assert len(first.content_hash) == 64 and int(first.content_hash, 16) >= 0
    assert first.version_id == f"1+{first.content_hash[:12]}"


def test_content_hash_changes_when_a_share_changes(small_copy: DatasetCopy) -> None:
    before = small_copy.load().content_hash
    assert before == load_dataset(SMALL).content_hash
    small_copy.replace("edges.csv", "p,fleet,a,0.6,", "p,fleet,a,0.61,")
    small_copy.replace("edges.csv", "p,fleet,b,0.4,", "p,fleet,b,0.39,")
    changed = small_copy.load().content_hash
    assert changed != before
    # and back: the hash depends on the content only
    small_copy.replace("edges.csv", "p,fleet,a,0.61,", "p,fleet,a,0.6,")
    small_copy.replace("edges.csv", "p,fleet,b,0.39,", "p,fleet,b,0.4,")
    assert small_copy.load().content_hash == before


def test_content_hash_changes_when_a_site_share_or_risk_changes(small_copy: DatasetCopy) -> None:
    before = small_copy.load().content_hash
    small_copy.replace(
        "country_risk.csv",
        "TWN,Taiwan,,,,,30,30,fixture overlay,60",
        "TWN,Taiwan,,,,,30,40,fixture overlay,70",
    )
    assert small_copy.load().content_hash != before


def test_comment_and_blank_lines_are_skipped() -> None:
    # tests/fixtures/commented holds the same records with # and blank lines between rows
    # (and one share written "1.00" instead of "1"): same content, same hash.
    commented, small = load_dataset(COMMENTED), load_dataset(SMALL)
    assert commented.content_hash == small.content_hash
    assert commented.edges == small.edges


def test_line_numbers_count_comment_and_blank_lines(
    dataset_copy: Callable[[Path], DatasetCopy],
) -> None:
    ds = dataset_copy(COMMENTED)
    # physical lines: edges.csv 1 comment, 2 header, 3 blank, 4 p-a, 5 p-b, 6 comment, 7 blank,
    # 8 a-logic_die-f1 ...; nodes.csv: 1 comment, 2 blank, 3 header, 4 p, 5 blank, 6 comment, 7 a;
    # sites.csv: 1 header, 2 comment, 3 a, 4 b, 5 blank, 6 f1, 7 comment, 8 blank, 9 f2-KOR
    edge_line = ds.replace("edges.csv", "a,logic_die,f1,1.00,", "a,logic_die,f1,1.5,")
    node_line = ds.replace("nodes.csv", "a,accelerator,Chip A", "a,gpu,Chip A")
    site_line = ds.replace("sites.csv", "f2,KOR,0.5", "f2,kor,0.5")
    assert (edge_line, node_line, site_line) == (8, 7, 9)
    issues = ds.issues()
    assert find(issues, "edges.csv", 8, "share").value == "1.5"
    assert find(issues, "nodes.csv", 7, "kind").value == "gpu"
    assert find(issues, "sites.csv", 9, "country").value == "kor"


# -- references ----------------------------------------------------------------------------------


def test_unknown_supplier_in_edges(small_copy: DatasetCopy) -> None:
    line = small_copy.replace("edges.csv", "p,fleet,b,", "p,fleet,zz,")
    assert line == 3
    issue = find(small_copy.issues(), "edges.csv", 3, "supplier")
    assert issue.value == "zz"
    assert "unknown node" in issue.message


def test_unknown_consumer_in_edges(small_copy: DatasetCopy) -> None:
    line = small_copy.append("edges.csv", "ghost,logic_die,f1,1" + EDGE_TAIL)
    assert line == 12
    issue = find(small_copy.issues(), "edges.csv", 12, "consumer")
    assert issue.value == "ghost"


def test_unknown_source_id(small_copy: DatasetCopy) -> None:
    line = small_copy.replace(
        "nodes.csv",
        "b,accelerator,Chip B,ChipCo B,USA,accelerator,,B,fixture,",
        "b,accelerator,Chip B,ChipCo B,USA,accelerator,,B,fixture;nosuch,",
    )
    assert line == 4
    issue = find(small_copy.issues(), "nodes.csv", 4, "source")
    assert issue.value == "nosuch"
    assert "sources.csv" in issue.message


def test_unknown_node_in_sites(small_copy: DatasetCopy) -> None:
    line = small_copy.append("sites.csv", "zz,USA,1,,A,fixture,2024-01-01,")
    assert find(small_copy.issues(), "sites.csv", line, "node").value == "zz"


def test_unknown_node_in_regime_reach(small_copy: DatasetCopy) -> None:
    small_copy.replace("regimes.csv", "1,,euv,,,CHN", "1,,euv,zz,,CHN")
    assert find(small_copy.issues(), "regimes.csv", 2, "reach_nodes").value == "zz"


# -- shares --------------------------------------------------------------------------------------


def test_shares_not_summing_to_one(small_copy: DatasetCopy) -> None:
    small_copy.replace("edges.csv", "p,fleet,b,0.4,", "p,fleet,b,0.3,")
    # .6 + .3 = .9: reported at the group's first line (2), naming node and category
    issue = find(small_copy.issues(), "edges.csv", 2, "share")
    assert issue.value == "0.9"
    assert "'p'" in issue.message and "'fleet'" in issue.message
    assert "lines 2, 3" in issue.message


def test_shares_within_tolerance_are_accepted(small_copy: DatasetCopy) -> None:
    # .6 + .4005 = 1.0005: off by 5e-4 <= the 1e-3 tolerance
    small_copy.replace("edges.csv", "p,fleet,b,0.4,", "p,fleet,b,0.4005,")
    assert small_copy.load().edges


def test_normalise_shares_accepts_and_rescales(small_copy: DatasetCopy) -> None:
    small_copy.replace("edges.csv", "p,fleet,b,0.4,", "p,fleet,b,0.3,")
    with pytest.raises(DataValidationError):
        small_copy.load()
    g = small_copy.load(normalise_shares=True)
    fleet = {e.supplier: e for e in g.edges if e.consumer == "p"}
    # .6 / .9 = 2/3; .3 / .9 = 1/3; the range .5..7 scales to .5/.9..7/.9
    assert fleet["a"].share == pytest.approx(2 / 3)
    assert fleet["b"].share == pytest.approx(1 / 3)
    assert fleet["a"].share_low == pytest.approx(0.5 / 0.9)
    assert fleet["a"].share_high == pytest.approx(0.7 / 0.9)
    # other groups already sum to 1 and are unchanged
    assert {e.share for e in g.edges if e.consumer == "a" and e.category == "memory"} == {0.5}


def test_site_shares_not_summing_to_one(small_copy: DatasetCopy) -> None:
    line = small_copy.replace("sites.csv", "f2,KOR,0.5", "f2,KOR,0.6")
    assert line == 5
    # .6 + .5 = 1.1, reported at f2's first site line
    issue = find(small_copy.issues(), "sites.csv", 5, "share")
    assert issue.value == "1.1"
    assert "'f2'" in issue.message


@pytest.mark.parametrize(
    ("share", "message"),
    [("-0.4", ">= 0"), ("nan", "finite"), ("inf", "finite"), ("1.5", "<= 1"), ("0.4x", "number")],
)
def test_bad_share_value(small_copy: DatasetCopy, share: str, message: str) -> None:
    line = small_copy.replace("edges.csv", "p,fleet,b,0.4,", f"p,fleet,b,{share},")
    issue = find(small_copy.issues(), "edges.csv", line, "share")
    assert issue.value == share
    assert message in issue.message


def test_share_low_above_share(small_copy: DatasetCopy) -> None:
    small_copy.replace("edges.csv", "p,fleet,a,0.6,0.5,0.7", "p,fleet,a,0.6,0.65,0.7")
    issue = find(small_copy.issues(), "edges.csv", 2, "share_low")
    assert issue.value == "0.65"


def test_share_high_below_share(small_copy: DatasetCopy) -> None:
    small_copy.replace("edges.csv", "p,fleet,a,0.6,0.5,0.7", "p,fleet,a,0.6,0.5,0.55")
    assert find(small_copy.issues(), "edges.csv", 2, "share_high").value == "0.55"


def test_producing_node_without_sites(small_copy: DatasetCopy) -> None:
    assert small_copy.delete_line("sites.csv", "m2,") == 8
    # a whole-file problem of sites.csv (row 0), naming the node
    issue = find(small_copy.issues(), "sites.csv", 0, "node")
    assert issue.value == "m2"
    assert "no sites" in issue.message


def test_provider_with_sites(small_copy: DatasetCopy) -> None:
    line = small_copy.append("sites.csv", "p,USA,1,,A,fixture,2024-01-01,")
    assert find(small_copy.issues(), "sites.csv", line, "node").value == "p"


# -- structure -----------------------------------------------------------------------------------


def test_cycle(small_copy: DatasetCopy) -> None:
    # t also consumes f2, and f2 consumes t: f2 -> t -> f2
    small_copy.append("edges.csv", "t,power,f2,1" + EDGE_TAIL)
    [issue] = small_copy.issues()
    # named at the first line of an edge on the cycle (f2 -> t is line 11)
    assert (issue.file, issue.row, issue.field) == ("edges.csv", 11, "supplier")
    assert "cycle" in issue.message
    assert "t" in issue.value.split(" -> ") and "f2" in issue.value.split(" -> ")


def test_self_supply(small_copy: DatasetCopy) -> None:
    line = small_copy.append("edges.csv", "t,power,t,1" + EDGE_TAIL)
    assert find(small_copy.issues(), "edges.csv", line, "supplier").value == "t"


def test_duplicate_node_id(small_copy: DatasetCopy) -> None:
    line = small_copy.append(
        "nodes.csv", "m2,memory,Memory two again,MemTwo,USA,memory,,C,fixture,2024-01-01,"
    )
    assert line == 10
    issue = find(small_copy.issues(), "nodes.csv", 10, "id")
    assert issue.value == "m2" and "duplicate" in issue.message


def test_duplicate_edge(small_copy: DatasetCopy) -> None:
    line = small_copy.append("edges.csv", "f1,lithography,t,1" + EDGE_TAIL)
    assert find(small_copy.issues(), "edges.csv", line, "supplier").message.startswith(
        "duplicate edge"
    )


def test_duplicate_site(small_copy: DatasetCopy) -> None:
    line = small_copy.append("sites.csv", "f1,TWN,1,,A,fixture,2024-01-01,")
    assert find(small_copy.issues(), "sites.csv", line, "country").value == "TWN"


# -- codes, kinds, layers ------------------------------------------------------------------------


def test_lowercase_country_code(small_copy: DatasetCopy) -> None:
    line = small_copy.replace("sites.csv", "f1,TWN,1", "f1,twn,1")
    assert line == 4
    issue = find(small_copy.issues(), "sites.csv", 4, "country")
    assert issue.value == "twn" and "alpha-3" in issue.message


def test_unknown_iso3_not_in_country_risk(small_copy: DatasetCopy) -> None:
    small_copy.replace("sites.csv", "f1,TWN,1", "f1,XYZ,1")
    issue = find(small_copy.issues(), "sites.csv", 4, "country")
    assert issue.value == "XYZ" and "country_risk.csv" in issue.message


def test_unknown_hq_country(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "Fab two,FabTwo,KOR,", "Fab two,FabTwo,ROK,")
    assert find(small_copy.issues(), "nodes.csv", 6, "hq_country").value == "ROK"


def test_unknown_regime_destination(small_copy: DatasetCopy) -> None:
    small_copy.replace("regimes.csv", ",,CHN,A,", ",,PRC,A,")
    assert find(small_copy.issues(), "regimes.csv", 2, "destination_countries").value == "PRC"


def test_unknown_kind(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "a,accelerator,Chip A", "a,gpu,Chip A")
    issue = find(small_copy.issues(), "nodes.csv", 3, "kind")
    assert issue.value == "gpu" and "accelerator" in issue.message


def test_country_kind_is_not_listed_in_nodes(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "a,accelerator,Chip A", "a,country,Chip A")
    assert find(small_copy.issues(), "nodes.csv", 3, "kind").value == "country"


def test_unknown_layer(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "ChipCo A,USA,accelerator,", "ChipCo A,USA,chips,")
    issue = find(small_copy.issues(), "nodes.csv", 3, "layer")
    assert issue.value == "chips" and "foundry" in issue.message


def test_bad_id_slug(small_copy: DatasetCopy) -> None:
    line = small_copy.append(
        "nodes.csv", "Chip_C,accelerator,Chip C,ChipCo C,USA,accelerator,,A,fixture,2024-01-01,"
    )
    assert find(small_copy.issues(), "nodes.csv", line, "id").value == "Chip_C"


def test_bad_quality(small_copy: DatasetCopy) -> None:
    small_copy.replace("edges.csv", "p,fleet,b,0.4,,,C,", "p,fleet,b,0.4,,,D,")
    assert find(small_copy.issues(), "edges.csv", 3, "quality").value == "D"


# -- dates and regimes ---------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["2024-13-01", "2024/01/01", "2024-02-30", "24-01-01", "yesterday"])
def test_bad_date(small_copy: DatasetCopy, bad: str) -> None:
    small_copy.replace(
        "edges.csv",
        "p,fleet,a,0.6,0.5,0.7,C,fixture,2024-01-01",
        f"p,fleet,a,0.6,0.5,0.7,C,fixture,{bad}",
    )
    issue = find(small_copy.issues(), "edges.csv", 2, "as_of")
    assert issue.value == bad and "YYYY-MM-DD" in issue.message


def test_bad_regime_date(small_copy: DatasetCopy) -> None:
    small_copy.replace("regimes.csv", "US 1,,2024-01-01,", "US 1,,2024/01/01,")
    assert find(small_copy.issues(), "regimes.csv", 3, "effective_from").value == "2024/01/01"


def test_iso_week_date_is_rejected(small_copy: DatasetCopy) -> None:
    small_copy.replace(
        "sites.csv", "a,USA,1,,A,fixture,2024-01-01", "a,USA,1,,A,fixture,2024-W01-1"
    )
    assert find(small_copy.issues(), "sites.csv", 2, "as_of").value == "2024-W01-1"


@pytest.mark.parametrize("end", ["2024-01-01", "2023-12-31"])
def test_regime_ending_before_it_starts(small_copy: DatasetCopy, end: str) -> None:
    small_copy.replace("regimes.csv", "2024-01-01,2025-01-01,", f"2024-01-01,{end},")
    issue = find(small_copy.issues(), "regimes.csv", 3, "effective_to")
    assert issue.value == end and "2024-01-01" in issue.message


def test_regime_reaching_nothing(small_copy: DatasetCopy) -> None:
    small_copy.replace("regimes.csv", "1,,euv,,,CHN", "1,,,,,CHN")
    issue = find(small_copy.issues(), "regimes.csv", 2, "reach_tags")
    assert "reach something" in issue.message


def test_regime_severity_out_of_range(small_copy: DatasetCopy) -> None:
    small_copy.replace("regimes.csv", "2025-01-01,0.5,", "2025-01-01,1.5,")
    assert find(small_copy.issues(), "regimes.csv", 3, "severity").value == "1.5"


# -- files and columns ---------------------------------------------------------------------------


def test_missing_column(small_copy: DatasetCopy) -> None:
    small_copy.replace("sites.csv", "node,country,share,", "node,country,fraction,")
    [issue] = [i for i in small_copy.issues() if i.file == "sites.csv" and i.row == 1]
    assert (issue.field, issue.message) == ("share", "required column is missing")


@pytest.mark.parametrize(
    "name", ["regimes.csv", "edges.csv", "sources.csv", "country_risk.csv", "dataset.toml"]
)
def test_missing_file(small_copy: DatasetCopy, name: str) -> None:
    (small_copy.path / name).unlink()
    issue = find(small_copy.issues(), name, 0, "(file)")
    assert issue.message == "file is missing"


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(DataValidationError) as info:
        load_dataset(tmp_path / "nowhere")
    assert info.value.issues[0].field == "(dir)"


def test_row_with_too_many_cells(small_copy: DatasetCopy) -> None:
    line = small_copy.replace(
        "sites.csv", "m2,USA,1,,A,fixture,2024-01-01,", "m2,USA,1,,A,fixture,2024-01-01,,extra,"
    )
    find(small_copy.issues(), "sites.csv", line, "(row)")


def test_bad_toml(small_copy: DatasetCopy) -> None:
    small_copy.replace("dataset.toml", "as_of = 2024-06-01", 'as_of = "June"')
    issue = find(small_copy.issues(), "dataset.toml", 0, "as_of")
    assert issue.value == "June"


# -- several problems at once --------------------------------------------------------------------


def test_every_problem_is_reported_not_only_the_first(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "a,accelerator,Chip A", "a,gpu,Chip A")  # nodes.csv:3
    small_copy.replace("sites.csv", "f1,TWN,1", "f1,twn,1")  # sites.csv:4
    small_copy.replace("sites.csv", "f2,KOR,0.5", "f2,KOR,0.6")  # sites.csv:5 sum 1.1
    small_copy.replace("edges.csv", "b,memory,m1,1,", "b,memory,m1,-1,")  # edges.csv:9
    small_copy.replace("regimes.csv", "2024-01-01,2025-01-01,", "2024-01-01,2023-01-01,")
    with pytest.raises(DataValidationError) as info:
        small_copy.load()
    issues = info.value.issues
    find(issues, "nodes.csv", 3, "kind")
    find(issues, "sites.csv", 4, "country")
    find(issues, "sites.csv", 5, "share")
    find(issues, "edges.csv", 9, "share")
    find(issues, "regimes.csv", 3, "effective_to")
    assert len(issues) >= 5
    text = str(info.value)
    assert text.startswith(f"{len(issues)} problem(s) in dataset:")
    assert "nodes.csv:3: field 'kind' = 'gpu'" in text
    assert "regimes.csv:3: field 'effective_to'" in text


# -- CSV details ---------------------------------------------------------------------------------


def test_quoted_cell_with_a_comma(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "p,provider,Provider P,", 'p,provider,"Provider, P",')
    assert small_copy.load().nodes["p"].name == "Provider, P"


def test_quoted_cell_spanning_lines(small_copy: DatasetCopy) -> None:
    small_copy.replace(
        "edges.csv",
        "p,fleet,b,0.4,,,C,fixture,2024-01-01,",
        'p,fleet,b,0.4,,,C,fixture,2024-01-01,"two\nlines"',
    )
    g = small_copy.load()
    assert next(e for e in g.edges if e.supplier == "b" and e.consumer == "p").notes == "two\nlines"
