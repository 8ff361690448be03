"""``RiskService.ScreenSuppliers``: the entity list loaded once, a fitted screener per graph
version and thresholds, and proto <-> domain conversion."""

from __future__ import annotations

import math
import threading
from pathlib import Path

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.scoring.risk_engine import RiskEngine
from sovrisk.models.screening.matching import (
    DEFAULT_MATCH_THRESHOLD,
    DEFAULT_REVIEW_THRESHOLD,
    Candidate,
    Decision,
    EntityEntry,
    ScreeningResult,
    SupplierRow,
    SupplierScreener,
    TargetKind,
    load_csl,
    load_entity_list,
    load_owner_aliases,
)
from sovrisk.service.grpc_gen.sovrisk.v1 import screening_pb2
from sovrisk.service.screening_cli import DEFAULT_ENTITIES, DEFAULT_OWNER_ALIASES

MAX_SUPPLIERS = 10_000
#: Longest supplier name, country and category text (longer is not a name: 10,000 rows of
#: 3,000-character names once burned 246 s of CPU and a response over the 32 MiB limit).
MAX_NAME_CHARS = 300
MAX_TEXT_CHARS = 100
_DECISION = {
    Decision.MATCH: screening_pb2.MATCH_DECISION_MATCH,
    Decision.REVIEW: screening_pb2.MATCH_DECISION_REVIEW,
    Decision.NO_MATCH: screening_pb2.MATCH_DECISION_NO_MATCH,
}
_KIND = {
    TargetKind.GRAPH: screening_pb2.MATCH_TARGET_KIND_GRAPH_FIRM,
    TargetKind.ENTITY: screening_pb2.MATCH_TARGET_KIND_ENTITY_LIST,
}


class ScreeningService:
    """Holds the entity list (the bundled cited subset, or an operator's CSL file) and the
    owners' known names; fits one screener per (graph version, thresholds)."""

    def __init__(
        self,
        *,
        entities: str | Path = DEFAULT_ENTITIES,
        csl: str | Path | None = None,
        owner_aliases: str | Path | None = DEFAULT_OWNER_ALIASES,
    ) -> None:
        self.entries: list[EntityEntry] = load_csl(csl) if csl else load_entity_list(entities)
        self.source = (
            f"{Path(csl).name} (Consolidated Screening List)"
            if csl
            else (f"{Path(entities).name} (bundled BIS Entity List subset)")
        )
        self.aliases = load_owner_aliases(owner_aliases) if owner_aliases else {}
        self._fitted: dict[tuple[str, float, float], SupplierScreener] = {}
        self._lock = threading.Lock()

    def screen(
        self, engine: RiskEngine, rows: list[SupplierRow], match: float, review: float
    ) -> ScreeningResult:
        key = (engine.graph.version_id, match, review)
        with self._lock:
            screener = self._fitted.get(key)
        if screener is None:
            screener = SupplierScreener(match_threshold=match, review_threshold=review).fit(
                self.entries, engine.graph, owner_aliases=self.aliases, entity_source=self.source
            )
            with self._lock:
                if len(self._fitted) > 16:
                    self._fitted.clear()
                self._fitted[key] = screener
        normalised = [
            SupplierRow(
                name=r.name,
                country=screener.country_of(r.country_text) if r.country_text else "",
                spend=r.spend,
                category=r.category,
                country_text=r.country_text,
            )
            for r in rows
        ]
        return screener.screen(normalised)


def request_from_proto(
    request: screening_pb2.ScreenSuppliersRequest,
) -> tuple[list[SupplierRow], float, float]:
    """The rows and thresholds; INVALID_ARGUMENT listing every bad field."""
    bad: list[FieldViolation] = []
    if not 1 <= len(request.suppliers) <= MAX_SUPPLIERS:
        bad.append(
            FieldViolation(
                "suppliers", str(len(request.suppliers)), f"must hold 1 to {MAX_SUPPLIERS:,} rows"
            )
        )
    rows: list[SupplierRow] = []
    for k, s in enumerate(request.suppliers):
        if not s.name.strip():
            bad.append(FieldViolation(f"suppliers[{k}].name", s.name, "is required"))
        if len(s.name) > MAX_NAME_CHARS:
            bad.append(
                FieldViolation(
                    f"suppliers[{k}].name", s.name, f"is longer than {MAX_NAME_CHARS} chars"
                )
            )
        for field in ("country", "category"):
            if len(getattr(s, field)) > MAX_TEXT_CHARS:
                bad.append(
                    FieldViolation(
                        f"suppliers[{k}].{field}",
                        getattr(s, field),
                        f"is longer than {MAX_TEXT_CHARS} chars",
                    )
                )
        if s.HasField("spend") and not (math.isfinite(s.spend) and s.spend >= 0):
            bad.append(FieldViolation(f"suppliers[{k}].spend", repr(s.spend), "must be >= 0"))
        rows.append(
            SupplierRow(
                name=s.name.strip(),
                spend=s.spend if s.HasField("spend") else None,
                category=s.category,
                country_text=s.country.strip(),
                line=k,
            )
        )
    match = request.match_threshold or DEFAULT_MATCH_THRESHOLD
    review = request.review_threshold or DEFAULT_REVIEW_THRESHOLD
    for name, value in (("match_threshold", match), ("review_threshold", review)):
        if not (math.isfinite(value) and 0.0 < value <= 1.0):
            bad.append(FieldViolation(name, repr(value), "must be within (0, 1]"))
    if not bad and review > match:
        bad.append(FieldViolation("review_threshold", repr(review), f"must be <= {match:g}"))
    if bad:
        raise InvalidParameterError(bad)
    return rows, match, review


def _candidate(c: Candidate) -> screening_pb2.MatchCandidate:
    e = c.entry
    return screening_pb2.MatchCandidate(
        kind=_KIND[c.kind],
        target=c.target,
        matched_name=c.matched_name,
        matched_via=c.via,
        score=round(c.score, 6),
        decision=_DECISION[c.decision],
        reason=c.reason,
        countries=list(c.countries),
        nodes=[f"nodes/{n}" for n in c.node_ids],
        entry=screening_pb2.EntityListEntry(
            name=e.name,
            aliases=list(e.aliases),
            countries=list(e.countries),
            list_name=e.list_name,
            federal_register=e.federal_register,
            federal_register_date=e.fr_date,
            license_requirement=e.license_requirement,
            license_policy=e.license_policy,
            source_url=e.source_url,
        )
        if e is not None
        else None,
    )


def result_to_proto(
    result: ScreeningResult, request: screening_pb2.ScreenSuppliersRequest, graph_version: str
) -> screening_pb2.ScreenSuppliersResponse:
    return screening_pb2.ScreenSuppliersResponse(
        results=[
            screening_pb2.SupplierScreening(
                index=k,
                supplier=request.suppliers[k],
                country=r.row.country,
                entity_list_decision=_DECISION[r.decision],
                graph_decision=_DECISION[r.graph_decision],
                entity_list_candidates=[_candidate(c) for c in r.entity_candidates],
                graph_candidates=[_candidate(c) for c in r.graph_candidates],
            )
            for k, r in enumerate(result.rows)
        ],
        match_threshold=result.thresholds.match,
        review_threshold=result.thresholds.review,
        entity_source=result.entity_source,
        entity_count=result.n_entities,
        firm_count=result.n_firms,
        graph_version=graph_version,
        disclaimer=result.disclaimer,
    )
