"""Qualifiable alternates (METHODS v2 §10): at horizon h an alternate delivers up to
``spare × max(0, 1 − lead/h)`` of the incumbent's flow. Figures worked out by hand."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from sovrisk.models.engine.compiled import CompiledGraph
from sovrisk.models.engine.reference import ReferenceGraph
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.scoring.risk_engine import RiskEngine

SMALL = Path(__file__).parent / "fixtures" / "small"

# p <- c (fleet) <- x (packaging, buffer 4 weeks); y could take 30 % of x's flow after 26 weeks.
IDS = ["p", "c", "x", "y"]
CONSUMERS = np.array([0, 1, 1])
SUPPLIERS = np.array([1, 2, 3])
CATEGORIES = ["fleet", "packaging", "packaging"]
SHARES = np.array([1.0, 1.0, 0.3])
BUFFERS = np.array([0.0, 4.0, 26.0])
RAMP = np.array([False, False, True])


@pytest.mark.parametrize(
    ("horizon", "expected"),
    [
        (13.0, 4 / 13),  # before qualification: only x's buffer (4 of 13 weeks)
        (26.0, 4 / 26),  # qualified exactly at the horizon: adds 0.3 x (1 - 26/26) = 0
        (52.0, 4 / 52 + 0.3 * 0.5),  # 0.0769 + 0.15 = 0.2269
        (104.0, 4 / 104 + 0.3 * 0.75),  # 0.0385 + 0.225 = 0.2635
        (math.inf, 0.3),  # long run: the buffer is spent, the alternate gives its spare
    ],
)
def test_alternate_ramps_in_after_its_lead_time(horizon: float, expected: float) -> None:
    cg = CompiledGraph.from_arrays(
        IDS, CONSUMERS, SUPPLIERS, CATEGORIES, SHARES, buffers=BUFFERS, ramp=RAMP
    )
    ref = ReferenceGraph.from_arrays(
        IDS, CONSUMERS, SUPPLIERS, CATEGORIES, SHARES, buffers=BUFFERS, ramp=RAMP
    )
    up = np.ones(4)
    up[cg.index["x"]] = 0.0
    a = cg.evaluate(up, horizon=horizon)
    h = None if math.isinf(horizon) else horizon
    r = ref.evaluate({n: 0.0 if n == "x" else 1.0 for n in IDS}, horizon=h)
    assert a[cg.index["p"]] == pytest.approx(expected, abs=1e-12)
    assert r["p"] == pytest.approx(expected, abs=1e-12)
    # Nothing is lost, nothing gained, at baseline: min(up = 1, 1 + 0.3) = 1.
    assert cg.evaluate(np.ones(4), horizon=horizon)[cg.index["p"]] == 1.0
    # The alternate carries no baseline flow.
    assert cg.flow[cg.index["y"], cg.index["c"]] == 0.0


def test_alternate_never_merges_with_an_edge_of_the_same_supplier() -> None:
    # c already takes 40 % of its packaging from y; y could add 30 % of x's 60 %.
    cg = CompiledGraph.from_arrays(
        IDS,
        np.array([0, 1, 1, 1]),
        np.array([1, 2, 3, 3]),
        ["fleet", "packaging", "packaging", "packaging"],
        np.array([1.0, 0.6, 0.4, 0.18]),
        buffers=np.array([0.0, 0.0, 0.0, 26.0]),
        ramp=np.array([False, False, False, True]),
    )
    up = np.ones(4)
    up[cg.index["x"]] = 0.0
    assert cg.evaluate(up, horizon=52.0)[cg.index["p"]] == pytest.approx(0.4 + 0.18 * 0.5)
    assert cg.ramp_entries.sum() == 1


def engine(tmp_path: Path, alternates: str | None) -> RiskEngine:
    root = tmp_path / ("with" if alternates else "without")
    shutil.copytree(SMALL, root)
    if alternates:
        (root / "alternates.csv").write_text(alternates)
    return RiskEngine(*load_bundle(root))


def test_alternates_lower_long_run_impacts_only_after_the_lead(tmp_path: Path) -> None:
    # m1 supplies half of a's memory and all of b's; m2 could add 50 % of m1's flow after
    # 26 weeks. p takes 60 % a, 40 % b.
    text = (
        "supplier,alternate,category,lead_weeks,spare,quality,source,as_of\n"
        "m1,m2,memory,26,0.5,C,fixture,2024-01-01\n"
    )
    plain, alt = engine(tmp_path, None), engine(tmp_path, text)
    k = plain.compiled.ids.index("m1")
    # Without: a keeps m2's half (0.5), b nothing: p = 0.6 x 0.5 = 0.3, impact 0.7.
    assert plain.node_impact[0, k] == pytest.approx(0.7)
    # With, long run: a = 0.5 + 0.5 x 0.5 = 0.75, b = 0.5: p = 0.45 + 0.2 = 0.65, impact 0.35.
    assert alt.node_impact[0, k] == pytest.approx(0.35)
    # At 13 weeks the alternate is not qualified yet: the same impact as without.
    h13 = 1  # CURVE_HORIZONS = (4, 13, 26, 52, 104, inf)
    assert alt.node_curve[h13, 0, k] == pytest.approx(plain.node_curve[h13, 0, k])
    # At 52 weeks it brings half its spare: a = 0.5 + 0.125, b = 0.25: impact 1 - 0.475.
    assert alt.node_curve[3, 0, k] == pytest.approx(0.525)
