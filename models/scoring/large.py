"""Scores for graphs too large for the full model: edge tables of 10^5-10^6 nodes.

An edge table (``models.engine.edgetable``) has the supply structure only: no node kinds,
owners, countries' governance, regimes, events or resilience data. What can be scored from
structure alone is the **structural** sub-score (METHODS v2 §2, the same banded formula as
the full model's, :func:`structural_score`), computed here with algorithms that scale:

- single points of failure of every provider in one sweep (:mod:`models.analysis.dominators`,
  exact; a sweep that runs out of its step budget, which only adversarial shapes do, falls
  back to the SPOFs among the exact top-K knockouts and says so);
- the ``top_k`` largest knockout losses from an upper bound on every node's loss plus exact
  evaluation of the candidates (:mod:`models.analysis.top_impacts`: exact unless the
  evaluation budget ends the search, which the result says; on graphs many levels deep the
  bound rules little out, and the list is then the best of the candidates evaluated, the
  strongest single supply paths first);
- a sampled stress figure where exact enumeration is out of reach: the expected long-run loss
  and its CVaR95 when every node fails independently with probability
  ``failure_probability`` (a stress assumption, not data), from ``samples`` seeded scenarios.

Providers are the nodes nothing consumes (the tops of the supply trees). Impacts are long-run
(no buffer hides a loss) because the table's buffers, when present, are a per-edge guess
rather than the full model's sourced inventories.
"""

from __future__ import annotations

import hashlib
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from sovrisk.models.analysis.dominators import single_points_of_failure
from sovrisk.models.analysis.top_impacts import (
    SEED_FACTOR,
    knockout_budget,
    loss_bounds,
    loss_floors,
    top_impacts,
)
from sovrisk.models.cancellation import checkpoint
from sovrisk.models.engine.compiled import CompiledGraph, IntArray
from sovrisk.models.engine.edgetable import EdgeTable
from sovrisk.models.errors import NotFoundError
from sovrisk.models.scoring.assessment import RiskBand
from sovrisk.models.scoring.params import MODEL_VERSION
from sovrisk.models.scoring.risk_engine import structural_score

#: Knockout losses listed per provider (and the breadth of the structural score).
TOP_K = 10
#: Stress scenarios sampled per provider set, their seed and the per-node failure probability.
STRESS_SAMPLES = 1000
STRESS_SEED = 0
FAILURE_PROBABILITY = 0.001
#: Scenarios drawn at a time (part of the seeded stream: changing it changes the samples).
STRESS_BATCH = 50
#: Near-SPOF line of the full model (a 95 % loss).
NEAR_SPOF = 0.95
#: Providers whose loss bounds are computed together (dense ``nodes x providers`` blocks).
PROVIDER_CHUNK = 64


@dataclass(frozen=True, slots=True)
class LargeImpact:
    node: str
    loss: float  # long-run share of the provider's supply lost with the node

    @property
    def is_spof(self) -> bool:
        return self.loss >= 1.0 - 1e-9


@dataclass(frozen=True, slots=True)
class LargeAssessment:
    """One provider of an edge-table graph: what structure alone says."""

    provider: str
    structural: float
    band: RiskBand
    spofs: tuple[str, ...]
    spofs_truncated: bool  # more than dominators.MAX_SET: the lowest-indexed are listed
    spof_count: int  # exact when spofs_complete
    spofs_complete: bool  # False: the sweep ran out of steps; spofs are those of the top K
    near_spof_count: int
    top_impacts: tuple[LargeImpact, ...]
    top_exact: bool
    unexamined_bound: float  # when not exact: no other node loses more than this
    knockouts_evaluated: int
    supply_tree_nodes: int
    stress_mean_loss: float
    stress_cvar95: float
    notes: tuple[str, ...]


class LargeGraphModel:
    """An edge-table graph compiled once, its providers scored together on first use."""

    def __init__(self, table: EdgeTable, *, name: str = "", digest: str = "") -> None:
        self.table = table
        self.compiled: CompiledGraph = table.compile()
        #: The version this graph is stored as, if any, and a hash of its arrays.
        self.name = name
        self.digest = digest or _digest(table)
        consumed = np.zeros(self.compiled.n_nodes, dtype=bool)
        consumed[self.compiled.shares.indices] = True
        has_inputs = np.zeros(self.compiled.n_nodes, dtype=bool)
        has_inputs[self.compiled.segment_owner] = True
        rows = np.flatnonzero(has_inputs & ~consumed)
        ids = self.compiled.ids
        #: Providers (public rows), in id order.
        self.provider_rows: IntArray = np.array(
            sorted(rows.tolist(), key=ids.__getitem__), dtype=np.int64
        )
        self.provider_ids: tuple[str, ...] = tuple(
            self.compiled.ids[i] for i in self.provider_rows.tolist()
        )
        self._assessments: dict[str, LargeAssessment] | None = None
        self._lock = threading.Lock()

    @property
    def parameters(self) -> dict[str, str]:
        """Everything a score rests on besides the graph, for provenance."""
        return {
            "method": "edge_table_structural",
            "top_k": str(TOP_K),
            "knockout_budget": str(knockout_budget(self.compiled)),
            "stress_samples": str(STRESS_SAMPLES),
            "stress_seed": str(STRESS_SEED),
            "failure_probability": repr(FAILURE_PROBABILITY),
            "model_version": MODEL_VERSION,
        }

    def assess(self, provider: str) -> LargeAssessment:
        found = self.assess_all_by_id().get(provider)
        if found is None:
            raise NotFoundError("provider", provider)
        return found

    def assess_all(self) -> list[LargeAssessment]:
        """Every provider, riskiest first (ties by id)."""
        rows = self.assess_all_by_id().values()
        return sorted(rows, key=lambda a: (-a.structural, a.provider))

    def assess_all_by_id(self) -> dict[str, LargeAssessment]:
        with self._lock:
            if self._assessments is None:
                self._assessments = self._compute()
            return self._assessments

    # -- the computation -------------------------------------------------------------------

    def _compute(self) -> dict[str, LargeAssessment]:
        cg = self.compiled
        out: dict[str, LargeAssessment] = {}
        stress = self._stress()
        for start in range(0, len(self.provider_rows), PROVIDER_CHUNK):
            checkpoint()
            rows = self.provider_rows[start : start + PROVIDER_CHUNK]
            spofs = single_points_of_failure(cg, rows)
            bounds = loss_bounds(cg, rows)
            budget = knockout_budget(cg)
            tops = top_impacts(cg, rows, bounds, TOP_K, floors=loss_floors(cg, rows), budget=budget)
            for j, row in enumerate(rows.tolist()):
                pid = cg.ids[row]
                top = tops[j]
                tree_size = int((bounds[:, j] > 0).sum()) - 1
                losses = top.losses.tolist()
                if spofs.complete:
                    spof_ids = tuple(cg.ids[i] for i in spofs.of(j).tolist())
                    spof_count = spofs.counts[j]
                else:  # a SPOF loses everything, so it leads an exact top K when there is one
                    spof_ids = tuple(
                        cg.ids[n]
                        for n, v in zip(top.nodes.tolist(), losses, strict=True)
                        if v >= 1.0 - 1e-9
                    )
                    spof_count = len(spof_ids)
                near = [v for v in losses if NEAR_SPOF <= v < 1.0 - 1e-9]
                score = structural_score(losses, spof_ids, near, TOP_K)
                mean, cvar = stress[pid]
                notes = [
                    "Edge-table graph: only the structural sub-score is computed (no "
                    "countries, regimes, events or resilience data); the composite is it.",
                    (
                        "SPOFs exact (one sweep over the levels, the dominator tree "
                        "generalised to AND/OR)"
                        if spofs.complete
                        else f"SPOFs NOT complete: the sweep stopped at its budget of "
                        f"{spofs.steps:,} steps; those listed are the SPOFs among the top "
                        f"{TOP_K} knockouts, and there may be more"
                    )
                    + f"; top {TOP_K} knockout losses "
                    + (
                        f"exact ({top.evaluated} of {tree_size} candidates evaluated, the "
                        "rest ruled out by their loss bound)."
                        if top.exact
                        else f"NOT exact: the evaluation budget ({budget:,} knockouts) ended "
                        f"the search; the list is the largest of {top.evaluated:,} of "
                        f"{tree_size:,} candidates evaluated, the {SEED_FACTOR * TOP_K} with the "
                        "strongest single supply path first, so likely but not certainly the "
                        f"real top {TOP_K}; no node outside it loses more than "
                        f"{top.unexamined_bound:.4f}."
                    ),
                    f"Stress (sampled): {STRESS_SAMPLES} scenarios, seed {STRESS_SEED}, every "
                    f"node failing independently with probability {FAILURE_PROBABILITY:g}: "
                    f"mean loss {mean:.4f}, CVaR95 {cvar:.4f}.",
                ]
                if spofs.truncated[j]:
                    notes.append(
                        f"The SPOF list is capped at {len(spof_ids):,} of {spof_count:,} "
                        "(the lowest-level ones are listed)."
                    )
                out[pid] = LargeAssessment(
                    provider=pid,
                    structural=round(score, 6),
                    band=RiskBand.of(score),
                    spofs=spof_ids,
                    spofs_truncated=spofs.truncated[j],
                    spof_count=spof_count,
                    spofs_complete=spofs.complete,
                    near_spof_count=len(near),
                    top_impacts=tuple(
                        LargeImpact(cg.ids[n], round(v, 9))
                        for n, v in zip(top.nodes.tolist(), losses, strict=True)
                    ),
                    top_exact=top.exact,
                    unexamined_bound=top.unexamined_bound,
                    knockouts_evaluated=top.evaluated,
                    supply_tree_nodes=tree_size,
                    stress_mean_loss=round(mean, 9),
                    stress_cvar95=round(cvar, 9),
                    notes=tuple(notes),
                )
        return out

    def _stress(self) -> dict[str, tuple[float, float]]:
        """Mean and CVaR95 of each provider's loss under independent node failures."""
        cg = self.compiled
        rng = np.random.default_rng(STRESS_SEED)

        def batches() -> Iterator[npt.NDArray[np.float32]]:
            for _ in range(0, STRESS_SAMPLES, STRESS_BATCH):
                checkpoint()
                draws = rng.random((cg.n_nodes, STRESS_BATCH), dtype=np.float32)
                yield (draws >= FAILURE_PROBABILITY).astype(np.float32)

        retained = cg.evaluate_rows(batches(), self.provider_rows, dtype=np.float32)
        loss = np.clip(1.0 - retained, 0.0, 1.0)
        tail = max(1, math.ceil(0.05 * loss.shape[1]))
        worst = -np.sort(-loss, axis=1)[:, :tail]
        return {
            pid: (float(loss[k].mean()), float(worst[k].mean()))
            for k, pid in enumerate(self.provider_ids)
        }


def _digest(table: EdgeTable) -> str:
    h = hashlib.sha256()
    for array in (table.ids, table.consumer, table.supplier, table.category, table.share):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()
