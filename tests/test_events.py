"""The events loader (models/events.py): valid files load; every kind of bad value is reported
with its file, physical line (header = line 2 in the fixture, after a comment) and field.

tests/fixtures/events_small.csv, for tests/fixtures/small:
line 1 comment, 2 header, 3 tw-blockade, 4 fab-outage, 5 blank, 6 euv-rule, 7 chip-shock
"""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest

from sovrisk.models.engine.compiled import compile_graph
from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.events import (
    Event,
    EventContext,
    EventKind,
    Pert,
    event_problems,
    event_violations,
    load_events,
)
from sovrisk.models.graph.loader import load_dataset
from sovrisk.models.graph.schema import Quality
from sovrisk.models.graph.supply_graph import SupplyGraph
from tests.conftest import FIXTURES

EVENTS_SMALL = FIXTURES / "events_small.csv"
DATA = Path(__file__).resolve().parent.parent / "data"


def find(issues: list[DataIssue], file: str, row: int, field: str) -> DataIssue:
    hits = [i for i in issues if (i.file, i.row, i.field) == (file, row, field)]
    assert hits, f"no issue at {file}:{row} field {field!r}; got:\n" + "\n".join(map(str, issues))
    return hits[0]


def corrupt(tmp_path: Path, old: str, new: str) -> Path:
    """A copy of the fixture as tmp_path/events.csv with one substring replaced."""
    target = tmp_path / "events.csv"
    shutil.copy(EVENTS_SMALL, target)
    text = target.read_text(encoding="utf-8")
    assert text.count(old) == 1, f"{old!r} occurs {text.count(old)} times"
    target.write_text(text.replace(old, new), encoding="utf-8")
    return target


def issues_of(path: Path, graph: SupplyGraph) -> list[DataIssue]:
    with pytest.raises(DataValidationError) as info:
        load_events(path, graph)
    assert info.value.issues
    return info.value.issues


# -- valid files --------------------------------------------------------------------------------


def test_fixture_loads(small_graph: SupplyGraph) -> None:
    events = load_events(EVENTS_SMALL, small_graph)
    assert [e.id for e in events] == ["tw-blockade", "fab-outage", "euv-rule", "chip-shock"]
    tw, fab, euv, chip = events
    assert tw.kind is EventKind.COMMON_CAUSE and tw.member_countries == {"TWN"}
    assert tw.severity == Pert(0.5, 0.8, 1.0) and tw.duration == Pert(4.0, 12.0, 52.0)
    assert fab.member_nodes == {"f2"} and fab.severity == Pert.fixed(1.0)
    assert euv.kind is EventKind.REGIME_ACTION and euv.regime == "nl-euv"
    assert chip.member_countries == {"KOR", "USA"} and chip.member_tags == {"advanced_ai_chip"}
    assert chip.horizon_weeks == 26.0
    assert chip.quality is Quality.C and chip.sources == ("fixture",)
    assert chip.as_of == dt.date(2024, 1, 1)
    assert chip.notes.startswith("several member kinds")


def test_bundled_events_load_with_the_required_set() -> None:
    graph = load_dataset(DATA)
    events = load_events(DATA / "events.csv", graph)
    ids = {e.id for e in events}
    assert {
        "taiwan-strait-blockade",
        "taiwan-strait-conflict",
        "korean-peninsula-conflict",
        "japan-earthquake-kanto",
        "japan-earthquake-kyushu",
        "us-controls-tightening",
        "nl-jp-sme-controls",
        "cn-mineral-controls-reinstated",
        "tsmc-n3-fab-outage",
        "tsmc-cowos-outage",
        "skhynix-hbm-outage",
    } <= ids
    by_id = {e.id: e for e in events}
    assert by_id["cn-mineral-controls-reinstated"].regime == "cn-mofcom-2025-10-rare-earths"
    assert by_id["tsmc-n3-fab-outage"].member_nodes == {"tsmc-n3"}
    assert by_id["tsmc-cowos-outage"].member_nodes == {"tsmc-cowos-l", "tsmc-cowos-s"}
    # probabilities from forecasters' and government figures are B (Taiwan: Good Judgment,
    # Samotsvety; Japan: HERP 30-year probabilities; fab outages: TSMC's incident history);
    # the rest are modelling judgements (C)
    quality = {e.id: e.quality for e in events}
    assert quality["japan-earthquake-kanto"] is Quality.B
    assert quality["korean-peninsula-conflict"] is Quality.C
    for event in events:
        assert event.sources, event.id
        assert event.notes, f"{event.id} has no reasoning in notes"
        assert event.horizon_weeks == 52.0


# -- bad values: file, line, field ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "line", "field"),
    [
        ("common_cause,0.1,52", "common_cause,1.5,52", 3, "probability"),
        ("common_cause,0.1,52", "common_cause,-0.1,52", 3, "probability"),
        ("common_cause,0.1,52", "common_cause,often,52", 3, "probability"),
        ("common_cause,0.1,52", "common_cause,0.1,0", 3, "horizon_weeks"),
        # PERT ordering: min <= mode <= max, for severity and duration.
        ("52,0.5,0.8,1,4", "52,0.5,0.4,1,4", 3, "severity_mode"),
        ("52,0.5,0.8,1,4", "52,0.5,0.8,0.7,4", 3, "severity_max"),
        ("52,0.5,0.8,1,4", "52,0.5,0.8,1.2,4", 3, "severity_max"),
        ("1,1,1,2,2,2", "1,1,1,2,3,2", 4, "duration_max"),
        ("1,1,1,2,2,2", "1,1,1,2,1,2", 4, "duration_mode"),
        (",f2,,,", ",f9,,,", 4, "member_nodes"),
        ("52,TWN,", "52,FRA,", 3, "member_countries"),  # valid ISO3, not in the dataset
        ("52,TWN,", "52,Taiwan,", 3, "member_countries"),
        (",nl-euv,", ",nl-nope,", 6, "regime"),
        ("advanced_ai_chip", "no_such_tag", 7, "member_tags"),
        ("common_cause,0.1", "natural,0.1", 3, "kind"),
        (",C,fixture,2024-01-01,hits", ",C,nobody,2024-01-01,hits", 3, "source"),
        (",C,fixture,2024-01-01,hits", ",Z,fixture,2024-01-01,hits", 3, "quality"),
        ("fab-outage,Fab", "tw-blockade,Fab", 4, "id"),  # duplicate id
        ("fab-outage,Fab", "Fab Outage,Fab", 4, "id"),  # not a slug
        ("fab-outage,Fab", "independent_failures,Fab", 4, "id"),  # reserved
        (",f2,,,C", ",,,,C", 4, "member_nodes"),  # no members at all
    ],
)
def test_bad_values_name_file_line_field(
    tmp_path: Path, small_graph: SupplyGraph, old: str, new: str, line: int, field: str
) -> None:
    path = corrupt(tmp_path, old, new)
    issue = find(issues_of(path, small_graph), "events.csv", line, field)
    assert issue.message
    assert f"events.csv:{line}: field '{field}'" in str(issue)


def test_every_problem_is_reported_at_once(tmp_path: Path, small_graph: SupplyGraph) -> None:
    path = corrupt(tmp_path, ",f2,,,", ",f9,,,")
    text = path.read_text(encoding="utf-8").replace("common_cause,0.1,52", "common_cause,2,52")
    path.write_text(text, encoding="utf-8")
    issues = issues_of(path, small_graph)
    find(issues, "events.csv", 3, "probability")
    find(issues, "events.csv", 4, "member_nodes")


def test_missing_column_and_missing_file(tmp_path: Path, small_graph: SupplyGraph) -> None:
    path = corrupt(tmp_path, ",regime,", ",regime_id,")
    find(issues_of(path, small_graph), "events.csv", 2, "regime")
    missing = issues_of(tmp_path / "nowhere.csv", small_graph)
    assert missing[0].field == "(file)" and missing[0].file == "nowhere.csv"


# -- the same checks for events built in code ---------------------------------------------------


def test_event_built_in_code_is_checked_like_a_row(small_graph: SupplyGraph) -> None:
    context = EventContext.of_graph(small_graph)
    good = Event(id="ok", probability=0.2, severity=Pert(0.1, 0.2, 0.3), member_nodes={"a"})  # type: ignore[arg-type]
    assert event_problems(good, context) == []
    bad = Event(
        id="Bad",
        probability=1.2,
        severity=Pert(0.5, 0.2, 0.9),
        duration=Pert(4, 2, 1),
        member_countries=frozenset({"FRA"}),
        member_nodes=frozenset({"zz"}),
        member_tags=frozenset({"nope"}),
        regime="none",
    )
    fields = {f for f, _, _ in event_problems(bad, context)}
    assert fields == {
        "id",
        "probability",
        "severity_mode",
        "duration_mode",
        "duration_max",
        "member_countries",
        "member_nodes",
        "member_tags",
        "regime",
    }
    violations = event_violations([good, bad, good], context)
    names = {v.field for v in violations}
    assert "events[1].probability" in names and "events[2].id" in names  # duplicate id


def test_compiled_context_rejects_tags_and_regimes(small_graph: SupplyGraph) -> None:
    context = EventContext.of_ids(
        compile_graph(small_graph).ids, compile_graph(small_graph).countries
    )
    event = Event(
        id="x",
        probability=0.1,
        severity=Pert.fixed(0.5),
        member_tags=frozenset({"euv"}),
        regime="nl-euv",
    )
    assert {f for f, _, _ in event_problems(event, context)} == {"member_tags", "regime"}


def test_pert_mean() -> None:
    assert Pert(0.0, 0.5, 1.0).mean == pytest.approx(0.5)
    assert Pert(1.0, 4.0, 12.0).mean == pytest.approx((1 + 16 + 12) / 6)
    assert Pert.fixed(0.3) == Pert(0.3, 0.3, 0.3)
