"""The validity report: does the model tell providers apart, and do its numbers have the
properties of METHODS v2 §12 on a dataset? (``sovrisk validity``, docs/methodology.md)

It measures, as an analyst would try them: country impacts per provider at every horizon
(site loss and blockade), the spread of every sub-score across providers, which providers the
floor sets, what a 10 % CoWoS loss and a 60 % Taiwan loss cost each provider, and the
ranking. Each §12 property is evaluated with the figures behind it, so a failure says what
was measured, not only that something failed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from sovrisk.models.engine.impacts import CURVE_HORIZONS, HEADLINE, HORIZONS, CountryEvent
from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.params import SUB_SCORES, ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

#: The country that hosts the leading-edge foundry and CoWoS-class packaging (§12).
LEADING_EDGE_HOST = "TWN"
#: Countries whose tools and optics are an installed base (§12): small at 13 weeks.
TOOL_COUNTRIES = ("NLD", "DEU")
#: The tag of TSMC's CoWoS lines (a 10 % loss of them must show, §12).
COWOS_TAG = "cowos"


@dataclass(frozen=True, slots=True)
class Property:
    """One §12 property: whether it holds and the figures that show it."""

    name: str
    holds: bool
    figures: str


@dataclass(frozen=True, slots=True)
class ValidityReport:
    dataset_version: str
    as_of: str
    providers: tuple[str, ...]
    #: (country, kind) -> per provider, the impact at each curve horizon (long run last).
    country_curves: dict[tuple[str, str], dict[str, tuple[float, ...]]]
    #: sub-score -> (min, max, per provider)
    spreads: dict[str, tuple[float, float, dict[str, float]]]
    floor_set: tuple[str, ...]
    critical: tuple[str, ...]
    baseline: dict[str, float]  # a(P) at the headline horizon with the regimes in force
    cowos_loss: dict[str, float]  # a(P) lost to a 10 % CoWoS loss at the headline horizon
    taiwan_60: dict[str, float]  # a(P) left with 60 % of Taiwan's capacity lost, headline
    us_physical: dict[str, float]  # supply physically produced on US sites (flows only)
    ranking: tuple[tuple[str, float, str], ...]  # (provider, composite, risk vector)
    properties: tuple[Property, ...]

    @property
    def holds(self) -> bool:
        return all(p.holds for p in self.properties)


def _us_providers(engine: RiskEngine) -> list[str]:
    return [p for p in engine.provider_ids if engine.graph.nodes[p].hq_country == "USA"]


def physical_share(engine: RiskEngine, country: str) -> dict[str, float]:
    """Per provider: the supply physically produced on ``country``'s sites, the loss of those
    sites when only flows carry it and no buffer helps (installed bases and licences immune):
    the most a site loss there can cost once inventories run out."""
    cg = engine.compiled
    if country not in cg.countries:
        return dict.fromkeys(engine.provider_ids, 0.0)
    up = 1.0 - np.asarray(cg.sites[:, cg.countries.index(country)].toarray()).ravel()
    weeks = np.where(cg.flow_entries, 0.0, math.inf)
    a = cg.evaluate(up, horizon=1.0, buffers=weeks)
    return {p: float(1.0 - a[cg.index[p]]) for p in engine.provider_ids}


def tagged_loss(
    engine: RiskEngine, tag: str, fraction: float, params: ScoringParams
) -> dict[str, float]:
    """a(P) lost at the headline horizon when every node tagged ``tag`` loses ``fraction``."""
    cg = engine.compiled
    up = np.ones(cg.n_nodes)
    for node in engine.graph.nodes.values():
        if tag in node.tags:
            up[cg.index[node.id]] = 1.0 - fraction
    base = engine.available(np.ones(cg.n_nodes), params.as_of, horizon=params.horizon_weeks)
    hit = engine.available(up, params.as_of, horizon=params.horizon_weeks)
    return {p: float(base[k] - hit[k]) for k, p in enumerate(engine.provider_ids)}


def country_site_loss(
    engine: RiskEngine, country: str, fraction: float, params: ScoringParams
) -> dict[str, float]:
    """a(P) left at the headline horizon when ``country``'s sites lose ``fraction``."""
    cg = engine.compiled
    up = 1.0 - fraction * np.asarray(cg.sites[:, cg.countries.index(country)].toarray()).ravel()
    a = engine.available(up, params.as_of, horizon=params.horizon_weeks)
    return {p: float(a[k]) for k, p in enumerate(engine.provider_ids)}


def validity_report(engine: RiskEngine, params: ScoringParams | None = None) -> ValidityReport:
    """Every figure of the report and the §12 properties, on ``engine``'s dataset."""
    params = params or engine.default_params()
    engine = engine.at(params.as_of)  # the fleets and capacities of the date
    cg, ids = engine.compiled, engine.provider_ids
    assessed = {a.provider: a for a in engine.assess_all(params)}
    curves: dict[tuple[str, str], dict[str, tuple[float, ...]]] = {}
    for kind in CountryEvent:
        curve = engine.country_curve[kind]
        for c, iso3 in enumerate(cg.countries):
            curves[(iso3, str(kind))] = {
                p: tuple(float(v) for v in curve[:, k, c]) for k, p in enumerate(ids)
            }
    spreads = {}
    for key in SUB_SCORES:
        values = {
            p: a.sub_score(key).score for p, a in assessed.items() if a.sub_score(key).available
        }
        if values:
            spreads[key] = (min(values.values()), max(values.values()), values)
    floor_set = tuple(sorted(p for p, a in assessed.items() if a.floor_applied))
    critical = tuple(
        sorted(
            p
            for p, a in assessed.items()
            if max(s.score for s in a.sub_scores if s.available) >= params.critical
        )
    )
    base = engine.available(np.ones(cg.n_nodes), params.as_of, horizon=params.horizon_weeks)
    baseline = {p: float(base[k]) for k, p in enumerate(ids)}
    cowos = tagged_loss(engine, COWOS_TAG, 0.10, params)
    taiwan = (
        country_site_loss(engine, LEADING_EDGE_HOST, 0.60, params)
        if LEADING_EDGE_HOST in cg.countries
        else dict(baseline)
    )
    physical = physical_share(engine, "USA")
    ranking = tuple(
        (a.provider, a.composite, a.risk_vector)
        for a in sorted(assessed.values(), key=lambda a: (-a.composite, a.provider))
    )
    properties = _properties(
        engine,
        params,
        assessed,
        curves,
        spreads,
        floor_set,
        critical,
        baseline,
        cowos,
        taiwan,
        physical,
        tagged_loss(engine, COWOS_TAG, 1.0, params),
    )
    return ValidityReport(
        dataset_version=engine.graph.version_id,
        as_of=params.as_of.isoformat(),
        providers=ids,
        country_curves=curves,
        spreads=spreads,
        floor_set=floor_set,
        critical=critical,
        baseline=baseline,
        cowos_loss=cowos,
        taiwan_60=taiwan,
        us_physical=physical,
        ranking=ranking,
        properties=properties,
    )


def _fmt(values: dict[str, float], digits: int = 3) -> str:
    return ", ".join(f"{p} {v:.{digits}f}" for p, v in sorted(values.items()))


def _properties(
    engine: RiskEngine,
    params: ScoringParams,
    assessed: dict[str, RiskAssessment],
    curves: dict[tuple[str, str], dict[str, tuple[float, ...]]],
    spreads: dict[str, tuple[float, float, dict[str, float]]],
    floor_set: Sequence[str],
    critical: Sequence[str],
    baseline: dict[str, float],
    cowos: dict[str, float],
    taiwan: dict[str, float],
    physical: dict[str, float],
    cowos_all: dict[str, float],
) -> tuple[Property, ...]:
    h = HEADLINE
    long = CURVE_HORIZONS.index(104.0)
    out: list[Property] = []
    worst = max(
        (
            (v[h], iso3, kind, p)
            for (iso3, kind), row in curves.items()
            if iso3 != LEADING_EDGE_HOST
            for p, v in row.items()
        ),
        default=(0.0, "", "", ""),
    )
    out.append(
        Property(
            "no country but the leading-edge host cuts >= 99 % at the headline horizon",
            worst[0] < 0.99,
            f"largest: {worst[1]} {worst[2]} {worst[0]:.3f} ({worst[3]})",
        )
    )
    for iso3 in TOOL_COUNTRIES:
        if (iso3, "site_loss") not in curves:
            continue
        row = curves[(iso3, str(CountryEvent.SITE_LOSS))]
        short = max(v[h] for v in row.values())
        later = min(v[long] - v[h] for v in row.values())
        out.append(
            Property(
                f"{iso3} (tools, optics: installed base) cuts < 10 % at 13 weeks, more at 104",
                short < 0.10 and later > 0.0,
                f"max at 13 weeks {short:.3f}; every provider's 104-week impact above it by "
                f">= {later:.3f}",
            )
        )
    if ("USA", "site_loss") in curves:
        row = curves[("USA", str(CountryEvent.SITE_LOSS))]
        excess = {p: v[h] - physical[p] for p, v in row.items()}
        out.append(
            Property(
                "the USA cuts no more at 13 weeks than the supply made on US sites",
                max(excess.values()) <= 1e-9,
                "site loss at 13 weeks "
                + _fmt({p: v[h] for p, v in row.items()})
                + "; made on US sites "
                + _fmt(physical),
            )
        )
    relative = {p: taiwan[p] / baseline[p] for p in taiwan if baseline[p] > 0}
    out.append(
        Property(
            "60 % of Taiwan lost leaves each provider >= 0.4 of its supply at 13 weeks",
            min(relative.values(), default=1.0) >= 0.4 - 1e-9,
            "left (of the baseline): " + _fmt(relative),
        )
    )
    # Dependent: the provider's available supply (regimes in force binding) runs through
    # CoWoS, i.e. losing all of it would cost something. Supply through CoWoS that a regime in
    # force already stops (H200 for a Chinese buyer) cannot be lost again.
    dependent = [p for p in engine.provider_ids if cowos_all[p] > 1e-9]
    bound = [
        p
        for p in engine.provider_ids
        if p not in dependent and _depends_on_tag(engine, p, COWOS_TAG)
    ]
    out.append(
        Property(
            "a 10 % CoWoS loss shows in every CoWoS-dependent provider's capacity",
            all(cowos[p] > 1e-9 for p in dependent),
            "lost at 13 weeks: "
            + _fmt({p: cowos[p] for p in dependent}, 4)
            + (
                f"; not dependent now ({', '.join(bound)}): their CoWoS-packaged supply is "
                "already stopped by regimes in force"
                if bound
                else ""
            ),
        )
    )
    out.append(
        Property(
            "the floor sets the composite only for providers with a critical sub-score",
            set(floor_set) <= set(critical),
            f"floor: {', '.join(floor_set) or 'none'}; critical: {', '.join(critical) or 'none'}",
        )
    )
    us = _us_providers(engine)
    flat = [
        key
        for key, (_, _, values) in spreads.items()
        if len([values[p] for p in us if p in values]) > 1
        and max(values[p] for p in us if p in values) - min(values[p] for p in us if p in values)
        < 0.1
    ]
    ranges = {
        key: (min(v[p] for p in us if p in v), max(v[p] for p in us if p in v))
        for key, (_, _, v) in spreads.items()
        if any(p in v for p in us)
    }
    out.append(
        Property(
            "no sub-score is identical (to 0.1) across the US providers",
            not flat,
            "; ".join(f"{k} {lo:.1f}-{hi:.1f}" for k, (lo, hi) in ranges.items()),
        )
    )
    with_spof = [a.sub_score("structural").score for a in assessed.values() if a.spof_count]
    without = [a.sub_score("structural").score for a in assessed.values() if not a.spof_count]
    out.append(
        Property(
            "the structural sub-score ranks every provider with a SPOF above every one without",
            not with_spof or not without or min(with_spof) > max(without),
            f"with SPOFs {_range(with_spof)}; without {_range(without)}",
        )
    )
    return tuple(out)


def _range(values: Sequence[float]) -> str:
    return f"{min(values):.1f}-{max(values):.1f}" if values else "none"


def _depends_on_tag(engine: RiskEngine, provider: str, tag: str) -> bool:
    k = engine.provider_ids.index(provider)
    cg = engine.compiled
    return any(
        engine.flows[cg.index[n.id], k] > 0 for n in engine.graph.nodes.values() if tag in n.tags
    )


def render(report: ValidityReport) -> str:
    """The report as text (the closing note and docs/methodology.md quote it)."""
    ids = report.providers
    width = max(len(p) for p in ids)
    lines = [f"validity report: dataset {report.dataset_version}, as of {report.as_of}", ""]
    lines.append(
        "Country impacts (loss of the provider's supply) at "
        + ", ".join(f"{h:g}" for h in HORIZONS)
        + " weeks and the long run:"
    )
    rows = sorted(
        report.country_curves.items(),
        key=lambda kv: (-max(v[HEADLINE] for v in kv[1].values()), kv[0]),
    )
    for (iso3, kind), row in rows:
        if max(v[-1] for v in row.values()) < 0.05:
            continue
        lines.append(f"  {iso3} {kind}")
        for p in ids:
            lines.append(f"    {p:<{width}} " + " ".join(f"{v:5.2f}" for v in row[p]))
    lines += ["", "Sub-score spread across providers (min - max):"]
    for key, (lo, hi, values) in report.spreads.items():
        lines.append(f"  {key:<15} {lo:6.1f} - {hi:6.1f}   " + _fmt(values, 1))
    lines += [
        "",
        f"Floor sets the composite for: {', '.join(report.floor_set) or 'none'} "
        f"(critical sub-score: {', '.join(report.critical) or 'none'})",
        "",
        "Baseline a(P) at 13 weeks, lost to a 10 % CoWoS loss, left after 60 % of Taiwan lost:",
    ]
    for p in ids:
        lines.append(
            f"  {p:<{width}} {report.baseline[p]:.3f}  -{report.cowos_loss[p]:.4f}  "
            f"{report.taiwan_60[p]:.3f}"
        )
    lines += ["", "Ranking:"]
    for rank, (p, composite, vector) in enumerate(report.ranking, start=1):
        lines.append(f"  {rank}. {p:<{width}} {composite:5.1f}  {vector}")
    lines += ["", "METHODS v2 §12:"]
    for prop in report.properties:
        lines.append(f"  [{'holds' if prop.holds else 'FAILS'}] {prop.name}: {prop.figures}")
    return "\n".join(lines)
