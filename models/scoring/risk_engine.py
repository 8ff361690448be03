"""The risk engine: scores each provider of one graph version (METHODS §2–§5, §8).

Everything that depends only on the graph (single-node and single-country knockouts for every
provider, effective sourcing flows, regime reach) is evaluated once, as batches on the
compiled arrays, when the engine is built. A score then only combines those arrays for the
requested date and weights; results are cached per (provider, parameters).
"""

from __future__ import annotations

import datetime as dt
import math
import threading
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from models.analysis.concentration import CR1_FLAG_PERCENT, bands, cr1, hhi, n_eff
from models.engine.compiled import FloatArray
from models.engine.impacts import SPOF_TOLERANCE, ImpactModel
from models.errors import FieldViolation, InvalidParameterError, NotFoundError
from models.graph.bundle import Supplements
from models.graph.schema import AGGREGATE_MARKET_TAG, Quality
from models.graph.supply_graph import SupplyGraph
from models.scoring import checks as checks_mod
from models.scoring.assessment import (
    ContentionView,
    CountryContribution,
    CountryImpact,
    Coverage,
    CutSetView,
    FirmImpact,
    JurisdictionVeto,
    LayerConcentration,
    NodeImpact,
    RegimeExposure,
    ResultProvenance,
    RiskAssessment,
    RiskBand,
    RiskVector,
    Share,
    SubScore,
)
from models.scoring.params import MODEL_VERSION, SUB_SCORES, ScoringParams

if TYPE_CHECKING:
    from models.analysis.contention import ContentionResult
    from models.analysis.cutsets import CutSetResult
    from models.analysis.resilience import ResilienceResult
    from models.analysis.simulation import SimulationResult

R = TypeVar("R")


def _find(rows: Sequence[R], provider: str) -> R | None:
    return next((r for r in rows if getattr(r, "provider", None) == provider), None)


#: The tail sub-score's Monte Carlo: fixed so that a score is reproducible byte for byte.
TAIL_SAMPLES = 10_000
#: Cut sets listed per provider in an assessment (the counts cover all of them).
MAX_CUT_SETS = 20
TAIL_SEED = 0
#: Points are kept to 1e-6 so that contributions and the floor uplift add up exactly.
_MICRO = 1_000_000


def _micro(value: float) -> int:
    return round(value * _MICRO)


class RiskEngine(ImpactModel):
    """Scores providers on one :class:`SupplyGraph` version.

    >>> engine = RiskEngine(graph)                       # doctest: +SKIP
    >>> engine.assess("aws", engine.default_params())    # doctest: +SKIP
    """

    def __init__(
        self,
        graph: SupplyGraph,
        supplements: Supplements | None = None,
        *,
        graph_version: str = "",
    ) -> None:
        super().__init__(graph)
        self.supplements = supplements or Supplements()
        #: Name of the stored version this graph is (e.g. "graph/versions/3"), if any.
        self.graph_version = graph_version
        self._resilience: ResilienceResult | bool | None = False  # False: not computed yet
        self._tail: SimulationResult | bool | None = False
        self._cut_sets: CutSetResult | None = None
        self._contention: ContentionResult | None = None
        self._lazy_lock = threading.Lock()
        self._assess = lru_cache(maxsize=4096)(self._assess_uncached)

    def default_params(self, as_of: dt.date | None = None) -> ScoringParams:
        return ScoringParams.build(as_of=as_of or self.graph.info.as_of)

    # -- public API -------------------------------------------------------------------------

    def assess(self, provider_id: str, params: ScoringParams) -> RiskAssessment:
        """The full assessment of one provider; raises NotFoundError for an unknown id."""
        if provider_id not in self._prow:
            raise NotFoundError("provider", provider_id)
        return self._assess(provider_id, params)

    def assess_all(self, params: ScoringParams) -> list[RiskAssessment]:
        """Every provider, riskiest first (ties by id, so the order is reproducible)."""
        results = [self.assess(pid, params) for pid in self.provider_ids]
        return sorted(results, key=lambda r: (-r.composite, r.provider))

    def cut_set_result(self) -> CutSetResult:
        """Minimal cut sets (size <= 2, a(P) < 0.5) of every provider, computed once."""
        with self._lazy_lock:
            if self._cut_sets is None:
                from models.analysis.cutsets import minimal_cut_sets

                self._cut_sets = minimal_cut_sets(self)
            return self._cut_sets

    def contention_result(self) -> ContentionResult:
        """Buyer-side contention on CoWoS-class and HBM bottlenecks, computed once."""
        with self._lazy_lock:
            if self._contention is None:
                from models.analysis.contention import contention_analysis

                self._contention = contention_analysis(self, self.supplements.demand)
            return self._contention

    def resilience_result(self) -> ResilienceResult | None:
        """The TTR/TTS analysis of this version (computed once, on first use), or None
        without resilience data."""
        with self._lazy_lock:
            if self._resilience is False:
                from models.analysis.resilience import resilience_analysis

                data = self.supplements.resilience
                self._resilience = (
                    resilience_analysis(self, data, self.supplements.demand) if data else None
                )
            assert not isinstance(self._resilience, bool)
            return self._resilience

    def tail_result(self) -> SimulationResult | None:
        """The Monte Carlo behind the tail sub-score (fixed samples and seed, computed once),
        or None without events."""
        with self._lazy_lock:
            if self._tail is False:
                from models.analysis.simulation import simulate

                events = self.supplements.events
                self._tail = simulate(self, events, TAIL_SAMPLES, TAIL_SEED) if events else None
            assert not isinstance(self._tail, bool)
            return self._tail

    def provenance(self, params: ScoringParams, **extra: str) -> ResultProvenance:
        """What a result rests on: model, dataset version and hash, date, every parameter."""
        parameters = {**params.as_strings(), **extra}
        if self.supplements.digest:
            parameters["supplements_sha256"] = self.supplements.digest
        parameters["tail_samples"], parameters["tail_seed"] = str(TAIL_SAMPLES), str(TAIL_SEED)
        return ResultProvenance(
            model_version=MODEL_VERSION,
            dataset_name=self.graph.info.name,
            dataset_version=self.graph.version_id,
            dataset_hash=self.graph.content_hash,
            as_of=params.as_of,
            parameters=tuple(sorted(parameters.items())),
            graph_version=self.graph_version,
        )

    # -- the assessment ---------------------------------------------------------------------

    def _assess_uncached(self, pid: str, params: ScoringParams) -> RiskAssessment:
        g, cg = self.graph, self.compiled
        node = g.nodes[pid]
        k = self._prow[pid]
        x = self.flows[:, k]
        tree = [i for i in np.flatnonzero(x > 0).tolist() if cg.ids[i] != pid]

        layers, conc_score, geo_score, geo_rows = self._layers(x, tree, params)
        exposure = {r.country: r.exposure for r in geo_rows}
        impacts = self._node_impacts(pid, k, tree)
        # Aggregate market nodes (a whole commodity market) are reported but not scored as
        # single points of failure: losing a whole market is a country or regime event.
        firm_level = [i.impact for i in impacts if not i.aggregate_market]
        top = sorted(firm_level, reverse=True)[: params.top_k]
        structural = 100.0 * (math.fsum(top) / params.top_k if top else 0.0)
        spofs = [i for i in impacts if i.is_spof]
        firms = self._firm_impacts(k)
        cuts = _find(self.cut_set_result().providers, pid)
        contention = tuple(
            ContentionView(
                b.bottleneck,
                b.nodes,
                c.demand_share,
                c.dependence,
                tuple((s.fraction, s.lost) for s in c.shortfalls),
            )
            for b in self.contention_result().bottlenecks
            for c in b.providers
            if c.provider == pid
        )
        countries = self._country_impacts(pid, k, x, exposure)
        regimes, bound_now, jurisdictions = self._export_controls(
            pid, node.hq_country, tree, params, exposure
        )
        foreign = [j for j in jurisdictions if j.foreign]
        largest = foreign[0] if foreign else None  # already ranked by veto, then country
        export = 100.0 * (
            params.export_now_weight * bound_now
            + (1.0 - params.export_now_weight) * (largest.veto if largest else 0.0)
        )
        raw: dict[str, float | None] = {
            "concentration": conc_score,
            "structural": structural,
            "geopolitical": geo_score,
            "export_control": export,
        }
        resilience = self.resilience_result()
        provider_resilience = _find(resilience.providers, pid) if resilience else None
        raw["resilience"] = provider_resilience.score if provider_resilience else None
        tail = self.tail_result()
        provider_tail = _find(tail.providers, pid) if tail else None
        raw["tail"] = 100.0 * provider_tail.p95_duration_weighted_loss if provider_tail else None
        explanations = {
            "concentration": _explain_concentration(layers),
            "structural": (
                f"Mean impact of the {params.top_k} supplier nodes whose loss would cut the most "
                f"supply; {len(spofs)} single point(s) of failure"
                + (f", led by {spofs[0].node}." if spofs else ".")
            ),
            "geopolitical": _explain_geo(geo_rows),
            "resilience": (
                provider_resilience.explanation
                if provider_resilience
                else "Unavailable: no resilience data (resilience.csv)."
            ),
            "tail": (
                f"In 1 year in 20 the provider loses at least {raw['tail']:.1f} % of its annual "
                f"supply (95th percentile of duration-weighted loss; {TAIL_SAMPLES:,} samples, "
                f"seed {TAIL_SEED}); CVaR95 of the instantaneous loss "
                f"{provider_tail.cvar95:.3f}."
                if provider_tail and raw["tail"] is not None
                else "Unavailable: no disruption events (events.csv)."
            ),
            "export_control": (
                f"{100 * bound_now:.1f} % of supply bound by regimes in force on "
                f"{params.as_of.isoformat()}; largest foreign veto "
                + (f"{largest.country} {100 * largest.veto:.1f} %." if largest else "none.")
            ),
        }
        sub_scores, composite, uplift = _composite(raw, explanations, params)
        coverage = self._coverage(pid, x, tree)
        provenance = self.provenance(params)
        vector = RiskVector(
            provider=pid,
            composite=composite,
            sub_scores=tuple((s.key, s.score) for s in sub_scores),
            as_of=params.as_of,
            dataset_hash_prefix=g.content_hash[:12],
        )
        partial = RiskAssessment(
            provider=pid,
            display_name=node.name,
            home_country=node.hq_country,
            composite=composite,
            band=RiskBand.of(composite),
            sub_scores=sub_scores,
            floor_alpha=params.alpha,
            floor_uplift=uplift,
            retained_capacity=float(self.baseline[cg.index[pid]]),
            layers=layers,
            structural_impacts=impacts,
            spof_count=len(spofs),
            firm_impacts=firms,
            cut_sets=tuple(
                CutSetView(c.nodes, c.retained, c.aggregate_market)
                for c in (cuts.cut_sets[:MAX_CUT_SETS] if cuts else ())
            ),
            singleton_cuts=cuts.singletons if cuts else 0,
            pair_cuts=cuts.pairs if cuts else 0,
            contention=contention,
            country_impacts=countries,
            geopolitical_contributions=geo_rows,
            regimes=regimes,
            bound_now=bound_now,
            jurisdictions=jurisdictions,
            largest_foreign_veto=largest,
            jurisdictions_over_half=sum(1 for j in foreign if j.veto >= 0.5),
            checks=(),
            coverage=coverage,
            provenance=provenance,
            risk_vector=str(vector),
        )
        return replace(partial, checks=checks_mod.run_checks(g, partial))

    def _layers(
        self, x: FloatArray, tree: Sequence[int], params: ScoringParams
    ) -> tuple[tuple[LayerConcentration, ...], float, float, tuple[CountryContribution, ...]]:
        g, cg = self.graph, self.compiled
        by_layer: dict[str, list[int]] = defaultdict(list)
        for i in tree:
            by_layer[g.nodes[cg.ids[i]].layer].append(i)
        # Every layer present is reported (and checked) even at weight 0; only the sums weigh.
        weights = {k: w for k, w in params.layer_weights if k in by_layer}
        total_w = math.fsum(weights.values())
        layers: list[LayerConcentration] = []
        conc = 0.0
        geo_by_country: dict[str, float] = defaultdict(float)
        exposure: dict[str, float] = defaultdict(float)
        for layer in sorted(weights):
            members = by_layer[layer]
            flow = math.fsum(x[i] for i in members)
            firms: dict[str, float] = defaultdict(float)
            nations: dict[str, float] = defaultdict(float)
            for i in members:
                share = x[i] / flow
                firms[g.nodes[cg.ids[i]].owner] += share
                for c in np.flatnonzero(self._site_dense[i]).tolist():
                    nations[cg.countries[c]] += share * self._site_dense[i, c]
            w = weights[layer] / total_w if total_w > 0 else 0.0
            firm_hhi, country_hhi = hhi(firms), hhi(nations)
            top_firm, top_firm_pct = cr1(firms)
            top_country, top_country_pct = cr1(nations)
            score = (firm_hhi + country_hhi) / 200.0
            conc += w * score
            for iso3, share in nations.items():
                geo_by_country[iso3] += w * share * g.countries[iso3].risk
                exposure[iso3] += w * share
            layers.append(
                LayerConcentration(
                    layer=layer,
                    weight=w,
                    firm_hhi=firm_hhi,
                    country_hhi=country_hhi,
                    firm_n_eff=n_eff(firm_hhi),
                    country_n_eff=n_eff(country_hhi),
                    firm_top=Share(top_firm, top_firm, top_firm_pct / 100.0),
                    country_top=Share(
                        top_country, self._country_name(top_country), top_country_pct / 100.0
                    ),
                    cr1_over_65=max(top_firm_pct, top_country_pct) > CR1_FLAG_PERCENT,
                    firm_bands=bands(firm_hhi),
                    country_bands=bands(country_hhi),
                    firm_shares=_shares(firms, lambda s: s),
                    country_shares=_shares(nations, self._country_name),
                    score=score,
                )
            )
        geo_rows = tuple(
            sorted(
                (
                    CountryContribution(
                        c,
                        self._country_name(c),
                        exposure[c],
                        g.countries[c].risk,
                        geo_by_country[c],
                    )
                    for c in geo_by_country
                ),
                key=lambda r: (-r.contribution, r.country),
            )
        )
        geo = math.fsum(r.contribution for r in geo_rows)
        return tuple(layers), conc, geo, geo_rows

    def _node_impacts(self, pid: str, k: int, tree: Sequence[int]) -> tuple[NodeImpact, ...]:
        g, cg = self.graph, self.compiled
        paths = g.supply_paths(pid)
        rows = []
        for i in tree:
            impact = float(self.node_impact[k, i])
            if impact <= 0.0:
                continue
            nid = cg.ids[i]
            market = AGGREGATE_MARKET_TAG in g.nodes[nid].tags
            rows.append(
                NodeImpact(
                    node=nid,
                    display_name=g.nodes[nid].name,
                    kind=str(g.nodes[nid].kind),
                    impact=impact,
                    is_spof=impact >= 1.0 - SPOF_TOLERANCE and not market,
                    evidence_path=tuple(paths.get(nid, ())),
                    aggregate_market=market,
                )
            )
        # Equal impacts: the node nearest the provider first (the most actionable), then id.
        return tuple(
            sorted(rows, key=lambda r: (-round(r.impact, 12), len(r.evidence_path), r.node))
        )

    def _firm_impacts(self, k: int) -> tuple[FirmImpact, ...]:
        rows = [
            FirmImpact(
                firm=owner, impact=float(self.firm_impact[k, f]), nodes=self._firm_nodes[owner]
            )
            for f, owner in enumerate(self.firms)
            if self.firm_impact[k, f] > 0.0
        ]
        return tuple(sorted(rows, key=lambda r: (-round(r.impact, 12), r.firm)))

    def _country_impacts(
        self, pid: str, k: int, x: FloatArray, exposure: dict[str, float]
    ) -> tuple[CountryImpact, ...]:
        g, cg = self.graph, self.compiled
        paths = g.supply_paths(pid)
        rows = []
        for c, iso3 in enumerate(cg.countries):
            impact = float(self.country_impact[k, c])
            if impact <= 0.0:
                continue
            # Evidence: the node carrying the most of this provider's flow in that country.
            weight = x * self._site_dense[:, c]
            driver = cg.ids[int(np.argmax(weight))]
            path = (*paths.get(driver, ()), f"country:{iso3}")
            rows.append(
                CountryImpact(
                    iso3, self._country_name(iso3), impact, g.countries[iso3].risk, tuple(path)
                )
            )
        # Equal impacts: the country carrying more of the provider's sourcing first.
        return tuple(
            sorted(
                rows,
                key=lambda r: (-round(r.impact, 12), -exposure.get(r.country, 0.0), r.country),
            )
        )

    def _export_controls(
        self,
        pid: str,
        home: str,
        tree: Sequence[int],
        params: ScoringParams,
        exposure: dict[str, float],
    ) -> tuple[tuple[RegimeExposure, ...], float, tuple[JurisdictionVeto, ...]]:
        g, cg = self.graph, self.compiled
        k = self._prow[pid]
        in_tree = np.zeros(cg.n_nodes, dtype=bool)
        in_tree[list(tree)] = True
        in_force = frozenset(r.id for r in g.regimes.values() if params.regime_in_force(r))
        bound_now, veto = self._in_force_effects(in_force)
        regimes = []
        for r in g.regimes.values():
            active = r.id in in_force
            cut = float(self._regime_veto[r.id][k]) if active else 0.0
            regimes.append(
                RegimeExposure(
                    regime=r.id,
                    display_name=r.name,
                    issuer=r.issuer,
                    citation=r.citation,
                    in_force=active,
                    binds_provider=cut > 0.0,
                    veto=cut,
                    reached_nodes=int(np.count_nonzero((self._bound[r.id] > 0) & in_tree)),
                    effective_from=r.effective_from,
                    effective_to=r.effective_to,
                )
            )
        regimes.sort(key=lambda r: (not r.in_force, -r.veto, r.effective_from, r.regime))

        # Jurisdictions: every country with sites in the tree, and every issuer of a regime.
        exposed = {cg.countries[c] for c in np.flatnonzero(self._site_dense[list(tree)].sum(0))}
        issuers = {r.issuer for r in g.regimes.values()}
        jurisdictions = tuple(
            sorted(
                (
                    JurisdictionVeto(j, self._country_name(j), float(veto[k, c]), j != home)
                    for c, j in enumerate(self._jurisdictions)
                    if j in exposed or j in issuers
                ),
                key=lambda v: (-round(v.veto, 12), -exposure.get(v.country, 0.0), v.country),
            )
        )
        return tuple(regimes), max(0.0, float(bound_now[k])), jurisdictions

    def _coverage(self, pid: str, x: FloatArray, tree: Sequence[int]) -> Coverage:
        g, cg = self.graph, self.compiled
        members = {cg.ids[i] for i in tree} | {pid}
        weight: dict[Quality, float] = defaultdict(float)
        edges = with_range = 0
        for e in g.edges:
            if e.consumer not in members:
                continue
            edges += 1
            with_range += e.share_low < e.share_high
            weight[e.provenance.quality] += float(x[cg.index[e.consumer]]) * e.share
        total = math.fsum(weight.values()) or 1.0
        share_c = weight[Quality.C] / total
        return Coverage(
            flow_share_a=weight[Quality.A] / total,
            flow_share_b=weight[Quality.B] / total,
            flow_share_c=share_c,
            edges_total=edges,
            edges_with_range=with_range,
            nodes_total=len(tree),
            notes=(
                f"{100 * share_c:.0f} % of the supply flow rests on C-quality estimates; "
                "coverage is reported beside the score, not folded into it."
            ),
        )

    def _country_name(self, iso3: str) -> str:
        record = self.graph.countries.get(iso3)
        return record.name if record else iso3


def _shares(values: dict[str, float], namer: Callable[[str], str]) -> tuple[Share, ...]:
    ordered = sorted(values.items(), key=lambda kv: (-kv[1], kv[0]))
    return tuple(Share(key, namer(key), share) for key, share in ordered if share > 0)


def _composite(
    raw: dict[str, float | None], explanations: dict[str, str], params: ScoringParams
) -> tuple[tuple[SubScore, ...], float, float]:
    """``max(sum w_k s_k, alpha max_k s_k)`` with contributions that add up exactly.

    A sub-score without data (``None``) is reported as unavailable and the weights are
    renormalised over the available ones, so missing data neither counts as zero risk nor
    silently shifts the scale. Scores and contributions are kept to 1e-6 points and summed as
    integers, so the contributions plus the floor uplift equal the composite exactly.
    """
    available = [k for k in SUB_SCORES if raw[k] is not None]
    total = math.fsum(params.weight(k) for k in available)
    if total <= 0.0:
        shown = ", ".join(f"{k}={params.weight(k):g}" for k in available)
        raise InvalidParameterError(
            [FieldViolation("weights", shown, "every sub-score with data has weight 0")]
        )
    weight = {k: params.weight(k) / total if total > 0 else 0.0 for k in available}
    scores = {k: min(100.0, max(0.0, float(raw[k] or 0.0))) for k in available}
    contributions = {k: _micro(weight[k] * scores[k]) for k in available}
    weighted = sum(contributions.values())
    floor = _micro(params.alpha * max(scores.values(), default=0.0))
    composite = max(weighted, floor)
    subs = tuple(
        SubScore(k, round(scores[k], 6), weight[k], contributions[k] / _MICRO, explanations[k])
        if k in scores
        else SubScore(k, 0.0, 0.0, 0.0, explanations[k], available=False)
        for k in SUB_SCORES
    )
    return subs, composite / _MICRO, (composite - weighted) / _MICRO


def _explain_concentration(layers: Sequence[LayerConcentration]) -> str:
    worst = sorted(layers, key=lambda lc: -lc.weight * lc.score)[:3]
    parts = [
        f"{lc.layer}: firm HHI {lc.firm_hhi:,.0f} (top {lc.firm_top.key} "
        f"{100 * lc.firm_top.share:.0f} %), country HHI {lc.country_hhi:,.0f} "
        f"(top {lc.country_top.key} {100 * lc.country_top.share:.0f} %)"
        for lc in worst
    ]
    return "Layer-weighted mean of firm and country HHI/100. Heaviest: " + "; ".join(parts) + "."


def _explain_geo(rows: Sequence[CountryContribution]) -> str:
    parts = [
        f"{r.country} {100 * r.exposure:.0f} % exposure x risk {r.country_risk:.0f} "
        f"= {r.contribution:.1f}"
        for r in rows[:3]
    ]
    return "Sum over countries of layer-weighted exposure x country risk. Top: " + "; ".join(parts)
