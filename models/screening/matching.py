"""Supplier-list screening: which suppliers are firms of the graph, which match export-control
entity-list entries.

A buyer's supplier master list (name, country, optional spend and category) is matched against
two targets:

- the graph's firms: node owners (a firm appears as many nodes, so candidates are grouped by
  owner), their node names and optional registered names (``data/screening/owner_aliases.csv``);
- entity-list entries: the bundled, cited subset (``data/screening/entity_list.csv``) or an
  operator-supplied Consolidated Screening List download (:func:`load_csl`), every alias
  expanded as a candidate of its own.

Matching is fuzzy, in scikit-learn: names are normalised (case, accents, punctuation, ``&``,
legal suffixes such as ``Co., Ltd.``/``GmbH``/``K.K.``, parenthesised places such as
``(Shanghai)``), embedded as TF-IDF character n-grams (``char_wb``, 2-4) and retrieved with a
cosine :class:`~sklearn.neighbors.NearestNeighbors` index. Each retrieved candidate is then
rescored with word-level checks, so that generic words ("Semiconductor", "Technology") cannot
carry a match on their own, and with country agreement. Exact (normalised) names and aliases and
initialisms score directly. Every candidate carries its score (0-1), the matched name or alias,
the target (owner and node ids, or the entry with its Federal Register citation), the reason in
words, and a decision (match / review / no match) from two thresholds.

**A match is evidence for review, not a compliance determination**: every result carries
:data:`DISCLAIMER`. The bundled entity list is a small subset as of its date. See
``docs/screening.md``.
"""

from __future__ import annotations

import csv
import difflib
import functools
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.screening.thresholds import DEFAULT_MATCH_THRESHOLD, DEFAULT_REVIEW_THRESHOLD

if TYPE_CHECKING:
    from sovrisk.models.graph.supply_graph import SupplyGraph

DISCLAIMER = (
    "A match is evidence for review, not a compliance determination: confirm every candidate "
    "against the official list entry (name, aliases, addresses, licence requirement) before "
    "acting, and screen against the full, current Consolidated Screening List."
)

#: Candidates scoring below this are not reported at all.
DEFAULT_MIN_SCORE = 0.3

__all__ = [
    "DEFAULT_MATCH_THRESHOLD",
    "DEFAULT_REVIEW_THRESHOLD",
    "DISCLAIMER",
    "Candidate",
    "Decision",
    "EntityEntry",
    "LabelledName",
    "RowResult",
    "ScreeningResult",
    "SupplierRow",
    "SupplierScreener",
    "TargetKind",
    "ThresholdMetrics",
    "Thresholds",
    "evaluate",
    "load_csl",
    "load_entity_list",
    "load_labelled",
    "load_owner_aliases",
    "load_suppliers",
    "normalise_country",
    "normalise_name",
]

#: Rows screened between cancellation checks.
SCREEN_BLOCK_ROWS = 256


class Decision(StrEnum):
    MATCH = "match"
    REVIEW = "review"
    NO_MATCH = "no match"


class TargetKind(StrEnum):
    GRAPH = "graph"  # a firm (node owner) of the supply graph
    ENTITY = "entity"  # an export-control list entry


# -- name normalisation ------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: Legal-form words removed wherever they occur ("Co., Ltd.", "GmbH", "K.K.", "S.A."), plus
#: corporate-structure words that do not identify a firm ("Group", "Holding").
LEGAL_WORDS = _words(
    """
    co ltd limited inc incorporated corp corporation company companies llc plc gmbh ag
    sa nv bv kk srl spa pte pty bhd sdn tbk jsc pjsc ojsc oao zao ooo sarl sas llp lp
    ulc gk group holding holdings
    """
)
#: Legal-form words removed only at the end of a name (they are also ordinary words).
TRAILING_LEGAL_WORDS = _words(
    """
    ab as com kg oy se
    """
)
STOPWORDS = _words(
    """
    and de der du et la le of the und
    """
)
#: Words too common in this industry to identify a firm on their own. A candidate needs a
#: distinctive (non-generic, non-place) word in common with the supplier, or, when its whole
#: name is generic ("Semiconductor Manufacturing International"), every word in agreement.
GENERIC_WORDS = _words(
    """
    advanced applied assembly automation capital center centre chemical chemicals chip
    chips circuit circuits cloud commercial communication communications component
    components computer computing data design development device devices digital display
    electric electrical electronic electronics energy engineering enterprise enterprises
    equipment export fabrication first general global high ic import industrial
    industries industry information innovation institute instrument instruments
    integrated intelligence intelligent international investment lab laboratories
    laboratory labs logic logistics machinery manufacture manufacturing material
    materials memory micro microelectronics mobile national network networks new optical
    optics packaging performance photonics power precision product products quantum
    research robotics sales science sciences scientific semi semiconductor
    semiconductors service services silicon smart software solutions storage supply
    system systems tech technologies technology telecom test testing trade trading
    united universal vision wafer wafers
    """
)
#: Place words: stripped when they form a parenthesised qualifier ("(Shanghai)") and never
#: distinctive on their own.
PLACE_WORDS = _words(
    """
    america american an anhui arizona asia austria beijing britain california changsha
    chengdu china chongqing dalian deutschland dongguan dresden europe france fujian
    germany guangdong guangzhou hangzhou hebei hefei hk holland hong hsinchu hubei
    icheon idaho india japan jiangsu jiangyin jinan kong korea kunshan kyoto malaysia
    nanjing netherlands ningbo oregon osaka pacific penang prc qingdao seoul shandong
    shanghai shaoxing shenzhen sichuan singapore suwon suzhou taichung tainan taipei
    taiwan texas thailand tianjin tokyo uk us usa vietnam virginia wuhan wuxi xi xiamen
    xian york zhejiang zhengzhou
    """
)

#: Abbreviations expanded before matching ("Mfg." -> manufacturing, "Int'l" -> international).
ABBREVIATIONS = {
    "mfg": "manufacturing",
    "mfr": "manufacturing",
    "manuf": "manufacturing",
    "intl": "international",
    "int": "international",
    "tech": "technology",
    "techn": "technology",
    "techno": "technology",
    "technol": "technology",
    "technologies": "technology",
    "elec": "electronics",
    "electronic": "electronics",
    "equip": "equipment",
    "eqpt": "equipment",
    "info": "information",
    "sys": "systems",
    "system": "systems",
    "ind": "industry",
    "inds": "industries",
    "natl": "national",
    "svcs": "services",
    "inst": "institute",
    "res": "research",
    "dev": "development",
    "sci": "science",
    "semicon": "semiconductor",
    "semiconductors": "semiconductor",
    "microelectronic": "microelectronics",
    "grp": "group",
    "hldgs": "holdings",
    "hldg": "holding",
    "centre": "center",
    "ctr": "center",
    "ic": "integrated circuit",
}

_ABBREV = re.compile(r"\b(?:[a-z]\.){2,}")
_PAREN = re.compile(r"\(([^()]*)\)")
_NON_WORD = re.compile(r"[^0-9a-z\u00c0-\uffff]+")


def _fold(text: str) -> str:
    """Lower case, accents removed, '&' as 'and', dotted abbreviations joined (S.A. -> sa)."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("&", " and ").replace("'", "").replace("\u2019", "")
    return _ABBREV.sub(lambda m: m.group(0).replace(".", "") + " ", text)


def _raw_tokens(folded: str) -> list[str]:
    return [t for t in _NON_WORD.split(folded) if t]


def _strip_place_parens(folded: str) -> str:
    def repl(m: re.Match[str]) -> str:
        inner = _raw_tokens(m.group(1))
        return " " if inner and all(t in PLACE_WORDS for t in inner) else f" {m.group(1)} "

    return _PAREN.sub(repl, folded)


def name_tokens(text: str) -> list[str]:
    """The words of a normalised name: legal forms, stopwords and place qualifiers removed."""
    raw = [
        w
        for t in _raw_tokens(_strip_place_parens(_fold(text)))
        for w in ABBREVIATIONS.get(t, t).split()
    ]
    kept = [t for t in raw if t not in LEGAL_WORDS and t not in STOPWORDS]
    while len(kept) > 1 and kept[-1] in TRAILING_LEGAL_WORDS:
        kept.pop()
    if kept:
        return kept
    return [t for t in raw if t not in STOPWORDS] or raw


def normalise_name(text: str) -> str:
    """``'SMIC Semiconductor Manufacturing (Shanghai) Co., Ltd.'`` ->
    ``'smic semiconductor manufacturing'``."""
    return " ".join(name_tokens(text))


def _initialisms(text: str) -> set[str]:
    """Initials of every leading run of 2+ words, with and without legal words:
    'Taiwan Semiconductor Manufacturing Co., Ltd.' -> {'ts', 'tsm', 'tsmc', 'tsmcl'}."""
    raw = [t for t in _raw_tokens(_strip_place_parens(_fold(text))) if t not in STOPWORDS]
    out: set[str] = set()
    for words in (raw, [t for t in raw if t not in LEGAL_WORDS]):
        initials = "".join(w[0] for w in words)
        out.update(initials[:n] for n in range(3, len(initials) + 1))
    return out


def _is_generic(token: str) -> bool:
    return token in GENERIC_WORDS or token in PLACE_WORDS or len(token) < 2


@functools.lru_cache(maxsize=65536)
def _tokens_agree(a: str, b: str) -> bool:
    """Equal, or (both 4+ letters) a difflib ratio of at least 0.8: typos, plural/singular."""
    if a == b:
        return True
    la, lb = len(a), len(b)
    if min(la, lb) < 4 or 3 * min(la, lb) < 2 * max(la, lb):  # ratio <= 2*min/(la+lb) < 0.8
        return False
    matcher = difflib.SequenceMatcher(None, a, b)
    return matcher.quick_ratio() >= 0.8 and matcher.ratio() >= 0.8


def _join_agrees(a: str, b: str, whole: str) -> bool:
    """'hua' + 'wei' ~ 'huawei': each part agrees with its own end of the joined word."""
    if len(whole) < len(a) + len(b) - 1:
        return False
    return (whole.startswith(a) and _tokens_agree(b, whole[len(a) :])) or (
        whole.endswith(b) and _tokens_agree(a, whole[: len(whole) - len(b)])
    )


def _covered(tokens: Sequence[str], other: Sequence[str]) -> set[int]:
    """Indexes of ``tokens`` that agree with a word of ``other``, allowing a word split in two
    on either side ('hua wei' ~ 'huawei', 'shinetsu' ~ 'shin etsu')."""
    hit: set[int] = set()
    for i, tok in enumerate(tokens):
        if any(_tokens_agree(tok, o) for o in other) or any(
            _join_agrees(other[k], other[k + 1], tok) for k in range(len(other) - 1)
        ):
            hit.add(i)
    for i in range(len(tokens) - 1):
        if any(_join_agrees(tokens[i], tokens[i + 1], o) for o in other):
            hit.update((i, i + 1))
    return hit


# -- countries ---------------------------------------------------------------------------

_ISO2_TO_ISO3: dict[str, str] = dict(
    (pair[:2], pair[3:])
    for pair in _words(
        """
        AE:ARE AR:ARG AT:AUT AU:AUS BE:BEL BG:BGR BR:BRA BY:BLR CA:CAN CH:CHE CL:CHL CN:CHN
        CY:CYP CZ:CZE DE:DEU DK:DNK EE:EST EG:EGY ES:ESP FI:FIN FR:FRA GB:GBR GR:GRC HK:HKG
        HU:HUN ID:IDN IE:IRL IL:ISR IN:IND IR:IRN IQ:IRQ IT:ITA JP:JPN KP:PRK KR:KOR KZ:KAZ
        LT:LTU LU:LUX LV:LVA MO:MAC MT:MLT MX:MEX MY:MYS NL:NLD NO:NOR NZ:NZL PH:PHL PK:PAK
        PL:POL PT:PRT RO:ROU RU:RUS SA:SAU SE:SWE SG:SGP SI:SVN SK:SVK SY:SYR TH:THA TR:TUR
        TW:TWN UA:UKR US:USA VN:VNM ZA:ZAF AM:ARM KG:KGZ UZ:UZB CR:CRI EC:ECU PA:PAN VE:VEN
        LA:LAO KE:KEN
        """
    )
)
_COUNTRY_NAMES = {
    "china": "CHN",
    "peoples republic of china": "CHN",
    "prc": "CHN",
    "mainland china": "CHN",
    "china peoples republic of": "CHN",
    "taiwan": "TWN",
    "republic of china": "TWN",
    "chinese taipei": "TWN",
    "hong kong": "HKG",
    "macau": "MAC",
    "macao": "MAC",
    "south korea": "KOR",
    "korea": "KOR",
    "republic of korea": "KOR",
    "korea republic of": "KOR",
    "korea south": "KOR",
    "north korea": "PRK",
    "japan": "JPN",
    "singapore": "SGP",
    "malaysia": "MYS",
    "vietnam": "VNM",
    "viet nam": "VNM",
    "thailand": "THA",
    "india": "IND",
    "israel": "ISR",
    "united states": "USA",
    "united states of america": "USA",
    "us": "USA",
    "u s": "USA",
    "usa": "USA",
    "america": "USA",
    "canada": "CAN",
    "mexico": "MEX",
    "netherlands": "NLD",
    "the netherlands": "NLD",
    "holland": "NLD",
    "germany": "DEU",
    "france": "FRA",
    "united kingdom": "GBR",
    "uk": "GBR",
    "great britain": "GBR",
    "ireland": "IRL",
    "belgium": "BEL",
    "austria": "AUT",
    "switzerland": "CHE",
    "italy": "ITA",
    "spain": "ESP",
    "sweden": "SWE",
    "norway": "NOR",
    "finland": "FIN",
    "denmark": "DNK",
    "poland": "POL",
    "russia": "RUS",
    "russian federation": "RUS",
    "iran": "IRN",
    "pakistan": "PAK",
    "united arab emirates": "ARE",
    "uae": "ARE",
    "australia": "AUS",
    "brazil": "BRA",
    "turkey": "TUR",
    "turkiye": "TUR",
    "philippines": "PHL",
    "indonesia": "IDN",
}


def normalise_country(text: str, names: Mapping[str, str] | None = None) -> str:
    """ISO3 for an ISO3 or ISO2 code or a country name ('Korea, Republic of' -> 'KOR');
    ``''`` when blank or unknown. ``names`` adds name -> ISO3 pairs (e.g. the dataset's)."""
    raw = text.strip()
    if not raw:
        return ""
    if re.fullmatch(r"[A-Za-z]{3}", raw) and raw.upper() in set(_ISO2_TO_ISO3.values()) | {
        *(names or {}).values()
    }:
        return raw.upper()
    if re.fullmatch(r"[A-Za-z]{2}", raw) and raw.upper() in _ISO2_TO_ISO3:
        return _ISO2_TO_ISO3[raw.upper()]
    key = " ".join(_raw_tokens(_fold(raw)))
    if key in _COUNTRY_NAMES:
        return _COUNTRY_NAMES[key]
    for name, iso3 in (names or {}).items():
        if " ".join(_raw_tokens(_fold(name))) == key:
            return iso3
    return ""


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntityEntry:
    """One export-control list entry (the bundled CSV or a Consolidated Screening List row)."""

    name: str
    aliases: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()  # ISO3
    list_name: str = "BIS Entity List"
    federal_register: str = ""  # e.g. "85 FR 83416"
    fr_date: str = ""  # ISO date of the Federal Register document (or the CSL start date)
    license_requirement: str = ""
    license_policy: str = ""
    source_url: str = ""
    notes: str = ""

    @property
    def citation(self) -> str:
        return self.federal_register or "(no citation)"


@dataclass(frozen=True, slots=True)
class SupplierRow:
    """A line of the buyer's supplier master list."""

    name: str
    country: str = ""  # ISO3 ('' when not given or not recognised)
    spend: float | None = None
    category: str = ""
    line: int = 0  # physical line in the source file (0 = not from a file)
    country_text: str = ""  # the country as written


@dataclass(frozen=True, slots=True)
class Thresholds:
    match: float = DEFAULT_MATCH_THRESHOLD
    review: float = DEFAULT_REVIEW_THRESHOLD

    def __post_init__(self) -> None:
        if not (0.0 <= self.review <= self.match <= 1.0):
            raise ValueError(
                f"thresholds must satisfy 0 <= review <= match <= 1, got review={self.review} "
                f"match={self.match}"
            )

    def decide(self, score: float) -> Decision:
        if score >= self.match:
            return Decision.MATCH
        if score >= self.review:
            return Decision.REVIEW
        return Decision.NO_MATCH


@dataclass(frozen=True, slots=True)
class Candidate:
    """A possible identity of a supplier: a graph firm or an entity-list entry."""

    kind: TargetKind
    target: str  # the owner (graph) or the entry's name (entity)
    matched_name: str  # the name, alias or node name that matched, as written in the source
    via: str  # "name" | "alias" | "node name" | "known name"
    score: float  # 0-1
    decision: Decision
    reason: str
    countries: tuple[str, ...] = ()
    node_ids: tuple[str, ...] = ()  # graph: every node of the owner
    entry: EntityEntry | None = None  # entity: the list entry (citation, licence policy)

    @property
    def citation(self) -> str:
        return self.entry.federal_register if self.entry is not None else ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "kind": str(self.kind),
            "target": self.target,
            "matched_name": self.matched_name,
            "via": self.via,
            "score": round(self.score, 4),
            "decision": str(self.decision),
            "reason": self.reason,
            "countries": list(self.countries),
        }
        if self.kind is TargetKind.GRAPH:
            out["node_ids"] = list(self.node_ids)
        if self.entry is not None:
            e = self.entry
            out.update(
                list=e.list_name,
                federal_register=e.federal_register,
                fr_date=e.fr_date,
                license_requirement=e.license_requirement,
                license_policy=e.license_policy,
                source_url=e.source_url,
            )
        return out


@dataclass(frozen=True, slots=True)
class RowResult:
    """The screening of one supplier row against both targets."""

    row: SupplierRow
    entity_candidates: tuple[Candidate, ...]
    graph_candidates: tuple[Candidate, ...]
    disclaimer: str = DISCLAIMER

    @property
    def best_entity(self) -> Candidate | None:
        return self.entity_candidates[0] if self.entity_candidates else None

    @property
    def best_graph(self) -> Candidate | None:
        return self.graph_candidates[0] if self.graph_candidates else None

    @property
    def decision(self) -> Decision:
        """The entity-list decision: that of the best entity candidate."""
        best = self.best_entity
        return best.decision if best is not None else Decision.NO_MATCH

    @property
    def graph_decision(self) -> Decision:
        best = self.best_graph
        return best.decision if best is not None else Decision.NO_MATCH

    def to_dict(self) -> dict[str, Any]:
        r = self.row
        return {
            "supplier": r.name,
            "line": r.line,
            "country": r.country,
            "country_as_written": r.country_text,
            "spend": r.spend,
            "category": r.category,
            "entity_list_decision": str(self.decision),
            "graph_decision": str(self.graph_decision),
            "entity_candidates": [c.to_dict() for c in self.entity_candidates],
            "graph_candidates": [c.to_dict() for c in self.graph_candidates],
            "disclaimer": self.disclaimer,
        }


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    rows: tuple[RowResult, ...]
    thresholds: Thresholds
    entity_source: str
    n_entities: int
    graph_version: str | None
    n_firms: int
    disclaimer: str = DISCLAIMER

    def counts(self) -> dict[str, int]:
        out = {str(d): 0 for d in Decision}
        for row in self.rows:
            out[str(row.decision)] += 1
        return out

    def flagged(self) -> list[RowResult]:
        """Rows with an entity-list candidate at or above the review threshold."""
        return [r for r in self.rows if r.decision is not Decision.NO_MATCH]

    def to_dict(self) -> dict[str, Any]:
        return {
            "disclaimer": self.disclaimer,
            "thresholds": {"match": self.thresholds.match, "review": self.thresholds.review},
            "entity_source": self.entity_source,
            "entities": self.n_entities,
            "graph_version": self.graph_version,
            "graph_firms": self.n_firms,
            "entity_list_decisions": self.counts(),
            "rows": [r.to_dict() for r in self.rows],
        }


# -- the screener ------------------------------------------------------------------------


@dataclass(slots=True)
class _Name:
    text: str  # as written
    norm: str
    tokens: tuple[str, ...]
    via: str
    target: int  # index into the target table


@dataclass(slots=True)
class _Target:
    kind: TargetKind
    label: str
    countries: tuple[str, ...]
    node_ids: tuple[str, ...] = ()
    entry: EntityEntry | None = None


@dataclass(slots=True)
class _Index:
    kind: TargetKind
    targets: list[_Target] = field(default_factory=list)
    names: list[_Name] = field(default_factory=list)
    exact: dict[str, list[int]] = field(default_factory=dict)  # norm -> name indexes
    compact: dict[str, list[int]] = field(default_factory=dict)  # norm without spaces
    initials: dict[str, list[int]] = field(default_factory=dict)  # initialism -> names
    nn: Any = None  # NearestNeighbors over the names' TF-IDF rows

    def add_target(self, target: _Target, names: Iterable[tuple[str, str]]) -> None:
        t = len(self.targets)
        self.targets.append(target)
        seen: set[str] = set()
        for text, via in names:
            tokens = name_tokens(text)
            norm = " ".join(tokens)
            if not norm or norm in seen:
                continue
            seen.add(norm)
            i = len(self.names)
            self.names.append(_Name(text, norm, tuple(tokens), via, t))
            self.exact.setdefault(norm, []).append(i)
            self.compact.setdefault(norm.replace(" ", ""), []).append(i)
            raw_words = len(_raw_tokens(_fold(text)))
            if raw_words >= 3:
                for ini in _initialisms(text):
                    self.initials.setdefault(ini, []).append(i)


_NON_FIRM_OWNER = re.compile(r"\b(producers|refiners|various)\b", re.IGNORECASE)


class SupplierScreener:
    """Fuzzy supplier screening against graph firms and entity-list entries.

    ``SupplierScreener(match_threshold=.., review_threshold=..).fit(entities, graph).screen(rows)``
    returns a :class:`ScreeningResult`. Scores are in [0, 1]; a candidate at or above
    ``match_threshold`` is a *match*, at or above ``review_threshold`` a *review*. Either way
    it is evidence for a human to review, not a compliance determination.
    """

    def __init__(
        self,
        match_threshold: float = DEFAULT_MATCH_THRESHOLD,
        review_threshold: float = DEFAULT_REVIEW_THRESHOLD,
        *,
        top_k: int = 3,
        n_neighbors: int = 15,
        ngram_range: tuple[int, int] = (2, 4),
        country_boost: float = 0.05,
        country_penalty: float = 0.10,
        min_score: float = DEFAULT_MIN_SCORE,
    ) -> None:
        self.thresholds = Thresholds(match=match_threshold, review=review_threshold)
        self.top_k = top_k
        self.n_neighbors = n_neighbors
        self.ngram_range = ngram_range
        self.country_boost = country_boost
        self.country_penalty = country_penalty
        self.min_score = min_score
        self._indexes: dict[TargetKind, _Index] = {}
        self._vectorizer: Any = None
        self._analyzer: Any = None
        self._idf: dict[str, float] = {}
        self._max_idf = 1.0
        self._entity_source = ""
        self._n_entities = 0
        self._graph_version: str | None = None
        self._country_names: dict[str, str] = {}

    # -- fitting ------------------------------------------------------------------------

    def fit(
        self,
        entities: Sequence[EntityEntry] = (),
        graph: SupplyGraph | None = None,
        *,
        owner_aliases: Mapping[str, Sequence[str]] | None = None,
        entity_source: str = "",
    ) -> Self:
        """Index the entity-list entries (every alias a candidate) and the graph's firms
        (owners grouped; node names and ``owner_aliases`` as extra names of the owner)."""
        entity_index = _Index(TargetKind.ENTITY)
        for entry in entities:
            names = [(entry.name, "name")] + [(a, "alias") for a in entry.aliases]
            entity_index.add_target(
                _Target(TargetKind.ENTITY, entry.name, entry.countries, entry=entry), names
            )
        graph_index = _Index(TargetKind.GRAPH)
        if graph is not None:
            self._graph_version = graph.version_id
            self._country_names = {c.name: iso for iso, c in graph.countries.items()}
            by_owner: dict[str, list[Any]] = {}
            for node in graph.nodes.values():
                if not _NON_FIRM_OWNER.search(node.owner):
                    by_owner.setdefault(node.owner, []).append(node)
            for owner, nodes in sorted(by_owner.items()):
                countries = tuple(sorted({n.hq_country for n in nodes if n.hq_country}))
                names = [(owner, "name")]
                names += [(a, "known name") for a in (owner_aliases or {}).get(owner, ())]
                names += [(n.name, "node name") for n in nodes]
                graph_index.add_target(
                    _Target(
                        TargetKind.GRAPH,
                        owner,
                        countries,
                        node_ids=tuple(sorted(n.id for n in nodes)),
                    ),
                    names,
                )
        every = [n.norm for n in entity_index.names] + [n.norm for n in graph_index.names]
        # scikit-learn is imported here, not at module level: the CLI and the server import
        # this module at start-up and most runs never screen.
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.neighbors import NearestNeighbors

        self._vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.ngram_range, sublinear_tf=True
        )
        if every:
            self._vectorizer.fit(every)
            idf = self._vectorizer.idf_
            self._idf = {g: float(idf[k]) for g, k in self._vectorizer.vocabulary_.items()}
            self._max_idf = float(idf.max())
        self._analyzer = self._vectorizer.build_analyzer()
        for index in (entity_index, graph_index):
            if index.names:
                matrix = self._vectorizer.transform([n.norm for n in index.names])
                index.nn = NearestNeighbors(
                    n_neighbors=min(self.n_neighbors, len(index.names)), metric="cosine"
                ).fit(matrix)
            self._indexes[index.kind] = index
        self._entity_source = entity_source
        self._n_entities = len(entity_index.targets)
        return self

    # -- screening ----------------------------------------------------------------------

    def screen(self, rows: Iterable[SupplierRow | str]) -> ScreeningResult:
        """Screen every row; plain strings are taken as supplier names without a country."""
        if self._vectorizer is None:
            raise RuntimeError("SupplierScreener.screen() called before fit()")
        supplier_rows = [r if isinstance(r, SupplierRow) else SupplierRow(name=r) for r in rows]
        per_kind = {
            kind: self._screen_kind(index, supplier_rows) for kind, index in self._indexes.items()
        }
        empty: list[tuple[Candidate, ...]] = [() for _ in supplier_rows]
        results = tuple(
            RowResult(
                row=row,
                entity_candidates=per_kind.get(TargetKind.ENTITY, empty)[i],
                graph_candidates=per_kind.get(TargetKind.GRAPH, empty)[i],
            )
            for i, row in enumerate(supplier_rows)
        )
        return ScreeningResult(
            rows=results,
            thresholds=self.thresholds,
            entity_source=self._entity_source,
            n_entities=self._n_entities,
            graph_version=self._graph_version,
            n_firms=len(self._indexes[TargetKind.GRAPH].targets)
            if TargetKind.GRAPH in self._indexes
            else 0,
        )

    def country_of(self, text: str) -> str:
        """ISO3 of a country as a supplier list writes it (the dataset's names included)."""
        return normalise_country(text, self._country_names)

    def _screen_kind(
        self, index: _Index, rows: Sequence[SupplierRow]
    ) -> list[tuple[Candidate, ...]]:
        if not index.names or not rows:
            return [() for _ in rows]
        out: list[tuple[Candidate, ...]] = []
        # In blocks, so a cancelled request stops within a block (a few hundred ms at most).
        for lo in range(0, len(rows), SCREEN_BLOCK_ROWS):
            checkpoint()
            block = rows[lo : lo + SCREEN_BLOCK_ROWS]
            queries = [normalise_name(r.name) for r in block]
            matrix = self._vectorizer.transform(queries)
            distances, neighbours = index.nn.kneighbors(matrix)
            for qi, row in enumerate(block):
                seen = self._seen_fraction(queries[qi])
                cosines = {
                    int(j): (1.0 - float(d)) * seen
                    for d, j in zip(distances[qi], neighbours[qi], strict=True)
                }
                out.append(self._rank(index, row, queries[qi], cosines, matrix[qi]))
        return out

    def _seen_fraction(self, query: str) -> float:
        """The share of the query's TF-IDF norm made of n-grams the index knows.

        The vectorizer only knows n-grams of candidate names, so a supplier's other words
        ("Jinhua *Textile*") would vanish from its vector and inflate the cosine. Counting
        unseen n-grams at the largest IDF and scaling the cosine by this fraction is the cosine
        the supplier would have if those n-grams had been in the vocabulary.
        """
        counts: dict[str, int] = {}
        for gram in self._analyzer(query):
            counts[gram] = counts.get(gram, 0) + 1
        known = unknown = 0.0
        for gram, n in counts.items():
            tf = 1.0 + math.log(n)
            idf = self._idf.get(gram)
            if idf is None:
                unknown += (tf * self._max_idf) ** 2
            else:
                known += (tf * idf) ** 2
        return math.sqrt(known / (known + unknown)) if known > 0 else 0.0

    def _rank(
        self,
        index: _Index,
        row: SupplierRow,
        query: str,
        cosines: dict[int, float],
        qvec: Any,
    ) -> tuple[Candidate, ...]:
        if not query:
            return ()
        q_tokens = query.split()
        scored: dict[int, tuple[float, str]] = {}
        for j in index.exact.get(query, []):
            scored[j] = (1.0, "exact after normalisation")
        for j in index.compact.get(query.replace(" ", ""), []):
            if j not in scored:
                scored[j] = (0.97, "equal ignoring spaces")
        # initialisms, both ways: 'TSMC' ~ 'Taiwan Semiconductor Manufacturing Co'
        if len(q_tokens) == 1 and 3 <= len(query) <= 6:
            for j in index.initials.get(query, []):
                scored.setdefault(j, (0.85, f"'{query.upper()}' = initials of the name"))
        if len(_raw_tokens(_fold(row.name))) >= 3:
            for ini in _initialisms(row.name):
                for j in index.exact.get(ini, []):
                    if len(index.names[j].tokens) == 1:
                        scored.setdefault(
                            j, (0.85, f"initials '{ini.upper()}' of the supplier name")
                        )
        # char n-gram neighbours, rescored with word-level checks
        extra = [j for j in scored if j not in cosines]
        if extra:
            cand = self._vectorizer.transform([index.names[j].norm for j in extra])
            seen = self._seen_fraction(query)
            for j, value in zip(extra, (cand @ qvec.T).toarray().ravel(), strict=True):
                cosines[j] = float(value) * seen
        for j, cos in cosines.items():
            if j in scored or cos <= 0.0:
                continue
            factor, note = _word_factor(index.names[j].tokens, q_tokens)
            scored[j] = (cos * factor, f"char-ngram cosine {cos:.2f}{note}")
        best: dict[int, tuple[float, int, str]] = {}
        for j, (score, how) in scored.items():
            name = index.names[j]
            target = index.targets[name.target]
            score, cnote = self._country_adjust(score, row.country, target.countries)
            score = min(1.0, max(0.0, score))
            prev = best.get(name.target)
            if prev is None or score > prev[0]:
                best[name.target] = (score, j, how + cnote)
        ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], index.targets[kv[0]].label))
        out: list[Candidate] = []
        for t, (score, j, how) in ranked[: self.top_k]:
            if score < self.min_score:
                break
            name, target = index.names[j], index.targets[t]
            reason = f"{name.via} '{name.text}': {how}"
            out.append(
                Candidate(
                    kind=index.kind,
                    target=target.label,
                    matched_name=name.text,
                    via=name.via,
                    score=score,
                    decision=self.thresholds.decide(score),
                    reason=reason,
                    countries=target.countries,
                    node_ids=target.node_ids,
                    entry=target.entry,
                )
            )
        return tuple(out)

    def _country_adjust(
        self, score: float, country: str, countries: Sequence[str]
    ) -> tuple[float, str]:
        if not country or not countries:
            return score, ""
        if country in countries:
            return score + self.country_boost, f"; country {country} agrees"
        return score - self.country_penalty, (
            f"; country {country} differs from {'/'.join(countries)}"
        )


def _word_factor(cand: Sequence[str], query: Sequence[str]) -> tuple[float, str]:
    """How far the words support a character-level match (multiplies the cosine).

    A candidate with a distinctive word needs one in common with the supplier (typos and
    split/joined words tolerated); a candidate whose words are all generic or places
    ("Semiconductor Manufacturing International") needs every word in agreement both ways.
    """
    if not cand or not query:
        return 0.0, ", no words"
    c_hit = _covered(cand, query)
    q_hit = _covered(query, cand)
    distinctive = [i for i, t in enumerate(cand) if not _is_generic(t)]
    if distinctive:
        if not any(i in c_hit for i in distinctive):
            return 0.5, ", no distinctive word in common"
        q_extra = [t for i, t in enumerate(query) if i not in q_hit and not _is_generic(t)]
        c_missing = [cand[i] for i in distinctive if i not in c_hit]
        factor = 1.0 - 0.1 * min(2, len(q_extra)) - 0.1 * min(2, len(c_missing))
        note = ""
        if q_extra:
            note += f", supplier words not in the name: {' '.join(q_extra)}"
        if c_missing:
            note += f", name words not in the supplier: {' '.join(c_missing)}"
        return factor, note
    if len(c_hit) == len(cand) and len(q_hit) == len(query):
        return 1.0, ", all words agree"
    return 0.6, ", generic words only and the wording differs"


# -- loaders -----------------------------------------------------------------------------


def _read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(physical line, row) of a CSV with a header; '#' lines and blank lines skipped; header
    keys lower-cased with spaces as underscores."""

    def lines() -> Iterator[str]:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            for line in fh:
                yield "\n" if line.lstrip().startswith("#") else line

    reader = csv.reader(lines())
    header: list[str] | None = None
    for record in reader:
        if not record or all(not c.strip() for c in record):
            continue
        if header is None:
            header = [h.strip().lower().replace(" ", "_") for h in record]
            continue
        values = record + [""] * (len(header) - len(record))
        yield reader.line_num, {h: v.strip() for h, v in zip(header, values, strict=False)}
    if header is None:
        raise ValueError(f"{path}: no header line")


def _split_list(text: str) -> tuple[str, ...]:
    out: list[str] = []
    for part in text.split(";"):
        part = re.sub(r"^\s*and\s+", "", part).strip()
        if part and part not in out:
            out.append(part)
    return tuple(out)


def load_entity_list(path: str | Path) -> list[EntityEntry]:
    """The bundled entity-list CSV (``data/screening/entity_list.csv``; format in its README).

    Every row must carry its citation (``federal_register``) and ``source_url``.
    """
    entries: list[EntityEntry] = []
    problems: list[str] = []
    for line, row in _read_rows(path):
        name = row.get("name", "")
        missing = [k for k in ("name", "federal_register", "source_url") if not row.get(k)]
        if missing:
            problems.append(f"{path}:{line}: {name or '(no name)'}: missing {', '.join(missing)}")
            continue
        countries = tuple(
            c for c in (normalise_country(x) for x in _split_list(row.get("country", ""))) if c
        )
        entries.append(
            EntityEntry(
                name=name,
                aliases=_split_list(row.get("aliases", "")),
                countries=countries,
                list_name=row.get("list") or "BIS Entity List",
                federal_register=row["federal_register"],
                fr_date=row.get("fr_date", ""),
                license_requirement=row.get("license_requirement", ""),
                license_policy=row.get("license_policy", ""),
                source_url=row["source_url"],
                notes=row.get("notes", ""),
            )
        )
    if problems:
        raise ValueError("invalid entity list:\n" + "\n".join(problems))
    return entries


_CSL_SKIP_TYPES = frozenset({"individual", "vessel", "aircraft"})
_PAREN_ABBREV = re.compile(r"\(([A-Z0-9][A-Za-z0-9 &.\-]{1,15})\)")


def load_csl(
    path: str | Path,
    *,
    sources: Iterable[str] | None = None,
    entities_only: bool = True,
) -> list[EntityEntry]:
    """An operator-supplied Consolidated Screening List CSV (trade.gov download).

    Columns are found by name, in any order: ``name`` (required), ``alt_names`` ('; '-list),
    ``source`` (the list), ``type``, ``addresses`` (the last comma part of each '; '-separated
    address is its ISO2 country) or ``country``/``countries``, ``federal_register_notice``,
    ``start_date``, ``license_requirement``, ``license_policy``, ``remarks``,
    ``source_information_url``/``source_list_url``. ``sources`` keeps only rows whose
    ``source`` contains one of the given strings (case-insensitive), e.g. ``["Entity List"]``;
    ``entities_only`` drops individuals, vessels and aircraft. A parenthesised abbreviation in
    the name ("... (CETC 13)") becomes an alias.
    """
    wanted = [s.lower() for s in sources] if sources is not None else None
    entries: list[EntityEntry] = []
    for _line, row in _read_rows(path):
        if "name" not in row:
            raise ValueError(f"{path}: no 'name' column (is this a Consolidated Screening List?)")
        name = row["name"]
        source = row.get("source", "")
        if not name:
            continue
        if entities_only and row.get("type", "").lower() in _CSL_SKIP_TYPES:
            continue
        if wanted is not None and not any(w in source.lower() for w in wanted):
            continue
        aliases = list(_split_list(row.get("alt_names", "")))
        for abbrev in _PAREN_ABBREV.findall(name):
            if sum(ch.isupper() for ch in abbrev) >= 2 and abbrev not in aliases:
                aliases.append(abbrev)
        country_text = row.get("country") or row.get("countries") or ""
        parts = (
            _split_list(country_text)
            if country_text
            else tuple(a.rsplit(",", 1)[-1] for a in _split_list(row.get("addresses", "")))
        )
        countries: list[str] = []
        for part in parts:
            iso3 = normalise_country(part)
            if iso3 and iso3 not in countries:
                countries.append(iso3)
        entries.append(
            EntityEntry(
                name=name,
                aliases=tuple(aliases),
                countries=tuple(countries),
                list_name=source or "Consolidated Screening List",
                federal_register=row.get("federal_register_notice", ""),
                fr_date=row.get("start_date", ""),
                license_requirement=row.get("license_requirement", ""),
                license_policy=row.get("license_policy", ""),
                source_url=row.get("source_information_url") or row.get("source_list_url", ""),
                notes=row.get("remarks", ""),
            )
        )
    return entries


def load_owner_aliases(path: str | Path) -> dict[str, list[str]]:
    """``owner,alias`` lines -> {owner: [alias, ...]}."""
    out: dict[str, list[str]] = {}
    for _line, row in _read_rows(path):
        if row.get("owner") and row.get("alias"):
            out.setdefault(row["owner"], []).append(row["alias"])
    return out


_NAME_COLUMNS = ("name", "supplier", "supplier_name", "vendor", "vendor_name", "company")
_COUNTRY_COLUMNS = ("country", "country_code", "iso3", "country_iso3", "country_name")
_SPEND_COLUMNS = ("spend", "annual_spend", "spend_usd", "amount")
_CATEGORY_COLUMNS = ("category", "commodity", "spend_category")


def _first(row: Mapping[str, str], keys: Sequence[str]) -> str | None:
    for key in keys:
        if key in row:
            return row[key]
    return None


def load_suppliers(
    path: str | Path, country_names: Mapping[str, str] | None = None
) -> list[SupplierRow]:
    """A supplier master list: ``name`` (or ``supplier``/``vendor``), optional ``country``
    (ISO3, ISO2 or a name), ``spend`` and ``category``; any column order."""
    out: list[SupplierRow] = []
    for line, row in _read_rows(path):
        name = _first(row, _NAME_COLUMNS)
        if name is None:
            raise ValueError(f"{path}: no supplier name column (one of {', '.join(_NAME_COLUMNS)})")
        if not name:
            continue
        country_text = _first(row, _COUNTRY_COLUMNS) or ""
        spend_text = (_first(row, _SPEND_COLUMNS) or "").replace(",", "").lstrip("$€£ ")
        try:
            spend: float | None = float(spend_text) if spend_text else None
        except ValueError:
            spend = None
        if spend is not None and not math.isfinite(spend):
            spend = None
        out.append(
            SupplierRow(
                name=name,
                country=normalise_country(country_text, country_names),
                spend=spend,
                category=_first(row, _CATEGORY_COLUMNS) or "",
                line=line,
                country_text=country_text,
            )
        )
    return out


# -- evaluation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LabelledName:
    """A labelled supplier spelling: ``expected`` is the target it denotes ('' = none)."""

    name: str
    country: str
    kind: TargetKind
    expected: str
    variation: str
    line: int


def load_labelled(path: str | Path) -> list[LabelledName]:
    out: list[LabelledName] = []
    for line, row in _read_rows(path):
        out.append(
            LabelledName(
                name=row["name"],
                country=normalise_country(row.get("country", "")),
                kind=TargetKind(row["target"]),
                expected=row.get("expected", ""),
                variation=row.get("variation", ""),
                line=line,
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class ThresholdMetrics:
    threshold: float
    tp: int
    fp: int
    fn: int
    tn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0


def evaluate(
    screener: SupplierScreener,
    labelled: Sequence[LabelledName],
    thresholds: Sequence[float],
    kinds: Iterable[TargetKind] = (TargetKind.ENTITY, TargetKind.GRAPH),
) -> dict[str, list[ThresholdMetrics]]:
    """Precision/recall/F1 of "best candidate at or above the threshold" per threshold, for
    each target kind and for both together (key ``'all'``).

    A row is a true positive when its best candidate of the row's target kind scores at least
    the threshold and is the expected target; a false positive when that candidate is another
    target (or the row expects none); a false negative when the expected target is not the
    candidate so reported (a wrong target counts as both FP and FN).
    """
    wanted = set(kinds)
    rows = [x for x in labelled if x.kind in wanted]
    result = screener.screen(SupplierRow(name=x.name, country=x.country) for x in rows)
    best: list[tuple[str, float]] = []
    for x, r in zip(rows, result.rows, strict=True):
        cand = r.best_entity if x.kind is TargetKind.ENTITY else r.best_graph
        best.append((cand.target, cand.score) if cand is not None else ("", 0.0))
    out: dict[str, list[ThresholdMetrics]] = {}
    for key in [*(str(k) for k in sorted(wanted)), "all"]:
        members = [i for i, x in enumerate(rows) if key == "all" or str(x.kind) == key]
        metrics = []
        for t in thresholds:
            tp = fp = fn = tn = 0
            for i in members:
                target, score = best[i]
                predicted = target if score >= t - 1e-12 else ""
                expected = rows[i].expected
                if predicted and predicted == expected:
                    tp += 1
                    continue
                if predicted:
                    fp += 1
                if expected:
                    fn += 1
                elif not predicted:
                    tn += 1
            metrics.append(ThresholdMetrics(float(t), tp, fp, fn, tn))
        out[key] = metrics
    return out


def threshold_grid(start: float = 0.40, stop: float = 0.95, step: float = 0.05) -> list[float]:
    n = round((stop - start) / step) + 1
    return [round(float(x), 2) for x in np.linspace(start, stop, n)]
