"""A dataset as JSON (the proto JSON mapping of ``DatasetRecords``) and back.

Typed records for nodes, edges, sites and regimes, so tools that speak JSON need not parse
CSV; the other tables travel as text. The round trip keeps every record (the loader's
content hash is unchanged); the CSV formatting of the four record tables is rewritten.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Iterable, Mapping

from google.protobuf import json_format
from google.type import date_pb2

from sovrisk.models.graph.dataset import TABLES, DatasetFiles, records_of
from sovrisk.service import version_converters as vconv
from sovrisk.service.grpc_gen.sovrisk.v1 import version_pb2 as v

_RECORD_FILES = ("nodes.csv", "edges.csv", "sites.csv", "regimes.csv")


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


def _date(text: str) -> date_pb2.Date | None:
    if not text.strip():
        return None
    day = dt.date.fromisoformat(text.strip())
    return date_pb2.Date(year=day.year, month=day.month, day=day.day)


def _node(r: Mapping[str, str]) -> v.NodeRecord:
    record = v.NodeRecord(
        id=r["id"],
        kind=r["kind"],
        name=r["name"],
        owner=r["owner"],
        hq_country=r["hq_country"],
        layer=r["layer"],
        tags=_items(r.get("tags", "")),
        quality=r["quality"],
        sources=_items(r["source"]),
        as_of=_date(r["as_of"]),
        notes=r.get("notes", ""),
        buffer_quality=r.get("buffer_quality", ""),
        buffer_sources=_items(r.get("buffer_source", "")),
    )
    if r.get("buffer_weeks", "").strip():
        record.buffer_weeks = float(r["buffer_weeks"])
    if r.get("compute_h100e", "").strip():
        record.compute_h100e = float(r["compute_h100e"])
    return record


def _edge(r: Mapping[str, str]) -> v.EdgeRecord:
    record = v.EdgeRecord(
        consumer=r["consumer"],
        category=r["category"],
        supplier=r["supplier"],
        share=float(r["share"]),
        quality=r["quality"],
        sources=_items(r["source"]),
        as_of=_date(r["as_of"]),
        notes=r.get("notes", ""),
        input_class=r.get("input_class", ""),
    )
    if r.get("buffer_weeks", "").strip():
        record.buffer_weeks = float(r["buffer_weeks"])
    if r.get("share_low", "").strip():
        record.share_low = float(r["share_low"])
    if r.get("share_high", "").strip():
        record.share_high = float(r["share_high"])
    return record


def _site(r: Mapping[str, str]) -> v.SiteRecord:
    return v.SiteRecord(
        node=r["node"],
        country=r["country"],
        share=float(r["share"]),
        site_name=r.get("site_name", ""),
        quality=r["quality"],
        sources=_items(r["source"]),
        as_of=_date(r["as_of"]),
        notes=r.get("notes", ""),
    )


def _regime(r: Mapping[str, str]) -> v.RegimeRecord:
    return v.RegimeRecord(
        id=r["id"],
        issuer=r["issuer"],
        name=r["name"],
        instrument=r.get("instrument", ""),
        citation=r["citation"],
        published=_date(r.get("published", "")),
        effective_from=_date(r["effective_from"]),
        effective_to=_date(r.get("effective_to", "")),
        severity=float(r["severity"] or 0.0),
        reach_kinds=_items(r.get("reach_kinds", "")),
        reach_tags=_items(r.get("reach_tags", "")),
        reach_nodes=_items(r.get("reach_nodes", "")),
        origin_countries=_items(r.get("origin_countries", "")),
        destination_countries=_items(r.get("destination_countries", "")),
        quality=r["quality"],
        sources=_items(r["source"]),
        notes=r.get("notes", ""),
        action=r.get("action", ""),
        replaces=_items(r.get("replaces", "")),
        suspends=_items(r.get("suspends", "")),
        measure=r.get("measure", ""),
        destination_basis=r.get("destination_basis", ""),
        reach_content=_items(r.get("reach_content", "")),
    )


def to_records(files: DatasetFiles) -> v.DatasetRecords:
    """The dataset as records (files are assumed valid: export a stored version)."""
    kinds = {"nodes.csv": "node", "edges.csv": "edge", "sites.csv": "site", "regimes.csv": "regime"}
    rows = {name: list(records_of(files, TABLES[kind]).values()) for name, kind in kinds.items()}
    return v.DatasetRecords(
        nodes=[_node(r) for r in rows["nodes.csv"]],
        edges=[_edge(r) for r in rows["edges.csv"]],
        sites=[_site(r) for r in rows["sites.csv"]],
        regimes=[_regime(r) for r in rows["regimes.csv"]],
        other_files={name: files.text(name) or "" for name in files if name not in _RECORD_FILES},
    )


def _csv(empty: Mapping[str, str], rows: Iterable[Mapping[str, str]]) -> bytes:
    header = list(empty)  # column order of the record's row converter
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row[c] for c in header])
    return out.getvalue().encode()


def from_records(records: v.DatasetRecords) -> DatasetFiles:
    """Dataset files from records; validate them with the loader before use."""
    files: dict[str, bytes] = {name: text.encode() for name, text in records.other_files.items()}
    files["nodes.csv"] = _csv(
        vconv.node_row(v.NodeRecord()), (vconv.node_row(r) for r in records.nodes)
    )
    files["edges.csv"] = _csv(
        vconv.edge_row(v.EdgeRecord()), (vconv.edge_row(r) for r in records.edges)
    )
    files["sites.csv"] = _csv(
        vconv.site_row(v.SiteRecord()), (vconv.site_row(r) for r in records.sites)
    )
    files["regimes.csv"] = _csv(
        vconv.regime_row(v.RegimeRecord()), (vconv.regime_row(r) for r in records.regimes)
    )
    return DatasetFiles(files)


def dumps(files: DatasetFiles) -> str:
    return json_format.MessageToJson(to_records(files), indent=1, sort_keys=False) + "\n"


def loads(text: str) -> DatasetFiles:
    return from_records(json_format.Parse(text, v.DatasetRecords()))
