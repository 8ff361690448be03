"""Edit a dataset and validate the result exactly as the loader validates a folder.

An edit is all-or-nothing: :func:`edit_dataset` either returns the new files with their
validated graph, or raises :class:`EditRejected` listing every problem, each traced back to
the change that caused it where it can be (the row a change wrote), or to the file and line
of the record that the edit broke (a share sum that no longer adds up, a dangling supplier).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.bundle import Supplements, load_supplements
from sovrisk.models.graph.dataset import AppliedChanges, Change, DatasetFiles, apply_changes
from sovrisk.models.graph.events import EVENT_HEADER
from sovrisk.models.graph.loader import (
    COUNTRY_COLUMNS,
    EDGE_HEADER,
    NODE_HEADER,
    REGIME_HEADER,
    SITE_HEADER,
    SOURCE_HEADER,
    load_dataset,
)
from sovrisk.models.graph.resilience_data import DEMAND_COLUMNS, RESILIENCE_COLUMNS
from sovrisk.models.graph.series import (
    ALLOCATION_FILE,
    ALLOCATION_HEADER,
    ALTERNATES_FILE,
    ALTERNATES_HEADER,
    CAPACITY_FILE,
    CAPACITY_HEADER,
    CAPEX_FILE,
    CAPEX_HEADER,
    FLEET_FILE,
    FLEET_HEADER,
)
from sovrisk.models.graph.supply_graph import SupplyGraph

#: Column order for a table an edit creates (only optional files can be absent).
NEW_TABLE_HEADERS: dict[str, tuple[str, ...]] = {
    "sources.csv": SOURCE_HEADER,
    "country_risk.csv": COUNTRY_COLUMNS,
    "nodes.csv": NODE_HEADER,
    "edges.csv": EDGE_HEADER,
    "sites.csv": SITE_HEADER,
    "regimes.csv": REGIME_HEADER,
    "events.csv": EVENT_HEADER,
    "resilience.csv": (*RESILIENCE_COLUMNS, "notes"),
    "provider_demand.csv": (
        *DEMAND_COLUMNS[:2],
        "capex_usd_bn",
        "intake_units",
        *DEMAND_COLUMNS[2:],
        "notes",
    ),
    FLEET_FILE: FLEET_HEADER,
    CAPACITY_FILE: CAPACITY_HEADER,
    ALLOCATION_FILE: ALLOCATION_HEADER,
    ALTERNATES_FILE: ALTERNATES_HEADER,
    CAPEX_FILE: CAPEX_HEADER,
}


@dataclass(frozen=True, slots=True)
class EditProblem:
    """Why an edit was rejected. ``change`` is the index of the change it comes from, or None
    when the problem is in a record the edit did not write (then ``file``/``line`` say where).
    """

    change: int | None
    column: str
    value: str
    message: str
    file: str = ""
    line: int = 0

    def __str__(self) -> str:
        where = f"changes[{self.change}]" if self.change is not None else f"{self.file}:{self.line}"
        return f"{where}.{self.column} = {self.value!r}: {self.message}"


class EditRejected(ValueError):
    """The edit was not applied; ``problems`` lists all of them."""

    def __init__(self, problems: list[EditProblem]) -> None:
        self.problems = problems
        shown = "\n".join(f"  {p}" for p in problems[:50])
        super().__init__(f"{len(problems)} problem(s) in the edit:\n{shown}")


@dataclass(frozen=True, slots=True)
class ValidatedDataset:
    """Files that passed the loader, with the graph and supplements built from them."""

    files: DatasetFiles
    graph: SupplyGraph
    supplements: Supplements


def validate_files(files: DatasetFiles) -> ValidatedDataset:
    """Load ``files`` as the server would; raises :class:`DataValidationError` (a file that
    is not UTF-8 text is named, with the byte and where it is)."""
    graph = load_dataset(files)
    return ValidatedDataset(files, graph, load_supplements(files, graph))


def _problem(issue: DataIssue, applied: AppliedChanges) -> EditProblem:
    origin = applied.origins.get((issue.file, issue.row))
    if origin is not None:
        return EditProblem(origin, issue.field, issue.value, issue.message)
    return EditProblem(None, issue.field, issue.value, issue.message, issue.file, issue.row)


def edit_dataset(files: DatasetFiles, changes: Sequence[Change]) -> ValidatedDataset:
    """Apply ``changes`` to ``files`` and validate the whole result.

    Raises :class:`EditRejected` (nothing applied) if a change cannot be applied or the
    resulting dataset fails any loader check.
    """
    if not changes:
        raise EditRejected([EditProblem(None, "changes", "", "at least one change is required")])
    applied = apply_changes(files, changes, headers=NEW_TABLE_HEADERS)
    if applied.problems:
        raise EditRejected(
            [EditProblem(p.index, p.field, p.value, p.message) for p in applied.problems]
        )
    try:
        return validate_files(applied.files)
    except DataValidationError as exc:
        raise EditRejected([_problem(issue, applied) for issue in exc.issues]) from exc
