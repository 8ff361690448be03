"""Typed results of :class:`service.client.SovriskClient`: frozen dataclasses over the protos.

Enums read as lowercase strings without their prefix (``RISK_BAND_HIGH`` -> ``"high"``),
dates as :class:`datetime.date`, sub-scores by name. Every result keeps the message it was
read from in ``raw`` (left out of ``repr`` and ``==``), so nothing the server sent is lost;
``to_dict()`` gives plain Python values (dates as ISO strings) for JSON or a DataFrame.

This module and the client import only the standard library, protobuf, grpc and the
generated stubs: a client install must not pull the engine (numpy, scipy, numba, ...).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Self, cast

from google.protobuf.descriptor import EnumDescriptor
from google.protobuf.message import Message
from google.type import date_pb2

from sovrisk.service.grpc_gen.sovrisk.v1 import (
    common_pb2,
    graph_pb2,
    history_pb2,
    report_pb2,
    risk_pb2,
    scenario_pb2,
    screening_pb2,
    simulation_pb2,
    version_pb2,
)

# -- enums -----------------------------------------------------------------------------------

_PREFIXES: dict[str, str] = {}


def _enum_prefix(enum: EnumDescriptor) -> str:
    """``RiskBand`` -> ``"RISK_BAND_"`` when every value carries it (AIP-126), else ``""``."""
    prefix = _PREFIXES.get(enum.full_name)
    if prefix is None:
        prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", enum.name).upper() + "_"
        if not all(v.name.startswith(prefix) for v in enum.values):
            prefix = ""
        _PREFIXES[enum.full_name] = prefix
    return prefix


def enum_name(enum: EnumDescriptor, number: int) -> str:
    """The value's name, lowercase and without the enum's prefix: ``"high"``,
    ``"unspecified"``; the number as text for a value newer than these stubs."""
    value = enum.values_by_number.get(number)
    if value is None:
        return str(number)
    return value.name.removeprefix(_enum_prefix(enum)).lower()


def enum_number(enum: EnumDescriptor, value: str | int) -> int:
    """The inverse of :func:`enum_name`; also takes the full name (``"RISK_BAND_HIGH"``) or
    the number, so callers holding proto constants keep working."""
    if isinstance(value, int):
        return value
    text = value.strip().upper().replace("-", "_")
    for candidate in (text, _enum_prefix(enum) + text):
        found = enum.values_by_name.get(candidate)
        if found is not None:
            return int(found.number)
    choices = ", ".join(enum_name(enum, v.number) for v in enum.values if v.number)
    raise ValueError(f"unknown {enum.name} {value!r}; one of: {choices}")


def _enum(message: Message, name: str) -> str:
    """The enum field ``name`` of ``message`` as :func:`enum_name` reads it."""
    enum = message.DESCRIPTOR.fields_by_name[name].enum_type
    number: int = getattr(message, name)
    return enum_name(cast(EnumDescriptor, enum), number)


# -- dates and small values ------------------------------------------------------------------


def date_of(value: Any) -> dt.date | None:
    """A ``google.type.Date`` as a date; None when unset or partial (year or month only)."""
    if not (value.year and value.month and value.day):
        return None
    return dt.date(value.year, value.month, value.day)


def date_arg(value: dt.date | str | None, name: str = "date") -> Any:
    """A method argument (a date, a datetime or ``"YYYY-MM-DD"``) as a ``google.type.Date``;
    None stays None (the server's default)."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"{name} must be a date or 'YYYY-MM-DD', not {value!r}") from None
    return date_pb2.Date(year=value.year, month=value.month, day=value.day)


def _partial_date(value: Any) -> str:
    """A publication date as published: "2024", "2024-05" or "2024-05-01" ("" when unset)."""
    if not value.year:
        return ""
    if not value.month:
        return f"{value.year:04d}"
    if not value.day:
        return f"{value.year:04d}-{value.month:02d}"
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}"


def _optional(message: Message, name: str) -> Any:
    """A proto3 ``optional`` field's value, None when unset (0 is a value, unset is not)."""
    return getattr(message, name) if message.HasField(name) else None


def _sub(message: Message, name: str) -> Message | None:
    """A sub-message, None when unset (an empty default message would read as zeros)."""
    value: Message = getattr(message, name)
    return value if message.HasField(name) else None


def _short_id(name: str) -> str:
    """``"providers/aws"`` -> ``"aws"``."""
    return name.rsplit("/", 1)[-1]


def _plain(value: Any) -> Any:
    if isinstance(value, Record):
        return value.to_dict()
    if isinstance(value, dt.date):  # datetimes too
        return value.isoformat()
    if isinstance(value, Mapping):
        return {
            k if isinstance(k, str | int | float) else str(k): _plain(v) for k, v in value.items()
        }
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


def _key(key: Any) -> Any:
    return key if isinstance(key, str | int | float) else str(key)


class Record:
    """What every typed result shares: ``to_dict()`` over the dataclass fields. Each keeps
    its message in ``raw``, a keyword-only field out of ``repr`` and ``==`` (two results are
    equal when their typed fields are)."""

    def to_dict(self) -> dict[str, Any]:
        """The fields as plain values (dates as ISO strings, nested results as dicts); the
        raw message is left out (``json_format.MessageToDict(x.raw)`` gives it)."""
        me: Any = self
        return {f.name: _plain(getattr(me, f.name)) for f in fields(me) if f.name != "raw"}


# -- shared pieces ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Provenance(Record):
    """What a result rests on: model, dataset, date, parameters, seed, graph version."""

    model_version: str
    dataset_name: str
    dataset_version: str
    dataset_hash: str
    as_of: dt.date | None
    parameters: dict[str, str]
    seed: int
    graph_version: str
    raw: common_pb2.ResultProvenance = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: common_pb2.ResultProvenance) -> Self:
        return cls(
            m.model_version,
            m.dataset_name,
            m.dataset_version,
            m.dataset_hash,
            date_of(m.as_of),
            dict(m.parameters),
            m.seed,
            m.graph_version,
            raw=m,
        )


@dataclass(frozen=True)
class SubScore(Record):
    """One sub-score: 0-100 (higher = riskier), its effective weight and contribution."""

    key: str
    score: float
    weight: float
    contribution: float
    explanation: str
    data_missing: bool
    raw: risk_pb2.SubScore = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.SubScore) -> Self:
        return cls(
            _enum(m, "key"), m.score, m.weight, m.contribution, m.explanation, m.data_missing, raw=m
        )


def _sub_scores(items: Any) -> dict[str, SubScore]:
    return {s.key: s for s in map(SubScore.from_proto, items)}


@dataclass(frozen=True)
class Interval(Record):
    """A score's point value and 90 % interval over seeded draws of the data's ranges."""

    point: float
    low: float
    high: float
    raw: risk_pb2.ScoreInterval = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.ScoreInterval) -> Self:
        return cls(m.point, m.low, m.high, raw=m)


def _composite_interval(m: risk_pb2.RiskAssessment | risk_pb2.ProviderScore) -> Interval | None:
    if not m.HasField("uncertainty") or not m.uncertainty.HasField("composite"):
        return None
    return Interval.from_proto(m.uncertainty.composite)


@dataclass(frozen=True)
class LossUnits(Record):
    """What a provider stands to lose a year: shares of supply (0-1), weeks, US$ bn, units."""

    expected_annual_loss: float
    cvar95: float
    supply_weeks_per_year: float
    return_period_losses: dict[int, float]
    capex_usd_bn: float | None
    capex_at_risk_usd_bn: float | None
    intake_units: float | None
    accelerators_lost_per_year: float | None
    samples: int
    raw: risk_pb2.LossUnits = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.LossUnits) -> Self:
        return cls(
            m.expected_annual_loss,
            m.cvar95,
            m.supply_weeks_per_year,
            {r.years: r.loss for r in m.return_period_losses},
            _optional(m, "capex_usd_bn"),
            _optional(m, "capex_at_risk_usd_bn"),
            _optional(m, "intake_units"),
            _optional(m, "accelerators_lost_per_year"),
            m.samples,
            raw=m,
        )


def _loss_units(m: risk_pb2.RiskAssessment | risk_pb2.ProviderScore) -> LossUnits | None:
    return LossUnits.from_proto(m.loss_units) if m.HasField("loss_units") else None


def _sub_score_text(sub_scores: Mapping[str, SubScore]) -> str:
    return ", ".join(
        f"{k}=n/a" if s.data_missing else f"{k}={s.score:.1f}" for k, s in sub_scores.items()
    )


# -- assessments and rankings ----------------------------------------------------------------


@dataclass(frozen=True)
class NodeImpact(Record):
    """The share (0-1) of a provider's supply lost with one node for good."""

    node: str
    display_name: str
    kind: str
    impact: float
    headline_impact: float
    is_spof: bool
    near_spof: bool
    aggregate_market: bool
    evidence_path: tuple[str, ...]
    raw: risk_pb2.NodeImpact = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.NodeImpact) -> Self:
        return cls(
            m.node,
            m.display_name,
            _enum(m, "kind"),
            m.impact,
            m.headline_impact,
            m.is_spof,
            m.near_spof,
            m.aggregate_market,
            tuple(m.evidence_path),
            raw=m,
        )


@dataclass(frozen=True)
class FirmImpact(Record):
    """The share (0-1) of a provider's supply lost with every node of one firm."""

    firm: str
    impact: float
    nodes: tuple[str, ...]
    raw: risk_pb2.FirmImpact = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.FirmImpact) -> Self:
        return cls(m.firm, m.impact, tuple(m.nodes), raw=m)


@dataclass(frozen=True)
class CountryImpact(Record):
    """A country event's cost to a provider: site loss and blockade at the headline
    horizon, the site loss in the long run, and the country's risk (0-100)."""

    country: str
    display_name: str
    impact: float
    blockade_impact: float
    long_run_impact: float
    country_risk: float
    raw: risk_pb2.CountryImpact = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.CountryImpact) -> Self:
        return cls(
            m.country,
            m.display_name,
            m.impact,
            m.blockade_impact,
            m.long_run_impact,
            m.country_risk,
            raw=m,
        )


@dataclass(frozen=True)
class RegimeExposure(Record):
    """An export-control regime and the share (0-1) of the supply it can bind (evidence,
    not a compliance determination)."""

    regime: str
    display_name: str
    issuer: str
    in_force: bool
    binds_provider: bool
    veto: float
    status: str
    effective_from: dt.date | None
    effective_to: dt.date | None
    raw: risk_pb2.RegimeExposure = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.RegimeExposure) -> Self:
        return cls(
            m.regime,
            m.display_name,
            m.issuer,
            m.in_force,
            m.binds_provider,
            m.veto,
            _enum(m, "status"),
            date_of(m.effective_from),
            date_of(m.effective_to),
            raw=m,
        )


@dataclass(frozen=True)
class Check(Record):
    """A check on the supply: ``status`` "pass", "fail" or "inconclusive"."""

    id: str
    title: str
    status: str
    reason: str
    remediation: str
    evidence_path: tuple[str, ...]
    observed: float
    threshold: float
    raw: risk_pb2.Check = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.Check) -> Self:
        return cls(
            m.id,
            m.title,
            _enum(m, "status"),
            m.reason,
            m.remediation,
            tuple(m.evidence_path),
            m.observed,
            m.threshold,
            raw=m,
        )


@dataclass(frozen=True, repr=False)
class Assessment(Record):
    """One provider's assessment (``ScoreProvider``): composite 0-100 (higher = riskier),
    its band ("low", "moderate", "high", "critical"), the sub-scores by name and what lies
    behind them. ``node_impacts`` and the other lists are empty in the BASIC view."""

    provider: str
    display_name: str
    home_country: str
    composite: float
    band: str
    sub_scores: dict[str, SubScore]
    risk_vector: str
    horizon_weeks: float
    as_of: dt.date | None
    graph_version: str
    dataset_version: str
    dataset_hash: str
    model_version: str
    quarter: str
    floor_applied: bool
    floor_uplift: float
    retained_capacity: float
    spof_count: int
    near_spof_count: int
    node_impacts: tuple[NodeImpact, ...]
    firm_impacts: tuple[FirmImpact, ...]
    country_impacts: tuple[CountryImpact, ...]
    regimes: tuple[RegimeExposure, ...]
    checks: tuple[Check, ...]
    loss_units: LossUnits | None
    composite_interval: Interval | None
    notes: tuple[str, ...]
    score_interpretation: str
    provenance: Provenance
    raw: risk_pb2.RiskAssessment = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.RiskAssessment) -> Self:
        p = m.provenance
        return cls(
            provider=m.provider,
            display_name=m.display_name,
            home_country=m.home_country,
            composite=m.composite,
            band=_enum(m, "band"),
            sub_scores=_sub_scores(m.sub_scores),
            risk_vector=m.risk_vector,
            horizon_weeks=m.horizon_weeks,
            as_of=date_of(p.as_of),
            graph_version=p.graph_version,
            dataset_version=p.dataset_version,
            dataset_hash=p.dataset_hash,
            model_version=p.model_version,
            quarter=m.quarter,
            floor_applied=m.floor_applied,
            floor_uplift=m.floor_uplift,
            retained_capacity=m.retained_capacity,
            spof_count=m.spof_count,
            near_spof_count=m.near_spof_count,
            node_impacts=tuple(map(NodeImpact.from_proto, m.structural_impacts)),
            firm_impacts=tuple(map(FirmImpact.from_proto, m.firm_impacts)),
            country_impacts=tuple(map(CountryImpact.from_proto, m.country_impacts)),
            regimes=tuple(map(RegimeExposure.from_proto, m.regimes)),
            checks=tuple(map(Check.from_proto, m.checks)),
            loss_units=_loss_units(m),
            composite_interval=_composite_interval(m),
            notes=tuple(m.notes),
            score_interpretation=m.score_interpretation,
            provenance=Provenance.from_proto(p),
            raw=m,
        )

    @property
    def provider_id(self) -> str:
        """``"aws"`` for ``"providers/aws"``."""
        return _short_id(self.provider)

    @property
    def scores(self) -> dict[str, float | None]:
        """Sub-score values by name; None where the sub-score has no data."""
        return {k: None if s.data_missing else s.score for k, s in self.sub_scores.items()}

    @property
    def top_chokepoints(self) -> tuple[NodeImpact, ...]:
        """The five nodes whose loss costs the provider most (largest impact first)."""
        return self.node_impacts[:5]

    @property
    def failed_checks(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    def __repr__(self) -> str:
        as_of = self.as_of.isoformat() if self.as_of else "-"
        return (
            f"<Assessment {self.provider_id} composite={self.composite:.1f} band={self.band} "
            f"({_sub_score_text(self.sub_scores)}) as_of={as_of} {self.graph_version}>"
        )


@dataclass(frozen=True, repr=False)
class ProviderScore(Record):
    """One row of the ranking (``ListProviderScores``); ``assessment`` only with view
    "full"."""

    provider: str
    display_name: str
    rank: int
    composite: float
    band: str
    sub_scores: dict[str, SubScore]
    risk_vector: str
    home_country: str
    floor_applied: bool
    floor_uplift: float
    loss_units: LossUnits | None
    composite_interval: Interval | None
    assessment: Assessment | None
    raw: risk_pb2.ProviderScore = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.ProviderScore) -> Self:
        return cls(
            m.provider,
            m.display_name,
            m.rank,
            m.composite,
            _enum(m, "band"),
            _sub_scores(m.sub_scores),
            m.risk_vector,
            m.home_country,
            m.floor_applied,
            m.floor_uplift,
            _loss_units(m),
            _composite_interval(m),
            Assessment.from_proto(m.assessment) if m.HasField("assessment") else None,
            raw=m,
        )

    @property
    def provider_id(self) -> str:
        return _short_id(self.provider)

    @property
    def scores(self) -> dict[str, float | None]:
        return {k: None if s.data_missing else s.score for k, s in self.sub_scores.items()}

    def __repr__(self) -> str:
        return (
            f"<ProviderScore #{self.rank} {self.provider_id} composite={self.composite:.1f} "
            f"band={self.band} ({_sub_score_text(self.sub_scores)})>"
        )


@dataclass(frozen=True, repr=False)
class Chokepoint(Record):
    """A node, firm or country whose loss cuts providers' supply: ``impacts`` maps each
    provider to the share (0-1) it loses, largest first."""

    name: str
    display_name: str
    kind: str
    node_kind: str
    rank: int
    providers_cut: int
    mean_impact: float
    max_impact: float
    impacts: dict[str, float]
    raw: risk_pb2.Chokepoint = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.Chokepoint) -> Self:
        return cls(
            m.name,
            m.display_name,
            _enum(m, "chokepoint_kind"),
            _enum(m, "node_kind"),
            m.rank,
            m.providers_cut,
            m.mean_impact,
            m.max_impact,
            {i.provider: i.impact for i in m.provider_impacts},
            raw=m,
        )

    def __repr__(self) -> str:
        return (
            f"<Chokepoint #{self.rank} {self.name} ({self.kind}) cuts {self.providers_cut} "
            f"mean={self.mean_impact:.3f} max={self.max_impact:.3f}>"
        )


# -- the graph -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source(Record):
    """A public source; ``publish_date`` as published ("2024", "2024-05" or "2024-05-01")."""

    id: str
    title: str
    publisher: str
    publish_date: str
    url: str
    quality: str
    raw: common_pb2.Source = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: common_pb2.Source) -> Self:
        return cls(
            m.id,
            m.title,
            m.publisher,
            _partial_date(m.publish_date),
            m.url,
            _enum(m, "quality"),
            raw=m,
        )


@dataclass(frozen=True, repr=False)
class GraphInfo(Record):
    """The graph singleton (``GetGraph``): version, dataset, node counts by kind, sources."""

    version_id: str
    content_hash: str
    dataset_name: str
    dataset_version: str
    as_of: dt.date | None
    description: str
    licence: str
    kind_counts: dict[str, int]
    supply_edge_count: int
    site_count: int
    sources: tuple[Source, ...]
    raw: graph_pb2.Graph = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: graph_pb2.Graph) -> Self:
        enum = cast(EnumDescriptor, graph_pb2.KindCount.DESCRIPTOR.fields_by_name["kind"].enum_type)
        return cls(
            m.version_id,
            m.content_hash,
            m.dataset.name,
            m.dataset.version,
            date_of(m.dataset.as_of),
            m.dataset.description,
            m.dataset.licence,
            {enum_name(enum, k.kind): k.count for k in m.kind_counts},
            m.supply_edge_count,
            m.site_count,
            tuple(map(Source.from_proto, m.sources)),
            raw=m,
        )

    def __repr__(self) -> str:
        as_of = self.as_of.isoformat() if self.as_of else "-"
        return (
            f"<GraphInfo {self.dataset_name} {self.version_id} as_of={as_of} "
            f"{sum(self.kind_counts.values())} nodes, {self.supply_edge_count} edges>"
        )


@dataclass(frozen=True)
class SupplyLink(Record):
    """One supply edge seen from a node: the node at the other end and its share (0-1)."""

    category: str
    node: str
    display_name: str
    kind: str
    share: float
    share_low: float
    share_high: float
    raw: graph_pb2.SupplyLink = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: graph_pb2.SupplyLink) -> Self:
        return cls(
            m.category,
            m.node,
            m.display_name,
            _enum(m, "kind"),
            m.share,
            m.share_range.low,
            m.share_range.high,
            raw=m,
        )


@dataclass(frozen=True)
class Site(Record):
    """A share (0-1) of a node's capacity produced in one country."""

    country: str
    country_display_name: str
    share: float
    site_name: str
    raw: graph_pb2.Site = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: graph_pb2.Site) -> Self:
        return cls(m.country, m.country_display_name, m.share, m.site_name, raw=m)


@dataclass(frozen=True, repr=False)
class Node(Record):
    """A node of the supply graph (``ListNodes``, ``GetNode``)."""

    name: str
    display_name: str
    kind: str
    owner: str
    hq_country: str
    layer: str
    tags: tuple[str, ...]
    quality: str
    as_of: dt.date | None
    notes: str
    suppliers: tuple[SupplyLink, ...]
    consumers: tuple[SupplyLink, ...]
    sites: tuple[Site, ...]
    sources: tuple[Source, ...]
    raw: graph_pb2.Node = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: graph_pb2.Node) -> Self:
        return cls(
            m.name,
            m.display_name,
            _enum(m, "kind"),
            m.owner,
            m.hq_country,
            m.layer,
            tuple(m.tags),
            _enum(m.provenance, "quality"),
            date_of(m.provenance.as_of),
            m.notes,
            tuple(map(SupplyLink.from_proto, m.suppliers)),
            tuple(map(SupplyLink.from_proto, m.consumers)),
            tuple(map(Site.from_proto, m.sites)),
            tuple(map(Source.from_proto, m.sources)),
            raw=m,
        )

    @property
    def id(self) -> str:
        """``"tsmc-n3"`` for ``"nodes/tsmc-n3"``."""
        return _short_id(self.name)

    def __repr__(self) -> str:
        sites = ", ".join(f"{s.country} {s.share:.0%}" for s in self.sites)
        return (
            f"<Node {self.id} ({self.kind}) {self.display_name!r} owner={self.owner!r} "
            f"{len(self.suppliers)} suppliers, {len(self.consumers)} consumers"
            + (f", sites {sites}" if sites else "")
            + ">"
        )


# -- versions and edits ----------------------------------------------------------------------


@dataclass(frozen=True)
class GraphVersion(Record):
    """One committed, immutable version of the graph."""

    name: str
    base_version: str
    content_hash: str
    files_digest: str
    dataset_version: str
    author: str
    create_time: dt.datetime | None
    message: str
    change_count: int
    raw: version_pb2.GraphVersion = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: version_pb2.GraphVersion) -> Self:
        created = m.create_time.ToDatetime(tzinfo=dt.UTC) if m.HasField("create_time") else None
        return cls(
            m.name,
            m.base_version,
            m.content_hash,
            m.files_digest,
            m.dataset_version,
            m.author,
            created,
            m.message,
            m.change_count,
            raw=m,
        )

    @property
    def number(self) -> int:
        """3 for ``"graph/versions/3"``."""
        return int(_short_id(self.name))


@dataclass(frozen=True)
class RecordChange(Record):
    """One record added, removed or changed: ``fields`` maps each changed column to its
    (old, new) values."""

    kind: str
    key: tuple[str, ...]
    operation: str
    fields: dict[str, tuple[str, str]]
    nodes: tuple[str, ...]
    raw: version_pb2.RecordChange = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: version_pb2.RecordChange) -> Self:
        return cls(
            m.kind,
            tuple(m.key),
            _enum(m, "operation"),
            {f.column: (f.old_value, f.new_value) for f in m.fields},
            tuple(m.nodes),
            raw=m,
        )


EditResponse = graph_pb2.BatchUpdateGraphResponse | graph_pb2.ImportGraphResponse


@dataclass(frozen=True, repr=False)
class EditResult(Record):
    """What a ``BatchUpdateGraph`` or ``ImportGraph`` did: the new version (None for
    ``validate_only``) and the record changes against the base version."""

    version: GraphVersion | None
    changes: tuple[RecordChange, ...]
    raw: graph_pb2.BatchUpdateGraphResponse | graph_pb2.ImportGraphResponse = field(
        repr=False, compare=False, kw_only=True
    )

    @classmethod
    def from_proto(cls, m: EditResponse) -> Self:
        version = GraphVersion.from_proto(m.graph_version) if m.HasField("graph_version") else None
        return cls(version, tuple(map(RecordChange.from_proto, m.changes)), raw=m)

    def __repr__(self) -> str:
        where = self.version.name if self.version else "validate only"
        return f"<EditResult {where}: {len(self.changes)} record changes>"


@dataclass(frozen=True, repr=False)
class GraphDiff(Record):
    """``DiffGraphVersions``: the record changes, and for each node the indexes into
    ``changes`` that touch it."""

    changes: tuple[RecordChange, ...]
    nodes: dict[str, tuple[int, ...]]
    raw: graph_pb2.DiffGraphVersionsResponse = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: graph_pb2.DiffGraphVersionsResponse) -> Self:
        return cls(
            tuple(map(RecordChange.from_proto, m.changes)),
            {n.node: tuple(n.change_indexes) for n in m.nodes},
            raw=m,
        )

    def __repr__(self) -> str:
        return f"<GraphDiff {len(self.changes)} record changes, {len(self.nodes)} nodes>"


# -- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioDriver(Record):
    """How far one perturbation (by its position in the request) moved a quantity."""

    perturbation_index: int
    description: str
    effect: float
    raw: scenario_pb2.ScenarioDriver = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: scenario_pb2.ScenarioDriver) -> Self:
        return cls(m.perturbation_index, m.description, m.effect, raw=m)


@dataclass(frozen=True)
class ScenarioDelta(Record):
    """One quantity ("available_capacity", "composite", a sub-score), baseline against
    scenario, with its drivers largest first."""

    quantity: str
    baseline: float
    scenario: float
    delta: float
    drivers: tuple[ScenarioDriver, ...]
    raw: scenario_pb2.ScenarioDelta = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: scenario_pb2.ScenarioDelta) -> Self:
        return cls(
            m.quantity,
            m.baseline,
            m.scenario,
            m.delta,
            tuple(map(ScenarioDriver.from_proto, m.drivers)),
            raw=m,
        )


@dataclass(frozen=True, repr=False)
class ScenarioOutcome(Record):
    """One provider under a scenario: capacity available (0-1, higher = more supply)
    before and after, weeks of supply lost, and every delta by quantity."""

    provider: str
    display_name: str
    available_baseline: float
    available_scenario: float
    lost_supply_weeks: float
    lost_capex_usd_bn: float | None
    deltas: dict[str, ScenarioDelta]
    available_curve: dict[float, float]
    baseline_risk_vector: str
    scenario_risk_vector: str
    explanations: tuple[str, ...]
    raw: scenario_pb2.ProviderScenarioOutcome = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: scenario_pb2.ProviderScenarioOutcome) -> Self:
        return cls(
            m.provider,
            m.display_name,
            m.available_baseline,
            m.available_scenario,
            m.lost_supply_weeks,
            _optional(m, "lost_capex_usd_bn"),
            {d.quantity: d for d in map(ScenarioDelta.from_proto, m.deltas)},
            {h.horizon_weeks: h.value for h in m.available_curve},
            m.baseline_risk_vector,
            m.scenario_risk_vector,
            tuple(m.explanations),
            raw=m,
        )

    @property
    def provider_id(self) -> str:
        return _short_id(self.provider)

    def __repr__(self) -> str:
        return (
            f"<ScenarioOutcome {self.provider_id} available {self.available_baseline:.3f} -> "
            f"{self.available_scenario:.3f}, {self.lost_supply_weeks:.1f} supply-weeks lost>"
        )


@dataclass(frozen=True, repr=False)
class ScenarioResult(Record):
    """``RunScenario``: one outcome per provider asked for."""

    display_name: str
    as_of: dt.date | None
    baseline_version: str
    scenario_version: str
    outcomes: tuple[ScenarioOutcome, ...]
    notes: tuple[str, ...]
    provenance: Provenance
    raw: risk_pb2.RunScenarioResponse = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.RunScenarioResponse) -> Self:
        return cls(
            m.display_name,
            date_of(m.as_of),
            m.baseline_version,
            m.scenario_version,
            tuple(map(ScenarioOutcome.from_proto, m.outcomes)),
            tuple(m.notes),
            Provenance.from_proto(m.provenance),
            raw=m,
        )

    def outcome(self, provider: str) -> ScenarioOutcome:
        """The outcome of ``provider`` ("aws" or "providers/aws"); KeyError if not asked."""
        found: ScenarioOutcome = _find(self.outcomes, provider)
        return found

    def __repr__(self) -> str:
        worst = sorted(self.outcomes, key=lambda o: o.available_scenario)[:3]
        text = ", ".join(f"{o.provider_id} {o.available_scenario:.3f}" for o in worst)
        return f"<ScenarioResult {self.display_name!r} {len(self.outcomes)} providers ({text})>"


def _find(items: tuple[Any, ...], provider: str) -> Any:
    name = provider if provider.startswith("providers/") else f"providers/{provider}"
    for item in items:
        if item.provider == name:
            return item
    raise KeyError(provider)


# -- simulation ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunningEstimate(Record):
    """A provider's running mean and 95th percentile of annual loss (0-1)."""

    provider: str
    mean_loss: float
    p95_loss: float
    raw: simulation_pb2.ProviderRunningEstimate = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: simulation_pb2.ProviderRunningEstimate) -> Self:
        return cls(m.provider, m.mean_loss, m.p95_loss, raw=m)


@dataclass(frozen=True)
class SimulationProgress(Record):
    """Samples done so far, with running estimates."""

    samples_done: int
    samples_total: int
    estimates: tuple[RunningEstimate, ...]
    raw: simulation_pb2.SimulationProgress = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: simulation_pb2.SimulationProgress) -> Self:
        estimates = tuple(map(RunningEstimate.from_proto, m.estimates))
        return cls(m.samples_done, m.samples_total, estimates, raw=m)

    @property
    def fraction(self) -> float:
        return self.samples_done / self.samples_total if self.samples_total else 0.0


@dataclass(frozen=True)
class EventAttribution(Record):
    """What switching one event off changes (mean loss and CVaR95 contributions)."""

    event: str
    display_name: str
    mean_loss_contribution: float
    cvar95_contribution: float
    raw: simulation_pb2.EventAttribution = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: simulation_pb2.EventAttribution) -> Self:
        return cls(m.event, m.display_name, m.mean_loss_contribution, m.cvar95_contribution, raw=m)


@dataclass(frozen=True, repr=False)
class ProviderSimulation(Record):
    """One provider's simulated annual-loss distribution (shares of supply, 0-1)."""

    provider: str
    display_name: str
    mean_loss: float
    mean_loss_se: float
    p50_loss: float
    p95_loss: float
    var95: float
    cvar95: float
    prob_below_half: float
    return_period_losses: dict[int, float]
    attributions: tuple[EventAttribution, ...]
    drivers: tuple[str, ...]
    raw: simulation_pb2.ProviderSimulation = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: simulation_pb2.ProviderSimulation) -> Self:
        return cls(
            m.provider,
            m.display_name,
            m.mean_loss,
            m.mean_loss_se,
            m.p50_loss,
            m.p95_loss,
            m.var95,
            m.cvar95,
            m.prob_below_half,
            {r.years: r.loss for r in m.return_period_losses},
            tuple(map(EventAttribution.from_proto, m.attributions)),
            tuple(d.driver for d in m.drivers),  # most important first; details in raw
            raw=m,
        )

    @property
    def provider_id(self) -> str:
        return _short_id(self.provider)

    def __repr__(self) -> str:
        return (
            f"<ProviderSimulation {self.provider_id} mean={self.mean_loss:.4f} "
            f"p95={self.p95_loss:.4f} cvar95={self.cvar95:.4f}>"
        )


@dataclass(frozen=True, repr=False)
class SimulationResult(Record):
    """``SimulateDisruptions``' final message."""

    samples: int
    providers: tuple[ProviderSimulation, ...]
    events: tuple[str, ...]
    provenance: Provenance
    score_interpretation: str
    raw: simulation_pb2.SimulationResult = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: simulation_pb2.SimulationResult) -> Self:
        return cls(
            m.samples,
            tuple(map(ProviderSimulation.from_proto, m.providers)),
            tuple(e.id for e in m.events),
            Provenance.from_proto(m.provenance),
            m.score_interpretation,
            raw=m,
        )

    def provider(self, provider: str) -> ProviderSimulation:
        """The distribution of ``provider`` ("aws" or "providers/aws")."""
        found: ProviderSimulation = _find(self.providers, provider)
        return found

    def __repr__(self) -> str:
        return (
            f"<SimulationResult {self.samples} samples, seed {self.provenance.seed}, "
            f"{len(self.providers)} providers, {len(self.events)} events>"
        )


# -- screening -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Match(Record):
    """A candidate match of a supplier: a graph firm or an entity-list entry (evidence for
    review, not a compliance determination)."""

    kind: str
    target: str
    matched_name: str
    matched_via: str
    score: float
    decision: str
    reason: str
    countries: tuple[str, ...]
    nodes: tuple[str, ...]
    list_name: str
    federal_register: str
    raw: screening_pb2.MatchCandidate = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: screening_pb2.MatchCandidate) -> Self:
        return cls(
            _enum(m, "kind"),
            m.target,
            m.matched_name,
            m.matched_via,
            m.score,
            _enum(m, "decision"),
            m.reason,
            tuple(m.countries),
            tuple(m.nodes),
            m.entry.list_name,
            m.entry.federal_register,
            raw=m,
        )


@dataclass(frozen=True)
class SupplierScreening(Record):
    """One supplier's screening: decisions "match", "review" or "no_match"."""

    index: int
    name: str
    country: str
    entity_list_decision: str
    graph_decision: str
    entity_list_matches: tuple[Match, ...]
    graph_matches: tuple[Match, ...]
    raw: screening_pb2.SupplierScreening = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: screening_pb2.SupplierScreening) -> Self:
        return cls(
            m.index,
            m.supplier.name,
            m.country,
            _enum(m, "entity_list_decision"),
            _enum(m, "graph_decision"),
            tuple(map(Match.from_proto, m.entity_list_candidates)),
            tuple(map(Match.from_proto, m.graph_candidates)),
            raw=m,
        )


@dataclass(frozen=True, repr=False)
class ScreeningResult(Record):
    """``ScreenSuppliers``: one result per supplier, in request order."""

    results: tuple[SupplierScreening, ...]
    match_threshold: float
    review_threshold: float
    entity_source: str
    entity_count: int
    firm_count: int
    graph_version: str
    disclaimer: str
    raw: screening_pb2.ScreenSuppliersResponse = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: screening_pb2.ScreenSuppliersResponse) -> Self:
        return cls(
            tuple(map(SupplierScreening.from_proto, m.results)),
            m.match_threshold,
            m.review_threshold,
            m.entity_source,
            m.entity_count,
            m.firm_count,
            m.graph_version,
            m.disclaimer,
            raw=m,
        )

    def __repr__(self) -> str:
        flagged = sum(r.entity_list_decision in ("match", "review") for r in self.results)
        return (
            f"<ScreeningResult {len(self.results)} suppliers, {flagged} entity-list "
            f"match or review (against {self.entity_count} entries, {self.firm_count} firms)>"
        )


# -- reports ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReportProgress(Record):
    """How far a report has got: a stage and the fraction done (0-1)."""

    stage: str
    fraction: float
    raw: report_pb2.ReportProgress = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: report_pb2.ReportProgress) -> Self:
        return cls(m.stage, m.fraction, raw=m)


@dataclass(frozen=True, repr=False)
class Report(Record):
    """A finished report: the document's bytes and media type."""

    file_name: str
    content_type: str
    content: bytes
    sha256: str
    graph_version: str
    path: Path | None = None  # where the client wrote it, if asked to
    raw: report_pb2.Report = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: report_pb2.Report, path: Path | None = None) -> Self:
        return cls(m.file_name, m.content_type, m.content, m.sha256, m.graph_version, path, raw=m)

    @property
    def text(self) -> str:
        """The document as text (every format but none is binary)."""
        return self.content.decode("utf-8")

    def __repr__(self) -> str:
        where = f" at {self.path}" if self.path else ""
        return f"<Report {self.file_name} {self.content_type} {len(self.content):,} bytes{where}>"


# -- trajectories, comparisons, alerts -------------------------------------------------------


@dataclass(frozen=True, repr=False)
class TrajectoryRow(Record):
    """A provider's scores as of one quarter's last day."""

    quarter: str
    as_of: dt.date | None
    provider: str
    composite: float
    band: str
    sub_scores: dict[str, SubScore]
    risk_vector: str
    own_silicon_unit_share: float | None
    new_units: float | None
    notes: tuple[str, ...]
    raw: risk_pb2.TrajectoryRow = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.TrajectoryRow) -> Self:
        return cls(
            m.quarter,
            date_of(m.as_of),
            m.provider,
            m.composite,
            _enum(m, "band"),
            _sub_scores(m.sub_scores),
            m.risk_vector,
            _optional(m, "own_silicon_unit_share"),
            _optional(m, "new_units"),
            tuple(m.notes),
            raw=m,
        )

    def __repr__(self) -> str:
        return (
            f"<TrajectoryRow {self.quarter} {_short_id(self.provider)} "
            f"composite={self.composite:.1f} band={self.band}>"
        )


@dataclass(frozen=True, repr=False)
class Trajectory(Record):
    """``GetScoreTrajectory``: rows quarter by quarter, providers in request order."""

    rows: tuple[TrajectoryRow, ...]
    provenance: Provenance
    raw: risk_pb2.GetScoreTrajectoryResponse = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.GetScoreTrajectoryResponse) -> Self:
        rows = tuple(map(TrajectoryRow.from_proto, m.rows))
        return cls(rows, Provenance.from_proto(m.provenance), raw=m)

    @property
    def quarters(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.quarter for r in self.rows))

    def series(self, provider: str) -> dict[str, float]:
        """``provider``'s composite by quarter."""
        name = provider if provider.startswith("providers/") else f"providers/{provider}"
        return {r.quarter: r.composite for r in self.rows if r.provider == name}

    def __repr__(self) -> str:
        quarters = self.quarters
        span = f"{quarters[0]}..{quarters[-1]}" if quarters else "no quarters"
        providers = len({r.provider for r in self.rows})
        return f"<Trajectory {span}, {providers} providers, {len(self.rows)} rows>"


def _metric(m: history_pb2.MetricDelta) -> str:
    return _enum(m, "metric")


@dataclass(frozen=True)
class MetricChange(Record):
    """One score before and after, in points (``delta`` > 0 = riskier)."""

    metric: str
    before: float
    after: float
    delta: float
    raw: history_pb2.MetricDelta = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.MetricDelta) -> Self:
        return cls(_metric(m), m.base_value, m.target_value, m.delta, raw=m)


@dataclass(frozen=True)
class ScoreDelta(Record):
    """The composite's change and each sub-score's, in points."""

    composite: float
    sub_scores: dict[str, float]
    raw: history_pb2.ScoreDelta = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.ScoreDelta) -> Self:
        return cls(m.composite, {_metric(d): d.delta for d in m.sub_scores}, raw=m)


@dataclass(frozen=True)
class AssessmentPoint(Record):
    """One side of a comparison: version, date and every score there."""

    graph_version: str
    as_of: dt.date | None
    composite: float
    scores: dict[str, float]
    raw: history_pb2.AssessmentPoint = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.AssessmentPoint) -> Self:
        scores = {_metric(s): s.target_value for s in m.scores}
        return cls(m.graph_version, date_of(m.as_of), m.composite, scores, raw=m)


@dataclass(frozen=True)
class ChangeCause(Record):
    """A graph edit or a regime's date effect, with its effect measured alone."""

    kind: str
    label: str
    regime: str
    measured: bool
    effect: ScoreDelta
    records: tuple[RecordChange, ...]
    raw: history_pb2.ChangeCause = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.ChangeCause) -> Self:
        return cls(
            _enum(m, "kind"),
            m.label,
            m.regime,
            m.measured,
            ScoreDelta.from_proto(m.effect),
            tuple(map(RecordChange.from_proto, m.records)),
            raw=m,
        )


@dataclass(frozen=True)
class ComparisonStep(Record):
    """ "graph_edits" or "date_effects": the step's change, its causes and their
    interaction."""

    name: str
    total: ScoreDelta
    causes: tuple[ChangeCause, ...]
    interaction: ScoreDelta
    raw: history_pb2.ComparisonStep = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.ComparisonStep) -> Self:
        return cls(
            m.name,
            ScoreDelta.from_proto(m.total),
            tuple(map(ChangeCause.from_proto, m.causes)),
            ScoreDelta.from_proto(m.interaction),
            raw=m,
        )


@dataclass(frozen=True)
class CheckChange(Record):
    """A check whose status differs between the two sides."""

    check_id: str
    title: str
    before: str
    after: str
    raw: risk_pb2.CheckChange = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.CheckChange) -> Self:
        before, after = _enum(m, "base_status"), _enum(m, "target_status")
        return cls(m.check_id, m.title, before, after, raw=m)


@dataclass(frozen=True, repr=False)
class Comparison(Record):
    """``CompareAssessments``: where a provider stood, where it stands, and why."""

    provider: str
    base: AssessmentPoint
    target: AssessmentPoint
    delta: ScoreDelta
    steps: tuple[ComparisonStep, ...]
    check_changes: tuple[CheckChange, ...]
    summary: str
    provenance: Provenance
    raw: risk_pb2.CompareAssessmentsResponse = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: risk_pb2.CompareAssessmentsResponse) -> Self:
        return cls(
            m.provider,
            AssessmentPoint.from_proto(m.base),
            AssessmentPoint.from_proto(m.target),
            ScoreDelta.from_proto(m.delta),
            tuple(map(ComparisonStep.from_proto, m.steps)),
            tuple(map(CheckChange.from_proto, m.check_changes)),
            m.summary,
            Provenance.from_proto(m.provenance),
            raw=m,
        )

    def __repr__(self) -> str:
        b, t = self.base, self.target
        return (
            f"<Comparison {_short_id(self.provider)} {b.graph_version} -> {t.graph_version}: "
            f"composite {b.composite:.1f} -> {t.composite:.1f} ({self.delta.composite:+.1f})>"
        )


@dataclass(frozen=True)
class ScoreAlert(Record):
    """A threshold that fired for one provider on a new version."""

    provider: str
    metric: str
    kind: str
    threshold: float
    change: MetricChange
    message: str
    raw: history_pb2.ScoreAlert = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.ScoreAlert) -> Self:
        t = m.threshold
        return cls(
            m.provider,
            _enum(t, "metric"),
            _enum(t, "kind"),
            t.value,
            MetricChange.from_proto(m.score),
            m.message,
            raw=m,
        )


@dataclass(frozen=True)
class WatchEvent(Record):
    """One new graph version seen by ``WatchProviderScores``, with the alerts that fired
    (possibly none); pass ``graph_version`` as ``start_after_version`` to resume."""

    graph_version: str
    base_version: str
    alerts: tuple[ScoreAlert, ...]
    raw: history_pb2.WatchProviderScoresResponse = field(repr=False, compare=False, kw_only=True)

    @classmethod
    def from_proto(cls, m: history_pb2.WatchProviderScoresResponse) -> Self:
        alerts = tuple(map(ScoreAlert.from_proto, m.alerts))
        return cls(m.graph_version, m.base_version, alerts, raw=m)


# -- dataset files ---------------------------------------------------------------------------

#: The files of a dataset folder, in the order the server digests them. A copy of
#: ``models.graph.dataset.DATASET_FILES`` (tests/test_client_typed.py keeps the two equal):
#: the client may not import the engine package.
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


class DatasetFolder(Mapping[str, bytes]):
    """The files of one dataset (name -> bytes), as ``ExportGraph`` streams them and
    ``ImportGraph`` takes them. Validation is the server's: this only holds bytes.

    ``digest`` is computed exactly as the server's ``GraphVersion.files_digest``, so an
    export can be checked against its version.
    """

    __slots__ = ("_files",)

    def __init__(self, files: Mapping[str, bytes]) -> None:
        known = [n for n in DATASET_FILES if n in files]
        others = sorted(set(files) - set(DATASET_FILES))  # sent as given; the server rejects
        self._files = {name: bytes(files[name]) for name in (*known, *others)}

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> DatasetFolder:
        """The dataset files present in a folder (other files there are ignored)."""
        root = Path(path)
        if not root.is_dir():
            raise NotADirectoryError(f"not a dataset folder: {root}")
        return cls({n: (root / n).read_bytes() for n in DATASET_FILES if (root / n).is_file()})

    def __getitem__(self, name: str) -> bytes:
        return self._files[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._files)

    def __len__(self) -> int:
        return len(self._files)

    def __repr__(self) -> str:
        return f"DatasetFolder({', '.join(self._files)}; digest={self.digest[:12]})"

    def text(self, name: str) -> str | None:
        """The file decoded as UTF-8 (a BOM is dropped), or None when it is absent."""
        data = self._files.get(name)
        return None if data is None else data.decode("utf-8-sig")

    @property
    def digest(self) -> str:
        """sha256 over the names and bytes of every file (the server's ``files_digest``)."""
        h = hashlib.sha256()
        for name, data in self._files.items():
            h.update(name.encode() + b"\0" + len(data).to_bytes(8, "big") + data)
        return h.hexdigest()

    def write(self, path: str | os.PathLike[str]) -> Path:
        """Write the files into ``path`` (created if needed), each replaced atomically."""
        root = Path(path)
        root.mkdir(parents=True, exist_ok=True)
        for name, data in self._files.items():
            fd, tmp = tempfile.mkstemp(dir=root, prefix=f".{name}.")
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(tmp, root / name)
        return root
