"""Datasets as files: record edits validated by the loader, and diffs between versions.

Uses the hand-computable ``tests/fixtures/small`` graph: chip ``a`` takes memory from ``m1``
and ``m2`` at 0.5 each (edges.csv lines 5 and 6).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sovrisk.models.graph.dataset import (
    DatasetFiles,
    Delete,
    Table,
    Upsert,
    diff_datasets,
    touched_nodes,
)
from sovrisk.models.graph.editing import EditRejected, edit_dataset, validate_files
from sovrisk.models.graph.loader import load_dataset
from tests.conftest import SMALL

EDGE = {
    "consumer": "a",
    "category": "memory",
    "supplier": "m2",
    "share": "0.5",
    "quality": "B",
    "source": "fixture",
    "as_of": "2024-01-01",
}


@pytest.fixture
def small() -> DatasetFiles:
    return DatasetFiles.from_directory(SMALL)


def test_files_hold_exactly_the_dataset_files(small: DatasetFiles, tmp_path: Path) -> None:
    assert list(small) == [
        "dataset.toml",
        "sources.csv",
        "country_risk.csv",
        "nodes.csv",
        "edges.csv",
        "sites.csv",
        "regimes.csv",
    ]
    small.write(tmp_path)
    again = DatasetFiles.from_directory(tmp_path)
    assert again.digest == small.digest
    assert load_dataset(again).content_hash == load_dataset(SMALL).content_hash
    with pytest.raises(ValueError, match=r"not dataset files: notes\.txt"):
        DatasetFiles({"notes.txt": b""})


def test_table_render_keeps_the_preamble_and_numbers_lines() -> None:
    table = Table.parse('# comment\n\nid,notes\nx,"two\nlines"\ny,\n')
    text, starts = table.render()
    assert text == '# comment\n\nid,notes\nx,"two\nlines"\ny,\n'
    assert starts == [4, 6]  # the quoted newline makes y start two lines after x


def test_an_edit_that_keeps_the_shares_summing_to_one_commits(small: DatasetFiles) -> None:
    result = edit_dataset(
        small,
        [
            Upsert("edge", {**EDGE, "share": "0.3"}),
            Upsert("edge", {**EDGE, "supplier": "m1", "share": "0.7"}),
        ],
    )
    edges = result.graph.categories("a")["memory"]
    assert {e.supplier: e.share for e in edges} == {"m1": 0.7, "m2": 0.3}
    # Only edges.csv was re-rendered; the other files are byte-identical.
    assert [n for n in small if small[n] != result.files[n]] == ["edges.csv"]
    changes = diff_datasets(small, result.files)
    assert [(c.kind, c.key, c.op) for c in changes] == [
        ("edge", ("a", "memory", "m1"), "changed"),
        ("edge", ("a", "memory", "m2"), "changed"),
    ]
    assert [(f.column, f.old, f.new) for f in changes[0].fields] == [("share", "0.5", "0.7")]
    assert list(touched_nodes(changes)) == ["a", "m1", "m2"]


def test_a_new_record_is_appended_and_a_deleted_one_removed(small: DatasetFiles) -> None:
    result = edit_dataset(
        small,
        [
            Delete("edge", ("a", "memory", "m2")),
            Upsert("edge", {**EDGE, "supplier": "m1", "share": "1"}),
        ],
    )
    assert [e.supplier for e in result.graph.categories("a")["memory"]] == ["m1"]
    ops = [(c.key, c.op) for c in diff_datasets(small, result.files)]
    assert ops == [(("a", "memory", "m1"), "changed"), (("a", "memory", "m2"), "removed")]


def test_every_problem_is_reported_against_its_change(small: DatasetFiles) -> None:
    with pytest.raises(EditRejected) as caught:
        edit_dataset(
            small,
            [
                Delete("node", ("m2",)),
                Upsert("edge", {**EDGE, "share": "abc"}),
                Delete("edge", ("a", "memory", "nope")),
                Upsert("edge", {**EDGE, "colour": "red"}),
            ],
        )
    found = {(p.change, p.column, p.message) for p in caught.value.problems}
    assert (2, "key", "no such edge to delete") in found
    assert (3, "colour", "unknown column") in found
    # The applicability problems stop there: nothing is validated against a half edit.
    assert {p.change for p in caught.value.problems} == {2, 3}


def test_loader_problems_point_at_the_change_or_at_the_record_it_broke(
    small: DatasetFiles,
) -> None:
    with pytest.raises(EditRejected) as caught:
        edit_dataset(small, [Delete("node", ("m2",)), Upsert("edge", {**EDGE, "share": "abc"})])
    problems = {(p.change, p.file, p.line, p.column) for p in caught.value.problems}
    assert (1, "", 0, "share") in problems  # the upserted row (edges.csv line 6)
    assert (1, "", 0, "supplier") in problems  # m2 no longer exists
    assert (None, "sites.csv", 8, "node") in problems  # m2's site row now dangles


def test_a_share_sum_broken_by_an_edit_is_rejected_and_nothing_changes(
    small: DatasetFiles,
) -> None:
    digest = small.digest
    with pytest.raises(EditRejected) as caught:
        edit_dataset(small, [Upsert("edge", {**EDGE, "share": "0.7"})])
    [problem] = caught.value.problems
    assert (problem.file, problem.line, problem.column) == ("edges.csv", 5, "share")
    assert "sum to 1.2, not 1" in problem.message
    assert small.digest == digest


def test_no_changes_is_an_error(small: DatasetFiles) -> None:
    with pytest.raises(EditRejected, match="at least one change"):
        edit_dataset(small, [])


def test_validate_files_reads_supplements_from_memory() -> None:
    data = Path(__file__).resolve().parent.parent / "data"
    result = validate_files(DatasetFiles.from_directory(data))
    assert len(result.supplements.events) == 11
    assert result.supplements.resilience is not None
    assert result.supplements.demand is not None
