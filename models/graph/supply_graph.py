"""The validated supply graph: typed records plus the networkx model of record.

networkx is where graph questions are answered (paths, ancestors, cycles); the risk engine
evaluates scenarios on :class:`models.engine.compiled.CompiledGraph`, built once per version.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cached_property
from typing import Any, TypeVar, cast

import networkx as nx

from sovrisk.models.errors import NotFoundError
from sovrisk.models.graph.lookup import iso3_of, suggest
from sovrisk.models.graph.schema import (
    DEFAULT_INPUT_CLASS,
    CountryRisk,
    DatasetInfo,
    DestinationBasis,
    InputClass,
    Node,
    NodeKind,
    Provenance,
    Regime,
    RegimeAction,
    RegimeMeasure,
    Relation,
    Site,
    Source,
    SupplyEdge,
)

T = TypeVar("T")


def country_node_id(iso3: str) -> str:
    return f"country:{iso3}"


def regime_node_id(regime_id: str) -> str:
    return f"regime:{regime_id}"


def _provenance_json(p: Provenance) -> dict[str, Any]:
    return {"sources": list(p.sources), "quality": str(p.quality), "as_of": p.as_of.isoformat()}


class SupplyGraph:
    """An immutable, validated dataset. Build it with :func:`models.graph.loader.load_dataset`."""

    def __init__(
        self,
        *,
        info: DatasetInfo,
        sources: Mapping[str, Source],
        countries: Mapping[str, CountryRisk],
        nodes: Mapping[str, Node],
        edges: Sequence[SupplyEdge],
        sites: Mapping[str, tuple[Site, ...]],
        regimes: Mapping[str, Regime],
    ) -> None:
        self.info = info
        self.sources = dict(sorted(sources.items()))
        self.countries = dict(sorted(countries.items()))
        self.nodes = dict(sorted(nodes.items()))
        self.edges = tuple(sorted(edges, key=lambda e: (e.consumer, e.category, e.supplier)))
        self.sites = dict(sorted(sites.items()))
        self.regimes = dict(sorted(regimes.items()))
        self._inputs: dict[str, list[SupplyEdge]] = {n: [] for n in self.nodes}
        self._outputs: dict[str, list[SupplyEdge]] = {n: [] for n in self.nodes}
        self._paths: dict[str, dict[str, list[str]]] = {}
        self._memo: dict[str, object] = {}
        self._locations: dict[str, dict[str, float]] = {}
        for edge in self.edges:
            self._inputs[edge.consumer].append(edge)
            self._outputs[edge.supplier].append(edge)

    def __repr__(self) -> str:
        counts = ", ".join(f"{k}={v}" for k, v in self.counts_by_kind().items())
        return f"SupplyGraph(version={self.version_id!r}, {counts}, edges={len(self.edges)})"

    # -- identity -------------------------------------------------------------------------

    @cached_property
    def content_hash(self) -> str:
        """sha256 of a canonical serialisation of every record: formatting-independent."""
        payload = {
            "info": {
                "name": self.info.name,
                "version": self.info.version,
                "as_of": self.info.as_of.isoformat(),
            },
            "sources": [
                [s.id, s.title, s.publisher, s.date, s.url, str(s.quality)]
                + ([] if s.kind is None else [str(s.kind)])
                for s in self.sources.values()
            ],
            "countries": [
                [c.iso3, c.name, c.risk, c.wgi_risk, c.overlay, _provenance_json(c.provenance)]
                + ([["perspectives", [list(p) for p in c.perspectives]]] if c.perspectives else [])
                for c in self.countries.values()
            ],
            "nodes": [
                [
                    n.id,
                    str(n.kind),
                    n.name,
                    n.owner,
                    n.hq_country,
                    n.layer,
                    sorted(n.tags),
                    _provenance_json(n.provenance),
                    *(
                        []
                        if n.buffer_weeks is None or n.buffer_provenance is None
                        else [repr(n.buffer_weeks), _provenance_json(n.buffer_provenance)]
                    ),
                    *([] if n.compute_h100e is None else ["h100e", repr(n.compute_h100e)]),
                ]
                for n in self.nodes.values()
            ],
            "edges": [
                [
                    e.consumer,
                    e.category,
                    e.supplier,
                    repr(e.share),
                    repr(e.share_low),
                    repr(e.share_high),
                    _provenance_json(e.provenance),
                    *([] if e.input_class is None else [str(e.input_class)]),
                    *([] if e.buffer_weeks is None else [repr(e.buffer_weeks)]),
                ]
                for e in self.edges
            ],
            "sites": [
                [s.node, s.country, repr(s.share), s.site_name, _provenance_json(s.provenance)]
                for group in self.sites.values()
                for s in group
            ],
            "regimes": [
                [
                    r.id,
                    r.issuer,
                    r.name,
                    r.citation,
                    r.effective_from.isoformat(),
                    r.effective_to.isoformat() if r.effective_to else None,
                    repr(r.severity),
                    sorted(r.reach_kinds),
                    sorted(r.reach_tags),
                    sorted(r.reach_nodes),
                    sorted(r.origin_countries),
                    sorted(r.destination_countries),
                    # v2 fields only when set, so v1 datasets keep their hashes
                    *(
                        []
                        if r.action is RegimeAction.RESTRICT
                        and not (r.replaces or r.suspends or r.reach_content)
                        and r.measure is RegimeMeasure.EXPORT
                        and r.destination_basis is DestinationBasis.SITE
                        else [
                            str(r.action),
                            sorted(r.replaces),
                            sorted(r.suspends),
                            str(r.measure),
                            str(r.destination_basis),
                            sorted(r.reach_content),
                        ]
                    ),
                ]
                for r in self.regimes.values()
            ],
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    @property
    def version_id(self) -> str:
        """Human version plus a content-hash prefix: two different contents never share it."""
        return f"{self.info.version}+{self.content_hash[:12]}"

    # -- lookups --------------------------------------------------------------------------

    def counts_by_kind(self) -> dict[str, int]:
        counts = {str(kind): 0 for kind in NodeKind}
        for node in self.nodes.values():
            counts[str(node.kind)] += 1
        counts[str(NodeKind.COUNTRY)] = len(self.countries)
        counts[str(NodeKind.REGIME)] = len(self.regimes)
        return {k: v for k, v in counts.items() if v}

    def providers(self) -> list[Node]:
        return [n for n in self.nodes.values() if n.kind is NodeKind.PROVIDER]

    def not_found(self, kind: str, name: str) -> NotFoundError:
        """The error for an unknown ``provider`` / ``node`` / ``country`` id, with the ids the
        name most likely meant (by id, display name or owner)."""
        if kind == "country":
            labels: dict[str, tuple[str, ...]] = {
                iso: (c.name,) for iso, c in self.countries.items()
            }
            iso3 = iso3_of(name)  # an ISO-2 code or a country name
            if iso3 in labels:
                near = (iso3, *suggest(name, labels, limit=3))
                return NotFoundError(kind, name, tuple(dict.fromkeys(near))[:3])
        else:
            wanted = NodeKind.PROVIDER if kind == "provider" else None
            labels = {
                n.id: (n.name, n.owner)
                for n in self.nodes.values()
                if wanted is None or n.kind is wanted
            }
        return NotFoundError(kind, name, suggest(name, labels))

    def inputs(self, node_id: str) -> list[SupplyEdge]:
        """Edges into ``node_id`` (its suppliers), ordered by category then supplier."""
        return self._inputs[node_id]

    def outputs(self, node_id: str) -> list[SupplyEdge]:
        """Edges out of ``node_id`` (its consumers)."""
        return self._outputs[node_id]

    def categories(self, node_id: str) -> dict[str, list[SupplyEdge]]:
        grouped: dict[str, list[SupplyEdge]] = {}
        for edge in self._inputs[node_id]:
            grouped.setdefault(edge.category, []).append(edge)
        return grouped

    def edge_class(self, edge: SupplyEdge) -> InputClass:
        """The edge's input class: as the data say, else from its supplier's kind."""
        if edge.input_class is not None:
            return edge.input_class
        return DEFAULT_INPUT_CLASS.get(self.nodes[edge.supplier].kind, InputClass.FLOW)

    def edge_buffer(self, edge: SupplyEdge) -> float:
        """Weeks before a loss of the supplier reaches the consumer through this edge: as the
        data say, else the supplier's ``buffer_weeks``, else 0 (no buffer)."""
        if edge.buffer_weeks is not None:
            return edge.buffer_weeks
        supplier = self.nodes[edge.supplier].buffer_weeks
        return 0.0 if supplier is None else supplier

    def location(self, node_id: str) -> dict[str, float]:
        """Where a node's output crosses borders from (country -> share), for blockades.

        Production capacity: its sites. A product without sites (a chip family): where its
        last physical step is, the share-weighted sites of its ``packaging`` suppliers. A
        design team, an EDA licence or a provider: its home country (``hq_country``; a
        provider's data centres, unless it has sites). Computed once per node.
        """
        cache = self._locations
        if node_id not in cache:
            sites = self.sites.get(node_id, ())
            node = self.nodes[node_id]
            where: dict[str, float] = defaultdict(float)
            if sites:
                for site in sites:
                    where[site.country] += site.share
            else:
                packaging = self.categories(node_id).get("packaging", [])
                for edge in packaging:
                    for country, share in self.location(edge.supplier).items():
                        where[country] += edge.share * share
                if not where:
                    where[node.hq_country] = 1.0
            cache[node_id] = dict(sorted(where.items()))
        return cache[node_id]

    def site_share(self, node_id: str, countries: Iterable[str]) -> float:
        wanted = set(countries)
        return math.fsum(s.share for s in self.sites.get(node_id, ()) if s.country in wanted)

    def regime_reaches(self, regime: Regime, node: Node) -> bool:
        """Whether ``regime`` reaches ``node``: by kind, tag or id (no list: any supply node)
        and, for content reach, when the node's supply tree holds the content (METHODS v2 §5).
        A suspension reaches nothing itself."""
        if not regime.binds or node.kind is NodeKind.PROVIDER:
            return False
        listed = regime.reach_kinds or regime.reach_tags or regime.reach_nodes
        if listed and not (
            node.kind in regime.reach_kinds
            or node.id in regime.reach_nodes
            or not regime.reach_tags.isdisjoint(node.tags)
        ):
            return False
        if regime.reach_content:
            return node.id in self.content_holders(regime.reach_content)
        return bool(listed)

    def reached_nodes(self, regime: Regime) -> list[str]:
        return [n.id for n in self.nodes.values() if self.regime_reaches(regime, n)]

    def content_holders(self, content: frozenset[str]) -> frozenset[str]:
        """Nodes whose supply tree contains a node listed in ``content`` by id or tag (the
        content nodes themselves excluded): what a foreign-direct-product or de-minimis rule
        can reach. Kept per content set."""

        def build() -> frozenset[str]:
            seeds = [
                n.id
                for n in self.nodes.values()
                if n.id in content or not content.isdisjoint(n.tags)
            ]
            holders: set[str] = set()
            stack = list(seeds)
            while stack:  # walk downstream: every consumer of a holder holds the content
                for edge in self._outputs.get(stack.pop(), ()):
                    if edge.consumer not in holders:
                        holders.add(edge.consumer)
                        stack.append(edge.consumer)
            return frozenset(holders)

        return self.memo("content:" + ";".join(sorted(content)), build)

    # -- the model of record --------------------------------------------------------------

    @cached_property
    def model(self) -> nx.DiGraph:
        """A typed networkx DiGraph of every node kind and relation.

        Supply edges point supplier -> consumer and carry ``category``, ``share`` and
        provenance; ``sited_in`` edges link producing nodes to ``country:ISO3`` nodes;
        ``reaches`` edges link ``regime:ID`` nodes to the supply nodes they can bind.
        """
        graph = nx.DiGraph(name=self.info.name, version=self.version_id)
        for node in self.nodes.values():
            graph.add_node(node.id, kind=node.kind, record=node)
        for country in self.countries.values():
            graph.add_node(country_node_id(country.iso3), kind=NodeKind.COUNTRY, record=country)
        for regime in self.regimes.values():
            graph.add_node(regime_node_id(regime.id), kind=NodeKind.REGIME, record=regime)
        for edge in self.edges:
            # A supplier may serve one consumer in two categories; the DiGraph keeps one edge
            # with every category listed, while the records keep them apart.
            if graph.has_edge(edge.supplier, edge.consumer):
                graph.edges[edge.supplier, edge.consumer]["records"].append(edge)
            else:
                graph.add_edge(
                    edge.supplier, edge.consumer, relation=Relation.SUPPLIES, records=[edge]
                )
        for group in self.sites.values():
            for site in group:
                graph.add_edge(
                    site.node,
                    country_node_id(site.country),
                    relation=Relation.SITED_IN,
                    share=site.share,
                    record=site,
                )
        for regime in self.regimes.values():
            for nid in self.reached_nodes(regime):
                graph.add_edge(regime_node_id(regime.id), nid, relation=Relation.REACHES)
        return graph

    @cached_property
    def supply_view(self) -> nx.DiGraph:
        """The supply-only subgraph, edge weight ``-log(max share)`` for most-likely paths."""
        view = nx.DiGraph()
        view.add_nodes_from(self.nodes)
        for edge in self.edges:
            weight = -math.log(max(edge.share, 1e-12))
            if view.has_edge(edge.supplier, edge.consumer):
                weight = min(weight, view.edges[edge.supplier, edge.consumer]["weight"])
            view.add_edge(edge.supplier, edge.consumer, weight=weight)
        return view

    def supply_paths(self, provider_id: str) -> dict[str, list[str]]:
        """The most-relied-on supply path from a provider to every node of its supply tree.

        Each path starts at the provider and maximises the product of shares along it
        (Dijkstra on ``-log share``). Computed once per provider and kept.
        """
        if provider_id not in self._paths:
            reverse = self.supply_view.reverse(copy=False)
            self._paths[provider_id] = nx.single_source_dijkstra_path(
                reverse, provider_id, weight="weight"
            )
        return self._paths[provider_id]

    def memo(self, key: str, build: Callable[[], T]) -> T:
        """``build()`` once per graph version and key: derived artefacts (the compiled arrays of
        :func:`models.engine.compiled.compile_graph`) live as long as the version, without this
        layer knowing what they are. The graph is immutable, so they never go stale."""
        if key not in self._memo:
            self._memo[key] = build()
        return cast(T, self._memo[key])
