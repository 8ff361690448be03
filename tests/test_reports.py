"""Batch reports (service/reports, ``sovrisk report``): every format against the engine.

Hand numbers on tests/fixtures/small (tests/test_engine.py): provider p scores concentration
72.181818, structural 16 (top_k 25), geopolitical 39.181818, export control 65 (on
2024-06-01; 50 from 2025-01-01, when the US chip rule lapses); no resilience or tail data.
composite = max(.25 x 72.18 + .30 x 16 + .25 x 39.18 + .20 x 65, .8 x 72.181818) =
57.745455, band high; t (the litho tool) is the only single point of failure, reached along
p > a > f1 > t; losing NLD (t's site) cuts 100 %.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import io
import json
import math
import re
from dataclasses import dataclass
from html import escape as html_escape
from html.parser import HTMLParser
from pathlib import Path

import pytest
from google.protobuf import json_format

from sovrisk.models.errors import InvalidParameterError, NotFoundError
from sovrisk.models.graph.bundle import load_bundle
from sovrisk.models.graph.series import Quarter
from sovrisk.models.scoring.assessment import RiskAssessment, RiskBand
from sovrisk.models.scoring.params import MODEL_VERSION, SUB_SCORES
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.scoring.trajectory import default_window, trajectory
from sovrisk.models.scoring.uncertainty import DEFAULT_DRAWS
from sovrisk.service.cli import main
from sovrisk.service.grpc_gen.sovrisk.v1 import risk_pb2, simulation_pb2
from sovrisk.service.reports import STAGES, build_report
from sovrisk.service.reports.csv_report import COLUMNS
from tests.conftest import SMALL, SMALL_AS_OF, DatasetCopy

BUNDLED = Path(__file__).resolve().parent.parent / "data"
#: Samples of the one bundled-data HTML report with a simulation.
BUNDLED_SAMPLES = 2000

# test_engine.py works these out by hand (default top_k 25)
SMALL_COMPOSITE = 51.858469
SMALL_SUBS = {
    "concentration": 72.181818,
    "structural": 58.0,
    "geopolitical": 20.318725,
    "export_control": 56.666667,
}
ARIBA_SMALL = {
    "ariba_supply_risk_1_100": "52",
    "ariba_concentration_risk_1_100": "72",
    "ariba_single_source_risk_1_100": "58",
    "ariba_geopolitical_risk_1_100": "20",
    "ariba_regulatory_risk_1_100": "57",
    "ariba_operational_risk_1_100": "",  # no resilience data: Unknown, never 1
    "ariba_disruption_risk_1_100": "",  # no events
}
COUPA = {"low": "Low", "moderate": "Medium", "high": "High", "critical": "Critical"}


# -- shared: the bundled engine and a small HTML reader ------------------------------------------


@functools.cache
def bundled_engine() -> RiskEngine:
    """One engine on the bundled dataset per test session (also used by the screenshot test)."""
    return RiskEngine(*load_bundle(BUNDLED))


#: The quarters of the bundled report's trajectory: ``sovrisk report``'s default window for
#: 2026Q4 (three years back, one ahead, within the fleet series).
TRAJECTORY = (Quarter(2024, 1), Quarter(2027, 4))


@functools.cache
def bundled_html() -> bytes:
    return build_report(
        bundled_engine(),
        fmt="html",
        providers=None,
        as_of=None,
        simulate_samples=BUNDLED_SAMPLES,
        seed=7,
        trajectory=TRAJECTORY,
    )


def check_trajectory_marks(
    doc: Document, engine: RiskEngine, assessments: list[RiskAssessment]
) -> None:
    """The trajectory charts: one line per provider (report order) and one point per
    quarter and provider, at the composite and own-silicon share the engine gives."""
    assert default_window(engine, Quarter(2026, 4)) == TRAJECTORY
    order = [a.provider for a in assessments]
    rows = trajectory(engine, order, *TRAJECTORY, engine.default_params())
    assert len(rows) == 16 * len(order)
    for measure in ("composite", "own"):
        chart = f"trajectory-{measure}"
        lines = doc.find("polyline", "trajectory-line", chart=chart)
        assert [e.attrs["data-provider"] for e in lines] == order
        points = doc.find("circle", "trajectory-point", chart=chart)
        got = {
            (e.attrs["data-provider"], e.attrs["data-quarter"]): float(e.attrs["data-value"])
            for e in points
        }
        assert len(points) == len(got) == len(rows)
        for r in rows:
            sov = r.assessment.sovereignty
            assert sov is not None
            want = r.composite if measure == "composite" else 100 * sov.own_silicon_share
            assert got[(r.provider, r.quarter)] == pytest.approx(want, abs=1e-6)


@dataclass(frozen=True)
class Element:
    tag: str
    attrs: dict[str, str]
    ancestors: tuple[tuple[str, dict[str, str]], ...]  # containers, outermost first

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def within(self, tag: str, **attrs: str) -> bool:
        return any(
            t == tag and all(a.get(k) == v for k, v in attrs.items()) for t, a in self.ancestors
        )

    @property
    def chart(self) -> str | None:
        """The id of the chart (svg) the element is drawn in."""
        return next((a.get("id") for t, a in reversed(self.ancestors) if t == "svg"), None)


_CONTAINERS = {"svg", "g", "section", "table", "tbody", "thead", "tr", "div", "nav", "a"}


class Document(HTMLParser):
    """Every start tag with its attributes and its enclosing containers."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[Element] = []
        self._stack: list[tuple[str, dict[str, str]]] = []
        self.feed(text)
        self.close()

    def _add(self, tag: str, raw: list[tuple[str, str | None]], opens: bool) -> None:
        attrs = {k: v or "" for k, v in raw}
        self.elements.append(Element(tag, attrs, tuple(self._stack)))
        if opens and tag in _CONTAINERS:
            self._stack.append((tag, attrs))

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs, True)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._add(tag, attrs, False)

    def handle_endtag(self, tag: str) -> None:
        for k in range(len(self._stack) - 1, -1, -1):
            if self._stack[k][0] == tag:
                del self._stack[k:]
                break

    def find(self, tag: str, cls: str | None = None, chart: str | None = None) -> list[Element]:
        return [
            e
            for e in self.elements
            if e.tag == tag
            and (cls is None or cls in e.classes)
            and (chart is None or e.chart == chart)
        ]

    def charts(self) -> dict[str, Element]:
        return {e.attrs["id"]: e for e in self.find("svg", "chart")}


def check_chart_marks(doc: Document, assessments: list[RiskAssessment], samples: int) -> None:
    """The chart marks of a report on ``assessments`` (riskiest first); shared with the
    screenshot test, which runs it on Chromium's DOM."""
    n = len(assessments)
    charts = doc.charts()
    bars = doc.find("rect", "bar", chart="ranking")
    assert [b.attrs["data-provider"] for b in bars] == [a.provider for a in assessments]
    assert [float(b.attrs["data-composite"]) for b in bars] == [a.composite for a in assessments]
    assert [b.attrs["data-band"] for b in bars] == [a.band.value for a in assessments]

    cells = doc.find("rect", "cell", chart="heatmap")
    assert len(cells) == n * len(SUB_SCORES) == n * 6
    for cell in cells:
        a = next(x for x in assessments if x.provider == cell.attrs["data-provider"])
        s = a.sub_score(cell.attrs["data-subscore"])
        assert cell.attrs["data-available"] == str(s.available).lower()
        assert float(cell.attrs["data-score"]) == pytest.approx(s.score, abs=1e-6)

    for a in assessments:
        tree = f"tree-{a.provider}"
        assert tree in charts, tree
        nodes = doc.find("g", "node", chart=tree)
        spofs = {g.attrs["data-node"] for g in nodes if "spof" in g.classes}
        assert spofs == {i.node for i in a.structural_impacts if i.is_spof}
        assert len(spofs) == a.spof_count
        assert all(g.attrs["data-spof"] == "true" for g in nodes if "spof" in g.classes)
        assert len(doc.find("g", "root", chart=tree)) == 1
        links = doc.find("path", "link", chart=tree)
        assert len(links) == len(nodes) - 1 > 0  # a tree: one link into every node but the root

        segs = doc.find("rect", "seg", chart=f"layers-{a.provider}")
        layers = {s.attrs["data-layer"] for s in segs}
        assert layers == {lc.layer for lc in a.layers}
        row = [s for s in doc.find("rect", "seg", chart="exposure") if s.attrs["data-provider"]]
        mine = [float(s.attrs["data-share"]) for s in row if s.attrs["data-provider"] == a.provider]
        assert math.fsum(mine) == pytest.approx(1.0, abs=1e-5)

    for kind in ("node", "firm", "country"):
        chart = f"chokepoints-{kind}"
        rows = doc.find("g", "chokepoint", chart=chart)
        assert 0 < len(rows) <= 10
        assert len(doc.find("rect", "cell", chart=chart)) == len(rows) * n

    hist = [c for c in charts if c.startswith("loss-")]
    if samples:
        assert sorted(hist) == sorted(f"loss-{a.provider}" for a in assessments)
        for chart in hist:
            bins = doc.find("rect", "hist-bar", chart=chart)
            assert len(bins) == 21  # no loss + 20 bins
            assert sum(int(b.attrs["data-count"]) for b in bins) == samples
    else:
        assert hist == []


def _csv(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8")
    assert text.splitlines()[0].split(",") == list(COLUMNS)
    return list(csv.DictReader(io.StringIO(text)))


def _inherent(engine: RiskEngine, a: RiskAssessment) -> float:
    """docs/reports.md: the composite with the resilience sub-score replaced by 100 x the
    largest structural impact among the nodes the resilience analysis covers."""
    result = engine.resilience_result()
    assert result is not None
    impact = {i.node: i.impact for i in a.structural_impacts}
    scores = {s.key: s.score for s in a.sub_scores if s.available}
    scores["resilience"] = max(
        scores["resilience"], 100 * max(impact.get(r.node, 0.0) for r in result.nodes)
    )
    weighted = math.fsum(s.weight * scores[s.key] for s in a.sub_scores if s.available)
    return max(weighted, a.floor_alpha * max(scores.values()))


# -- CSV --------------------------------------------------------------------------------------


def test_csv_small_hand_numbers(small_engine: RiskEngine) -> None:
    rows = _csv(build_report(small_engine, fmt="csv", providers=None, as_of=None))
    assert len(rows) == 1
    row = rows[0]
    a = small_engine.assess("p", small_engine.default_params())
    assert float(row["composite"]) == a.composite == SMALL_COMPOSITE
    assert row["rank"] == "1" and row["provider"] == "p" and row["display_name"] == "Provider P"
    assert row["home_country"] == "USA" and row["band"] == "high"
    for key, value in SMALL_SUBS.items():
        assert float(row[key]) == pytest.approx(value, abs=1e-6)
    assert row["resilience"] == row["tail"] == ""
    assert row["spof_count"] == "1"
    # USA (both chips) and NLD (the litho tool) each cut 100 %; USA carries more sourcing.
    assert (row["top_country"], float(row["top_country_impact"])) == ("USA", 1.0)
    assert {k: row[k] for k in ARIBA_SMALL} == ARIBA_SMALL
    # No resilience data: no buffer credit, inherent = residual = the composite's band.
    assert row["coupa_inherent_risk"] == row["coupa_residual_risk"] == "High"
    assert float(row["coupa_inherent_risk_score"]) == SMALL_COMPOSITE
    assert float(row["coupa_residual_risk_score"]) == SMALL_COMPOSITE
    assert float(row["coupa_mitigation_credit"]) == 0.0
    assert row["sim_samples"] == row["sim_mean_loss"] == row["seed"] == ""
    assert row["model_version"] == MODEL_VERSION
    assert row["dataset_hash"] == small_engine.graph.content_hash
    assert row["as_of"] == SMALL_AS_OF.isoformat() == "2024-06-01"
    assert row["risk_vector"] == a.risk_vector


def test_csv_as_of_moves_the_export_score(small_engine: RiskEngine) -> None:
    # On 2025-02-01 the US chip rule has lapsed: export = 100 x .5 x (1 + .8 + .7) / 3 =
    # 41.666667, and the composite drops by .2 x (56.666667 - 41.666667) = 3.
    day = dt.date(2025, 2, 1)
    row = _csv(build_report(small_engine, fmt="csv", providers=["p"], as_of=day))[0]
    assert float(row["export_control"]) == 41.666667
    assert row["ariba_regulatory_risk_1_100"] == "42"
    assert float(row["composite"]) == pytest.approx(SMALL_COMPOSITE - 3.0, abs=1e-6)
    assert row["as_of"] == "2025-02-01"


def test_csv_bundled_matches_the_engine_and_the_documented_mapping() -> None:
    engine = bundled_engine()
    params = engine.default_params()
    rows = _csv(build_report(engine, fmt="csv", providers=None, as_of=None))
    assert [r["provider"] for r in rows] == [a.provider for a in engine.assess_all(params)]
    assert len(rows) == len(engine.provider_ids) == 7
    credits = []
    for rank, row in enumerate(rows, start=1):
        a = engine.assess(row["provider"], params)
        assert row["rank"] == str(rank)
        assert float(row["composite"]) == a.composite
        assert row["spof_count"] == str(a.spof_count)
        # Ariba: every 0-100 score rounded half up to an integer, clamped to 1-100.
        for field, key in [
            ("ariba_supply_risk_1_100", None),
            ("ariba_concentration_risk_1_100", "concentration"),
            ("ariba_single_source_risk_1_100", "structural"),
            ("ariba_geopolitical_risk_1_100", "geopolitical"),
            ("ariba_regulatory_risk_1_100", "export_control"),
            ("ariba_operational_risk_1_100", "resilience"),
            ("ariba_disruption_risk_1_100", "tail"),
        ]:
            score = a.composite if key is None else a.sub_score(key).score
            assert int(row[field]) == min(100, max(1, math.floor(score + 0.5))), field
        # Coupa: residual = the composite; inherent = without the resilience buffers.
        inherent = _inherent(engine, a)
        assert float(row["coupa_inherent_risk_score"]) == pytest.approx(inherent, abs=1e-5)
        assert float(row["coupa_residual_risk_score"]) == a.composite
        assert row["coupa_residual_risk"] == COUPA[a.band.value]
        assert row["coupa_inherent_risk"] == COUPA[RiskBand.of(inherent).value]
        credit = float(row["coupa_mitigation_credit"])
        assert credit == pytest.approx(inherent - a.composite, abs=1e-5)
        credits.append(credit)
        assert row["dataset_hash"] == engine.graph.content_hash
    assert min(credits) >= 0.0 and max(credits) > 1.0  # the buffers earn real credit


# -- JSON -------------------------------------------------------------------------------------


def test_json_parses_back_into_the_proto_messages(small_engine: RiskEngine) -> None:
    data = build_report(small_engine, fmt="json", providers=None, as_of=None)
    doc = json.loads(data)
    assert set(doc) == {"assessments", "chokepoints", "provenance", "scoreInterpretation"}
    [msg] = [json_format.ParseDict(d, risk_pb2.RiskAssessment()) for d in doc["assessments"]]
    assert msg.provider == "providers/p"
    assert msg.composite == SMALL_COMPOSITE
    assert msg.band == risk_pb2.RISK_BAND_HIGH
    assert msg.spof_count == 1
    assert msg.provenance.as_of.year == 2024
    chokepoints = [json_format.ParseDict(d, risk_pb2.Chokepoint()) for d in doc["chokepoints"]]
    top_node = next(c for c in chokepoints if c.chokepoint_kind == risk_pb2.CHOKEPOINT_KIND_NODE)
    assert (top_node.name, top_node.max_impact, top_node.rank) == ("nodes/t", 1.0, 1)
    assert build_report(small_engine, fmt="json", providers=None, as_of=None) == data


def test_json_bundled_with_simulation() -> None:
    engine = bundled_engine()
    data = build_report(
        engine, fmt="json", providers=["aws", "providers/google-cloud"], as_of=None,
        simulate_samples=300, seed=11,
    )  # fmt: skip
    doc = json.loads(data)
    messages = [json_format.ParseDict(d, risk_pb2.RiskAssessment()) for d in doc["assessments"]]
    params = engine.default_params()
    expected = sorted(
        (engine.assess(p, params) for p in ("aws", "google-cloud")),
        key=lambda a: (-a.composite, a.provider),
    )
    assert [m.provider for m in messages] == [f"providers/{a.provider}" for a in expected]
    assert [m.composite for m in messages] == [a.composite for a in expected]
    sim = json_format.ParseDict(doc["simulation"], simulation_pb2.SimulationResult())
    assert sim.samples == 300 and sim.provenance.seed == 11
    assert {p.provider for p in sim.providers} == {"providers/aws", "providers/google-cloud"}
    assert all(0.0 <= p.p50_loss <= p.p95_loss <= 1.0 for p in sim.providers)
    assert doc["provenance"]["seed"] == "11"  # int64: a string in the proto JSON mapping
    assert doc["provenance"]["parameters"]["samples"] == "300"


# -- Markdown ---------------------------------------------------------------------------------


def _ranking_rows(md: str) -> list[list[str]]:
    lines = md.splitlines()
    start = lines.index("## Ranking")
    table = []
    for line in lines[start + 1 :]:
        if line.startswith("|"):
            table.append([c.strip() for c in line.strip("|").split(" | ")])
        elif table:
            break
    header, marks, *rows = table
    if header[3] == "90 % range":  # with intervals (METHODS v2 §11)
        header = header[:3] + header[4:]
        rows = [r[:3] + r[4:] for r in rows]
    assert header[:4] == ["#", "provider", "composite", "band"]
    assert set(marks) <= {"---", "---:"}
    return rows


def test_markdown_ranking_table(small_engine: RiskEngine) -> None:
    md = build_report(small_engine, fmt="md", providers=None, as_of=None).decode()
    [row] = _ranking_rows(md)
    assert row[:4] == ["1", "Provider P (`p`)", "51.9", "high"]
    assert row[4:8] == ["72.2", "58.0", "20.3", "56.7"] and row[8:10] == ["n/a", "n/a"]
    assert "## Provenance" in md and "## Sources" in md and "### Checks" in md


def test_markdown_bundled_ranking() -> None:
    engine = bundled_engine()
    md = build_report(engine, fmt="md", providers=None, as_of=None).decode()
    rows = _ranking_rows(md)
    ranked = engine.assess_all(engine.default_params())
    assert [r[2] for r in rows] == [f"{a.composite:.1f}" for a in ranked]
    assert [r[0] for r in rows] == [str(k) for k in range(1, len(ranked) + 1)]


# -- HTML -------------------------------------------------------------------------------------

_SOURCE_LINK = re.compile(r'<a class="source-link" href="[^"<>]*">[^<]*</a>')


def assert_self_contained(html: str) -> None:
    """Nothing is fetched: no src attributes, no url(), no stylesheets, scripts, imports or
    embedded objects; the only http(s) URLs are the sources' <a class="source-link"> anchors."""
    lower = html.lower()
    assert re.search(r"\ssrc\s*=", lower) is None
    assert re.search(r"\b(?:src)?set\s*=", lower) is None
    assert "url(" not in lower
    assert "@import" not in lower
    for tag in ("<link", "<script", "<iframe", "<object", "<embed", "<img", "<image", "<use"):
        assert tag not in lower, tag
    assert re.search(r"(?:xlink:)?href\s*=\s*\"(?!#)", _SOURCE_LINK.sub("", html)) is None
    rest = _SOURCE_LINK.sub("", html)
    assert "http://" not in rest and "https://" not in rest


def test_html_bundled_is_self_contained_and_complete() -> None:
    engine = bundled_engine()
    html = bundled_html().decode("utf-8")
    assert_self_contained(html)
    links = _SOURCE_LINK.findall(html)
    assert links, "the bundled sources have URLs: they are listed as links"
    assessments = engine.assess_all(engine.default_params())
    doc = Document(html)
    check_chart_marks(doc, assessments, BUNDLED_SAMPLES)
    check_trajectory_marks(doc, engine, assessments)
    assert re.search(r"<style>.*@media print", html, re.S)
    # Explanations, checks, coverage, sources and provenance are all there.
    for a in assessments:
        for s in a.sub_scores:
            assert html_escape(s.explanation) in html
        section = f"provider-{a.provider}"
        checks = [
            e
            for e in doc.find("tr")
            if e.within("section", id=section) and e.within("table", **{"class": "checks"})
        ]
        assert len(checks) == len(a.checks) + 1  # + the header row
    sources = [e for e in doc.find("tr") if e.within("section", id="sources")]
    assert len(sources) > 10
    assert engine.graph.content_hash in html
    assert f"{BUNDLED_SAMPLES:,} samples, seed 7" in html


def test_html_small_tree_by_hand(small_engine: RiskEngine) -> None:
    html = build_report(small_engine, fmt="html", providers=None, as_of=None).decode()
    assert_self_contained(html)
    doc = Document(html)
    nodes = {g.attrs["data-node"]: g for g in doc.find("g", "node", chart="tree-p")}
    assert set(nodes) == {"p", "a", "b", "f1", "f2", "m1", "m2", "t"}
    assert [k for k, g in nodes.items() if "spof" in g.classes] == ["t"]
    assert float(nodes["f1"].attrs["data-impact"]) == pytest.approx(0.8)
    links = {(e.attrs["data-from"], e.attrs["data-to"]) for e in doc.find("path", "link")}
    # each node hangs under its evidence path's predecessor: t under f1 (p > a > f1 > t)
    assert ("f1", "t") in links and ("p", "a") in links and len(links) == 7
    assert doc.find("rect", "bar", chart="ranking")[0].attrs["data-composite"] == "51.858469"
    assert "loss-p" not in doc.charts()


def test_html_escapes_text(small_copy: DatasetCopy) -> None:
    small_copy.replace("nodes.csv", "Chip A,", 'Chip <A> & "co",')
    engine = RiskEngine(*load_bundle(small_copy.path))
    html = build_report(engine, fmt="html", providers=None, as_of=None).decode()
    assert "<A>" not in html
    assert "Chip &lt;A&gt; &amp; &quot;co&quot;" in html
    names = {e.attrs.get("data-node") for e in Document(html).find("g", "node")}
    assert "a" in names  # the tree still parses, with the renamed chip in it
    md = build_report(engine, fmt="md", providers=None, as_of=None).decode()
    assert "<A>" not in md  # wiki renderers would take it for HTML
    assert 'Chip &lt;A&gt; &amp; "co"' in md


def test_html_is_byte_identical_across_runs() -> None:
    again = build_report(
        bundled_engine(), fmt="html", providers=None, as_of=None,
        simulate_samples=BUNDLED_SAMPLES, seed=7, trajectory=TRAJECTORY,
    )  # fmt: skip
    assert again == bundled_html()
    other_seed = build_report(
        bundled_engine(), fmt="html", providers=None, as_of=None,
        simulate_samples=BUNDLED_SAMPLES, seed=8,
    )  # fmt: skip
    assert other_seed != again  # the seed is real: the histograms change


# -- the library call -------------------------------------------------------------------------


def _record(seen: list[tuple[str, float]], stage: str, fraction: float) -> None:
    seen.append((stage, fraction))


def test_progress_is_reported_in_order(small_engine: RiskEngine) -> None:
    for samples in (0, 200):
        seen: list[tuple[str, float]] = []
        build_report(
            small_engine,
            fmt="csv",
            providers=None,
            as_of=None,
            simulate_samples=samples,
            progress=functools.partial(_record, seen),
        )
        stages = list(dict.fromkeys(s for s, _ in seen))
        # the small graph has no fleet series: no trajectory stage
        expected = [s for s in STAGES if (samples or s != "simulate") and s != "trajectory"]
        assert stages == expected
        fractions = [f for _, f in seen]
        assert fractions == sorted(fractions) and fractions[0] >= 0.0
        assert seen[-1] == ("done", 1.0)


def test_invalid_arguments(small_engine: RiskEngine) -> None:
    with pytest.raises(InvalidParameterError) as info:
        build_report(small_engine, fmt="pdf", providers=None, as_of=None, simulate_samples=-1)
    assert {v.field for v in info.value.violations} == {"format", "simulate_samples"}
    with pytest.raises(InvalidParameterError):
        build_report(small_engine, fmt="csv", providers=None, as_of=None, seed=-1)
    with pytest.raises(NotFoundError):
        build_report(small_engine, fmt="csv", providers=["zz"], as_of=None)
    with pytest.raises(NotFoundError):  # a supply node is not a provider
        build_report(small_engine, fmt="csv", providers=["a"], as_of=None)
    row = _csv(build_report(small_engine, fmt="csv", providers=["providers/p"], as_of=None))
    assert [r["provider"] for r in row] == ["p"]


# -- the CLI ----------------------------------------------------------------------------------


def test_cli_writes_the_default_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SOVRISK_STATE_DIR", str(tmp_path / "state"))
    assert main(["report", "--data", str(SMALL)]) == 0
    out, err = capsys.readouterr()
    # Beside the store, not in the working directory (a checkout's root, say).
    target = tmp_path / "state" / "reports" / "sovrisk-report.html"
    shown = "state/reports/sovrisk-report.html"
    assert out == "" and f"wrote {shown} ({target.stat().st_size:,} bytes" in err
    # stderr is not a terminal here: one plain line per stage
    assert [line for line in err.splitlines() if line.startswith("sovrisk report:")] == [
        f"sovrisk report: {s} ({p}%)"
        for s, p in [("assess", 0), ("chokepoints", 30), ("sources", 85), ("render", 90)]
    ] + ["sovrisk report: done (100%)"]
    # the CLI's defaults: 16 seeded draws (seed 7) behind the intervals
    expected = build_report(
        RiskEngine(*load_bundle(SMALL)),
        fmt="html",
        providers=None,
        as_of=None,
        interval_draws=DEFAULT_DRAWS,
    )
    assert target.read_bytes() == expected
    assert b"90 % range" in expected


def test_cli_formats_and_output(tmp_path: Path, small_copy: DatasetCopy) -> None:
    small_copy.append(
        "nodes.csv", "q,provider,Provider Q,Q Corp,KOR,provider,,A,fixture,2024-01-01,"
    )
    small_copy.append("edges.csv", "q,fleet,b,1,,,A,fixture,2024-01-01,")
    out = tmp_path / "r.csv"
    argv = ["report", "--data", str(small_copy.path), "--format", "csv", "-o", str(out)]
    assert main([*argv, "--providers", "q", "--as-of", "2025-02-01"]) == 0
    [row] = _csv(out.read_bytes())
    # q buys only chip b: b, m1 and t are single points of failure
    assert (row["provider"], row["spof_count"], row["as_of"]) == ("q", "3", "2025-02-01")
    assert main(argv) == 0
    assert [r["provider"] for r in _csv(out.read_bytes())] in (["p", "q"], ["q", "p"])
    md = tmp_path / "r.md"
    assert main(["report", "--data", str(small_copy.path), "--format", "md", "-o", str(md)]) == 0
    assert len(_ranking_rows(md.read_text())) == 2


def test_cli_stdout_and_errors(capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    argv = ["report", "--data", str(SMALL), "--format", "json", "--simulate", "100"]
    assert main([*argv, "-o", "-"]) == 0
    out, _ = capsysbinary.readouterr()
    doc = json.loads(out)
    assert doc["simulation"]["samples"] == "100" and doc["provenance"]["seed"] == "7"
    assert main(["report", "--data", str(SMALL), "--providers", "zz", "-o", "-"]) == 4
    out, err = capsysbinary.readouterr()
    assert out == b"" and b"\nerror: provider 'zz' not found" in err
    with pytest.raises(SystemExit):
        main(["report", "--data", str(SMALL), "--format", "pdf"])
    with pytest.raises(SystemExit):
        main(["report", "--data", str(SMALL), "--simulate", "-5"])


def test_the_cli_knows_every_report_format() -> None:
    from sovrisk.service import report_cli
    from sovrisk.service.reports import FORMATS

    assert tuple(FORMATS) == report_cli.FORMATS
