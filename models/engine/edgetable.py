"""Edge tables: large user graphs straight into :class:`CompiledGraph`, without networkx.

Two formats, chosen by the file suffix.

``.npz`` (the fast one; ``numpy.savez``, no pickles)
    ==============  ===========  ==========================================================
    array           dtype        meaning
    ==============  ===========  ==========================================================
    ``format``      str          ``"sovrisk-edge-table/1"``
    ``ids``         str (U)      node ids; edges and sites index into it
    ``consumer``    int32/int64  edge ``e``: the consumer node ...
    ``category``    int32/int64  ... takes, for input category ``categories[category[e]]``,
    ``supplier``    int32/int64  ... from this supplier node ...
    ``share``       float64      ... this share (in [0, 1]; summing to 1 per category)
    ``categories``  str (U)      category names
    ``site_node``   int32/int64  optional sites: node, ...
    ``site_country`` int32/int64 ... country (index into ``countries``) ...
    ``site_share``  float64      ... and capacity share
    ``countries``   str (U)      country codes (ISO 3166 alpha-3)
    ``buffer``      float64      optional, per edge: weeks before a loss reaches the consumer
    ==============  ===========  ==========================================================

    One million nodes and five million edges load and compile in a few seconds.

``.csv`` (for modest sizes: parsing is the ``csv`` module, ~1 µs per row)
    A header ``consumer,category,supplier,share`` then one edge per line, nodes by id. Nodes
    are every id that appears; there are no sites. Errors name the line.

Validation (:meth:`EdgeTable.validate`, on by default when loading) rejects, naming the
offending row: indices out of range, shares outside [0, 1] or not finite, repeated
(consumer, category, supplier) rows, categories whose shares do not sum to 1 within the
tolerance (1e-3; or ``normalise=True`` rescales them), repeated ids, site shares outside
[0, 1]; compiling rejects cycles, naming one.
"""

from __future__ import annotations

import csv
import io
import math
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from numpy.lib import format as npformat

from sovrisk.models.engine.compiled import CompiledGraph, FloatArray, IntArray, _factorise

FORMAT = "sovrisk-edge-table/1"
CSV_HEADER = ("consumer", "category", "supplier", "share")
DEFAULT_TOLERANCE = 1e-3
#: Largest ``.npz`` accepted, counting its arrays unpacked: a compressed archive (numpy's
#: ``savez_compressed``) is held to what it expands to, not what it weighs, so a small upload
#: cannot unpack into all of memory. The same as an import's size on the wire (an ``.npz``
#: from ``numpy.savez`` is stored unpacked): about 2x the 1M-node / 5M-edge table (122 MB).
MAX_NPZ_BYTES = 256 * 1024 * 1024

StrArray = npt.NDArray[np.str_]


class EdgeTableError(ValueError):
    """An edge table that cannot be compiled; the message names the row."""


def _empty_int() -> IntArray:
    return np.zeros(0, dtype=np.int64)


def _empty_float() -> FloatArray:
    return np.zeros(0, dtype=np.float64)


def _empty_str() -> StrArray:
    return np.zeros(0, dtype="<U1")


@dataclass(frozen=True, eq=False)
class EdgeTable:
    """A supply graph as flat arrays (see the module docstring for the meaning of each)."""

    ids: StrArray
    consumer: npt.NDArray[np.integer[Any]]
    supplier: npt.NDArray[np.integer[Any]]
    category: npt.NDArray[np.integer[Any]]
    categories: StrArray
    share: FloatArray
    site_node: npt.NDArray[np.integer[Any]] = field(default_factory=_empty_int)
    site_country: npt.NDArray[np.integer[Any]] = field(default_factory=_empty_int)
    site_share: FloatArray = field(default_factory=_empty_float)
    countries: StrArray = field(default_factory=_empty_str)
    row_name: Callable[[int], str] = field(default=lambda k: f"edge row {k}", repr=False)
    #: Weeks of buffer per edge (empty: none, 0 for every edge).
    buffer: FloatArray = field(default_factory=_empty_float)

    @property
    def n_nodes(self) -> int:
        return len(self.ids)

    @property
    def n_edges(self) -> int:
        return len(self.consumer)

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def from_edges(
        cls,
        edges: Iterable[tuple[str, str, str, float]],
        ids: Iterable[str] | None = None,
        row_name: Callable[[int], str] | None = None,
    ) -> EdgeTable:
        """From ``(consumer, category, supplier, share)`` rows; ``ids`` defaults to every id
        that appears (sorted)."""
        rows = list(edges)
        cons = [r[0] for r in rows]
        cats = [r[1] for r in rows]
        sups = [r[2] for r in rows]
        names = sorted(set(cons) | set(sups)) if ids is None else list(ids)
        lookup = {nid: k for k, nid in enumerate(names)}

        def codes(values: list[str], what: str) -> IntArray:
            missing = [k for k, v in enumerate(values) if v not in lookup]
            if missing:
                k = missing[0]
                name = row_name(k) if row_name else f"edge row {k}"
                raise EdgeTableError(f"{name}: {what} {values[k]!r} is not a listed node id")
            return np.fromiter(map(lookup.__getitem__, values), np.int64, count=len(values))

        cat_codes, cat_names = _factorise(cats)
        return cls(
            ids=_strings(names),
            consumer=codes(cons, "consumer"),
            supplier=codes(sups, "supplier"),
            category=cat_codes,
            categories=_strings(cat_names),
            share=np.array([r[3] for r in rows], dtype=np.float64),
            row_name=row_name or (lambda k: f"edge row {k}"),
        )

    @classmethod
    def from_compiled(cls, graph: CompiledGraph) -> EdgeTable:
        """The table a compiled graph was built from (merged duplicates stay merged), in the
        graph's node order and CSR entry order."""
        shares = graph.shares
        seg_of_entry = np.repeat(
            np.arange(shares.shape[0], dtype=np.int64), np.diff(shares.indptr).astype(np.int64)
        )
        cat_codes, cat_names = _factorise(graph.segment_category)
        sites = graph.sites.tocoo()
        return cls(
            ids=_strings(graph.ids),
            consumer=graph.segment_owner[seg_of_entry],
            supplier=shares.indices.astype(np.int64),
            category=cat_codes[seg_of_entry],
            categories=_strings(cat_names),
            share=np.asarray(shares.data, dtype=np.float64),
            site_node=sites.row.astype(np.int64),
            site_country=sites.col.astype(np.int64),
            site_share=np.asarray(sites.data, dtype=np.float64),
            countries=_strings(graph.countries),
            buffer=np.asarray(graph.buffers, dtype=np.float64),
        )

    def compile(self) -> CompiledGraph:
        return CompiledGraph.from_edge_arrays(
            self.ids,
            self.consumer,
            self.supplier,
            self.category,
            self.categories,
            self.share,
            site_nodes=self.site_node,
            site_countries=self.site_country,
            country_names=self.countries,
            site_shares=self.site_share,
            buffers=self.buffer if len(self.buffer) else None,
        )

    # -- validation --------------------------------------------------------------------------

    def validate(self, tolerance: float = DEFAULT_TOLERANCE) -> None:
        """Raise :class:`EdgeTableError` naming the first offending row (see module doc)."""
        n, m = self.n_nodes, self.n_edges
        name = self.row_name
        lengths = {
            "consumer": len(self.consumer),
            "supplier": len(self.supplier),
            "category": len(self.category),
            "share": len(self.share),
        }
        if len(set(lengths.values())) != 1:
            raise EdgeTableError(f"edge arrays differ in length: {lengths}")
        if len(self.site_node) != len(self.site_country) or len(self.site_node) != len(
            self.site_share
        ):
            raise EdgeTableError("site arrays differ in length")
        _unique_strings(self.ids, "node id")
        _unique_strings(self.categories, "category")
        _unique_strings(self.countries, "country")
        for what, values, bound in (
            ("consumer", self.consumer, n),
            ("supplier", self.supplier, n),
            ("category", self.category, len(self.categories)),
        ):
            bad = np.flatnonzero((values < 0) | (values >= bound))
            if bad.size:
                k = int(bad[0])
                raise EdgeTableError(
                    f"{name(k)}: {what} index {int(values[k])} out of range [0, {bound})"
                )
        bad = np.flatnonzero(~np.isfinite(self.share) | (self.share < 0.0) | (self.share > 1.0))
        if bad.size:
            k = int(bad[0])
            raise EdgeTableError(
                f"{name(k)} ({self._describe(k)}): share {float(self.share[k])!r} is not in [0, 1]"
            )
        if m == 0:
            self._validate_sites()
            return
        cons = np.asarray(self.consumer, dtype=np.int64)
        cats = np.asarray(self.category, dtype=np.int64)
        sups = np.asarray(self.supplier, dtype=np.int64)
        n_cat = max(1, len(self.categories))
        if n * n_cat * n < 2**62:  # one int64 key: (consumer, category, supplier)
            segment_key = cons * n_cat + cats
            order = np.argsort(segment_key * n + sups)
            s_seg, s_sup = segment_key[order], sups[order]
            same_segment = s_seg[1:] == s_seg[:-1]
        else:
            order = np.lexsort((sups, cats, cons))
            s_cons, s_cats, s_sup = cons[order], cats[order], sups[order]
            same_segment = (s_cons[1:] == s_cons[:-1]) & (s_cats[1:] == s_cats[:-1])
        dup = np.flatnonzero(same_segment & (s_sup[1:] == s_sup[:-1]))
        if dup.size:
            a, b = sorted((int(order[dup[0]]), int(order[dup[0] + 1])))
            raise EdgeTableError(
                f"{name(b)} ({self._describe(b)}) repeats {name(a)}: one row per "
                "(consumer, category, supplier)"
            )
        starts = np.flatnonzero(np.concatenate([[True], ~same_segment]))
        sums = np.add.reduceat(self.share[order], starts)
        off = np.flatnonzero(np.abs(sums - 1.0) > tolerance)
        if off.size:
            s = int(off[0])
            stop = int(starts[s + 1]) if s + 1 < len(starts) else m
            rows = sorted(int(r) for r in order[int(starts[s]) : stop])
            shown = ", ".join(name(r) for r in rows[:5]) + (" ..." if len(rows) > 5 else "")
            k = rows[0]
            raise EdgeTableError(
                f"consumer {str(self.ids[cons[k]])!r}, category {str(self.categories[cats[k]])!r}: "
                f"shares sum to {sums[s]:.6g}, not 1 (±{tolerance:g}) ({shown}); fix the data or "
                "load with normalise=True"
            )
        self._validate_sites()

    def _validate_sites(self) -> None:
        n = self.n_nodes
        for what, values, bound in (
            ("node", self.site_node, n),
            ("country", self.site_country, len(self.countries)),
        ):
            bad = np.flatnonzero((values < 0) | (values >= bound))
            if bad.size:
                k = int(bad[0])
                raise EdgeTableError(
                    f"site row {k}: {what} index {int(values[k])} out of range [0, {bound})"
                )
        share = self.site_share
        bad = np.flatnonzero(~np.isfinite(share) | (share < 0.0) | (share > 1.0))
        if bad.size:
            k = int(bad[0])
            raise EdgeTableError(f"site row {k}: share {float(share[k])!r} is not in [0, 1]")

    def normalised(self) -> EdgeTable:
        """Shares rescaled to sum to exactly 1 within each (consumer, category)."""
        if self.n_edges == 0:
            return self
        key = np.asarray(self.consumer, np.int64) * max(1, len(self.categories)) + np.asarray(
            self.category, np.int64
        )
        _, segment = np.unique(key, return_inverse=True)
        sums = np.bincount(segment, weights=self.share)
        if np.any(sums[segment] <= 0.0):
            k = int(np.flatnonzero(sums[segment] <= 0.0)[0])
            raise EdgeTableError(
                f"{self.row_name(k)} ({self._describe(k)}): the category's shares sum to 0; "
                "cannot normalise"
            )
        return _replace_share(self, self.share / sums[segment])

    def _describe(self, k: int) -> str:
        try:
            return (
                f"consumer {str(self.ids[self.consumer[k]])!r}, category "
                f"{str(self.categories[self.category[k]])!r}, "
                f"supplier {str(self.ids[self.supplier[k]])!r}"
            )
        except IndexError:
            return "indices out of range"


def _replace_share(table: EdgeTable, share: FloatArray) -> EdgeTable:
    return EdgeTable(
        ids=table.ids,
        consumer=table.consumer,
        supplier=table.supplier,
        category=table.category,
        categories=table.categories,
        share=share,
        site_node=table.site_node,
        site_country=table.site_country,
        site_share=table.site_share,
        countries=table.countries,
        row_name=table.row_name,
        buffer=table.buffer,
    )


# -- files ---------------------------------------------------------------------------------------


def read_edge_table(path: str | Path) -> EdgeTable:
    """Read an ``.npz`` or ``.csv`` edge table (not validated: see :func:`load_edge_table`)."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        return _read_npz(p)
    if suffix == ".csv":
        return _read_csv(p)
    if suffix == ".parquet":
        return _read_parquet(p)
    raise EdgeTableError(f"{p}: unknown edge-table format {suffix!r} (use .npz, .parquet or .csv)")


def _read_parquet(path: Path) -> EdgeTable:
    """Columns ``consumer, category, supplier, share`` (nodes by id), like the CSV form.
    Needs pyarrow (``pip install 'sovrisk[parquet]'``)."""
    try:
        import pyarrow.parquet as pq  # optional: only this format needs it
    except ImportError as exc:
        raise EdgeTableError(
            f"{path}: reading Parquet needs pyarrow: pip install 'sovrisk[parquet]'"
        ) from exc
    table = pq.read_table(path)
    missing = [c for c in CSV_HEADER if c not in table.column_names]
    if missing:
        raise EdgeTableError(f"{path}: missing columns {missing} (need {', '.join(CSV_HEADER)})")
    cols = {c: table.column(c).to_pylist() for c in CSV_HEADER}
    bad = [k for k, v in enumerate(cols["share"]) if not isinstance(v, int | float)]
    if bad:
        k = bad[0]
        raise EdgeTableError(f"{path}: row {k}: share {cols['share'][k]!r} is not a number")
    return EdgeTable.from_edges(
        zip(
            map(str, cols["consumer"]),
            map(str, cols["category"]),
            map(str, cols["supplier"]),
            map(float, cols["share"]),
            strict=True,
        ),
        row_name=lambda k: f"{path}: row {k}",
    )


def load_edge_table(
    path: str | Path,
    *,
    validate: bool = True,
    normalise: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> CompiledGraph:
    """Read, validate (unless ``validate=False``), optionally normalise, and compile."""
    table = read_edge_table(path)
    if normalise:
        table = table.normalised()
    if validate:
        table.validate(tolerance)
    try:
        return table.compile()
    except ValueError as exc:
        raise EdgeTableError(f"{path}: {exc}") from exc


def save_edge_table(path: str | Path, source: EdgeTable | CompiledGraph) -> None:
    """Write ``source`` as ``.npz`` (every array, compact integer types) or ``.csv``
    (edges only: sites are dropped)."""
    table = source if isinstance(source, EdgeTable) else EdgeTable.from_compiled(source)
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".npz":
        arrays = _npz_arrays(table)
        with p.open("wb") as fh:
            np.savez(fh, **arrays)
    elif suffix == ".csv":
        ids, cats = table.ids.tolist(), table.categories.tolist()
        with p.open("w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_HEADER)
            writer.writerows(
                zip(
                    map(ids.__getitem__, np.asarray(table.consumer).tolist()),
                    map(cats.__getitem__, np.asarray(table.category).tolist()),
                    map(ids.__getitem__, np.asarray(table.supplier).tolist()),
                    map(repr, np.asarray(table.share, dtype=np.float64).tolist()),
                    strict=True,
                )
            )
    else:
        raise EdgeTableError(f"{p}: unknown edge-table format {suffix!r} (use .npz or .csv)")


def _npz_arrays(table: EdgeTable) -> dict[str, Any]:
    index_type = np.int32 if max(table.n_nodes, len(table.categories)) < 2**31 else np.int64
    arrays: dict[str, Any] = {
        "format": np.array(FORMAT),
        "ids": _strings(table.ids),
        "consumer": np.asarray(table.consumer).astype(index_type),
        "category": np.asarray(table.category).astype(index_type),
        "supplier": np.asarray(table.supplier).astype(index_type),
        "share": np.asarray(table.share, dtype=np.float64),
        "categories": _strings(table.categories),
        "site_node": np.asarray(table.site_node).astype(index_type),
        "site_country": np.asarray(table.site_country).astype(index_type),
        "site_share": np.asarray(table.site_share, dtype=np.float64),
        "countries": _strings(table.countries),
    }
    if len(table.buffer):
        arrays["buffer"] = np.asarray(table.buffer, dtype=np.float64)
    return arrays


def edge_table_from_bytes(data: bytes, name: str = "edge_table.npz") -> EdgeTable:
    """An ``.npz`` edge table held in memory (a stored version's file); ``name`` is used in
    error messages. Raises :class:`EdgeTableError` for anything that is not one."""
    try:
        return _read_npz(io.BytesIO(data), name)
    except (OSError, ValueError, KeyError) as exc:
        if isinstance(exc, EdgeTableError):
            raise
        raise EdgeTableError(f"{name}: not an .npz edge table ({exc})") from exc


def edge_table_bytes(table: EdgeTable) -> bytes:
    """``table`` as ``.npz`` bytes (the format :func:`save_edge_table` writes)."""
    buffer = io.BytesIO()
    np.savez(buffer, **_npz_arrays(table))
    return buffer.getvalue()


def _read_npz(path: Path | io.BytesIO, name: str | None = None) -> EdgeTable:
    path_name = name or str(path)
    _check_npz_sizes(path, path_name)
    if isinstance(path, io.BytesIO):
        path.seek(0)
    with np.load(path, allow_pickle=False) as z:
        names = set(z.files)
        required = {"ids", "consumer", "category", "supplier", "share", "categories"}
        missing = sorted(required - names)
        if missing:
            raise EdgeTableError(f"{path_name}: missing arrays {missing} (format {FORMAT})")
        if "format" in names and str(z["format"]) != FORMAT:
            raise EdgeTableError(f"{path_name}: format {str(z['format'])!r}, expected {FORMAT!r}")
        for key in ("consumer", "category", "supplier", "site_node", "site_country"):
            if key in names and z[key].dtype.kind not in "iu":
                raise EdgeTableError(f"{path_name}: {key} must be integers, not {z[key].dtype}")
        return EdgeTable(
            ids=_strings(z["ids"]),
            consumer=z["consumer"],
            supplier=z["supplier"],
            category=z["category"],
            categories=_strings(z["categories"]),
            share=z["share"].astype(np.float64, copy=False),
            site_node=z["site_node"] if "site_node" in names else _empty_int(),
            site_country=z["site_country"] if "site_country" in names else _empty_int(),
            site_share=(
                z["site_share"].astype(np.float64, copy=False)
                if "site_share" in names
                else _empty_float()
            ),
            countries=_strings(z["countries"]) if "countries" in names else _empty_str(),
            buffer=(
                z["buffer"].astype(np.float64, copy=False) if "buffer" in names else _empty_float()
            ),
        )


def _check_npz_sizes(path: Path | io.BytesIO, name: str) -> None:
    """Refuse an archive whose arrays unpack past :data:`MAX_NPZ_BYTES`, or whose array
    headers claim more data than their member holds, before numpy allocates anything: the
    sizes an archive declares bound what zipfile will read, but numpy sizes an array from its
    header."""
    readers = {(1, 0): npformat.read_array_header_1_0, (2, 0): npformat.read_array_header_2_0}
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            unpacked = sum(info.file_size for info in members)
            if unpacked > MAX_NPZ_BYTES:
                raise EdgeTableError(
                    f"{name}: its arrays unpack to {unpacked:,} bytes, over the limit of "
                    f"{MAX_NPZ_BYTES:,}"
                )
            for info in members:
                with archive.open(info) as member:
                    version = npformat.read_magic(member)
                    reader = readers.get(version)
                    if reader is None:
                        raise EdgeTableError(
                            f"{name}: {info.filename}: .npy format version {version} (use "
                            "numpy.savez)"
                        )
                    shape, _, dtype = reader(member)
                    claimed = math.prod(shape) * dtype.itemsize
                    if claimed > info.file_size:
                        raise EdgeTableError(
                            f"{name}: {info.filename}: its header claims {claimed:,} bytes of "
                            f"data, the member holds {info.file_size:,}"
                        )
    except EdgeTableError:
        raise
    except (zipfile.BadZipFile, ValueError, EOFError) as exc:  # not a zip, or not .npy inside
        raise EdgeTableError(f"{name}: not an .npz edge table ({exc})") from exc


def _read_csv(path: Path) -> EdgeTable:
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader, None)
        if header is None or tuple(h.strip().lower() for h in header) != CSV_HEADER:
            raise EdgeTableError(f"{path}:1: header must be {','.join(CSV_HEADER)}")
        rows = list(reader)
    for k, row in enumerate(rows):  # only the column count: cheap, and names the line
        if len(row) != 4:
            raise EdgeTableError(f"{path}:{k + 2}: expected 4 fields, found {len(row)}")
    columns = list(zip(*rows, strict=True)) if rows else [(), (), (), ()]
    try:
        share = np.array(columns[3], dtype=np.float64)
    except ValueError:
        for k, value in enumerate(columns[3]):
            try:
                float(value)
            except ValueError:
                raise EdgeTableError(f"{path}:{k + 2}: share {value!r} is not a number") from None
        raise
    cons, cats, sups = (list(c) for c in columns[:3])
    ids = sorted(set(cons) | set(sups))
    lookup = {nid: k for k, nid in enumerate(ids)}
    cat_codes, cat_names = _factorise(cats)
    return EdgeTable(
        ids=_strings(ids),
        consumer=np.fromiter(map(lookup.__getitem__, cons), np.int64, count=len(cons)),
        supplier=np.fromiter(map(lookup.__getitem__, sups), np.int64, count=len(sups)),
        category=cat_codes,
        categories=_strings(cat_names),
        share=share,
        row_name=lambda k: f"{path}:{k + 2}",
    )


def _strings(values: Iterable[str] | npt.NDArray[Any]) -> StrArray:
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    if arr.size == 0:
        return _empty_str()
    if arr.dtype.kind != "U":
        raise EdgeTableError(f"expected strings, got {arr.dtype}")
    return arr


def _unique_strings(values: StrArray, what: str) -> None:
    if len(values) < 2:
        return
    order = np.argsort(values, kind="stable")
    sorted_values = values[order]
    dup = np.flatnonzero(sorted_values[1:] == sorted_values[:-1])
    if dup.size:
        raise EdgeTableError(
            f"{what} {str(sorted_values[dup[0]])!r} is listed twice "
            f"(rows {int(order[dup[0]])} and {int(order[dup[0] + 1])})"
        )
