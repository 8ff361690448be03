"""proto <-> domain for graph versions, edits and diffs.

Records travel as CSV rows (``dict[column, text]``): the loader validates an edit exactly as
it validates a spreadsheet, and its problems come back on the request's field paths, e.g.
``changes[2].upsert_edge.share``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TypeVar

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp
from google.type import date_pb2

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.dataset import TABLES, Change, Delete, RecordChange, Upsert, touched_nodes
from sovrisk.models.graph.editing import EditProblem
from sovrisk.service.grpc_gen.sovrisk.v1 import graph_pb2, version_pb2
from sovrisk.service.registry import Committed
from sovrisk.service.store import VersionRecord

VERSION_RE = re.compile(r"^graph/versions/([1-9][0-9]{0,17})$")

#: The GraphChange oneof arm -> (record kind, is an upsert).
_ARMS: dict[str, tuple[str, bool]] = {
    "upsert_node": ("node", True),
    "delete_node": ("node", False),
    "upsert_edge": ("edge", True),
    "delete_edge": ("edge", False),
    "upsert_site": ("site", True),
    "delete_site": ("site", False),
    "upsert_regime": ("regime", True),
    "delete_regime": ("regime", False),
    "upsert_row": ("", True),  # the kind is the row's table
    "delete_row": ("", False),
}
#: Tables a generic row may touch: every editable table but the four typed records.
ROW_TABLES = tuple(k for k in TABLES if k not in ("node", "edge", "site", "regime"))
#: CSV column -> record field, where they differ.
_FIELD_OF_COLUMN = {"source": "sources", "buffer_source": "buffer_sources"}

_OPS = {
    "added": version_pb2.CHANGE_OPERATION_ADDED,
    "removed": version_pb2.CHANGE_OPERATION_REMOVED,
    "changed": version_pb2.CHANGE_OPERATION_CHANGED,
}


def parse_version(name: str, field: str, *, required: bool = False) -> int | None:
    """``graph/versions/{n}`` -> n; empty -> None (the latest) unless ``required``."""
    if not name and not required:
        return None
    match = VERSION_RE.fullmatch(name)
    if match is None:
        raise InvalidParameterError(
            [FieldViolation(field, name, "must be a version name 'graph/versions/{number}'")]
        )
    return int(match.group(1))


def version_name(version_id: int) -> str:
    return f"graph/versions/{version_id}"


def version_to_proto(v: VersionRecord) -> version_pb2.GraphVersion:
    created = Timestamp()
    created.FromDatetime(v.created_at)
    return version_pb2.GraphVersion(
        name=v.name,
        base_version=version_name(v.parent_id) if v.parent_id else "",
        content_hash=v.content_hash,
        files_digest=v.files_digest,
        dataset_version=v.dataset_version,
        author=v.author,
        create_time=created,
        message=v.message,
        change_count=v.change_count,
    )


def _date(value: date_pb2.Date) -> str:
    if not (value.year or value.month or value.day):
        return ""
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _number(value: float) -> str:
    text = repr(float(value))  # shortest round-trip form; "1.0" written as "1", as in the CSVs
    return text[:-2] if text.endswith(".0") else text


def _items(values: Sequence[str]) -> str:
    return ";".join(values)


def node_row(r: version_pb2.NodeRecord) -> dict[str, str]:
    return {
        "id": r.id,
        "kind": r.kind,
        "name": r.name,
        "owner": r.owner,
        "hq_country": r.hq_country,
        "layer": r.layer,
        "tags": _items(r.tags),
        "quality": r.quality,
        "source": _items(r.sources),
        "as_of": _date(r.as_of),
        "buffer_weeks": _number(r.buffer_weeks) if r.HasField("buffer_weeks") else "",
        "buffer_quality": r.buffer_quality,
        "buffer_source": _items(r.buffer_sources),
        "compute_h100e": _number(r.compute_h100e) if r.HasField("compute_h100e") else "",
        "notes": r.notes,
    }


def edge_row(r: version_pb2.EdgeRecord) -> dict[str, str]:
    return {
        "consumer": r.consumer,
        "category": r.category,
        "supplier": r.supplier,
        "share": _number(r.share),
        "share_low": _number(r.share_low) if r.HasField("share_low") else "",
        "share_high": _number(r.share_high) if r.HasField("share_high") else "",
        "input_class": r.input_class,
        "buffer_weeks": _number(r.buffer_weeks) if r.HasField("buffer_weeks") else "",
        "quality": r.quality,
        "source": _items(r.sources),
        "as_of": _date(r.as_of),
        "notes": r.notes,
    }


def site_row(r: version_pb2.SiteRecord) -> dict[str, str]:
    return {
        "node": r.node,
        "country": r.country,
        "share": _number(r.share),
        "site_name": r.site_name,
        "quality": r.quality,
        "source": _items(r.sources),
        "as_of": _date(r.as_of),
        "notes": r.notes,
    }


def regime_row(r: version_pb2.RegimeRecord) -> dict[str, str]:
    return {
        "id": r.id,
        "issuer": r.issuer,
        "name": r.name,
        "instrument": r.instrument,
        "citation": r.citation,
        "published": _date(r.published),
        "effective_from": _date(r.effective_from),
        "effective_to": _date(r.effective_to),
        "severity": _number(r.severity),
        "reach_kinds": _items(r.reach_kinds),
        "reach_tags": _items(r.reach_tags),
        "reach_nodes": _items(r.reach_nodes),
        "origin_countries": _items(r.origin_countries),
        "destination_countries": _items(r.destination_countries),
        "action": r.action,
        "replaces": _items(r.replaces),
        "suspends": _items(r.suspends),
        "measure": r.measure,
        "destination_basis": r.destination_basis,
        "reach_content": _items(r.reach_content),
        "quality": r.quality,
        "source": _items(r.sources),
        "notes": r.notes,
    }


def _list_item_violations(record: Message, path: str) -> list[FieldViolation]:
    """A list item holding the CSV list separator ``;`` would silently become two items (one
    tag "a;b" stored as tags "a" and "b"): refused, as are empty items."""
    out = []
    for field in record.DESCRIPTOR.fields:
        if not field.is_repeated or field.type != field.TYPE_STRING:
            continue
        for i, item in enumerate(getattr(record, field.name)):
            if ";" in item or not item.strip():
                out.append(
                    FieldViolation(
                        f"{path}.{field.name}[{i}]",
                        item,
                        "must be one non-empty item without ';' (send several items instead)",
                    )
                )
    return out


def changes_from_proto(
    changes: Sequence[version_pb2.GraphChange],
) -> tuple[list[Change], list[str]]:
    """The domain changes, and each change's oneof arm (for error paths)."""
    out: list[Change] = []
    arms: list[str] = []
    violations: list[FieldViolation] = []
    for k, change in enumerate(changes):
        arm = change.WhichOneof("change")
        if arm is None:
            violations.append(FieldViolation(f"changes[{k}]", "", "no change set"))
            continue
        arms.append(arm)
        kind, upsert = _ARMS[arm]
        if arm in ("upsert_row", "delete_row"):
            row = change.upsert_row if arm == "upsert_row" else change.delete_row
            if row.table not in ROW_TABLES:
                violations.append(
                    FieldViolation(
                        f"changes[{k}].{arm}.table",
                        row.table,
                        f"must be one of {', '.join(ROW_TABLES)}",
                    )
                )
                continue
            if arm == "upsert_row":
                out.append(Upsert(row.table, dict(change.upsert_row.values)))
            else:
                out.append(Delete(row.table, tuple(change.delete_row.key)))
        elif arm == "upsert_node":
            out.append(Upsert(kind, node_row(change.upsert_node)))
        elif arm == "upsert_edge":
            out.append(Upsert(kind, edge_row(change.upsert_edge)))
        elif arm == "upsert_site":
            out.append(Upsert(kind, site_row(change.upsert_site)))
        elif arm == "upsert_regime":
            out.append(Upsert(kind, regime_row(change.upsert_regime)))
        elif arm == "delete_node":
            out.append(Delete(kind, (change.delete_node,)))
        elif arm == "delete_regime":
            out.append(Delete(kind, (change.delete_regime,)))
        elif arm == "delete_edge":
            e = change.delete_edge
            out.append(Delete(kind, (e.consumer, e.category, e.supplier)))
        else:
            s = change.delete_site
            out.append(Delete(kind, (s.node, s.country)))
        assert upsert == isinstance(out[-1], Upsert)
        if arm.startswith("upsert_") and arm != "upsert_row":
            violations += _list_item_violations(getattr(change, arm), f"changes[{k}].{arm}")
        if change.HasField("update_mask"):
            masked = _with_mask(out[-1], change, arm, f"changes[{k}]", violations)
            if masked is not None:
                out[-1] = masked
    if violations:
        raise InvalidParameterError(violations)
    return out, arms


#: Record field -> CSV column, where they differ (the inverse of _FIELD_OF_COLUMN).
_COLUMN_OF_FIELD = {f: c for c, f in _FIELD_OF_COLUMN.items()}


def _with_mask(
    change: Change,
    proto: version_pb2.GraphChange,
    arm: str,
    path: str,
    violations: list[FieldViolation],
) -> Upsert | None:
    """The upsert restricted to the fields its update mask names (AIP-134)."""
    paths = list(proto.update_mask.paths)
    if not isinstance(change, Upsert):
        violations.append(
            FieldViolation(f"{path}.update_mask", ",".join(paths), "only an upsert takes one")
        )
        return None
    if not paths:
        violations.append(
            FieldViolation(f"{path}.update_mask", "", "name at least one field to write")
        )
        return None
    record = getattr(proto, arm)
    fields = set(record.DESCRIPTOR.fields_by_name) if arm != "upsert_row" else None
    columns: set[str] = set()
    for i, name in enumerate(paths):
        if fields is not None and name not in fields:
            violations.append(
                FieldViolation(
                    f"{path}.update_mask.paths[{i}]",
                    name,
                    f"not a field of {record.DESCRIPTOR.name} ({', '.join(sorted(fields))})",
                )
            )
            continue
        columns.add(_COLUMN_OF_FIELD.get(name, name) if fields is not None else name)
    return Upsert(change.kind, change.values, frozenset(columns))


def problems_to_violations(
    problems: Sequence[EditProblem], arms: Sequence[str]
) -> list[FieldViolation]:
    """Each problem on the request field that caused it, or on ``changes`` with the file and
    line of the record an edit broke (e.g. a category whose shares no longer sum to 1)."""
    violations: list[FieldViolation] = []
    for p in problems:
        if p.change is not None and p.change < len(arms):
            arm = arms[p.change]
            if p.column == "update_mask":
                path = f"changes[{p.change}].update_mask"
            elif arm.startswith("upsert_") and p.column == "key":
                path = f"changes[{p.change}].{arm}"
            elif arm == "upsert_row":
                path = f"changes[{p.change}].upsert_row.values[{p.column}]"
            elif arm.startswith("upsert_"):
                column = _FIELD_OF_COLUMN.get(p.column, p.column)
                path = f"changes[{p.change}].{arm}.{column}"
            else:
                path = f"changes[{p.change}].{arm}"
            violations.append(FieldViolation(path, p.value, p.message))
        elif p.change is None and p.file:
            spec = next((t for t in TABLES.values() if t.file == p.file), None)
            what = f"{spec.kind} record" if spec else "record"
            violations.append(
                FieldViolation(
                    "changes",
                    p.value,
                    f"after the changes, the {what} at {p.file} line {p.line} is invalid: "
                    f"{p.column}: {p.message}",
                )
            )
        else:
            violations.append(FieldViolation("changes", p.value, f"{p.column}: {p.message}"))
    return violations


def record_change_to_proto(c: RecordChange) -> version_pb2.RecordChange:
    return version_pb2.RecordChange(
        kind=c.kind,
        key=list(c.key),
        operation=_OPS[c.op],
        fields=[
            version_pb2.FieldChange(column=f.column, old_value=f.old, new_value=f.new)
            for f in c.fields
        ],
        nodes=[f"nodes/{n}" for n in c.nodes],
    )


def diff_to_proto(changes: Sequence[RecordChange]) -> graph_pb2.DiffGraphVersionsResponse:
    index = {id(c): k for k, c in enumerate(changes)}
    return graph_pb2.DiffGraphVersionsResponse(
        changes=[record_change_to_proto(c) for c in changes],
        nodes=[
            version_pb2.NodeChangeSummary(
                node=f"nodes/{node}", change_indexes=[index[id(c)] for c in group]
            )
            for node, group in touched_nodes(changes).items()
        ],
    )


WriteResponse = TypeVar(
    "WriteResponse", graph_pb2.BatchUpdateGraphResponse, graph_pb2.ImportGraphResponse
)


def committed_to_proto(response: WriteResponse, committed: Committed) -> WriteResponse:
    """Fill a write's response: the new version (none for validate-only) and the changes."""
    if committed.version is not None:
        response.graph_version.CopyFrom(version_to_proto(committed.version))
    response.changes.extend(record_change_to_proto(c) for c in committed.changes)
    return response
