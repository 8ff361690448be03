"""Dated series (METHODS v2 §10): loading, errors with file/line/field, the quarter
interpolation rule and the dated graph. Figures worked out by hand in each test."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from sovrisk.models.errors import DataValidationError
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.dated import fleet_shares, graph_at
from sovrisk.models.graph.series import CAPACITY_HEADER, FleetBasis, Quarter, quarters

SMALL = Path(__file__).parent / "fixtures" / "small"

FLEET = """provider,period,basis,chip,units,units_low,units_high,share,quality,source,as_of,notes
p,2024Q1,new,a,600,,,,B,fixture,2024-03-31,
p,2024Q1,new,b,400,,,,B,fixture,2024-03-31,
p,2024Q4,new,a,200,150,250,,B,fixture,2024-12-31,
p,2024Q4,new,b,800,,,,B,fixture,2024-12-31,
p,2024Q4,installed,a,,,,0.7,C,fixture,2024-12-31,
p,2024Q4,installed,b,,,,0.3,C,fixture,2024-12-31,
"""
CAPACITY = (
    ",".join(CAPACITY_HEADER)
    + """
m1,2024Q1,80,,,stacks_per_month,0.9,100,,,B,fixture,2024-03-31,
m1,2024Q3,120,,,stacks_per_month,0.95,110,,,B,fixture,2024-09-30,
"""
)
ALLOCATION = """pool,period,claimant,demand_share,reserved_share,quality,source,as_of,notes
m1,2024Q1,a,0.7,0.5,B,fixture,2024-03-31,
m1,2024Q1,b,0.3,,B,fixture,2024-03-31,
"""


def dataset(tmp_path: Path, compute: tuple[float, float] = (1.0, 1.0), **files: str) -> Path:
    """The small fixture with chips a and b given a compute per unit, plus ``files``."""
    root = tmp_path / "ds"
    shutil.copytree(SMALL, root)
    nodes = (root / "nodes.csv").read_text().splitlines()
    nodes[0] += ",compute_h100e"
    nodes = [
        line
        + (f",{compute[0]:g}" if line.startswith("a,") else "")
        + (f",{compute[1]:g}" if line.startswith("b,") else "")
        + ("" if line.startswith(("a,", "b,")) or k == 0 else ",")
        for k, line in enumerate(nodes)
    ]
    (root / "nodes.csv").write_text("\n".join(nodes) + "\n")
    for name, text in files.items():
        (root / f"{name}.csv").write_text(text)
    return root


def test_quarters() -> None:
    q = Quarter.parse("2024Q4")
    assert (q.start, q.end) == (dt.date(2024, 10, 1), dt.date(2024, 12, 31))
    assert Quarter.of(dt.date(2026, 11, 24)) == Quarter(2026, 4)
    assert q.shift(1) == Quarter(2025, 1) and q.shift(-4) == Quarter(2023, 4)
    assert [str(x) for x in quarters(Quarter(2023, 4), Quarter(2024, 2))] == [
        "2023Q4",
        "2024Q1",
        "2024Q2",
    ]
    with pytest.raises(ValueError):
        Quarter.parse("2024Q5")


def test_fleet_interpolates_units_by_quarter(tmp_path: Path) -> None:
    _, sup = load_bundle(dataset(tmp_path, fleet=FLEET))
    s = sup.series
    # 2024Q2 is a third of the way from Q1 to Q4: a = 600 - 400/3, b = 400 + 400/3.
    mix = s.fleet_mix("p", Quarter(2024, 2))
    assert mix is not None and not mix.extrapolated
    assert mix.weight == pytest.approx(1 / 3)
    assert mix.value.units == pytest.approx({"a": 466.6667, "b": 533.3333}, abs=1e-3)
    assert mix.value.shares == pytest.approx({"a": 0.466667, "b": 0.533333}, abs=1e-6)
    assert mix.value.total_units == pytest.approx(1000.0)
    # A point's own quarter takes it exactly.
    q4 = s.fleet_mix("p", Quarter(2024, 4))
    assert q4 is not None and q4.value.shares == pytest.approx({"a": 0.2, "b": 0.8})
    # Outside the series: the nearest point, and a note that says so.
    later = s.fleet_mix("p", Quarter(2026, 1))
    assert later is not None and later.value.shares == pytest.approx({"a": 0.2, "b": 0.8})
    assert later.note == "2026Q1 is after the last new fleet p point (2024Q4): 2024Q4 used"
    earlier = s.fleet_mix("p", Quarter(2023, 2))
    assert earlier is not None and "before the first" in earlier.note
    installed = s.fleet_mix("p", Quarter(2024, 4), FleetBasis.INSTALLED)
    assert installed is not None and installed.value.units is None
    assert installed.value.shares == pytest.approx({"a": 0.7, "b": 0.3})


def test_dated_graph_replaces_fleet_edges_only(tmp_path: Path) -> None:
    graph, sup = load_bundle(dataset(tmp_path, fleet=FLEET))
    dated = graph_at(graph, sup.series, dt.date(2024, 5, 15))
    assert dated.quarter == Quarter(2024, 2)
    assert fleet_shares(dated.graph, "p") == pytest.approx({"a": 0.466667, "b": 0.533333}, 1e-5)
    fleet_free = [e for e in graph.edges if e.category != "fleet"]
    assert [e for e in dated.graph.edges if e.category != "fleet"] == fleet_free
    assert dated.notes == ()
    # The snapshot in edges.csv (0.6 / 0.4) is the 2024Q1 mix: the same graph object.
    assert graph_at(graph, sup.series, dt.date(2024, 2, 1)).graph is graph
    far = graph_at(graph, sup.series, dt.date(2027, 1, 1))
    assert far.notes and "after the last" in far.notes[0]


def test_fleet_edges_are_compute_shares(tmp_path: Path) -> None:
    # a holds twice the compute of b: 2024Q1's 600 a and 400 b are 1200 and 400 H100e.
    graph, sup = load_bundle(dataset(tmp_path, (2.0, 1.0), fleet=FLEET))
    dated = graph_at(graph, sup.series, dt.date(2024, 2, 1))
    assert fleet_shares(dated.graph, "p") == pytest.approx({"a": 0.75, "b": 0.25})
    # The mix itself stays a count of chips.
    assert dated.fleets["p"].value.shares == pytest.approx({"a": 0.6, "b": 0.4})


def test_fleet_chip_needs_a_compute_per_unit(tmp_path: Path) -> None:
    root = dataset(tmp_path, fleet=FLEET)
    (root / "nodes.csv").write_text((SMALL / "nodes.csv").read_text())
    with pytest.raises(DataValidationError) as err:
        load_bundle(root)
    assert err.value.issues[0].field == "chip"
    assert "has no compute_h100e" in err.value.issues[0].message


def test_capacity_and_claims(tmp_path: Path) -> None:
    _, sup = load_bundle(dataset(tmp_path, capacity=CAPACITY, allocation=ALLOCATION))
    state = sup.series.capacity_at("m1", Quarter(2024, 2))
    assert state is not None
    # Halfway from Q1 (80 x 0.9 = 72 of 100) to Q3 (120 x 0.95 = 114 of 110).
    assert state.value.capacity == pytest.approx(100.0)
    assert state.value.yield_ == pytest.approx(0.925)
    assert state.value.demand == pytest.approx(105.0)
    assert state.value.served == pytest.approx(92.5 / 105.0)
    q1 = sup.series.capacity_at("m1", Quarter(2024, 1))
    assert q1 is not None and q1.value.served == pytest.approx(0.72)
    claims = sup.series.claims_at("m1", Quarter(2024, 3))
    assert claims is not None and "after the last" in claims.note
    assert [(c.claimant, c.demand_share, c.reserved_share) for c in claims.value] == [
        ("a", 0.7, 0.5),
        ("b", 0.3, 0.0),
    ]


@pytest.mark.parametrize(
    ("name", "text", "where"),
    [
        (
            "fleet",
            FLEET.replace("p,2024Q1,new,b,400,,,,", "p,2024Q1,new,b,,,,0.4,"),
            ("fleet.csv", 2, "units", "p 2024Q1 new: give units in every row or in none"),
        ),
        (
            "fleet",
            FLEET.replace("2024Q4,installed,b,,,,0.3", "2024Q4,installed,b,,,,0.2"),
            ("fleet.csv", 7, "share", "p 2024Q4 installed: shares sum to 0.9000, not 1"),
        ),
        (
            "fleet",
            FLEET.replace("p,2024Q1,new,a,", "p,2024Q5,new,a,"),
            ("fleet.csv", 2, "period", "must be a quarter YYYYQn, e.g. 2026Q4"),
        ),
        (
            "fleet",
            FLEET.replace("p,2024Q1,new,a,", "p,2024Q1,new,f1,"),
            ("fleet.csv", 2, "chip", "'f1' is a foundry_process, not an accelerator"),
        ),
        (
            "fleet",
            FLEET.replace("p,2024Q4,new,a,200,150,250", "p,2024Q4,new,a,200,250,300"),
            ("fleet.csv", 4, "units_low", "must be <= units (200)"),
        ),
        (
            "capacity",
            CAPACITY.replace("m1,2024Q3,120", "nothing,2024Q3,120"),
            ("capacity.csv", 3, "pool", "names no node: give a node id or a tag carried by nodes"),
        ),
        (
            "capacity",
            CAPACITY.replace(",0.95,", ",1.5,"),
            ("capacity.csv", 3, "yield", "must be <= 1"),
        ),
        (
            "allocation",
            ALLOCATION.replace("b,0.3", "b,0.2"),
            ("allocation.csv", 3, "demand_share", "m1 2024Q1: demand shares sum to 0.9000, not 1"),
        ),
        (
            "allocation",
            ALLOCATION.replace("m1,2024Q1,b", "m1,2024Q1,f1"),
            (
                "allocation.csv",
                3,
                "claimant",
                "must be a designer or accelerator node id, or 'other' (everyone not named)",
            ),
        ),
        (
            "alternates",
            "supplier,alternate,category,lead_weeks,spare,quality,source,as_of\n"
            "m1,m2,memory,26,0.2,C,fixture,2024-01-01\n"
            "m1,a,memory,26,0.2,C,fixture,2024-01-01\n"
            "m1,m2,logic_die,26,0.2,C,fixture,2024-01-01\n",
            ("alternates.csv", 3, "alternate", "a draws on a consumer of m1: a cycle"),
        ),
        (
            "capex",
            "provider,year,capex_usd_bn,quality,source,as_of\n"
            "p,2025,100,A,fixture,2025-12-31\np,2025,90,A,fixture,2025-12-31\n",
            ("capex.csv", 3, "year", "duplicate row for this provider and year"),
        ),
    ],
)
def test_series_errors_name_file_line_and_field(
    tmp_path: Path, name: str, text: str, where: tuple[str, int, str, str]
) -> None:
    with pytest.raises(DataValidationError) as err:
        load_bundle(dataset(tmp_path, **{name: text}))
    found = [(i.file, i.row, i.field, i.message) for i in err.value.issues]
    assert where in found, found


def test_alternate_category_must_be_supplied(tmp_path: Path) -> None:
    text = (
        "supplier,alternate,category,lead_weeks,spare,quality,source,as_of\n"
        "m1,m2,logic_die,26,0.2,C,fixture,2024-01-01\n"
    )
    with pytest.raises(DataValidationError) as err:
        load_bundle(dataset(tmp_path, alternates=text))
    assert [(i.row, i.field, i.message) for i in err.value.issues] == [
        (2, "category", "m1 supplies nobody in category 'logic_die'")
    ]


def test_a_units_point_next_to_a_shares_point_blends_as_shares(tmp_path: Path) -> None:
    # 2024Q1 in units (a 600, b 400 -> 0.6 / 0.4), 2024Q4 in shares (0.2 / 0.8): 2024Q2 is a
    # third of the way: a 0.6 - 0.4/3 = 0.4667, b 0.5333; no units (one side has none).
    fleet = FLEET.replace("p,2024Q4,new,a,200,150,250,,", "p,2024Q4,new,a,,,,0.2,").replace(
        "p,2024Q4,new,b,800,,,,", "p,2024Q4,new,b,,,,0.8,"
    )
    _, sup = load_bundle(dataset(tmp_path, fleet=fleet))
    mix = sup.series.fleet_mix("p", Quarter(2024, 2))
    assert mix is not None and mix.value.units is None
    assert mix.value.shares == pytest.approx({"a": 0.6 - 0.4 / 3, "b": 0.4 + 0.4 / 3})
