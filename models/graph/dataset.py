"""A dataset as data: the files of a dataset folder held in memory, edited record by record
and compared version with version.

The store keeps every version as these exact files, so what an analyst exports is what was
imported, byte for byte. Edits work on the CSV tables' rows (keyed as below) and re-render
only the tables they touch; the loader then validates the result exactly as it validates a
folder, so an edit through the API can never produce a dataset the loader would reject.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

#: The files that make up a dataset, in dependency order. The first seven are required.
DATASET_FILES: tuple[str, ...] = (
    "dataset.toml",
    "sources.csv",
    "country_risk.csv",
    "nodes.csv",
    "edges.csv",
    "sites.csv",
    "regimes.csv",
    "events.csv",
    "resilience.csv",
    "provider_demand.csv",
    "fleet.csv",
    "capacity.csv",
    "allocation.csv",
    "alternates.csv",
    "capex.csv",
    "edge_table.npz",
)
REQUIRED_FILES: tuple[str, ...] = DATASET_FILES[:7]
#: The one file of an edge-table version: a large graph as arrays
#: (``models.engine.edgetable``), scored by structure alone (``models.scoring.large``).
EDGE_TABLE_FILE = "edge_table.npz"


def is_edge_table(files: Mapping[str, bytes]) -> bool:
    """Whether ``files`` are an edge-table version rather than a dataset's tables."""
    return EDGE_TABLE_FILE in files


#: Largest dataset file accepted (the bundled edges.csv is ~150 kB).
MAX_FILE_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class TableSpec:
    """One editable CSV table: its file and the columns that identify a record."""

    kind: str
    file: str
    key: tuple[str, ...]


#: Record kinds that can be edited, by the name used in requests and diffs.
TABLES: dict[str, TableSpec] = {
    spec.kind: spec
    for spec in (
        TableSpec("source", "sources.csv", ("id",)),
        TableSpec("country", "country_risk.csv", ("iso3",)),
        TableSpec("node", "nodes.csv", ("id",)),
        TableSpec("edge", "edges.csv", ("consumer", "category", "supplier")),
        TableSpec("site", "sites.csv", ("node", "country")),
        TableSpec("regime", "regimes.csv", ("id",)),
        TableSpec("event", "events.csv", ("id",)),
        TableSpec("resilience", "resilience.csv", ("node",)),
        TableSpec("demand", "provider_demand.csv", ("provider",)),
        TableSpec("fleet", "fleet.csv", ("provider", "period", "basis", "chip")),
        TableSpec("capacity", "capacity.csv", ("pool", "period")),
        TableSpec("allocation", "allocation.csv", ("pool", "period", "claimant")),
        TableSpec("alternate", "alternates.csv", ("supplier", "alternate", "category")),
        TableSpec("capex", "capex.csv", ("provider", "year")),
    )
}
TABLE_BY_FILE: dict[str, TableSpec] = {spec.file: spec for spec in TABLES.values()}


class DatasetFiles(Mapping[str, bytes]):
    """The files of one dataset version (name -> bytes), immutable.

    Only the names in :data:`DATASET_FILES` are allowed; absent optional files simply are
    not there. ``digest`` identifies the exact bytes (the loader's ``content_hash`` is the
    formatting-independent identity of the records).
    """

    __slots__ = ("_digest", "_files")

    def __init__(self, files: Mapping[str, bytes]) -> None:
        unknown = sorted(set(files) - set(DATASET_FILES))
        if unknown:
            raise ValueError(f"not dataset files: {', '.join(unknown)}")
        self._files = {name: bytes(files[name]) for name in DATASET_FILES if name in files}
        self._digest: str | None = None

    @classmethod
    def from_directory(cls, path: str | Path) -> DatasetFiles:
        root = Path(path)
        return cls({n: (root / n).read_bytes() for n in DATASET_FILES if (root / n).is_file()})

    def __getitem__(self, name: str) -> bytes:
        return self._files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"DatasetFiles({', '.join(self._files)}; digest={self.digest[:12]})"

    def text(self, name: str) -> str | None:
        """The file decoded as UTF-8 (a BOM is dropped), or None when it is absent."""
        data = self._files.get(name)
        return None if data is None else data.decode("utf-8-sig")

    @property
    def digest(self) -> str:
        """sha256 over the names and bytes of every file, in :data:`DATASET_FILES` order."""
        if self._digest is None:
            h = hashlib.sha256()
            for name, data in self._files.items():
                h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
            self._digest = h.hexdigest()
        return self._digest

    def replace(self, changed: Mapping[str, bytes | None]) -> DatasetFiles:
        """A copy with some files replaced (``None`` removes an optional file)."""
        files = dict(self._files)
        for name, data in changed.items():
            if data is None:
                files.pop(name, None)
            else:
                files[name] = data
        return DatasetFiles(files)

    def write(self, path: str | Path) -> None:
        """Write the files into ``path`` (created if needed), each replaced atomically."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        for name, data in self._files.items():
            fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, root / name)


# -- tables --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Table:
    """A dataset CSV file as rows: the ``#`` preamble, the header and the data rows.

    ``origins[i]`` tags row ``i`` with the index of the change that wrote it (or None), so a
    validation problem found on a rendered line can be traced back to a request field.
    """

    preamble: tuple[str, ...]
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    origins: tuple[int | None, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Table:
        preamble: list[str] = []
        lines: list[str] = []
        for line in text.splitlines(keepends=True):
            if not line.strip() or line.lstrip().startswith("#"):
                if not lines:
                    preamble.append(line.rstrip("\r\n"))
                continue
            lines.append(line)
        records = list(csv.reader(lines))
        if not records:
            return cls(tuple(preamble), (), ())
        header = tuple(c.strip() for c in records[0])
        width = len(header)
        rows = tuple(tuple((r + [""] * width)[:width]) for r in records[1:])
        return cls(tuple(preamble), header, rows, (None,) * len(rows))

    def render(self) -> tuple[str, list[int]]:
        """CSV text and the first line number of each row (the header is on its own line)."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        for line in self.preamble:
            out.write(line + "\n")
        writer.writerow(self.header)
        line_no = len(self.preamble) + 2
        starts: list[int] = []
        for row in self.rows:
            starts.append(line_no)
            before = out.tell()
            writer.writerow(row)
            line_no += out.getvalue()[before:].count("\n")
        return out.getvalue(), starts

    def key_of(self, spec: TableSpec, row: Sequence[str]) -> tuple[str, ...]:
        return tuple(row[self.header.index(column)].strip() for column in spec.key)


# -- changes -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upsert:
    """Create the record, or replace every column of the record with the same key.

    Columns not given are written empty (a full replacement, not a merge), unless ``only``
    names the columns to write (an update mask, AIP-134): then the record must exist and its
    other columns keep their values.
    """

    kind: str
    values: Mapping[str, str]
    only: frozenset[str] | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove the record with this key (in the table's key column order)."""

    kind: str
    key: tuple[str, ...]


Change = Upsert | Delete


@dataclass(frozen=True, slots=True)
class ChangeProblem:
    """A change that cannot be applied at all (before any validation of the result)."""

    index: int
    field: str
    value: str
    message: str


@dataclass(frozen=True, slots=True)
class AppliedChanges:
    """The edited files, and for each rendered (file, line) the change that wrote it."""

    files: DatasetFiles
    origins: dict[tuple[str, int], int] = field(default_factory=dict)
    problems: tuple[ChangeProblem, ...] = ()


def apply_changes(
    files: DatasetFiles, changes: Sequence[Change], *, headers: Mapping[str, Sequence[str]]
) -> AppliedChanges:
    """Apply ``changes`` in order. Nothing is validated beyond the changes themselves being
    applicable (known kind, key present, known columns, deleting something that exists):
    the caller runs the loader on the result. ``headers`` gives the column order of a table
    that does not exist yet (the loader's column lists).
    """
    tables: dict[str, list[tuple[tuple[str, ...], int | None]]] = {}
    parsed: dict[str, Table] = {}
    problems: list[ChangeProblem] = []

    def table(spec: TableSpec) -> tuple[Table, list[tuple[tuple[str, ...], int | None]]]:
        if spec.file not in parsed:
            text = files.text(spec.file)
            parsed[spec.file] = (
                Table.parse(text) if text is not None else Table((), tuple(headers[spec.file]), ())
            )
            tables[spec.file] = [(row, None) for row in parsed[spec.file].rows]
        return parsed[spec.file], tables[spec.file]

    for index, change in enumerate(changes):
        spec = TABLES.get(change.kind)
        if spec is None:
            problems.append(ChangeProblem(index, "kind", change.kind, "unknown record kind"))
            continue
        current, rows = table(spec)
        if isinstance(change, Upsert):
            # An empty value for a column the file lacks changes nothing; a known optional
            # column the file lacks is added (every existing row empty in it).
            given = {c: v for c, v in change.values.items() if c in current.header or str(v)}
            known = headers.get(spec.file, ())
            added = [c for c in given if c not in current.header and c in known]
            if added:
                current = Table(
                    current.preamble, (*current.header, *added), current.rows, current.origins
                )
                parsed[spec.file] = current
                rows[:] = [((*r, *("" for _ in added)), o) for r, o in rows]
            unknown = sorted(set(given) - set(current.header))
            for column in unknown:
                problems.append(ChangeProblem(index, column, str(given[column]), "unknown column"))
            if unknown:
                continue
            row = tuple(str(given.get(column, "")) for column in current.header)
            key = current.key_of(spec, row)
            hit = next((i for i, (r, _) in enumerate(rows) if current.key_of(spec, r) == key), None)
            if change.only is not None:
                masked = _masked(spec, current, rows, hit, row, change, index, problems)
                if masked is None:
                    continue
                row = masked
            if hit is None:
                rows.append((row, index))
            else:
                rows[hit] = (row, index)
        else:
            if len(change.key) != len(spec.key):
                problems.append(
                    ChangeProblem(
                        index,
                        "key",
                        "/".join(change.key),
                        f"a {spec.kind} key is ({', '.join(spec.key)})",
                    )
                )
                continue
            hit = next(
                (i for i, (r, _) in enumerate(rows) if current.key_of(spec, r) == change.key),
                None,
            )
            if hit is None:
                problems.append(
                    ChangeProblem(
                        index, "key", "/".join(change.key), f"no such {spec.kind} to delete"
                    )
                )
                continue
            del rows[hit]

    rendered: dict[str, bytes | None] = {}
    origins: dict[tuple[str, int], int] = {}
    for name, rows in tables.items():
        base = parsed[name]
        edited = Table(
            base.preamble, base.header, tuple(r for r, _ in rows), tuple(o for _, o in rows)
        )
        text, starts = edited.render()
        rendered[name] = text.encode()
        for line, origin in zip(starts, edited.origins, strict=True):
            if origin is not None:
                origins[(name, line)] = origin
    return AppliedChanges(files.replace(rendered), origins, tuple(problems))


def _masked(
    spec: TableSpec,
    current: Table,
    rows: Sequence[tuple[tuple[str, ...], int | None]],
    hit: int | None,
    row: tuple[str, ...],
    change: Upsert,
    index: int,
    problems: list[ChangeProblem],
) -> tuple[str, ...] | None:
    """The stored row with only the masked columns taken from ``row`` (None: a problem)."""
    assert change.only is not None
    key = "/".join(current.key_of(spec, row))
    unknown = sorted(change.only - set(current.header))
    for column in unknown:
        problems.append(ChangeProblem(index, "update_mask", column, "unknown field"))
    if hit is None:
        problems.append(
            ChangeProblem(
                index, "key", key, f"no such {spec.kind} to update (a masked upsert edits one)"
            )
        )
    if unknown or hit is None:
        return None
    stored = rows[hit][0]
    return tuple(
        new if column in change.only else old
        for column, new, old in zip(current.header, row, stored, strict=True)
    )


# -- diffs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FieldChange:
    column: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class RecordChange:
    """One record added, removed or changed between two datasets."""

    kind: str
    key: tuple[str, ...]
    op: str  # "added" | "removed" | "changed"
    fields: tuple[FieldChange, ...]
    nodes: tuple[str, ...]  # the supply nodes the record is about (for node-by-node views)

    @property
    def label(self) -> str:
        return f"{self.kind} {'/'.join(self.key)}"


def records_of(files: DatasetFiles, spec: TableSpec) -> dict[tuple[str, ...], dict[str, str]]:
    text = files.text(spec.file)
    if text is None:
        return {}
    table = Table.parse(text)
    if not all(column in table.header for column in spec.key):
        return {}
    return {
        table.key_of(spec, row): dict(zip(table.header, (c.strip() for c in row), strict=True))
        for row in table.rows
    }


def _nodes_of(kind: str, key: tuple[str, ...], values: Mapping[str, str]) -> tuple[str, ...]:
    if kind == "node":
        return key
    if kind == "edge":
        return (key[0], key[2])
    if kind in ("site", "resilience", "demand"):
        return key[:1]
    if kind in ("regime", "event"):
        column = "reach_nodes" if kind == "regime" else "member_nodes"
        return tuple(n for n in values.get(column, "").split(";") if n.strip())
    return ()


def _same_cell(a: str, b: str) -> bool:
    """Equal text, or the same number written differently ("1" and "1.0")."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def _same_record(a: Mapping[str, str], b: Mapping[str, str]) -> bool:
    return all(_same_cell(a.get(c, ""), b.get(c, "")) for c in {*a, *b})


def diff_datasets(old: DatasetFiles, new: DatasetFiles) -> list[RecordChange]:
    """Every record added, removed or changed from ``old`` to ``new``, in table order then
    key order. ``dataset.toml`` is compared as one record of kind ``dataset``."""
    changes: list[RecordChange] = []
    if old.get("dataset.toml") != new.get("dataset.toml"):
        changes.append(
            RecordChange(
                "dataset",
                ("dataset.toml",),
                "changed",
                (
                    FieldChange(
                        "dataset.toml",
                        old.text("dataset.toml") or "",
                        new.text("dataset.toml") or "",
                    ),
                ),
                (),
            )
        )
    for spec in TABLES.values():
        if old.get(spec.file) == new.get(spec.file):
            continue
        before, after = records_of(old, spec), records_of(new, spec)
        for key in sorted(before.keys() | after.keys()):
            a, b = before.get(key), after.get(key)
            if a == b or (a is not None and b is not None and _same_record(a, b)):
                continue
            columns = list(dict.fromkeys([*(a or {}), *(b or {})]))
            fields = tuple(
                FieldChange(c, (a or {}).get(c, ""), (b or {}).get(c, ""))
                for c in columns
                if not _same_cell((a or {}).get(c, ""), (b or {}).get(c, ""))
            )
            op = "added" if a is None else "removed" if b is None else "changed"
            nodes = tuple(
                dict.fromkeys(
                    _nodes_of(spec.kind, key, a or {}) + _nodes_of(spec.kind, key, b or {})
                )
            )
            changes.append(RecordChange(spec.kind, key, op, fields, nodes))
    return changes


def touched_nodes(changes: Iterable[RecordChange]) -> dict[str, list[RecordChange]]:
    """Group record changes by the supply nodes they touch (a change may touch several)."""
    grouped: dict[str, list[RecordChange]] = {}
    for change in changes:
        for node in change.nodes:
            grouped.setdefault(node, []).append(change)
    return dict(sorted(grouped.items()))
