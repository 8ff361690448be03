"""The graph's vocabulary: node kinds, quality tags and the typed records the loader produces.

The records are frozen dataclasses so a validated dataset cannot be mutated behind the
compiled arrays' back; a new version is a new dataset.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field


class NodeKind(enum.StrEnum):
    """Kinds of node in the supply graph (METHODS §1).

    ``country`` and ``regime`` nodes are not listed in ``nodes.csv``: the loader creates them
    from ``country_risk.csv`` and ``regimes.csv`` and links them by ``sited_in`` and
    ``reaches`` edges, so graph algorithms see one connected model.
    """

    PROVIDER = "provider"
    ACCELERATOR = "accelerator"
    DESIGNER = "designer"
    FOUNDRY_PROCESS = "foundry_process"
    PACKAGING = "packaging"
    MEMORY = "memory"
    SUBSTRATE = "substrate"
    EQUIPMENT = "equipment"
    MATERIAL = "material"
    EDA_SOFTWARE = "eda_software"
    COUNTRY = "country"
    REGIME = "regime"


#: Kinds that take part in the AND/OR supply evaluation (everything but country and regime).
SUPPLY_KINDS: frozenset[NodeKind] = frozenset(NodeKind) - {NodeKind.COUNTRY, NodeKind.REGIME}
#: Kinds listed in nodes.csv (a provider consumes; every other supply kind also produces).
LISTED_KINDS: frozenset[NodeKind] = SUPPLY_KINDS
PRODUCING_KINDS: frozenset[NodeKind] = SUPPLY_KINDS - {NodeKind.PROVIDER}


#: Kinds that are not production capacity (a chip family as a product, a design team, an EDA
#: licence): they have no sites. A chip family's physical steps are its foundry, packaging and
#: test suppliers; a blockade reaches it where its packaging is (SupplyGraph.location).
UNSITED_KINDS: frozenset[NodeKind] = frozenset(
    {NodeKind.ACCELERATOR, NodeKind.DESIGNER, NodeKind.EDA_SOFTWARE}
)
#: Producing kinds that must have sites (every other producing kind).
SITED_KINDS: frozenset[NodeKind] = PRODUCING_KINDS - UNSITED_KINDS


class InputClass(enum.StrEnum):
    """How a supplier's loss reaches its consumer over time (METHODS v2 §1).

    ``flow``: consumed inputs (wafers, dies, HBM, substrates, film, gases, minerals): the loss
    arrives once the consumer's inventory cover is used up. ``installed_base``: tools already
    installed keep producing; only service, spares and new tools stop, after a buffer.
    ``licence``: EDA, design IP, design services: products already designed keep shipping; new
    tape-outs stop after a buffer.
    """

    FLOW = "flow"
    INSTALLED_BASE = "installed_base"
    LICENCE = "licence"


#: The input class an edge takes from its supplier's kind unless the data say otherwise.
DEFAULT_INPUT_CLASS: dict[NodeKind, InputClass] = {
    NodeKind.EQUIPMENT: InputClass.INSTALLED_BASE,
    NodeKind.EDA_SOFTWARE: InputClass.LICENCE,
    NodeKind.DESIGNER: InputClass.LICENCE,
}
#: Buffers are weeks; ten years is the most the loader accepts.
MAX_BUFFER_WEEKS = 520.0


#: Concentration layers a node can belong to (nodes.csv ``layer``); providers use "provider".
LAYERS: tuple[str, ...] = (
    "provider",
    "accelerator",
    "design",
    "foundry",
    "packaging",
    "memory",
    "substrate",
    "lithography",
    "fab_equipment",
    "assembly_test_equipment",
    "materials",
    "eda",
    # Nodes that stand for a whole market or process step above its producers (the ETO
    # importer's inputs): like "provider", never weighted, so they never count as firms.
    "aggregate",
    # Host CPUs, network chips, optical transceivers and their lasers: complements of the
    # accelerator, not substitutes, so one HHI across them would mix markets. Unweighted in
    # the concentration sub-score by default (a request may weigh it); counted in every
    # other sub-score.
    "systems",
)


#: Tag of a node that stands for a whole commodity market (many producers, e.g. gallium).
#: Losing it whole is a country or regime event, so it is not scored as a single point of
#: failure; its country sites still count in every country and regime scenario.
AGGREGATE_MARKET_TAG = "aggregate_market"


class Quality(enum.StrEnum):
    """Source quality tags of FACTS.md: A well-sourced, B reported, C estimate/weak."""

    A = "A"
    B = "B"
    C = "C"


class Relation(enum.StrEnum):
    """Edge types of the networkx model of record."""

    SUPPLIES = "supplies"  # supplier -> consumer, carries category and share
    SITED_IN = "sited_in"  # producing node -> country, carries capacity share
    REACHES = "reaches"  # regime -> node it can bind


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where a figure comes from: source ids (see sources.csv), quality tag and as-of date."""

    sources: tuple[str, ...]
    quality: Quality
    as_of: dt.date


class SourceKind(enum.StrEnum):
    """What a source is (data/README.md, "Quality rules"): ``primary`` (the issuer's own
    document: a filing, a government instrument, a vendor page, the lab's teardown) may be
    rated A; ``secondary`` (a named outlet or analyst firm reporting it) at most B;
    ``estimate`` and ``internal`` (the project's own compilations) only C."""

    PRIMARY = "primary"
    SECONDARY = "secondary"
    ESTIMATE = "estimate"
    INTERNAL = "internal"

    @classmethod
    def default_for(cls, quality: Quality) -> SourceKind:
        return {Quality.A: cls.PRIMARY, Quality.B: cls.SECONDARY}.get(quality, cls.ESTIMATE)

    def highest(self) -> Quality:
        """The best quality a source of this kind may carry."""
        return {SourceKind.PRIMARY: Quality.A, SourceKind.SECONDARY: Quality.B}.get(self, Quality.C)


@dataclass(frozen=True, slots=True)
class Source:
    id: str
    title: str
    publisher: str
    date: str  # as published: YYYY, YYYY-MM or YYYY-MM-DD
    url: str
    quality: Quality
    notes: str = ""
    kind: SourceKind | None = None  # None: as the quality implies (SourceKind.default_for)


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    kind: NodeKind
    name: str
    owner: str  # the firm, for firm-level HHI (e.g. "TSMC" for tsmc-n3)
    hq_country: str  # ISO3 of the owner's headquarters (sites hold where it is made)
    layer: str  # concentration layer (e.g. "foundry", "lithography")
    tags: frozenset[str]
    provenance: Provenance
    notes: str = ""
    #: Weeks its consumers keep going after it stops (inventory cover of its output, service
    #: buffer of its installed tools, life of its licences): the default of every edge out of
    #: it. None: unknown, which counts as no buffer (never a hidden one).
    buffer_weeks: float | None = None
    #: Where the buffer figure comes from (its own sources and quality; as-of of the row).
    buffer_provenance: Provenance | None = None
    #: An accelerator's compute per unit in H100-equivalents (dense BF16/FP8), to turn unit
    #: counts in fleet.csv into the compute shares fleet edges carry. None: not given.
    compute_h100e: float | None = None


@dataclass(frozen=True, slots=True)
class SupplyEdge:
    """``supplier`` meets ``share`` of ``consumer``'s need in input ``category``.

    ``input_class`` and ``buffer_weeks`` are as the data give them; None takes the default
    (the supplier's kind, the supplier's ``buffer_weeks``): see
    :meth:`models.graph.supply_graph.SupplyGraph.edge_class` and ``edge_buffer``.
    """

    consumer: str
    category: str
    supplier: str
    share: float
    share_low: float
    share_high: float
    provenance: Provenance
    notes: str = ""
    input_class: InputClass | None = None
    buffer_weeks: float | None = None


@dataclass(frozen=True, slots=True)
class Site:
    """``share`` of ``node``'s capacity is produced in ``country`` (ISO3)."""

    node: str
    country: str
    share: float
    site_name: str
    provenance: Provenance
    notes: str = ""


class RegimeAction(enum.StrEnum):
    """What a regime record does (METHODS v2 §5).

    ``restrict``: binds what it reaches. ``loosen``: a restriction that, while in force,
    replaces the severity of the regimes it ``replaces`` for the nodes it reaches and the
    destinations it names (a loosening is just a lower severity). ``suspend``: no reach of its
    own; while in force, the regimes it ``suspends`` are not; when it lapses they are back.
    """

    RESTRICT = "restrict"
    LOOSEN = "loosen"
    SUSPEND = "suspend"


class RegimeMeasure(enum.StrEnum):
    """``export``: the issuer controls what leaves it (or, with content reach, what is made
    with its content). ``import``: the issuer tells its own buyers to stop buying; the
    destination is the issuer, by the buyer's ownership."""

    EXPORT = "export"
    IMPORT = "import"


class DestinationBasis(enum.StrEnum):
    """How a consumer counts as being in a destination: ``site`` (where its capacity is; a
    provider: its home country) or ``site_or_owner`` (also when its owner is headquartered
    there, for rules that reach buyers by ownership)."""

    SITE = "site"
    SITE_OR_OWNER = "site_or_owner"


@dataclass(frozen=True, slots=True)
class Regime:
    """An export-control instrument and what it reaches (METHODS §5).

    A supply node is reached when its kind, one of its tags, or its id is listed (no list: every
    supply node) and, if ``reach_content`` is given, when its supply tree contains one of the
    content nodes or tags (foreign-direct-product and de-minimis rules). A reached node's
    deliveries to consumers in ``destination_countries`` (by ``destination_basis``; empty:
    every destination) lose ``severity`` times the share of the node's capacity sited in
    ``origin_countries`` (empty: all of its capacity).
    """

    id: str
    issuer: str  # ISO3 of the issuing jurisdiction
    name: str
    instrument: str
    citation: str
    published: dt.date | None
    effective_from: dt.date
    effective_to: dt.date | None  # exclusive; None = still in force
    severity: float
    reach_kinds: frozenset[NodeKind]
    reach_tags: frozenset[str]
    reach_nodes: frozenset[str]
    origin_countries: frozenset[str]
    destination_countries: frozenset[str]
    provenance: Provenance
    notes: str = ""
    action: RegimeAction = RegimeAction.RESTRICT
    replaces: frozenset[str] = frozenset()
    suspends: frozenset[str] = frozenset()
    measure: RegimeMeasure = RegimeMeasure.EXPORT
    destination_basis: DestinationBasis = DestinationBasis.SITE
    reach_content: frozenset[str] = frozenset()

    def in_force(self, on: dt.date) -> bool:
        """True when its own dates cover ``on`` (``effective_to`` is the first day it no longer
        is); a suspension in force can still hold it off (:func:`regime_status`)."""
        return self.effective_from <= on and (self.effective_to is None or on < self.effective_to)

    @property
    def binds(self) -> bool:
        """Whether the record binds supply itself (a suspension does not)."""
        return self.action is not RegimeAction.SUSPEND


@dataclass(frozen=True, slots=True)
class CountryRisk:
    """Country risk ``CR(c)`` on 0–100 (higher = riskier), WGI-derived plus a conflict overlay."""

    iso3: str
    name: str
    wgi_year: int | None
    pv: float | None
    rl: float | None
    rq: float | None
    wgi_risk: float
    overlay: float
    overlay_reason: str
    risk: float
    provenance: Provenance
    #: The data source's own label (e.g. the WGI's "Taiwan, China"); ``name`` is the display
    #: name, the common English short name.
    source_label: str = ""
    #: Buyer perspectives (METHODS v2 §4): home country of the buyer -> (wgi_risk, risk) as
    #: buyers headquartered there see this country (rows of country_risk.csv with a
    #: ``perspective``); every other buyer sees the row without one.
    perspectives: tuple[tuple[str, float, float], ...] = ()

    def seen_from(self, home: str) -> tuple[float, float]:
        """``(wgi_risk, risk)`` as a buyer headquartered in ``home`` sees this country."""
        for perspective, wgi_risk, risk in self.perspectives:
            if perspective == home:
                return wgi_risk, risk
        return self.wgi_risk, self.risk


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """dataset.toml: what the bundle is and when it speaks for."""

    name: str
    version: str
    as_of: dt.date
    description: str
    licence: str
    attribution: tuple[str, ...] = field(default_factory=tuple)
