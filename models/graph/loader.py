"""Load a dataset folder (docs/data-format.md) into a validated :class:`SupplyGraph`.

Every problem is collected with its file, line and field before anything is rejected, so an
analyst fixing a spreadsheet sees the whole list at once. Nothing partial is ever returned.
"""

from __future__ import annotations

import csv
import datetime as dt
import enum
import io
import math
import re
import tomllib
from collections import defaultdict
from collections.abc import Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TypeVar

import networkx as nx

from sovrisk.models.errors import DataIssue, DataValidationError
from sovrisk.models.graph.dataset import DatasetFiles
from sovrisk.models.graph.schema import (
    LAYERS,
    LISTED_KINDS,
    MAX_BUFFER_WEEKS,
    PRODUCING_KINDS,
    SITED_KINDS,
    SUPPLY_KINDS,
    CountryRisk,
    DatasetInfo,
    DestinationBasis,
    InputClass,
    Node,
    NodeKind,
    Provenance,
    Quality,
    Regime,
    RegimeAction,
    RegimeMeasure,
    Site,
    Source,
    SourceKind,
    SupplyEdge,
)
from sovrisk.models.graph.supply_graph import SupplyGraph

#: Where a dataset's files are read from: a folder, or the files held in memory.
Root = Path | DatasetFiles

#: Shares of one (consumer, category), and site shares of one node, must sum to 1 within this.
SHARE_TOLERANCE = 1e-3

ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
#: Longest id accepted (the bundled data's longest is 40, the ETO import's 40): ids are
#: names in URLs, logs and error messages, where 10,000 characters were once accepted.
MAX_ID_CHARS = 100
ISO3_RE = re.compile(r"^[A-Z]{3}$")
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

NODE_COLUMNS = (
    "id",
    "kind",
    "name",
    "owner",
    "hq_country",
    "layer",
    "tags",
    "quality",
    "source",
    "as_of",
)
EDGE_COLUMNS = ("consumer", "category", "supplier", "share", "quality", "source", "as_of")
SITE_COLUMNS = ("node", "country", "share", "quality", "source", "as_of")
SOURCE_COLUMNS = ("id", "title", "publisher", "date", "url", "quality")
REGIME_COLUMNS = (
    "id",
    "issuer",
    "name",
    "instrument",
    "citation",
    "published",
    "effective_from",
    "effective_to",
    "severity",
    "reach_kinds",
    "reach_tags",
    "reach_nodes",
    "origin_countries",
    "destination_countries",
    "quality",
    "source",
)
COUNTRY_COLUMNS = (
    "iso3",
    "name",
    "wgi_year",
    "pv",
    "rl",
    "rq",
    "wgi_risk",
    "overlay",
    "overlay_reason",
    "risk",
    "quality",
    "source",
    "as_of",
)

#: The full header of each file as written (required columns plus the optional ones, in the
#: order of the bundled data): for tools that write datasets (edits, the ETO importer).
NODE_HEADER = (
    *NODE_COLUMNS,
    "buffer_weeks",
    "buffer_quality",
    "buffer_source",
    "compute_h100e",
    "notes",
)
#: Largest compute per accelerator accepted, in H100-equivalents.
MAX_COMPUTE_H100E = 1000.0
EDGE_HEADER = (
    *EDGE_COLUMNS[:4],
    "share_low",
    "share_high",
    "input_class",
    "buffer_weeks",
    *EDGE_COLUMNS[4:],
    "notes",
)
SITE_HEADER = (*SITE_COLUMNS[:3], "site_name", *SITE_COLUMNS[3:], "notes")
SOURCE_HEADER = (*SOURCE_COLUMNS, "kind", "notes")
#: Optional v2 columns (METHODS v2 §5): blank = a v1 restriction by export, by site.
REGIME_V2_COLUMNS = (
    "action",
    "replaces",
    "suspends",
    "measure",
    "destination_basis",
    "reach_content",
)
REGIME_HEADER = (*REGIME_COLUMNS[:14], *REGIME_V2_COLUMNS, *REGIME_COLUMNS[14:], "notes")


class _Row:
    """One CSV row with typed accessors that record an issue and return None on bad input."""

    def __init__(self, file: str, line: int, values: dict[str, str], issues: list[DataIssue]):
        self.file = file
        self.line = line
        self.values = values
        self._issues = issues
        self.ok = True

    def fail(self, field: str, message: str, value: str | None = None) -> None:
        self.ok = False
        shown = self.values.get(field, "") if value is None else value
        self._issues.append(DataIssue(self.file, self.line, field, shown, message))

    def text(self, field: str, *, required: bool = True) -> str:
        value = self.values.get(field, "").strip()
        if required and not value:
            self.fail(field, "is required")
        return value

    def ident(self, field: str) -> str:
        value = self.text(field)
        if value and not ID_RE.fullmatch(value):
            self.fail(field, "must be a lowercase slug matching [a-z0-9][a-z0-9._-]*")
        elif len(value) > MAX_ID_CHARS:
            self.fail(field, f"is longer than {MAX_ID_CHARS} characters")
        return value

    def iso3(self, field: str) -> str:
        value = self.text(field)
        if value and not ISO3_RE.fullmatch(value):
            self.fail(field, "must be an ISO 3166-1 alpha-3 code (three upper-case letters)")
        return value

    def number(
        self,
        field: str,
        *,
        required: bool = True,
        low: float | None = None,
        high: float | None = None,
    ) -> float | None:
        raw = self.text(field, required=required)
        if not raw:
            return None
        try:
            value = float(raw)
        except ValueError:
            self.fail(field, "must be a number")
            return None
        if not math.isfinite(value):
            self.fail(field, "must be a finite number (not NaN or infinity)")
            return None
        if low is not None and value < low:
            self.fail(field, f"must be >= {low:g}")
            return None
        if high is not None and value > high:
            self.fail(field, f"must be <= {high:g}")
            return None
        return value

    def bounds(
        self,
        value: float | None,
        low_field: str,
        high_field: str,
        central: str,
        *,
        low: float | None = None,
        high: float | None = None,
    ) -> tuple[float | None, float | None]:
        """The optional range around ``value`` (``low_field <= central <= high_field``)."""
        lo = self.number(low_field, required=False, low=low, high=high)
        hi = self.number(high_field, required=False, low=low, high=high)
        if value is not None and lo is not None and lo > value:
            self.fail(low_field, f"must be <= {central} ({value:g})")
        if value is not None and hi is not None and hi < value:
            self.fail(high_field, f"must be >= {central} ({value:g})")
        return lo, hi

    def node_of_kind(self, field: str, nid: str, nodes: Mapping[str, Node], kind: NodeKind) -> None:
        """Fail unless ``nid`` (already read from ``field``) is a node of ``kind``."""
        if not nid:
            return
        if nid not in nodes:
            self.fail(field, "unknown node id (not in nodes.csv)")
        elif nodes[nid].kind is not kind:
            article = "an" if str(kind)[0] in "aeiou" else "a"
            self.fail(field, f"'{nid}' is a {nodes[nid].kind}, not {article} {kind}")

    def date(self, field: str, *, required: bool = True) -> dt.date | None:
        raw = self.text(field, required=required)
        if not raw:
            return None
        try:
            if not DATE_RE.fullmatch(raw):
                raise ValueError(raw)
            return dt.date.fromisoformat(raw)
        except ValueError:
            self.fail(field, "must be a date YYYY-MM-DD")
            return None

    def quality(self) -> Quality | None:
        raw = self.text("quality")
        try:
            return Quality(raw) if raw else None
        except ValueError:
            self.fail("quality", "must be A, B or C")
            return None

    def items(self, field: str) -> list[str]:
        raw = self.values.get(field, "").strip()
        return [part.strip() for part in raw.split(";") if part.strip()]

    def provenance(self, sources: dict[str, Source], *, as_of_field: str = "as_of") -> Provenance:
        quality = self.quality()
        as_of = self.date(as_of_field)
        ids = self.items("source")
        if not ids:
            self.fail("source", "is required: name at least one id from sources.csv")
        for sid in ids:
            if sources and sid not in sources:
                self.fail("source", "unknown source id (not in sources.csv)", sid)
        self.check_quality_backed(quality, ids, sources)
        return Provenance(tuple(ids), quality or Quality.C, as_of or dt.date.min)

    def check_quality_backed(
        self, quality: Quality | None, ids: list[str], sources: Mapping[str, Source]
    ) -> None:
        """A figure is no better than the best source it cites (data/README.md, "Quality
        rules"): an A row needs an A source, a B row an A or B source."""
        cited = [sources[sid] for sid in ids if sid in sources]
        if quality is None or not cited:
            return
        best = min(cited, key=lambda src: src.quality.value)
        if quality.value < best.quality.value:
            self.fail(
                "quality",
                f"is better than the best source it cites ({best.id}, quality "
                f"{best.quality.value}); rate it {best.quality.value} or cite a better source",
            )


def _read_text(root: Root, name: str) -> str | None:
    if isinstance(root, DatasetFiles):
        return root.text(name)
    path = root / name
    return path.read_text(encoding="utf-8-sig") if path.is_file() else None


def _rows(
    root: Root, name: str, required: tuple[str, ...], issues: list[DataIssue]
) -> Iterator[_Row]:
    """Yield the data rows of ``root/name``: blank and ``#`` lines skipped, line numbers kept."""
    text = _read_text(root, name)
    if text is None:
        where = name if isinstance(root, DatasetFiles) else str(root / name)
        issues.append(DataIssue(name, 0, "(file)", where, "file is missing"))
        return
    numbers: list[int] = []  # physical line number of each line handed to the CSV reader

    with io.StringIO(text, newline="") as handle:

        def data_lines() -> Iterator[str]:
            for line_no, line in enumerate(handle, start=1):
                if not line.strip() or line.lstrip().startswith("#"):
                    continue
                numbers.append(line_no)
                yield line

        reader = csv.reader(data_lines())
        header: list[str] | None = None
        consumed = 0
        for cells in reader:
            line_no = numbers[consumed]  # first physical line of this record
            consumed = reader.line_num
            if header is None:
                header = [c.strip() for c in cells]
                missing = [c for c in required if c not in header]
                for column in missing:
                    issues.append(
                        DataIssue(name, line_no, column, "", "required column is missing")
                    )
                if missing:
                    return
                continue
            if len(cells) > len(header):
                issues.append(
                    DataIssue(
                        name,
                        line_no,
                        "(row)",
                        ",".join(cells)[:80],
                        f"has {len(cells)} cells but the header has {len(header)}",
                    )
                )
                continue
            values = dict(zip(header, cells + [""] * (len(header) - len(cells)), strict=True))
            yield _Row(name, line_no, values, issues)


def _load_info(root: Root, issues: list[DataIssue]) -> DatasetInfo | None:
    text = _read_text(root, "dataset.toml")
    if text is None:
        where = "dataset.toml" if isinstance(root, DatasetFiles) else str(root / "dataset.toml")
        issues.append(DataIssue("dataset.toml", 0, "(file)", where, "file is missing"))
        return None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        issues.append(DataIssue("dataset.toml", 0, "(file)", "", f"is not valid TOML: {exc}"))
        return None
    for key in ("name", "version", "as_of"):
        if key not in raw:
            issues.append(DataIssue("dataset.toml", 0, key, "", "is required"))
    as_of = raw.get("as_of")
    if as_of is not None and not isinstance(as_of, dt.date):
        issues.append(DataIssue("dataset.toml", 0, "as_of", str(as_of), "must be a TOML date"))
        return None
    if any(key not in raw for key in ("name", "version", "as_of")):
        return None
    assert isinstance(as_of, dt.date)
    return DatasetInfo(
        name=str(raw["name"]),
        version=str(raw["version"]),
        as_of=as_of,
        description=str(raw.get("description", "")),
        licence=str(raw.get("licence", "")),
        attribution=tuple(str(a) for a in raw.get("attribution", [])),
    )


def _load_sources(root: Root, issues: list[DataIssue]) -> dict[str, Source]:
    sources: dict[str, Source] = {}
    for row in _rows(root, "sources.csv", SOURCE_COLUMNS, issues):
        sid = row.ident("id")
        quality = row.quality()
        title = row.text("title")
        kind = (
            _enum_cell(row, "kind", SourceKind, SourceKind.ESTIMATE)
            if row.text("kind", required=False)
            else None
        )
        if kind is not None and quality is not None and quality.value < kind.highest().value:
            row.fail(
                "quality",
                f"a {kind} source can be rated at most {kind.highest().value} "
                "(A = primary, B = named secondary, C = estimate or internal compilation)",
            )
        if sid in sources:
            row.fail("id", "duplicate source id")
        if row.ok and quality is not None:
            sources[sid] = Source(
                id=sid,
                title=title,
                publisher=row.text("publisher", required=False),
                date=row.text("date", required=False),
                url=row.text("url", required=False),
                quality=quality,
                notes=row.text("notes", required=False),
                kind=kind,
            )
    return sources


def _load_countries(
    root: Root, sources: dict[str, Source], issues: list[DataIssue]
) -> dict[str, CountryRisk]:
    countries: dict[str, CountryRisk] = {}
    perspectives: list[tuple[_Row, str, str, float, float]] = []
    for row in _rows(root, "country_risk.csv", COUNTRY_COLUMNS, issues):
        iso3 = row.iso3("iso3")
        perspective = row.text("perspective", required=False)
        year = row.number("wgi_year", required=False, low=1996, high=2100)
        pv = row.number("pv", required=False, low=-5, high=5)
        rl = row.number("rl", required=False, low=-5, high=5)
        rq = row.number("rq", required=False, low=-5, high=5)
        wgi_risk = row.number("wgi_risk", low=0, high=100)
        overlay = row.number("overlay", low=-100, high=100)
        risk = row.number("risk", low=0, high=100)
        provenance = row.provenance(sources)
        if perspective:
            if not ISO3_RE.fullmatch(perspective):
                row.fail("perspective", "must be an ISO 3166-1 alpha-3 code")
            elif row.ok and wgi_risk is not None and risk is not None:
                perspectives.append((row, iso3, perspective, wgi_risk, risk))
            continue
        if iso3 in countries:
            row.fail("iso3", "duplicate country")
        if row.ok and wgi_risk is not None and overlay is not None and risk is not None:
            countries[iso3] = CountryRisk(
                iso3=iso3,
                name=row.text("name"),
                wgi_year=int(year) if year else None,
                pv=pv,
                rl=rl,
                rq=rq,
                wgi_risk=wgi_risk,
                overlay=overlay,
                overlay_reason=row.text("overlay_reason", required=False),
                risk=risk,
                provenance=provenance,
                source_label=row.text("source_label", required=False),
            )
    seen: set[tuple[str, str]] = set()
    for row, iso3, perspective, wgi_risk, risk in perspectives:
        if iso3 not in countries:
            row.fail("iso3", "a perspective row needs the country's own row (blank perspective)")
        elif perspective not in countries:
            row.fail("perspective", "unknown country: add it to country_risk.csv", perspective)
        elif (iso3, perspective) in seen:
            row.fail("perspective", f"duplicate perspective for {iso3}")
        else:
            seen.add((iso3, perspective))
            record = countries[iso3]
            countries[iso3] = replace(
                record, perspectives=(*record.perspectives, (perspective, wgi_risk, risk))
            )
    return countries


def _check_country(row: _Row, field: str, code: str, countries: dict[str, CountryRisk]) -> None:
    if code and ISO3_RE.fullmatch(code) and countries and code not in countries:
        row.fail(field, "unknown country: add it to country_risk.csv", code)
    elif code and not ISO3_RE.fullmatch(code):
        row.fail(field, "must be an ISO 3166-1 alpha-3 code", code)


def _load_nodes(
    root: Root,
    sources: dict[str, Source],
    countries: dict[str, CountryRisk],
    issues: list[DataIssue],
) -> dict[str, Node]:
    nodes: dict[str, Node] = {}
    for row in _rows(root, "nodes.csv", NODE_COLUMNS, issues):
        nid = row.ident("id")
        kind_raw = row.text("kind")
        kind: NodeKind | None = None
        try:
            kind = NodeKind(kind_raw) if kind_raw else None
        except ValueError:
            row.fail("kind", "unknown node kind; one of " + ", ".join(sorted(LISTED_KINDS)))
        if kind is not None and kind not in LISTED_KINDS:
            row.fail("kind", "countries and regimes are not listed in nodes.csv")
        hq = row.text("hq_country")
        _check_country(row, "hq_country", hq, countries)
        layer = row.ident("layer")
        if layer and layer not in LAYERS:
            row.fail("layer", "unknown layer; one of " + ", ".join(LAYERS))
        name = row.text("name")
        owner = row.text("owner")
        buffer = row.number("buffer_weeks", required=False, low=0.0, high=MAX_BUFFER_WEEKS)
        provenance = row.provenance(sources)
        buffer_provenance = (
            _buffer_provenance(row, sources, provenance) if buffer is not None else None
        )
        if nid in nodes:
            row.fail("id", "duplicate node id")
        if buffer is not None and kind is NodeKind.PROVIDER:
            row.fail("buffer_weeks", "a provider supplies nothing: it has no buffer to give")
        compute = row.number("compute_h100e", required=False, low=0.0, high=MAX_COMPUTE_H100E)
        if compute is not None and compute <= 0.0:
            row.fail("compute_h100e", "must be > 0 (H100-equivalents per unit)")
        if compute is not None and kind is not NodeKind.ACCELERATOR:
            row.fail("compute_h100e", "only an accelerator has a compute per unit")
        if row.ok and kind is not None:
            nodes[nid] = Node(
                id=nid,
                kind=kind,
                name=name,
                owner=owner,
                hq_country=hq,
                layer=layer,
                tags=frozenset(row.items("tags")),
                provenance=provenance,
                notes=row.text("notes", required=False),
                buffer_weeks=buffer,
                buffer_provenance=buffer_provenance,
                compute_h100e=compute,
            )
    return nodes


def _buffer_provenance(row: _Row, sources: dict[str, Source], node: Provenance) -> Provenance:
    """A node's buffer figure has its own quality and sources (``buffer_quality``,
    ``buffer_source``), both required with ``buffer_weeks``; its as-of is the row's."""
    raw = row.text("buffer_quality")
    quality = Quality.C
    if raw:
        try:
            quality = Quality(raw)
        except ValueError:
            row.fail("buffer_quality", "must be A, B or C")
    ids = row.items("buffer_source")
    if not ids:
        row.fail("buffer_source", "is required with buffer_weeks: name ids from sources.csv")
    for sid in ids:
        if sources and sid not in sources:
            row.fail("buffer_source", "unknown source id (not in sources.csv)", sid)
    return Provenance(tuple(ids), quality, node.as_of)


def _load_edges(
    root: Root, sources: dict[str, Source], nodes: dict[str, Node], issues: list[DataIssue]
) -> list[tuple[int, SupplyEdge]]:
    edges: list[tuple[int, SupplyEdge]] = []
    seen: set[tuple[str, str, str]] = set()
    for row in _rows(root, "edges.csv", EDGE_COLUMNS, issues):
        consumer = row.ident("consumer")
        supplier = row.ident("supplier")
        category = row.ident("category")
        share = row.number("share", low=0.0, high=1.0)
        low = row.number("share_low", required=False, low=0.0, high=1.0)
        high = row.number("share_high", required=False, low=0.0, high=1.0)
        input_class = _input_class(row)
        buffer = row.number("buffer_weeks", required=False, low=0.0, high=MAX_BUFFER_WEEKS)
        provenance = row.provenance(sources)
        for field, nid in (("consumer", consumer), ("supplier", supplier)):
            if nid and nid not in nodes:
                row.fail(field, "unknown node id (not in nodes.csv)")
        if supplier in nodes and nodes[supplier].kind is NodeKind.PROVIDER:
            row.fail("supplier", "a provider cannot supply another node")
        if consumer and consumer == supplier:
            row.fail("supplier", "a node cannot supply itself")
        if share is not None and low is not None and low > share + 1e-12:
            row.fail("share_low", f"must be <= share ({share:g})")
        if share is not None and high is not None and high < share - 1e-12:
            row.fail("share_high", f"must be >= share ({share:g})")
        key = (consumer, category, supplier)
        if key in seen:
            row.fail("supplier", f"duplicate edge for ({consumer}, {category})")
        seen.add(key)
        if row.ok and share is not None:
            edges.append(
                (
                    row.line,
                    SupplyEdge(
                        consumer=consumer,
                        category=category,
                        supplier=supplier,
                        share=share,
                        share_low=share if low is None else low,
                        share_high=share if high is None else high,
                        provenance=provenance,
                        notes=row.text("notes", required=False),
                        input_class=input_class,
                        buffer_weeks=buffer,
                    ),
                )
            )
    return edges


def _input_class(row: _Row) -> InputClass | None:
    raw = row.text("input_class", required=False)
    if not raw:
        return None
    try:
        return InputClass(raw)
    except ValueError:
        row.fail("input_class", "one of " + ", ".join(c.value for c in InputClass))
        return None


def _load_sites(
    root: Root,
    sources: dict[str, Source],
    nodes: dict[str, Node],
    countries: dict[str, CountryRisk],
    issues: list[DataIssue],
) -> list[tuple[int, Site]]:
    sites: list[tuple[int, Site]] = []
    seen: set[tuple[str, str]] = set()
    for row in _rows(root, "sites.csv", SITE_COLUMNS, issues):
        nid = row.ident("node")
        country = row.text("country")
        _check_country(row, "country", country, countries)
        share = row.number("share", low=0.0, high=1.0)
        provenance = row.provenance(sources)
        if nid and nid not in nodes:
            row.fail("node", "unknown node id (not in nodes.csv)")
        elif nid and nodes[nid].kind not in PRODUCING_KINDS:
            row.fail("node", f"a {nodes[nid].kind} has no production sites")
        if (nid, country) in seen:
            row.fail("country", f"duplicate site row for node {nid}")
        seen.add((nid, country))
        if row.ok and share is not None:
            sites.append(
                (
                    row.line,
                    Site(
                        node=nid,
                        country=country,
                        share=share,
                        site_name=row.text("site_name", required=False),
                        provenance=provenance,
                        notes=row.text("notes", required=False),
                    ),
                )
            )
    return sites


def _load_regimes(
    root: Root,
    sources: dict[str, Source],
    nodes: dict[str, Node],
    countries: dict[str, CountryRisk],
    issues: list[DataIssue],
) -> dict[str, Regime]:
    regimes: dict[str, Regime] = {}
    links: list[tuple[_Row, str, list[str]]] = []  # replaces/suspends, checked once all are read
    tags_known = {t for n in nodes.values() for t in n.tags}
    for row in _rows(root, "regimes.csv", REGIME_COLUMNS, issues):
        rid = row.ident("id")
        issuer = row.text("issuer")
        _check_country(row, "issuer", issuer, countries)
        published = row.date("published", required=False)
        start = row.date("effective_from")
        end = row.date("effective_to", required=False)
        if start and end and end <= start:
            row.fail("effective_to", f"must be after effective_from ({start.isoformat()})")
        action = _enum_cell(row, "action", RegimeAction, RegimeAction.RESTRICT)
        measure = _enum_cell(row, "measure", RegimeMeasure, RegimeMeasure.EXPORT)
        default_basis = (
            DestinationBasis.SITE_OR_OWNER
            if measure is RegimeMeasure.IMPORT
            else DestinationBasis.SITE
        )
        basis = _enum_cell(row, "destination_basis", DestinationBasis, default_basis)
        suspending = action is RegimeAction.SUSPEND
        severity = (
            row.number("severity", required=False, low=0.0, high=1.0) or 0.0
            if suspending
            else row.number("severity", low=0.0, high=1.0)
        )
        replaces = row.items("replaces")
        suspends = row.items("suspends")
        if suspending and not suspends:
            row.fail("suspends", "a suspension must name the regime ids it suspends")
        if suspends and not suspending:
            row.fail("suspends", "only a record with action=suspend suspends regimes")
        if suspending and replaces:
            row.fail("replaces", "a suspension replaces nothing: it only suspends")
        if rid in replaces or rid in suspends:
            row.fail("replaces" if rid in replaces else "suspends", "a regime cannot name itself")
        links += [(row, "replaces", replaces), (row, "suspends", suspends)]
        content = row.items("reach_content")
        for item in content:
            if item not in nodes and item not in tags_known:
                row.fail("reach_content", "neither a node id nor a node tag", item)
        kinds: set[NodeKind] = set()
        for raw in row.items("reach_kinds"):
            try:
                kind = NodeKind(raw)
            except ValueError:
                row.fail("reach_kinds", "unknown node kind", raw)
                continue
            if kind not in SUPPLY_KINDS:
                row.fail("reach_kinds", "regimes reach supply nodes only", raw)
            kinds.add(kind)
        reach_nodes = row.items("reach_nodes")
        for nid in reach_nodes:
            if nid not in nodes:
                row.fail("reach_nodes", "unknown node id (not in nodes.csv)", nid)
        origins = row.items("origin_countries")
        destinations = row.items("destination_countries")
        for code in origins:
            _check_country(row, "origin_countries", code, countries)
        for code in destinations:
            _check_country(row, "destination_countries", code, countries)
        if measure is RegimeMeasure.IMPORT and not destinations:
            destinations = [issuer]  # an import measure binds the issuer's own buyers
        tags = row.items("reach_tags")
        if not suspending and not (kinds or tags or reach_nodes or content):
            row.fail(
                "reach_tags",
                "a regime must reach something: give reach_kinds, reach_tags, reach_nodes "
                "or reach_content",
            )
        quality = row.quality()
        ids = row.items("source")
        if not ids:
            row.fail("source", "is required: name at least one id from sources.csv")
        for sid in ids:
            if sid not in sources:
                row.fail("source", "unknown source id (not in sources.csv)", sid)
        row.check_quality_backed(quality, ids, sources)
        if rid in regimes:
            row.fail("id", "duplicate regime id")
        if row.ok and start is not None and severity is not None and quality is not None:
            regimes[rid] = Regime(
                id=rid,
                issuer=issuer,
                name=row.text("name"),
                instrument=row.text("instrument", required=False),
                citation=row.text("citation", required=False),
                published=published,
                effective_from=start,
                effective_to=end,
                severity=severity,
                reach_kinds=frozenset(kinds),
                reach_tags=frozenset(tags),
                reach_nodes=frozenset(reach_nodes),
                origin_countries=frozenset(origins),
                destination_countries=frozenset(destinations),
                provenance=Provenance(tuple(ids), quality, start),
                notes=row.text("notes", required=False),
                action=action,
                replaces=frozenset(replaces),
                suspends=frozenset(suspends),
                measure=measure,
                destination_basis=basis,
                reach_content=frozenset(content),
            )
    for row, column, targets in links:
        for target in targets:
            if target not in regimes:
                row.fail(column, "unknown regime id (not in regimes.csv)", target)
            elif column == "suspends" and not regimes[target].binds:
                row.fail(column, "a suspension cannot suspend another suspension", target)
    for row, _, _ in links:
        if not row.ok:
            regimes.pop(row.values.get("id", "").strip(), None)
    return regimes


E = TypeVar("E", bound=enum.StrEnum)


def _enum_cell(row: _Row, field: str, kind: type[E], default: E) -> E:
    raw = row.text(field, required=False)
    if not raw:
        return default
    try:
        return kind(raw)
    except ValueError:
        row.fail(field, "must be one of " + ", ".join(str(v) for v in kind))
        return default


def _check_share_sums(
    edges: list[tuple[int, SupplyEdge]], normalise: bool, issues: list[DataIssue]
) -> list[SupplyEdge]:
    groups: dict[tuple[str, str], list[tuple[int, SupplyEdge]]] = defaultdict(list)
    for line, edge in edges:
        groups[(edge.consumer, edge.category)].append((line, edge))
    result: list[SupplyEdge] = []
    for (consumer, category), members in groups.items():
        total = math.fsum(e.share for _, e in members)
        if normalise and total > 0:
            result.extend(_scaled(e, 1.0 / total) for _, e in members)
            continue
        if abs(total - 1.0) > SHARE_TOLERANCE:
            issues.append(
                DataIssue(
                    "edges.csv",
                    members[0][0],
                    "share",
                    f"{total:.6g}",
                    f"shares of node '{consumer}' in category '{category}' sum to "
                    f"{total:.6g}, not 1 (lines {', '.join(str(ln) for ln, _ in members)})",
                )
            )
        result.extend(e for _, e in members)
    return result


def _scaled(edge: SupplyEdge, factor: float) -> SupplyEdge:
    return SupplyEdge(
        consumer=edge.consumer,
        category=edge.category,
        supplier=edge.supplier,
        share=edge.share * factor,
        share_low=min(1.0, edge.share_low * factor),
        share_high=min(1.0, edge.share_high * factor),
        provenance=edge.provenance,
        notes=edge.notes,
        input_class=edge.input_class,
        buffer_weeks=edge.buffer_weeks,
    )


def _check_sites(
    sites: list[tuple[int, Site]], nodes: dict[str, Node], issues: list[DataIssue]
) -> dict[str, tuple[Site, ...]]:
    by_node: dict[str, list[tuple[int, Site]]] = defaultdict(list)
    for line, site in sites:
        by_node[site.node].append((line, site))
    for nid, members in by_node.items():
        total = math.fsum(s.share for _, s in members)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            issues.append(
                DataIssue(
                    "sites.csv",
                    members[0][0],
                    "share",
                    f"{total:.6g}",
                    f"site shares of node '{nid}' sum to {total:.6g}, not 1",
                )
            )
    for nid, node in nodes.items():
        if node.kind in SITED_KINDS and nid not in by_node:
            issues.append(
                DataIssue(
                    "sites.csv",
                    0,
                    "node",
                    nid,
                    f"producing node '{nid}' ({node.kind}) has no sites",
                )
            )
    return {
        nid: tuple(sorted((s for _, s in members), key=lambda s: s.country))
        for nid, members in by_node.items()
    }


def _check_structure(
    nodes: dict[str, Node], edges: list[tuple[int, SupplyEdge]], issues: list[DataIssue]
) -> None:
    supply = nx.DiGraph()
    supply.add_nodes_from(nodes)
    line_of: dict[tuple[str, str], int] = {}
    for line, e in edges:
        supply.add_edge(e.supplier, e.consumer)
        line_of.setdefault((e.supplier, e.consumer), line)
    try:
        cycle = nx.find_cycle(supply)
    except nx.NetworkXNoCycle:
        cycle = []
    if cycle:
        path = " -> ".join([str(u) for u, _ in cycle] + [str(cycle[0][0])])
        line = min(line_of[(str(u), str(v))] for u, v in cycle)
        issues.append(DataIssue("edges.csv", line, "supplier", path, "supply edges form a cycle"))
    consumers = {e.consumer for _, e in edges}
    for nid, node in nodes.items():
        if node.kind is NodeKind.PROVIDER and nid not in consumers:
            issues.append(DataIssue("edges.csv", 0, "consumer", nid, "provider has no fleet edges"))
    for line, e in edges:
        if nodes[e.consumer].kind is NodeKind.PROVIDER and e.category != "fleet":
            issues.append(
                DataIssue(
                    "edges.csv",
                    line,
                    "category",
                    e.category,
                    "a provider's only input category is 'fleet'",
                )
            )


def _check_encoding(root: Path | DatasetFiles) -> None:
    """Every file must be UTF-8 text: a stray byte (0xFF from a spreadsheet export, say) is
    named with its file and line instead of failing deep inside a parser."""
    if isinstance(root, DatasetFiles):
        blobs = {name: root[name] for name in root}
    else:
        blobs = {
            p.name: p.read_bytes() for p in sorted(root.glob("*")) if p.suffix in (".csv", ".toml")
        }
    issues = []
    for name, data in blobs.items():
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            line = data[: exc.start].count(b"\n") + 1
            byte = data[exc.start : exc.start + 1].hex()
            issues.append(
                DataIssue(name, line, "encoding", f"0x{byte}", "is not UTF-8 text (save as UTF-8)")
            )
    if issues:
        raise DataValidationError(issues)


def load_dataset(path: str | Path | DatasetFiles, *, normalise_shares: bool = False) -> SupplyGraph:
    """Read, validate and assemble the dataset in ``path`` (a folder, or its files in memory).

    Raises :class:`DataValidationError` listing every problem (file, line, field, value) when
    anything is wrong. With ``normalise_shares`` the supply shares of each (consumer,
    category) are rescaled to sum to 1 instead of being rejected.
    """
    root = path if isinstance(path, DatasetFiles) else Path(path)
    issues: list[DataIssue] = []
    if isinstance(root, Path) and not root.is_dir():
        raise DataValidationError([DataIssue(str(root), 0, "(dir)", str(root), "not a directory")])
    _check_encoding(root)
    info = _load_info(root, issues)
    sources = _load_sources(root, issues)
    countries = _load_countries(root, sources, issues)
    nodes = _load_nodes(root, sources, countries, issues)
    raw_edges = _load_edges(root, sources, nodes, issues)
    raw_sites = _load_sites(root, sources, nodes, countries, issues)
    regimes = _load_regimes(root, sources, nodes, countries, issues)
    edges = _check_share_sums(raw_edges, normalise_shares, issues)
    sites = _check_sites(raw_sites, nodes, issues)
    _check_structure(nodes, raw_edges, issues)
    if issues or info is None:
        raise DataValidationError(issues)
    return SupplyGraph(
        info=info,
        sources=sources,
        countries=countries,
        nodes=nodes,
        edges=edges,
        sites=sites,
        regimes=regimes,
    )
