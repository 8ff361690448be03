"""Convert the CSET/ETO Advanced Semiconductor Supply Chain ("Chip Explorer") dataset into a
sovrisk dataset (docs/eto-import.md).

Users who hold the ETO CSV files can run the engine on the whole chip supply chain without
hand-copying market shares. The ETO data is CC BY-NC 4.0: this module contains none of it,
and what it produces is derived data for non-commercial use only.

How the output is shaped, and why:

* every ETO input is an *aggregate* node (a whole market or process step). Aggregates carry
  layer ``aggregate`` (unweighted by the scoring, like ``provider``) and the ``aggregate_market``
  tag, so per-layer firm/country concentration and the SPOF and firm scores see only the
  producing suppliers below them, as with the firm-level nodes of the bundled data;
* an input's market shares become supplier nodes: one per (input, firm), sited in the firm's
  home country, plus one per country for the part of that country's share no named firm
  accounts for. ETO's country rows are authoritative for geography;
* ETO ``goes_into`` and ``is_type_of`` relations become supply edges (AND across categories);
* a process step also needs its stage's capacity (the design, fabrication or ATP split);
* one synthetic provider buys the ultimate output, because the loader needs a provider.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import math
import re
import sys
from collections import defaultdict, deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path

from sovrisk.models.graph.dataset import REQUIRED_FILES
from sovrisk.models.graph.loader import (
    COUNTRY_COLUMNS,
    EDGE_HEADER,
    NODE_HEADER,
    REGIME_HEADER,
    SITE_HEADER,
    SOURCE_HEADER,
)
from sovrisk.models.graph.schema import AGGREGATE_MARKET_TAG, NodeKind

#: Source id carried by every record derived from the ETO files.
SOURCE_ID = "cset-eto-chip-explorer"
#: Source id added to what the importer had to estimate or place itself (quality C).
ESTIMATE_SOURCE_ID = "sovrisk-eto-import"
#: The synthetic consumer of the ultimate output (the loader requires a provider).
PROVIDER_ID = "eto-industry"
#: Pseudo-country (ISO 3166 user-assigned range) for shares ETO attributes to no country.
RESIDUAL_COUNTRY = "XRW"
#: Layer of aggregate nodes: absent from the scoring's layer weights, so never a "firm".
AGGREGATE_LAYER = "aggregate"

#: Tags saying what each output node stands for.
INPUT_TAG = "eto-input"
FIRM_TAG = "eto-firm"
RESIDUAL_TAG = "eto-residual"
STAGE_TAG = "eto-stage-capacity"
SYNTHETIC_TAG = "eto-synthetic"

#: Category of an input's own market (its suppliers) and of a process step's stage capacity.
PRODUCERS_CATEGORY = "producers"
CAPACITY_CATEGORY = "capacity"
SUBTYPES_CATEGORY = "subtypes"
FLEET_CATEGORY = "fleet"
_RESERVED_CATEGORIES = frozenset(
    {PRODUCERS_CATEGORY, CAPACITY_CATEGORY, SUBTYPES_CATEGORY, FLEET_CATEGORY}
)

#: The ETO files read, in the order hashed into the dataset version.
ETO_FILES: tuple[str, ...] = (
    "inputs.csv",
    "providers.csv",
    "provision.csv",
    "sequence.csv",
    "stages.csv",
)
#: The files produced: exactly the ones models.graph.loader requires.
OUTPUT_FILES: tuple[str, ...] = REQUIRED_FILES


ETO_URL = "https://eto.tech/dataset-docs/chipexplorer"
ETO_TITLE = "Advanced Semiconductor Supply Chain Dataset (ETO Chip Explorer)"
ETO_PUBLISHER = (
    "Center for Security and Emerging Technology (CSET) / Emerging Technology Observatory "
    "(ETO), Georgetown University"
)
ETO_ATTRIBUTION = (
    "Data: Emerging Technology Observatory (CSET, Georgetown University), Advanced "
    f"Semiconductor Supply Chain Dataset, {ETO_URL}, CC BY-NC 4.0."
)
LICENCE = (
    "CC BY-NC 4.0: derived from the CSET/ETO Advanced Semiconductor Supply Chain Dataset. "
    "Non-commercial use only: do not redistribute it commercially or ship it in a commercial "
    "product without CSET's permission."
)

#: ETO stages (``S1`` design, ``S2`` fabrication, ``S3`` assembly, test and packaging) to
#: the kind and layer of their process steps and capacity nodes (docs/eto-import.md).
STAGE_KINDS: Mapping[str, tuple[NodeKind, str]] = {
    "S1": (NodeKind.DESIGNER, "design"),
    "S2": (NodeKind.FOUNDRY_PROCESS, "foundry"),
    "S3": (NodeKind.PACKAGING, "packaging"),
}
DESIGN_STAGE = "S1"
ASSEMBLY_STAGE = "S3"

_ISO3 = re.compile(r"^[A-Z]{3}$")
_SIZE = re.compile(
    r"\$\s*([0-9][0-9,]*(?:\.[0-9]+)?)\s*(thousand|million|billion|trillion)\b", re.IGNORECASE
)
_UNITS = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "trillion": 1e12}
_ETO_ID = re.compile(r"^[A-Za-z0-9]+$")
#: Share differences below this many percentage points are float noise, not a supplier.
_NOISE_PP = 1e-6


@dataclass(frozen=True, slots=True)
class _Input:
    id: str
    name: str
    type: str
    stage: str  # own stage id (process steps only)
    size: float | None  # global market size in US$, when ETO states one


@dataclass(frozen=True, slots=True)
class _Provider:
    id: str
    name: str
    alias: str
    is_country: bool
    code: str  # ISO3-shaped code, or RESIDUAL_COUNTRY when ETO names no country


@dataclass(frozen=True, slots=True)
class _Provision:
    provider: str
    target: str
    share: float | None  # percent; None = listed as a provider without a share
    year: int


@dataclass(frozen=True, slots=True)
class _Entry:
    """One supplier of a market: a named firm (``provider`` set) or a country residual."""

    provider: str  # ETO provider id of a named firm; "" for a country residual
    country: str
    share: float  # fraction of the market
    quality: str
    note: str


@dataclass(frozen=True, slots=True)
class _Market:
    """A market as modelled: its suppliers and ETO's own country split (when it gives one)."""

    year: int
    entries: tuple[_Entry, ...]
    split: dict[str, float] | None


@dataclass(slots=True)
class _Build:
    """The output tables under construction, and the structure the site pass reads."""

    as_of: dt.date
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    edges: list[dict[str, str]] = field(default_factory=list)
    sites: list[dict[str, str]] = field(default_factory=list)
    categories: dict[str, dict[str, list[tuple[str, float]]]] = field(default_factory=dict)
    mixes: dict[str, dict[str, float]] = field(default_factory=dict)

    def node(
        self,
        nid: str,
        kind: NodeKind,
        name: str,
        owner: str,
        hq: str,
        layer: str,
        tags: Sequence[str],
        quality: str,
        year: int,
        note: str,
    ) -> None:
        if nid in self.nodes:
            raise ValueError(f"two ETO records map to node id {nid!r}")
        self.nodes[nid] = {
            "id": nid,
            "kind": str(kind),
            "name": name,
            "owner": owner,
            "hq_country": hq,
            "layer": layer,
            "tags": ";".join(tags),
            "quality": quality,
            "source": _sources(quality),
            "as_of": _year_end(year, self.as_of),
            "notes": note,
        }

    def edge(
        self,
        consumer: str,
        category: str,
        supplier: str,
        share: float,
        quality: str,
        year: int,
        note: str,
    ) -> None:
        self.categories.setdefault(consumer, {}).setdefault(category, []).append((supplier, share))
        self.edges.append(
            {
                "consumer": consumer,
                "category": category,
                "supplier": supplier,
                "share": _num(share),
                "quality": quality,
                "source": _sources(quality),
                "as_of": _year_end(year, self.as_of),
                "notes": note,
            }
        )

    def sited(self, nid: str, mix: Mapping[str, float], quality: str, year: int, note: str) -> None:
        self.mixes[nid] = dict(mix)
        for country in sorted(mix):
            self.sites.append(
                {
                    "node": nid,
                    "country": country,
                    "share": _num(mix[country]),
                    "site_name": "",
                    "quality": quality,
                    "source": _sources(quality),
                    "as_of": _year_end(year, self.as_of),
                    "notes": note,
                }
            )


def convert_eto(path: str | Path, *, base: Path | None = None) -> dict[str, bytes]:
    """Read the ETO folder ``path`` and return a complete sovrisk dataset (file -> bytes).

    ``base`` is a sovrisk dataset folder whose ``country_risk.csv`` rows (and the sources
    they cite) are reused for the countries that appear; default: the repository's ``data/``.
    Deterministic: the same files give the same bytes. Raises ``ValueError`` when the ETO
    files are malformed or their relations form a cycle.
    """
    root = Path(path)
    base_dir = base if base is not None else Path(__file__).resolve().parents[2] / "data"
    inputs = _read_inputs(root)
    stages = {r["stage_id"]: r["stage_name"] for r in _read_table(root / "stages.csv")}
    providers = _read_providers(root)
    provision = _read_provision(root, providers, set(inputs) | set(stages))
    relations = _read_sequence(root, inputs)
    base_countries = _read_table(base_dir / "country_risk.csv")
    base_sources = _read_table(base_dir / "sources.csv")

    years = [r.year for r in provision if r.year > 0]
    data_year = max(years) if years else 0
    as_of = dt.date(data_year, 12, 31) if data_year else dt.date(2000, 1, 1)
    by_target: dict[str, list[_Provision]] = defaultdict(list)
    for row in provision:
        by_target[row.target].append(row)

    out = _Build(as_of=as_of)
    stage_markets = _add_stages(out, stages, by_target, providers)
    own_split = _add_inputs(out, inputs, relations, by_target, providers, stage_markets)
    _add_relations(out, inputs, relations)
    _add_aggregate_sites(out, own_split)
    _add_provider(out, inputs, relations, stage_markets)

    used = {s["country"] for s in out.sites} | {n["hq_country"] for n in out.nodes.values()}
    countries = _country_rows(used, base_countries, providers, as_of)
    cited = {sid for row in countries for sid in row["source"].split(";") if sid}
    files = {
        "dataset.toml": _dataset_toml(root, as_of, data_year),
        "sources.csv": _csv(SOURCE_HEADER, _source_rows(cited, base_sources, data_year)),
        "country_risk.csv": _csv(COUNTRY_COLUMNS, countries),
        "nodes.csv": _csv(NODE_HEADER, [out.nodes[k] for k in sorted(out.nodes)]),
        "edges.csv": _csv(
            EDGE_HEADER,
            sorted(out.edges, key=lambda e: (e["consumer"], e["category"], e["supplier"])),
        ),
        "sites.csv": _csv(SITE_HEADER, sorted(out.sites, key=lambda s: (s["node"], s["country"]))),
        "regimes.csv": _csv(REGIME_HEADER, []),
    }
    return {name: files[name].encode("utf-8") for name in OUTPUT_FILES}


# -- the graph ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Relations:
    """sequence.csv as (input, consumer) pairs: ``goes_into`` and ``is_type_of`` (subtype,
    group)."""

    goes_into: tuple[tuple[str, str], ...]
    type_of: tuple[tuple[str, str], ...]

    def consumers(self) -> dict[str, list[str]]:
        feeds: dict[str, list[str]] = defaultdict(list)
        for child, parent in (*self.goes_into, *self.type_of):
            feeds[child].append(parent)
        return feeds


def _add_stages(
    out: _Build,
    stages: Mapping[str, str],
    by_target: Mapping[str, list[_Provision]],
    providers: Mapping[str, _Provider],
) -> dict[str, _Market]:
    """One capacity node per (stage, country), sited there: ETO gives stages country shares
    only, so each country's firms are pooled (aggregate_market)."""
    markets: dict[str, _Market] = {}
    for sid in sorted(stages, key=_id_key):
        market = _market(by_target.get(sid, []), providers)
        if not market.entries:
            continue
        markets[sid] = market
        kind, layer = STAGE_KINDS.get(sid, (NodeKind.FOUNDRY_PROCESS, "foundry"))
        for entry in market.entries:
            nid = _stage_node(sid, entry.country)
            out.node(
                nid,
                kind,
                f"{stages[sid]} capacity in {entry.country}",
                f"{stages[sid]} industry in {entry.country}",
                entry.country,
                layer,
                (AGGREGATE_MARKET_TAG, STAGE_TAG),
                entry.quality,
                market.year,
                f"ETO stage {sid}: the country's share of the stage; its firms pooled.",
            )
            out.sited(nid, {entry.country: 1.0}, entry.quality, market.year, "")
    return markets


def _add_inputs(
    out: _Build,
    inputs: Mapping[str, _Input],
    relations: _Relations,
    by_target: Mapping[str, list[_Provision]],
    providers: Mapping[str, _Provider],
    stage_markets: Mapping[str, _Market],
) -> dict[str, tuple[dict[str, float], int, str]]:
    """An aggregate node per ETO input; its market (unless it has subtypes) as supplier
    nodes; a process step's stage capacity. Returns the ETO country split of each input that
    has one, for its sites."""
    groups = {parent for _, parent in relations.type_of}
    stage_of = _nearest_stages(inputs, relations.consumers())
    own_split: dict[str, tuple[dict[str, float], int, str]] = {}
    for iid in sorted(inputs, key=_id_key):
        item = inputs[iid]
        kind, layer = _kind_and_layer(item, stage_of.get(iid, ""), inputs, relations)
        nid = _input_node(iid)
        rows = by_target.get(iid, [])
        market = _market(rows, providers) if rows else None
        notes = [
            f"ETO input {iid} ({item.type}" + (f", stage {item.stage})." if item.stage else ").")
        ]
        if market is not None and market.split is not None:
            own_split[nid] = (market.split, market.year, "ETO country shares of this input.")
        if market is not None and market.entries and iid not in groups:
            for entry in market.entries:
                supplier = _add_supplier(out, item, entry, providers, kind, layer, market.year)
                out.edge(
                    nid,
                    PRODUCERS_CATEGORY,
                    supplier,
                    entry.share,
                    entry.quality,
                    market.year,
                    entry.note,
                )
            notes.append(f"Market shares of {market.year}, as fractions of their total.")
        elif market is not None and iid in groups:
            notes.append("Has subtypes: supplied by them; its own shares set its sites only.")
        stage = stage_markets.get(item.stage) if item.type == "process" else None
        if stage is not None:
            if nid not in own_split and stage.split is not None:
                note = f"Runs where its stage runs: stage {item.stage} country shares."
                own_split[nid] = (stage.split, stage.year, note)
            for entry in stage.entries:
                out.edge(
                    nid,
                    CAPACITY_CATEGORY,
                    _stage_node(item.stage, entry.country),
                    entry.share,
                    entry.quality,
                    stage.year,
                    f"Stage {item.stage} capacity by country.",
                )
        out.node(
            nid,
            kind,
            item.name,
            f"ETO aggregate: {item.name}",
            "",  # set from the sites, once known
            AGGREGATE_LAYER,
            (AGGREGATE_MARKET_TAG, INPUT_TAG, f"eto-type-{_slug(item.type)}", f"eto-layer-{layer}"),
            "A",
            market.year if market is not None else 0,
            " ".join(notes),
        )
    return own_split


def _add_supplier(
    out: _Build,
    item: _Input,
    entry: _Entry,
    providers: Mapping[str, _Provider],
    kind: NodeKind,
    layer: str,
    year: int,
) -> str:
    """A producing node of one input: a named firm (owner = the firm, for firm-level HHI) or
    the residual of a country's share."""
    if entry.provider:
        firm = providers[entry.provider]
        nid = f"{_input_node(item.id)}--{_slug_id(firm.id)}"
        out.node(
            nid,
            kind,
            f"{firm.name}: {item.name}",
            firm.name,
            entry.country,
            layer,
            (FIRM_TAG,),
            "A",
            year,
            f"ETO provider {firm.id}.",
        )
        out.sited(
            nid,
            {entry.country: 1.0},
            "C",
            year,
            "Home country used as the production site (ETO attributes shares by firm "
            "nationality; it has no plant locations).",
        )
    else:
        nid = f"{_input_node(item.id)}--other-{entry.country.lower()}"
        out.node(
            nid,
            kind,
            f"Other {entry.country} suppliers: {item.name}",
            f"Other {entry.country} suppliers of {item.name}",
            entry.country,
            layer,
            (AGGREGATE_MARKET_TAG, RESIDUAL_TAG),
            "A",
            year,
            "The country's ETO share less the named firms' shares there.",
        )
        out.sited(nid, {entry.country: 1.0}, "A", year, "")
    return nid


def _add_relations(out: _Build, inputs: Mapping[str, _Input], relations: _Relations) -> None:
    """``goes_into``: the consumer needs the input, one category each (AND across them).
    ``is_type_of``: a group is the sum of its subtypes, so they share one category (OR),
    weighted by ETO's market sizes (equal weights, C, where a size is missing)."""
    for child, parent in relations.goes_into:
        consumer, supplier = _input_node(parent), _input_node(child)
        category = _slug(inputs[child].name) or supplier
        if category in out.categories.get(consumer, {}) or category in _RESERVED_CATEGORIES:
            category = f"{category}-{_slug_id(child)}"
        note = f"ETO: {child} goes into {parent}."
        out.edge(consumer, category, supplier, 1.0, "A", 0, note)
    members: dict[str, list[str]] = defaultdict(list)
    for child, parent in relations.type_of:
        members[parent].append(child)
    for parent in sorted(members, key=_id_key):
        subtypes = sorted(members[parent], key=_id_key)
        sizes = [_size(child, inputs, members) for child in subtypes]
        known = [s for s in sizes if s is not None and s > 0]
        for child, size in zip(subtypes, sizes, strict=True):
            if len(known) == len(subtypes):
                assert size is not None
                share, quality = size / math.fsum(known), "A"
                note = f"ETO: {child} is a type of {parent}; share = its market size."
            else:
                share, quality = 1.0 / len(subtypes), "C"
                note = f"ETO: {child} is a type of {parent}; a market size is missing: equal."
            out.edge(
                _input_node(parent), SUBTYPES_CATEGORY, _input_node(child), share, quality, 0, note
            )


def _size(
    iid: str, inputs: Mapping[str, _Input], members: Mapping[str, Sequence[str]]
) -> float | None:
    """ETO's market size of an input, else the sum of its subtypes' (when all are known)."""
    own = inputs[iid].size
    if own is not None or iid not in members:
        return own
    parts = [_size(child, inputs, members) for child in members[iid]]
    return math.fsum(p for p in parts if p is not None) if None not in parts else None


def _add_aggregate_sites(
    out: _Build, own_split: Mapping[str, tuple[dict[str, float], int, str]]
) -> None:
    """Sites of aggregate nodes, suppliers first. ETO's own country split when the input has
    one (A); otherwise the equal-weight mean of its categories' country mixes (C)."""
    for nid in _topological(out.nodes, out.categories):
        if nid in out.mixes:
            continue
        if nid in own_split:
            split, year, note = own_split[nid]
            out.sited(nid, split, "A", year, note)
        else:
            cats = out.categories.get(nid, {})
            mixes = [_category_mix(edges, out.mixes) for edges in cats.values()]
            mix = _mean(mixes) if mixes else {RESIDUAL_COUNTRY: 1.0}
            out.sited(nid, mix, "C", 0, "Aggregate: mean country mix of its input categories.")
        out.nodes[nid]["hq_country"] = _top(out.mixes[nid])


def _add_provider(
    out: _Build,
    inputs: Mapping[str, _Input],
    relations: _Relations,
    stage_markets: Mapping[str, _Market],
) -> None:
    """The synthetic provider the loader requires: it buys the ultimate output (C)."""
    finals = [i for i in inputs if inputs[i].type == "ultimate_output"]
    if not finals:  # no typed output: whatever feeds nothing
        feeds = relations.consumers()
        finals = [i for i in inputs if i not in feeds]
    if not finals:
        raise ValueError("the ETO inputs have no ultimate output to attach a provider to")
    finals.sort(key=_id_key)
    design = stage_markets.get(DESIGN_STAGE)
    home_mix = (
        {e.country: e.share for e in design.entries}
        if design is not None
        else out.mixes[_input_node(finals[0])]
    )
    home = _top({c: s for c, s in home_mix.items() if c != RESIDUAL_COUNTRY} or home_mix)
    out.node(
        PROVIDER_ID,
        NodeKind.PROVIDER,
        "Chip industry (synthetic buyer of the ETO graph)",
        "ETO chip industry (synthetic)",
        home,
        AGGREGATE_LAYER,
        (SYNTHETIC_TAG,),
        "C",
        0,
        "Not in the ETO data: the loader needs a provider with fleet edges. It buys the "
        "ultimate output; home = the country with the largest design-stage share.",
    )
    for final in finals:
        out.edge(
            PROVIDER_ID,
            FLEET_CATEGORY,
            _input_node(final),
            1.0 / len(finals),
            "C",
            0,
            "Synthetic fleet edge.",
        )


# -- markets ------------------------------------------------------------------------------


def _market(rows: Sequence[_Provision], providers: Mapping[str, _Provider]) -> _Market:
    """Suppliers of one input or stage from its provision rows of the latest year.

    * Country shares given: they fix the geography. Named firms keep their shares (scaled
      down where they exceed their country's share, a rounding artefact); each country's
      remainder becomes a residual supplier. With firms listed but no firm shares, a
      country's share is split equally among its listed firms (C).
    * Firm shares only: named firms as given; unattributed firm shares go to XRW.
    * Presence only: equal shares for the listed firms, else the listed countries (C).
    """
    if not rows:
        return _Market(0, (), None)
    with_share = [r.year for r in rows if r.share is not None]
    year = max(with_share) if with_share else max(r.year for r in rows)
    latest = [r for r in rows if r.year == year]
    country_pct: dict[str, float] = defaultdict(float)
    listed_countries: set[str] = set()
    firm_pct: dict[str, float] = {}
    listed_firms: list[str] = []
    unattributed_pct = 0.0
    for r in latest:
        p = providers[r.provider]
        if p.is_country:
            listed_countries.add(p.code)
            if r.share is not None:
                country_pct[p.code] += r.share
        elif p.code == RESIDUAL_COUNTRY:  # ETO's unattributed "various" firms
            unattributed_pct += r.share or 0.0
        else:
            listed_firms.append(p.id)
            if r.share is not None:
                firm_pct[p.id] = r.share
    listed_firms.sort(key=_id_key)
    entries: list[tuple[str, str, float, str, str]] = []  # provider, country, pct, q, note
    split: dict[str, float] | None = None
    if sum(country_pct.values()) > 0:
        split = _normalised({c: v for c, v in country_pct.items() if v > 0})
        if firm_pct:
            entries = _reconcile(country_pct, firm_pct, providers)
        else:
            for country in sorted(c for c, v in country_pct.items() if v > 0):
                here = [f for f in listed_firms if providers[f].code == country]
                for firm in here:
                    entries.append(
                        (
                            firm,
                            country,
                            country_pct[country] / len(here),
                            "C",
                            "ETO gives no firm shares: the country's share is split "
                            "equally among its listed firms.",
                        )
                    )
                if not here:
                    entries.append(("", country, country_pct[country], "A", "Country share."))
    elif any(v > 0 for v in firm_pct.values()):
        for firm in listed_firms:
            if firm_pct.get(firm, 0.0) > 0:
                entries.append((firm, providers[firm].code, firm_pct[firm], "A", "Firm share."))
        if unattributed_pct > 0:
            entries.append(
                ("", RESIDUAL_COUNTRY, unattributed_pct, "A", "Unattributed firms' share.")
            )
    elif listed_firms:
        note = "ETO lists the firm without a share: equal split among the listed firms."
        entries = [(f, providers[f].code, 1.0, "C", note) for f in listed_firms]
    elif listed_countries:
        note = "ETO lists the country without a share: equal split among the listed countries."
        entries = [("", c, 1.0, "C", note) for c in sorted(listed_countries)]
    total = math.fsum(e[2] for e in entries)
    return _Market(
        year,
        tuple(
            _Entry(provider, country, pct / total, quality, note)
            for provider, country, pct, quality, note in entries
        ),
        split,
    )


def _reconcile(
    country_pct: Mapping[str, float],
    firm_pct: Mapping[str, float],
    providers: Mapping[str, _Provider],
) -> list[tuple[str, str, float, str, str]]:
    """Named firms plus per-country residuals whose country totals equal ETO's country rows."""
    named: dict[str, float] = defaultdict(float)
    for firm, pct in firm_pct.items():
        named[providers[firm].code] += pct
    entries: list[tuple[str, str, float, str, str]] = []
    for firm in sorted(firm_pct, key=_id_key):
        pct, country = firm_pct[firm], providers[firm].code
        if pct <= 0:
            continue
        cap = country_pct.get(country, 0.0)
        factor = min(1.0, cap / named[country])
        if factor <= 0:
            continue  # ETO puts no share in the firm's country: geography wins
        note = "Firm share." if factor == 1.0 else "Firm share, scaled to its country's share."
        entries.append((firm, country, pct * factor, "A", note))
    for country in sorted(country_pct):
        rest = country_pct[country] - min(named.get(country, 0.0), country_pct[country])
        if rest > _NOISE_PP:
            entries.append(
                ("", country, rest, "A", "Country share less the named firms' shares there.")
            )
    return entries


# -- kinds, layers, stages ------------------------------------------------------------------


def _nearest_stages(
    inputs: Mapping[str, _Input], feeds: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Stage of each input: its own (process steps), else that of the nearest process step it
    feeds (breadth-first along goes_into / is_type_of; ties to the earliest stage)."""
    stages: dict[str, str] = {}
    for iid, item in inputs.items():
        if item.stage:
            stages[iid] = item.stage
            continue
        seen = {iid}
        frontier = deque([iid])
        while frontier and iid not in stages:
            found: list[str] = []
            for _ in range(len(frontier)):
                for nxt in feeds.get(frontier.popleft(), ()):
                    if nxt in seen:
                        continue
                    seen.add(nxt)
                    frontier.append(nxt)
                    if inputs[nxt].type == "process" and inputs[nxt].stage:
                        found.append(inputs[nxt].stage)
            if found:
                stages[iid] = min(found, key=_id_key)
    return stages


def _kind_and_layer(
    item: _Input, stage: str, inputs: Mapping[str, _Input], relations: _Relations
) -> tuple[NodeKind, str]:
    """Closest sovrisk kind and layer for an ETO input type and stage (docs/eto-import.md)."""
    if item.type == "process":
        return STAGE_KINDS.get(item.stage, (NodeKind.FOUNDRY_PROCESS, "foundry"))
    if item.type == "ultimate_output":
        return NodeKind.ACCELERATOR, "accelerator"
    if item.type == "design_resource":
        return NodeKind.DESIGNER, "design"
    if item.type == "tool_resource":
        if _named_like(item.id, "lithograph", inputs, relations):
            return NodeKind.EQUIPMENT, "lithography"
        if stage == DESIGN_STAGE:
            return NodeKind.EDA_SOFTWARE, "eda"
        if stage == ASSEMBLY_STAGE:
            return NodeKind.EQUIPMENT, "assembly_test_equipment"
        return NodeKind.EQUIPMENT, "fab_equipment"
    if item.type == "material_resource":
        if _named_like(item.id, "substrate", inputs, relations):
            return NodeKind.SUBSTRATE, "substrate"
        if stage == DESIGN_STAGE:
            return NodeKind.DESIGNER, "design"
        return NodeKind.MATERIAL, "materials"
    raise ValueError(f"inputs.csv: input {item.id} has unknown type {item.type!r}")


def _named_like(iid: str, word: str, inputs: Mapping[str, _Input], relations: _Relations) -> bool:
    """True when the input or a group it is a type of has ``word`` in its name."""
    groups: dict[str, list[str]] = defaultdict(list)
    for child, parent in relations.type_of:
        groups[child].append(parent)
    todo, seen = [iid], {iid}
    while todo:
        current = todo.pop()
        if word in inputs[current].name.lower():
            return True
        for parent in groups.get(current, ()):
            if parent not in seen:
                seen.add(parent)
                todo.append(parent)
    return False


# -- sites ----------------------------------------------------------------------------------


def _topological(
    nodes: Iterable[str], categories: Mapping[str, Mapping[str, list[tuple[str, float]]]]
) -> list[str]:
    """Node ids with every supplier before its consumers (ids sorted within a level)."""
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for nid in sorted(nodes):
        sorter.add(
            nid, *sorted({s for edges in categories.get(nid, {}).values() for s, _ in edges})
        )
    try:
        sorter.prepare()
    except CycleError as exc:
        raise ValueError(f"sequence.csv: the relations form a cycle: {exc.args[1]}") from exc
    order: list[str] = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        order.extend(ready)
        sorter.done(*ready)
    return order


def _category_mix(
    edges: Sequence[tuple[str, float]], mixes: Mapping[str, Mapping[str, float]]
) -> dict[str, float]:
    mix: dict[str, float] = defaultdict(float)
    for supplier, share in edges:
        for country, part in mixes[supplier].items():
            mix[country] += share * part
    return _normalised(mix)


def _mean(mixes: Sequence[Mapping[str, float]]) -> dict[str, float]:
    total: dict[str, float] = defaultdict(float)
    for mix in mixes:
        for country, part in mix.items():
            total[country] += part / len(mixes)
    return _normalised(total)


def _normalised(values: Mapping[str, float]) -> dict[str, float]:
    total = math.fsum(v for v in values.values() if v > 0)
    return {k: v / total for k, v in sorted(values.items()) if v > 0} if total > 0 else {}


def _top(mix: Mapping[str, float]) -> str:
    return min(mix.items(), key=lambda kv: (-kv[1], kv[0]))[0]


# -- countries and sources ------------------------------------------------------------------


def _country_rows(
    used: Iterable[str],
    base_rows: Sequence[Mapping[str, str]],
    providers: Mapping[str, _Provider],
    as_of: dt.date,
) -> list[dict[str, str]]:
    """The base table's rows for the codes used; a quality-C row for any other code (ETO's
    region codes, countries the base table lacks, XRW) at the base table's mean risk."""
    base = {row["iso3"]: row for row in base_rows}
    risks = [float(row["risk"]) for row in base_rows if row.get("risk")]
    wgi = [float(row["wgi_risk"]) for row in base_rows if row.get("wgi_risk")]
    names = {p.code: p.alias or p.name for p in providers.values() if p.is_country}
    rows: list[dict[str, str]] = []
    for code in sorted(set(used)):
        if code in base:
            rows.append({column: base[code].get(column, "") for column in COUNTRY_COLUMNS})
            continue
        if not risks:
            raise ValueError(f"no country risk for {code}: the base country_risk.csv is empty")
        mean_wgi = math.fsum(wgi) / len(wgi) if wgi else math.fsum(risks) / len(risks)
        name = (
            "Unattributed / various countries (ETO)"
            if code == RESIDUAL_COUNTRY
            else f"{names.get(code, code)} (ETO code; not in the base country table)"
        )
        rows.append(
            {
                "iso3": code,
                "name": name,
                "wgi_year": "",
                "pv": "",
                "rl": "",
                "rq": "",
                "wgi_risk": f"{mean_wgi:.2f}",
                "overlay": "0.00",
                "overlay_reason": "",
                "risk": f"{min(100.0, mean_wgi):.2f}",
                "quality": "C",
                "source": f"{SOURCE_ID};{ESTIMATE_SOURCE_ID}",
                "as_of": as_of.isoformat(),
            }
        )
    return rows


def _source_rows(
    cited: Iterable[str], base_rows: Sequence[Mapping[str, str]], data_year: int
) -> list[dict[str, str]]:
    rows = [
        {
            "id": SOURCE_ID,
            "title": ETO_TITLE,
            "publisher": ETO_PUBLISHER,
            "date": str(data_year) if data_year else "",
            "url": ETO_URL,
            "quality": "A",
            "notes": f"Licence: CC BY-NC 4.0 (non-commercial). {ETO_ATTRIBUTION} "
            "Converted by sovrisk models/eto.py (docs/eto-import.md).",
        },
        {
            "id": ESTIMATE_SOURCE_ID,
            "title": "sovrisk ETO importer: placements and estimates",
            "publisher": "sovrisk project",
            "date": str(data_year) if data_year else "",
            "url": "",
            "quality": "C",
            "notes": "Values the importer had to choose where the ETO data is silent: "
            "production sites (home country), equal splits, the synthetic provider, AND over "
            "subtypes, sites of aggregates, risk of countries missing from the base table.",
        },
    ]
    own = {row["id"] for row in rows}
    base = {row["id"]: row for row in base_rows}
    for sid in sorted(set(cited) - own):
        if sid not in base:
            raise ValueError(f"base sources.csv has no source {sid!r} cited by country_risk.csv")
        rows.append({column: base[sid].get(column, "") for column in SOURCE_HEADER})
    return rows


def _dataset_toml(root: Path, as_of: dt.date, data_year: int) -> str:
    digest = hashlib.sha256()
    for name in ETO_FILES:
        digest.update(name.encode() + b"\0" + (root / name).read_bytes())
    version = f"eto-{data_year}-{digest.hexdigest()[:12]}"
    description = (
        "The CSET/ETO Advanced Semiconductor Supply Chain Dataset converted by sovrisk "
        "models/eto.py: ETO inputs as aggregate nodes, their market shares as firm-level "
        "supplier nodes, ETO relations as AND edges, stage capacity by country, one synthetic "
        f"provider. Input files sha256 {digest.hexdigest()}. See docs/eto-import.md."
    )
    lines = [
        f"name = {_toml_str('CSET/ETO Chip Explorer (imported)')}",
        f"version = {_toml_str(version)}",
        f"as_of = {as_of.isoformat()}",
        f"description = {_toml_str(description)}",
        f"licence = {_toml_str(LICENCE)}",
        "attribution = [",
        f"    {_toml_str(ETO_ATTRIBUTION)},",
        "    "
        + _toml_str(
            "Worldwide Governance Indicators, 2024 Update (www.govindicators.org), World Bank, "
            "CC BY 4.0 (country risk rows reused from the sovrisk base dataset)"
        )
        + ",",
        "]",
    ]
    return "\n".join(lines) + "\n"


# -- reading the ETO files --------------------------------------------------------------------


def _read_table(path: Path) -> list[dict[str, str]]:
    """Rows of a CSV file (BOM tolerated; blank and ``#`` lines skipped)."""
    if not path.is_file():
        raise ValueError(f"{path}: file is missing")
    with path.open(encoding="utf-8-sig", newline="") as handle:
        lines = [ln for ln in handle if ln.strip() and not ln.lstrip().startswith("#")]
    return [
        {k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
        for row in csv.DictReader(lines)
    ]


def _eto_id(value: str, where: str) -> str:
    if not _ETO_ID.fullmatch(value):
        raise ValueError(f"{where}: id {value!r} is not alphanumeric")
    return value


def _read_inputs(root: Path) -> dict[str, _Input]:
    inputs: dict[str, _Input] = {}
    for row in _read_table(root / "inputs.csv"):
        iid = _eto_id(row.get("input_id", ""), "inputs.csv")
        if iid in inputs:
            raise ValueError(f"inputs.csv: duplicate input {iid}")
        inputs[iid] = _Input(
            iid,
            row.get("input_name", ""),
            row.get("type", ""),
            row.get("stage_id", ""),
            _parse_size(row.get("market_share_chart_global_market_size_info", "")),
        )
    return inputs


def _parse_size(text: str) -> float | None:
    """US$ amount of ETO's market-size note (e.g. "$1.2 billion (2025)"), if it has one."""
    match = _SIZE.search(text)
    if match is None:
        return None
    return float(match.group(1).replace(",", "")) * _UNITS[match.group(2).lower()]


def _read_providers(root: Path) -> dict[str, _Provider]:
    providers: dict[str, _Provider] = {}
    for row in _read_table(root / "providers.csv"):
        pid = _eto_id(row.get("provider_id", ""), "providers.csv")
        is_country = row.get("provider_type", "") == "country"
        name, country = row.get("provider_name", ""), row.get("country", "")
        code = name if is_country and _ISO3.fullmatch(name) else country
        providers[pid] = _Provider(
            pid,
            name,
            row.get("alias", ""),
            is_country,
            code if _ISO3.fullmatch(code) else RESIDUAL_COUNTRY,
        )
    return providers


def _read_provision(
    root: Path, providers: Mapping[str, _Provider], targets: set[str]
) -> list[_Provision]:
    rows: list[_Provision] = []
    for line, row in enumerate(_read_table(root / "provision.csv"), start=2):
        pid, target = row.get("provider_id", ""), row.get("provided_id", "")
        if pid not in providers:
            raise ValueError(f"provision.csv row {line}: unknown provider {pid!r}")
        if target not in targets:
            raise ValueError(f"provision.csv row {line}: unknown input or stage {target!r}")
        raw, year = row.get("share_provided", ""), row.get("year", "")
        try:
            share = float(raw) if raw else None
            when = int(year) if year else 0
        except ValueError as exc:
            raise ValueError(f"provision.csv row {line}: {exc}") from exc
        if share is not None and not (math.isfinite(share) and share >= 0):
            raise ValueError(f"provision.csv row {line}: share {raw!r} is not a percentage")
        rows.append(_Provision(pid, target, share, when))
    return rows


def _read_sequence(root: Path, inputs: Mapping[str, _Input]) -> _Relations:
    goes: set[tuple[str, str]] = set()
    types: set[tuple[str, str]] = set()
    for line, row in enumerate(_read_table(root / "sequence.csv"), start=2):
        child = row.get("input_id", "")
        for column, found in (("goes_into_id", goes), ("is_type_of_id", types)):
            parent = row.get(column, "")
            if not parent:
                continue
            for iid in (child, parent):
                if iid not in inputs:
                    raise ValueError(f"sequence.csv row {line}: unknown input {iid!r}")
            if (child, parent) in goes | types:
                raise ValueError(f"sequence.csv row {line}: {child} -> {parent} given twice")
            found.add((child, parent))
    return _Relations(tuple(sorted(goes, key=_pair_key)), tuple(sorted(types, key=_pair_key)))


def _pair_key(pair: tuple[str, str]) -> tuple[tuple[str, int, str], tuple[str, int, str]]:
    return _id_key(pair[1]), _id_key(pair[0])


# -- small helpers ----------------------------------------------------------------------------


def _id_key(value: str) -> tuple[str, int, str]:
    """Sort ETO ids naturally (N2 before N10)."""
    match = re.fullmatch(r"([A-Za-z]*)(\d+)", value)
    return (match.group(1), int(match.group(2)), value) if match else (value, -1, value)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _slug_id(eto_id: str) -> str:
    return eto_id.lower()


def _input_node(iid: str) -> str:
    return f"eto-{_slug_id(iid)}"


def _stage_node(sid: str, country: str) -> str:
    return f"eto-{_slug_id(sid)}--{country.lower()}"


def _sources(quality: str) -> str:
    return SOURCE_ID if quality == "A" else f"{SOURCE_ID};{ESTIMATE_SOURCE_ID}"


def _year_end(year: int, default: dt.date) -> str:
    return (dt.date(year, 12, 31) if year > 0 else default).isoformat()


def _num(value: float) -> str:
    text = f"{value:.10f}".rstrip("0").rstrip(".")
    return text or "0"


def _toml_str(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)


def _csv(header: Sequence[str], rows: Iterable[Mapping[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([row.get(column, "") for column in header])
    return buffer.getvalue()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m models.graph.eto ETO_DIR OUT_DIR``: write the converted dataset to an empty or
    new folder (never over an existing dataset)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2:
        print("usage: python -m models.graph.eto ETO_DIR OUT_DIR", file=sys.stderr)
        return 2
    out = Path(args[1])
    if out.exists() and any(out.iterdir()):
        print(f"{out} is not empty", file=sys.stderr)
        return 1
    files = convert_eto(args[0])
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (out / name).write_bytes(data)
    print(f"wrote {len(files)} files to {out} (CC BY-NC 4.0 derived data: non-commercial use)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
