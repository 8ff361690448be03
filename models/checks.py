"""PASS / FAIL / INCONCLUSIVE checks on an assessment, each with its reason, the supply path
that is its evidence, and what a procurement analyst could do about it (METHODS §8)."""

from __future__ import annotations

from models.assessment import Check, CheckStatus, RiskAssessment
from models.concentration import CR1_FLAG_PERCENT
from models.graph import SupplyGraph

#: A single country whose loss would cut at least this much supply fails the country check.
COUNTRY_IMPACT_LIMIT = 0.5
#: A foreign jurisdiction able to cut at least this much supply fails the veto check.
FOREIGN_VETO_LIMIT = 0.5
#: Regimes in force that already bind at least this much supply fail the export check.
BOUND_NOW_LIMIT = 0.10
#: More than this share of the supply flow resting on C-quality data makes a result uncertain.
LOW_QUALITY_LIMIT = 0.5
#: Layers without which a provider's picture is incomplete.
CORE_LAYERS = ("foundry", "packaging", "memory", "substrate", "lithography")


def run_checks(graph: SupplyGraph, a: RiskAssessment) -> tuple[Check, ...]:
    return (
        _spof(graph, a),
        *_layer_checks(graph, a),
        _country(a),
        _in_force(graph, a),
        _foreign_veto(a),
        _coverage(a),
        _missing_layers(a),
    )


def _consumer_edge(graph: SupplyGraph, path: tuple[str, ...]) -> tuple[str, str]:
    """(consumer, category) of the last hop of a supply path, for remediation text."""
    if len(path) < 2:
        return ("", "")
    consumer, supplier = path[-2], path[-1]
    for edge in graph.inputs(consumer):
        if edge.supplier == supplier:
            return consumer, edge.category
    return consumer, ""


def _spof(graph: SupplyGraph, a: RiskAssessment) -> Check:
    spofs = [i for i in a.structural_impacts if i.is_spof]
    if not spofs:
        top = a.structural_impacts[0] if a.structural_impacts else None
        return Check(
            id="structural.spof",
            title="No single point of failure",
            status=CheckStatus.PASS,
            reason=(
                "No single supplier's loss stops the provider's accelerator supply; the largest "
                + (f"impact is {top.node} at {100 * top.impact:.1f} %." if top else "impact is 0.")
            ),
            evidence_path=top.evidence_path if top else (),
            remediation="Keep second sources qualified and exercised.",
            observed=0.0,
            threshold=0.0,
        )
    # The SPOF nearest the provider is the most actionable one to show.
    nearest = min(spofs, key=lambda i: (len(i.evidence_path) or 99, i.node))
    consumer, category = _consumer_edge(graph, nearest.evidence_path)
    names = ", ".join(i.node for i in spofs[:8]) + (" ..." if len(spofs) > 8 else "")
    return Check(
        id="structural.spof",
        title="No single point of failure",
        status=CheckStatus.FAIL,
        reason=(
            f"{len(spofs)} node(s) whose loss alone stops all of {a.display_name}'s accelerator "
            f"supply: {names}."
        ),
        evidence_path=nearest.evidence_path,
        remediation=(
            f"Qualify a second source for '{category}' of '{consumer}' (today '{nearest.node}' "
            "alone), or shift fleet share to accelerators that do not depend on it."
        ),
        observed=float(len(spofs)),
        threshold=0.0,
    )


def _layer_checks(graph: SupplyGraph, a: RiskAssessment) -> list[Check]:
    paths = graph.supply_paths(a.provider)
    checks = []
    for lc in a.layers:
        firm_pct, country_pct = 100 * lc.firm_top.share, 100 * lc.country_top.share
        driver = _layer_driver(graph, a, lc.layer, lc.firm_top.key)
        evidence = tuple(paths.get(driver, ())) if driver else ()
        failed = lc.cr1_over_65
        reason = (
            f"In the {lc.layer} layer the top firm {lc.firm_top.key} holds {firm_pct:.1f} % "
            f"(HHI {lc.firm_hhi:,.0f}, N_eff {lc.firm_n_eff:.1f}) and the top country "
            f"{lc.country_top.key} {country_pct:.1f} % (HHI {lc.country_hhi:,.0f})."
        )
        checks.append(
            Check(
                id=f"concentration.{lc.layer}",
                title=f"No supplier or country above {CR1_FLAG_PERCENT:.0f} % in {lc.layer}",
                status=CheckStatus.FAIL if failed else CheckStatus.PASS,
                reason=reason,
                evidence_path=evidence,
                remediation=_diversify_hint(
                    lc.layer, firm_pct, lc.firm_top.key, country_pct, lc.country_top.key
                ),
                observed=max(firm_pct, country_pct),
                threshold=CR1_FLAG_PERCENT,
            )
        )
    return checks


def _diversify_hint(layer: str, firm_pct: float, firm: str, country_pct: float, iso3: str) -> str:
    hints = []
    if firm_pct > CR1_FLAG_PERCENT:
        hints.append(f"qualify a second {layer} supplier besides {firm}")
    if country_pct > CR1_FLAG_PERCENT:
        hints.append(f"source {layer} capacity sited outside {iso3}")
    if not hints:
        return "None needed at this threshold."
    return "Diversify: " + " and ".join(hints) + "."


def _layer_driver(graph: SupplyGraph, a: RiskAssessment, layer: str, owner: str) -> str:
    """The most impactful node of ``layer`` owned by ``owner`` in the provider's tree."""
    for impact in a.structural_impacts:  # ranked by impact already
        node = graph.nodes[impact.node]
        if node.layer == layer and node.owner == owner:
            return node.id
    return ""


def _country(a: RiskAssessment) -> Check:
    top = a.country_impacts[0] if a.country_impacts else None
    impact = top.impact if top else 0.0
    failed = impact >= COUNTRY_IMPACT_LIMIT
    return Check(
        id="geopolitical.country_impact",
        title=f"No single country can cut {100 * COUNTRY_IMPACT_LIMIT:.0f} % of supply",
        status=CheckStatus.FAIL if failed else CheckStatus.PASS,
        reason=(
            f"Losing every site in {top.display_name} ({top.country}) would cut "
            f"{100 * impact:.1f} % of {a.display_name}'s accelerator supply "
            f"(country risk {top.country_risk:.0f}/100)."
            if top
            else "No country exposure recorded."
        ),
        evidence_path=top.evidence_path if top else (),
        remediation=(
            f"Qualify capacity outside {top.country} for the nodes on this path (e.g. US/Japan "
            "fabs and packaging lines) and hold inventory to cover the recovery time."
            if top and failed
            else "None needed at this threshold."
        ),
        observed=impact,
        threshold=COUNTRY_IMPACT_LIMIT,
    )


def _in_force(graph: SupplyGraph, a: RiskAssessment) -> Check:
    binding = [r for r in a.regimes if r.in_force and r.binds_provider and r.veto > 0]
    top = binding[0] if binding else None
    failed = a.bound_now >= BOUND_NOW_LIMIT
    evidence: tuple[str, ...] = ()
    if top:
        regime = graph.regimes[top.regime]
        reached = [
            i for i in a.structural_impacts if graph.regime_reaches(regime, graph.nodes[i.node])
        ]
        if reached:
            evidence = (f"regime:{top.regime}", *reached[0].evidence_path)
    return Check(
        id="export_control.in_force",
        title=f"Regimes in force bind less than {100 * BOUND_NOW_LIMIT:.0f} % of supply",
        status=CheckStatus.FAIL if failed else CheckStatus.PASS,
        reason=(
            f"On {a.provenance.as_of.isoformat()}, {len(binding)} regime(s) in force bind "
            f"{100 * a.bound_now:.1f} % of supply"
            + (
                f"; the largest is {top.display_name} ({top.citation}) at {100 * top.veto:.1f} %."
                if top
                else "."
            )
        ),
        evidence_path=evidence,
        remediation=(
            "Shift fleet share to accelerators outside the regime's reach or obtain licences; "
            "track the regime's review and expiry dates."
            if failed
            else "None needed at this threshold."
        ),
        observed=a.bound_now,
        threshold=BOUND_NOW_LIMIT,
    )


def _foreign_veto(a: RiskAssessment) -> Check:
    top = a.largest_foreign_veto
    veto = top.veto if top else 0.0
    failed = veto >= FOREIGN_VETO_LIMIT
    return Check(
        id="export_control.foreign_veto",
        title=f"No foreign jurisdiction can veto {100 * FOREIGN_VETO_LIMIT:.0f} % of supply",
        status=CheckStatus.FAIL if failed else CheckStatus.PASS,
        reason=(
            f"{top.display_name} ({top.country}) could cut {100 * veto:.1f} % of supply by "
            f"withholding its sites and binding its regimes; {a.jurisdictions_over_half} "
            "jurisdiction(s) can cut half or more."
            if top
            else "No foreign jurisdiction in the supply tree."
        ),
        evidence_path=next(
            (c.evidence_path for c in a.country_impacts if top and c.country == top.country), ()
        ),
        remediation=(
            f"Reduce dependence on {top.country}-sited capacity and {top.country}-controlled "
            "items; build allied or domestic second sources."
            if top and failed
            else "None needed at this threshold."
        ),
        observed=veto,
        threshold=FOREIGN_VETO_LIMIT,
    )


def _coverage(a: RiskAssessment) -> Check:
    share_c = a.coverage.flow_share_c
    weak = share_c > LOW_QUALITY_LIMIT
    return Check(
        id="data.quality",
        title="Most of the supply flow rests on A/B-quality data",
        status=CheckStatus.INCONCLUSIVE if weak else CheckStatus.PASS,
        reason=(
            f"{100 * share_c:.0f} % of the flow-weighted supply edges are C-quality estimates "
            f"({a.coverage.edges_total} edges, {a.coverage.edges_with_range} with a recorded "
            "range)."
        ),
        evidence_path=(),
        remediation=(
            "Replace C-quality shares (fleet mix, HBM split, design partners) with sourced "
            "figures; missing data is not zero risk."
            if weak
            else "None needed."
        ),
        observed=share_c,
        threshold=LOW_QUALITY_LIMIT,
    )


def _missing_layers(a: RiskAssessment) -> Check:
    present = {lc.layer for lc in a.layers}
    missing = [layer for layer in CORE_LAYERS if layer not in present]
    return Check(
        id="data.layers",
        title="Every core layer of the supply chain is modelled",
        status=CheckStatus.INCONCLUSIVE if missing else CheckStatus.PASS,
        reason=(
            "Layers with no data in this provider's supply tree: " + ", ".join(missing) + "."
            if missing
            else "Foundry, packaging, memory, substrate and lithography are all modelled."
        ),
        evidence_path=(),
        remediation="Add the missing layers' suppliers to the dataset." if missing else "None.",
        observed=float(len(missing)),
        threshold=0.0,
    )
