"""What a risk assessment says: typed, transport-free results, and the compact risk vector."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import importlib
import re
from dataclasses import dataclass, field
from typing import Any

from sovrisk.models.analysis.concentration import Band
from sovrisk.models.analysis.sovereignty import Sovereignty

#: Said in every response: how to read the numbers.
SCORE_INTERPRETATION = (
    "Every score is on 0-100 and higher means riskier; impacts and vetoes are fractions of "
    "the provider's AI-accelerator supply lost (0-1, higher = riskier), at the headline "
    "horizon unless said otherwise (curves give 4, 13, 26, 52 and 104 weeks; 'long run' "
    "means after every buffer is used up)."
)


class RiskBand(enum.StrEnum):
    LOW = "low"  # < 25
    MODERATE = "moderate"  # 25 to < 50
    HIGH = "high"  # 50 to < 75
    CRITICAL = "critical"  # >= 75

    @classmethod
    def of(cls, score: float) -> RiskBand:
        if score < 25:
            return cls.LOW
        if score < 50:
            return cls.MODERATE
        if score < 75:
            return cls.HIGH
        return cls.CRITICAL


class CheckStatus(enum.StrEnum):
    PASS = "pass"
    FAIL = "fail"
    INCONCLUSIVE = "inconclusive"  # missing or weak data: not the same as no risk


@dataclass(frozen=True, slots=True)
class SubScore:
    key: str
    score: float  # 0-100
    weight: float
    contribution: float  # weight * score, rounded to 1e-6
    explanation: str
    available: bool = True  # False: no data for it; weight 0, the others renormalised


@dataclass(frozen=True, slots=True)
class Share:
    key: str  # firm name, ISO3 or node id
    display_name: str
    share: float  # fraction of the layer (0-1)


@dataclass(frozen=True, slots=True)
class LayerConcentration:
    layer: str
    weight: float  # effective layer weight after renormalising over the layers present
    firm_hhi: float
    country_hhi: float
    firm_n_eff: float
    country_n_eff: float
    firm_top: Share
    country_top: Share
    cr1_over_65: bool
    firm_bands: tuple[Band, ...]
    country_bands: tuple[Band, ...]
    firm_shares: tuple[Share, ...]
    country_shares: tuple[Share, ...]
    score: float  # (firm_hhi + country_hhi) / 200: this layer's 0-100 concentration


@dataclass(frozen=True, slots=True)
class CategoryConcentration:
    """Concentration of one input category (e.g. ``abf_film``) over the provider's sourcing:
    every consumer in its supply tree that needs the category, weighted by its flow."""

    category: str
    flow: float  # the provider's effective flow into the category (sum over consumers)
    consumers: tuple[str, ...]
    firm_hhi: float
    country_hhi: float
    firm_top: Share
    country_top: Share
    cr1_over_65: bool


@dataclass(frozen=True, slots=True)
class NodeImpact:
    node: str
    display_name: str
    kind: str
    impact: float  # I_P(v) = 1 - a(P | v down for good): the long run, structural
    is_spof: bool  # impact = 1 (a single point of failure)
    evidence_path: tuple[str, ...]  # provider first, node last
    aggregate_market: bool = False  # a whole commodity market, never scored as a SPOF
    near_spof: bool = False  # 0.95 <= impact < 1
    curve: tuple[float, ...] = ()  # impact at 4, 13, 26, 52 and 104 weeks
    headline: float = 0.0  # impact at the headline horizon


@dataclass(frozen=True, slots=True)
class FirmImpact:
    firm: str
    impact: float  # 1 - a(P | every node the firm owns lost)
    nodes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class CutSetView:
    """A minimal set of nodes (size <= 2) whose joint loss leaves less than the threshold."""

    nodes: tuple[str, ...]
    retained: float  # a(P | every node of the set down)
    aggregate_market: bool


@dataclass(frozen=True, slots=True)
class ContentionView:
    """The provider as a buyer of a shared bottleneck (CoWoS lines, HBM)."""

    bottleneck: str  # node id or "group:<name>"
    nodes: tuple[str, ...]
    demand_share: float  # the provider's share of the bottleneck's demand
    dependence: float  # supply lost if the bottleneck is lost
    shortfalls: tuple[tuple[float, float], ...]  # (bottleneck short by f, provider's loss)


@dataclass(frozen=True, slots=True)
class CountryImpact:
    country: str
    display_name: str
    impact: float  # site loss: 1 - a(P | every site in c lost), at the headline horizon
    country_risk: float
    evidence_path: tuple[str, ...]
    blockade: float = 0.0  # blockade: 1 - a(P | every edge across c's border stopped), headline
    site_loss_curve: tuple[float, ...] = ()  # at 4, 13, 26, 52 and 104 weeks
    blockade_curve: tuple[float, ...] = ()
    long_run: float = 0.0  # site loss once every buffer is used up


@dataclass(frozen=True, slots=True)
class CountryContribution:
    country: str
    display_name: str
    exposure: float  # layer-weighted share of the provider's sourcing sited there
    country_risk: float
    contribution: float  # points of the geopolitical sub-score from this country's events
    expected_loss: float = 0.0  # sum over its events of p x loss at the headline horizon
    events: tuple[str, ...] = ()  # the events behind it


@dataclass(frozen=True, slots=True)
class RegimeExposure:
    regime: str
    display_name: str
    issuer: str
    citation: str
    in_force: bool
    binds_provider: bool  # the provider's home country is a destination the regime covers
    veto: float  # long run: 1 - a(P | reached deliveries degraded); 0 when not in force
    reached_nodes: int  # nodes of the provider's supply tree it reaches
    effective_from: dt.date
    effective_to: dt.date | None
    curve: tuple[float, ...] = ()  # the same as a new shock, at 4, 13, 26, 52 and 104 weeks
    #: in_force / suspended / not_yet / ended; a suspension record: in_force / lapsed / ...
    status: str = ""
    action: str = "restrict"  # restrict / loosen / suspend
    measure: str = "export"  # export / import
    suspended_by: tuple[str, ...] = ()  # suspension records holding it off on as_of
    replaced_by: tuple[str, ...] = ()  # records in force that replace it where they reach
    replaces: tuple[str, ...] = ()
    suspends: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class JurisdictionVeto:
    country: str
    display_name: str
    veto: float  # 1 - a(P | J's sites lost and J's regimes in force bind), headline horizon
    foreign: bool
    curve: tuple[float, ...] = ()  # at 4, 13, 26, 52 and 104 weeks
    long_run: float = 0.0


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    title: str
    status: CheckStatus
    reason: str
    evidence_path: tuple[str, ...]
    remediation: str
    observed: float
    threshold: float


@dataclass(frozen=True, slots=True)
class Coverage:
    flow_share_a: float
    flow_share_b: float
    flow_share_c: float
    edges_total: int
    edges_with_range: int
    nodes_total: int
    notes: str
    #: A/B shares by flow of the sites, regimes and events the score rests on (None: none
    #: weigh), and the mean of the four (edges, sites, regimes, events).
    sites_share_ab: float | None = None
    regimes_share_ab: float | None = None
    events_share_ab: float | None = None
    overall_share_ab: float = 0.0

    @property
    def edges_share_ab(self) -> float:
        return self.flow_share_a + self.flow_share_b


@dataclass(frozen=True, slots=True)
class LossUnits:
    """What the provider stands to lose, in units (METHODS v2 §8): from the tail simulation's
    annual losses, and the provider's capex and intake (provider_demand.csv)."""

    expected_annual_loss: float  # EAL: mean share of a year's supply lost
    expected_annual_loss_se: float
    cvar95: float  # mean annual loss of the worst 5 % of years
    return_period_losses: tuple[tuple[int, float], ...]  # (years, loss exceeded 1 in years)
    supply_weeks_per_year: float  # 52 x EAL: weeks of accelerator supply lost a year
    capex_usd_bn: float | None  # the provider's capex (US$ bn a year), when given
    capex_at_risk_usd_bn: float | None  # capex x EAL
    intake_units: float | None  # accelerators taken in a year, when given
    accelerators_lost_per_year: float | None  # intake x EAL
    samples: int
    seed: int


@dataclass(frozen=True, slots=True)
class PoolShortfall:
    """A constrained pool as of the assessment's quarter (capacity.csv, allocation.csv) and
    the supply the provider loses to it under each allocation rule (METHODS v2 §10)."""

    pool: str
    quarter: str
    unit: str
    capacity: float | None  # per month
    yield_: float | None
    demand: float | None  # per month
    output: float  # good output in units of demand, K y / D (> 1: headroom)
    shortfall: tuple[tuple[str, float], ...]  # (rule, 1 - a(P) with the pool allocated so)
    note: str  # set when the quarter lies outside the pool's series


@dataclass(frozen=True, slots=True)
class ResultProvenance:
    model_version: str
    dataset_name: str
    dataset_version: str
    dataset_hash: str
    as_of: dt.date
    parameters: tuple[tuple[str, str], ...]
    seed: int = 0
    graph_version: str = ""  # the stored version's name, when the graph came from a store


@dataclass(frozen=True, slots=True)
class RiskAssessment:
    provider: str
    display_name: str
    home_country: str
    composite: float
    band: RiskBand
    sub_scores: tuple[SubScore, ...]
    floor_alpha: float
    floor_uplift: float  # composite - sum(contributions): what the alpha x max floor adds
    retained_capacity: float
    layers: tuple[LayerConcentration, ...]
    structural_impacts: tuple[NodeImpact, ...]
    spof_count: int
    firm_impacts: tuple[FirmImpact, ...]
    cut_sets: tuple[CutSetView, ...]  # the strongest (lowest retained) first, at most 20
    singleton_cuts: int
    pair_cuts: int
    contention: tuple[ContentionView, ...]
    country_impacts: tuple[CountryImpact, ...]
    geopolitical_contributions: tuple[CountryContribution, ...]
    regimes: tuple[RegimeExposure, ...]
    bound_now: float  # 1 - a(P | every regime in force that binds P)
    jurisdictions: tuple[JurisdictionVeto, ...]
    largest_foreign_veto: JurisdictionVeto | None
    jurisdictions_over_half: int
    checks: tuple[Check, ...]
    coverage: Coverage
    provenance: ResultProvenance
    risk_vector: str
    score_interpretation: str = SCORE_INTERPRETATION
    horizon_weeks: float = 13.0  # the headline horizon of this assessment
    near_spof_count: int = 0
    floor_applied: bool = False  # a sub-score was critical, and the floor set the composite
    critical_threshold: float = 80.0
    categories: tuple[CategoryConcentration, ...] = ()
    geopolitical_expected_loss: float = 0.0  # sum over events of p x loss (headline horizon)
    loss_units: LossUnits | None = None
    quarter: str = ""  # the quarter whose fleets and capacities the assessment used
    series_notes: tuple[str, ...] = ()  # dated series used outside their range, said so
    sovereignty: Sovereignty | None = None
    capacity: tuple[PoolShortfall, ...] = ()
    #: How the score was computed where the caller could not tell from the inputs, with the
    #: figures (e.g. weight overrides renormalised to sum to 1).
    notes: tuple[str, ...] = ()
    #: The sub-scores before rounding (None: no data), so another weighting of the same
    #: assessment recombines exactly what a full computation would (RiskEngine.assess).
    raw_scores: tuple[tuple[str, float | None], ...] = field(default=(), repr=False, compare=False)

    def sub_score(self, key: str) -> SubScore:
        return next(s for s in self.sub_scores if s.key == key)

    def __repr__(self) -> str:  # the full dataclass repr runs to ~80,000 characters
        subs = ", ".join(
            f"{s.key}={s.score:.1f}" if s.available else f"{s.key}=n/a" for s in self.sub_scores
        )
        return (
            f"<RiskAssessment {self.provider} composite={self.composite:.1f} "
            f"band={self.band.value} ({subs}) as_of={self.provenance.as_of.isoformat()} "
            f"horizon={self.horizon_weeks:g}w dataset={self.provenance.dataset_version}>"
        )

    def summary(self) -> dict[str, Any]:
        """One flat row: provider, composite, band, every sub-score, SPOFs, top country."""
        top = self.country_impacts[0] if self.country_impacts else None
        return {
            "provider": self.provider,
            "name": self.display_name,
            "composite": self.composite,
            "band": self.band.value,
            **{s.key: (s.score if s.available else None) for s in self.sub_scores},
            "spofs": self.spof_count,
            "top_country": top.country if top else None,
            "top_country_impact": top.impact if top else None,
            "as_of": self.provenance.as_of.isoformat(),
            "dataset": self.provenance.dataset_version,
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything, as plain JSON-ready values (enums as their values, dates ISO)."""
        plain = _plain(self)
        assert isinstance(plain, dict)
        return plain

    def to_frame(self) -> Any:
        """The sub-scores as a pandas DataFrame (score, weight, contribution, explanation);
        pandas is optional and imported here."""
        try:
            pd = importlib.import_module("pandas")
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("to_frame() needs pandas: pip install pandas") from exc
        rows = [_plain(s) for s in self.sub_scores]
        return pd.DataFrame(rows).set_index("key")


def _plain(value: Any) -> Any:
    """Dataclasses, enums, dates, tuples -> dicts, values, ISO strings, lists."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        # Fields kept out of the repr (raw_scores) are working values, not results.
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value) if f.repr}
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, frozenset | set):
        return sorted(_plain(v) for v in value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if hasattr(value, "item") and not isinstance(value, str | bytes):
        return value.item()  # a numpy scalar (float64, bool_) -> its Python value
    return value


# -- the compact risk vector ----------------------------------------------------------------

VECTOR_PREFIX = "SOVRISK:2"
#: Every sub-score, so the composite can be rebuilt from the vector and the weights. A
#: sub-score without data is written ``-``.
_VECTOR_KEYS = {
    "CO": "concentration",
    "ST": "structural",
    "GE": "geopolitical",
    "EX": "export_control",
    "RE": "resilience",
    "TA": "tail",
}
_SCORE = r"\d{1,3}\.\d"
_VECTOR_RE = re.compile(
    r"^SOVRISK:2/P:(?P<provider>[a-z0-9][a-z0-9._-]*)/S:(?P<composite>"
    + _SCORE
    + ")"
    + "".join(f"/{code}:(?P<{code}>{_SCORE}|-)" for code in _VECTOR_KEYS)
    + r"/D:(?P<as_of>\d{4}-\d{2}-\d{2})/H:(?P<hash>[0-9a-f]{12})$"
)


@dataclass(frozen=True, slots=True)
class RiskVector:
    """A one-line summary like a CVSS vector, e.g.
    ``SOVRISK:2/P:aws/S:51.3/CO:62.0/ST:88.1/GE:47.2/EX:35.0/RE:12.4/TA:55.8/D:2026-11-24/H:0123456789ab``
    (every sub-score to one decimal, ``-`` when unavailable; as-of date, dataset hash prefix)."""

    provider: str
    composite: float
    sub_scores: tuple[tuple[str, float], ...]
    as_of: dt.date
    dataset_hash_prefix: str

    def __str__(self) -> str:
        subs = dict(self.sub_scores)
        parts = [VECTOR_PREFIX, f"P:{self.provider}", f"S:{self.composite:.1f}"]
        parts += [
            f"{code}:{subs[key]:.1f}" if key in subs else f"{code}:-"
            for code, key in _VECTOR_KEYS.items()
        ]
        parts += [f"D:{self.as_of.isoformat()}", f"H:{self.dataset_hash_prefix}"]
        return "/".join(parts)

    @classmethod
    def parse(cls, text: str) -> RiskVector:
        """Inverse of ``str()``; raises ValueError saying what is malformed."""
        match = _VECTOR_RE.fullmatch(text.strip())
        if match is None:
            raise ValueError(
                f"not a sovrisk risk vector: {text!r} (expected "
                "SOVRISK:2/P:<id>/S:<n.n>/CO:/ST:/GE:/EX:/RE:/TA:<n.n or ->/D:<YYYY-MM-DD>"
                "/H:<12 hex>)"
            )
        scores = {
            name: float(match[code]) for code, name in _VECTOR_KEYS.items() if match[code] != "-"
        }
        composite = float(match["composite"])
        for name, value in [("composite", composite), *scores.items()]:
            if value > 100.0:
                raise ValueError(f"risk vector score {name}={value} is above 100")
        return cls(
            provider=match["provider"],
            composite=composite,
            sub_scores=tuple(scores.items()),
            as_of=dt.date.fromisoformat(match["as_of"]),
            dataset_hash_prefix=match["hash"],
        )
