"""PASS / FAIL / INCONCLUSIVE checks on an assessment, each with its reason, the supply path
that is its evidence, and what a procurement analyst could do about it (METHODS v2 §8).

Remediation is written for the case at hand: it names the consumer, the category and, where
the graph knows them, the alternative suppliers of that category sited elsewhere, never a
fixed example country."""

from __future__ import annotations

from sovrisk.models.analysis.concentration import CR1_FLAG_PERCENT
from sovrisk.models.graph.supply_graph import SupplyGraph
from sovrisk.models.scoring.assessment import Check, CheckStatus, RiskAssessment

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
        _near_spof(graph, a),
        *_layer_checks(graph, a),
        *_category_checks(graph, a),
        _country(graph, a),
        _in_force(graph, a),
        _foreign_veto(a),
        _coverage(a),
        _missing_layers(a),
        _resilience(graph, a),
        _tail(a),
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


def alternatives(
    graph: SupplyGraph, category: str, avoid: set[str], exclude: set[str]
) -> list[str]:
    """Suppliers the graph knows for ``category`` (of any consumer) that are not in
    ``exclude`` and have none of their capacity in the ``avoid`` countries."""
    found = set()
    for edge in graph.edges:
        if edge.category != category or edge.supplier in exclude:
            continue
        if avoid.isdisjoint(graph.location(edge.supplier)):
            found.add(edge.supplier)
    return sorted(found)


def _second_source_hint(graph: SupplyGraph, consumer: str, category: str, node: str) -> str:
    others = alternatives(graph, category, set(), {node} | _current(graph, consumer, category))
    if others:
        return (
            f"Qualify a second source for '{category}' of '{consumer}' (today '{node}' alone); "
            f"the graph knows {', '.join(others[:4])} for that category elsewhere"
        )
    return (
        f"Qualify a second source for '{category}' of '{consumer}' (today '{node}' alone; the "
        "graph knows no other supplier of that category), or shift fleet share to "
        "accelerators that do not depend on it"
    )


def _current(graph: SupplyGraph, consumer: str, category: str) -> set[str]:
    return {e.supplier for e in graph.inputs(consumer) if e.category == category}


def _spof(graph: SupplyGraph, a: RiskAssessment) -> Check:
    spofs = [i for i in a.structural_impacts if i.is_spof]
    if not spofs:
        top = a.structural_impacts[0] if a.structural_impacts else None
        return Check(
            id="structural.spof",
            title="No single point of failure",
            status=CheckStatus.PASS,
            reason=(
                "No single supplier's loss, for good, stops the provider's accelerator supply; "
                "the largest "
                + (f"impact is {top.node} at {100 * top.impact:.2f} %." if top else "impact is 0.")
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
        remediation=_second_source_hint(graph, consumer, category, nearest.node) + ".",
        observed=float(len(spofs)),
        threshold=0.0,
    )


def _near_spof(graph: SupplyGraph, a: RiskAssessment) -> Check:
    """A node whose loss cuts 95 % or more is not passed on a margin of a fraction of a
    percent: near single points of failure fail their own check (METHODS v2 §2)."""
    near = [i for i in a.structural_impacts if i.near_spof]
    if not near:
        return Check(
            id="structural.near_spof",
            title="No near single point of failure (a loss of 95 % or more)",
            status=CheckStatus.PASS,
            reason="No single supplier's loss cuts 95 % or more of the supply in the long run.",
            evidence_path=(),
            remediation="None needed at this threshold.",
            observed=0.0,
            threshold=0.95,
        )
    worst = near[0]  # ranked by impact
    consumer, category = _consumer_edge(graph, worst.evidence_path)
    names = ", ".join(f"{i.node} {100 * i.impact:.2f} %" for i in near[:6])
    return Check(
        id="structural.near_spof",
        title="No near single point of failure (a loss of 95 % or more)",
        status=CheckStatus.FAIL,
        reason=(
            f"{len(near)} node(s) whose loss alone would cut 95 % or more of "
            f"{a.display_name}'s accelerator supply in the long run: {names}."
        ),
        evidence_path=worst.evidence_path,
        remediation=_second_source_hint(graph, consumer, category, worst.node) + ".",
        observed=worst.impact,
        threshold=0.95,
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


def _category_checks(graph: SupplyGraph, a: RiskAssessment) -> list[Check]:
    """One check per input category (METHODS v2 §3): a category's monopoly is never averaged
    away inside its layer (Ajinomoto's ABF film, ZEISS's optics, ASML's EUV)."""
    checks = []
    paths = graph.supply_paths(a.provider)
    for cc in a.categories:
        firm_pct, country_pct = 100 * cc.firm_top.share, 100 * cc.country_top.share
        consumer = max(cc.consumers, key=lambda c: (len(paths.get(c, ())) == 0, c))
        supplier = next(
            (
                e.supplier
                for e in graph.inputs(consumer)
                if e.category == cc.category and graph.nodes[e.supplier].owner == cc.firm_top.key
            ),
            "",
        )
        evidence = tuple(paths.get(supplier, ())) if supplier else ()
        hint = "None needed at this threshold."
        if cc.cr1_over_65:
            avoid = {cc.country_top.key} if country_pct > CR1_FLAG_PERCENT else set()
            owned = {n.id for n in graph.nodes.values() if n.owner == cc.firm_top.key}
            others = alternatives(graph, cc.category, avoid, owned)
            where = f" outside {cc.country_top.display_name}" if avoid else ""
            hint = (
                f"Diversify '{cc.category}': the graph knows {', '.join(others[:4])}{where}."
                if others
                else f"Diversify '{cc.category}': the graph knows no supplier of it besides "
                f"{cc.firm_top.key}{where}; record candidates (or accept and buffer the risk)."
            )
        checks.append(
            Check(
                id=f"concentration.category.{cc.category}",
                title=f"No supplier or country above {CR1_FLAG_PERCENT:.0f} % in {cc.category}",
                status=CheckStatus.FAIL if cc.cr1_over_65 else CheckStatus.PASS,
                reason=(
                    f"In '{cc.category}' ({len(cc.consumers)} consumer(s) in the supply tree) "
                    f"{cc.firm_top.key} holds {firm_pct:.1f} % (HHI {cc.firm_hhi:,.0f}) and "
                    f"{cc.country_top.display_name} {country_pct:.1f} % (HHI "
                    f"{cc.country_hhi:,.0f})."
                ),
                evidence_path=evidence,
                remediation=hint,
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


def _country(graph: SupplyGraph, a: RiskAssessment) -> Check:
    top = a.country_impacts[0] if a.country_impacts else None
    impact = top.impact if top else 0.0
    failed = impact >= COUNTRY_IMPACT_LIMIT
    remediation = "None needed at this threshold."
    if top and failed:
        driver = top.evidence_path[-2] if len(top.evidence_path) >= 2 else ""
        consumer, category = _consumer_edge(graph, top.evidence_path[:-1])
        others = (
            alternatives(graph, category, {top.country}, _current(graph, consumer, category))
            if category
            else []
        )
        remediation = (
            f"Qualify capacity outside {top.display_name} for '{category}' of '{consumer}' "
            f"(today {driver})"
            + (
                f": the graph knows {', '.join(others[:4])}"
                if others
                else ": the graph knows no supplier of it outside the country"
            )
            + f"; and hold inventory for the {a.horizon_weeks:g}-week window."
        )
    return Check(
        id="geopolitical.country_impact",
        title=f"No single country can cut {100 * COUNTRY_IMPACT_LIMIT:.0f} % of supply",
        status=CheckStatus.FAIL if failed else CheckStatus.PASS,
        reason=(
            f"Losing every site in {top.display_name} ({top.country}) would cut "
            f"{100 * impact:.1f} % of {a.display_name}'s accelerator supply within "
            f"{a.horizon_weeks:g} weeks ({100 * top.long_run:.1f} % once buffers run out; a "
            f"blockade {100 * top.blockade:.1f} %)."
            if top
            else "No country exposure recorded."
        ),
        evidence_path=top.evidence_path if top else (),
        remediation=remediation,
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
            f"Reduce dependence on {top.display_name}-sited capacity and on items its regimes "
            f"reach; the country impacts list the nodes on the path."
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


#: A 1-in-25-year loss of at least this share of the annual supply fails the tail check.
TAIL_LIMIT = 0.10


def _resilience(graph: SupplyGraph, a: RiskAssessment) -> Check:
    sub = a.sub_score("resilience")
    if not sub.available:
        return Check(
            id="resilience.tts_vs_ttr",
            title="Inventories and alternatives outlast every recovery",
            status=CheckStatus.INCONCLUSIVE,
            reason="No time-to-recover / inventory data (resilience.csv): not assessed.",
            evidence_path=(),
            remediation="Add TTR and inventory cover for the provider's critical nodes.",
            observed=0.0,
            threshold=0.0,
        )
    failed = sub.score > 0.0
    worst = sub.explanation
    return Check(
        id="resilience.tts_vs_ttr",
        title="Inventories and alternatives outlast every recovery",
        status=CheckStatus.FAIL if failed else CheckStatus.PASS,
        reason=worst,
        evidence_path=(),
        remediation=(
            "Raise inventory cover or qualify alternatives for the worst node until its "
            "time-to-survive exceeds its time-to-recover."
            if failed
            else "None needed."
        ),
        observed=sub.score,
        threshold=0.0,
    )


def _tail(a: RiskAssessment) -> Check:
    sub = a.sub_score("tail")
    units = a.loss_units
    observed = dict(units.return_period_losses).get(25, 0.0) if units else 0.0
    status = (
        CheckStatus.INCONCLUSIVE
        if not sub.available or units is None
        else CheckStatus.FAIL
        if observed >= TAIL_LIMIT
        else CheckStatus.PASS
    )
    return Check(
        id="tail.annual_loss",
        title=f"A 1-in-25 year loses less than {100 * TAIL_LIMIT:.0f} % of annual supply",
        status=status,
        reason=(
            f"The 1-in-25-year loss is {100 * observed:.1f} % of annual supply. " + sub.explanation
        ),
        evidence_path=(),
        remediation=(
            "See SimulateDisruptions for the events driving the tail; diversify away from the "
            "top driver's members or hold inventory for its duration."
            if status is CheckStatus.FAIL
            else "Add disruption events (events.csv)."
            if status is CheckStatus.INCONCLUSIVE
            else "None needed at this threshold."
        ),
        observed=observed,
        threshold=TAIL_LIMIT,
    )
