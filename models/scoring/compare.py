"""Why did a provider's score change? Compare two assessments and attribute the difference.

The change from (base version, base date) to (target version, target date) is split in two
steps that add up exactly:

1. **graph edits**, at the base date: base version -> target version;
2. **date effects**, on the target version: base date -> target date (regimes entering or
   leaving force).

Within each step every cause is measured *alone* ("leave-one-in"): an edit group is applied
to the base version by itself (a new engine per group), a regime's change of status is
applied to the target version at the base date by itself (``ScoringParams.regime_overrides``,
no rebuild). Causes interact (the floor, min over categories), so the
individual effects need not add up to the step's total; the remainder is reported as the
interaction, never silently spread over the causes.

Edits are grouped so that each group is a valid dataset on its own where possible: all the
edges of one (consumer, category) move together (their shares must keep summing to 1), and a
node's record moves with its sites. A group that cannot stand alone is reported without an
individual effect.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from sovrisk.models.cancellation import checkpoint
from sovrisk.models.errors import DataValidationError
from sovrisk.models.graph.dataset import (
    TABLES,
    Change,
    DatasetFiles,
    Delete,
    RecordChange,
    Upsert,
    apply_changes,
    diff_datasets,
    records_of,
)
from sovrisk.models.graph.editing import NEW_TABLE_HEADERS, EditRejected
from sovrisk.models.graph.regimes import regime_state
from sovrisk.models.scoring.assessment import RiskAssessment
from sovrisk.models.scoring.params import ScoringParams
from sovrisk.models.scoring.risk_engine import RiskEngine

#: At most this many causes per step are measured one by one (each needs an engine build);
#: the rest are reported together.
MAX_MEASURED_CAUSES = 12


@dataclass(frozen=True, slots=True)
class Effect:
    """Composite and sub-score deltas (target minus base), in points."""

    composite: float
    sub_scores: tuple[tuple[str, float], ...]


@dataclass(frozen=True, slots=True)
class Cause:
    """One reason for the change: a group of graph edits or one regime's change of status."""

    kind: str  # "graph_edit" | "date_effect"
    label: str
    records: tuple[RecordChange, ...]  # the edits (empty for a date effect)
    regime: str  # the regime id (date effects)
    effect: Effect | None  # measured alone; None when the group cannot stand alone


@dataclass(frozen=True, slots=True)
class Step:
    """One of the two steps and the causes inside it."""

    name: str  # "graph_edits" | "date_effects"
    total: Effect
    causes: tuple[Cause, ...]
    interaction: Effect  # total minus the sum of the measured causes


@dataclass(frozen=True, slots=True)
class CheckChange:
    id: str
    title: str
    base_status: str
    target_status: str


@dataclass(frozen=True, slots=True)
class Comparison:
    provider: str
    base: RiskAssessment
    target: RiskAssessment
    total: Effect
    steps: tuple[Step, Step]
    check_changes: tuple[CheckChange, ...]


def _scores(a: RiskAssessment) -> dict[str, float]:
    return {s.key: (s.score if s.available else 0.0) for s in a.sub_scores}


def effect(base: RiskAssessment, target: RiskAssessment) -> Effect:
    before, after = _scores(base), _scores(target)
    keys = list(dict.fromkeys([*before, *after]))
    return Effect(
        round(target.composite - base.composite, 6),
        tuple((k, round(after.get(k, 0.0) - before.get(k, 0.0), 6)) for k in keys),
    )


def _minus(total: Effect, parts: Sequence[Effect]) -> Effect:
    subs = dict(total.sub_scores)
    for p in parts:
        for k, d in p.sub_scores:
            subs[k] = subs.get(k, 0.0) - d
    return Effect(
        round(total.composite - sum(p.composite for p in parts), 6),
        tuple((k, round(d, 6)) for k, d in subs.items()),
    )


def _group_key(c: RecordChange) -> str:
    if c.kind == "edge":
        return f"edge {c.key[0]}/{c.key[1]}"  # a category's shares move together
    if c.kind in ("node", "site", "resilience"):
        return f"node {c.key[0]}"
    return f"{c.kind} {'/'.join(c.key)}"


def group_edits(changes: Sequence[RecordChange]) -> list[tuple[str, list[RecordChange]]]:
    groups: dict[str, list[RecordChange]] = {}
    for c in changes:
        groups.setdefault(_group_key(c), []).append(c)
    return list(groups.items())


def _as_changes(records: Sequence[RecordChange], target: DatasetFiles) -> list[Change]:
    """The domain changes that turn the base's records into the target's."""
    wanted: dict[str, dict[tuple[str, ...], dict[str, str]]] = {}
    out: list[Change] = []
    for r in records:
        if r.kind == "dataset":
            continue
        spec = TABLES[r.kind]
        if r.op == "removed":
            out.append(Delete(r.kind, r.key))
            continue
        if spec.file not in wanted:
            wanted[spec.file] = records_of(target, spec)
        out.append(Upsert(r.kind, wanted[spec.file][r.key]))
    return out


def compare(
    provider: str,
    *,
    base_engine: RiskEngine,
    base_files: DatasetFiles,
    base_params: ScoringParams,
    target_engine: RiskEngine,
    target_files: DatasetFiles,
    target_params: ScoringParams,
    build: Callable[[DatasetFiles], RiskEngine],
) -> Comparison:
    """Compare ``provider`` between the two (engine, files, params) and attribute the change.

    ``build`` turns dataset files into an engine (it raises :class:`DataValidationError`
    for files that do not validate). Scoring parameters other than the date are the target's.
    """
    base = base_engine.assess(provider, base_params)
    target = target_engine.assess(provider, target_params)
    at_base_date = replace(target_params, as_of=base_params.as_of)
    middle = target_engine.assess(provider, at_base_date)

    # Step 1: graph edits, at the base date.
    edits_total = effect(base, middle)
    edit_causes: list[Cause] = []
    for k, (label, records) in enumerate(group_edits(diff_datasets(base_files, target_files))):
        checkpoint()  # each group builds and scores an engine
        measured: Effect | None = None
        if k < MAX_MEASURED_CAUSES:
            try:
                applied = apply_changes(
                    base_files, _as_changes(records, target_files), headers=NEW_TABLE_HEADERS
                )
                if not applied.problems:
                    # a one-group edit applied alone is the target version itself: its
                    # engine (and analytics) are at hand, no build
                    same = applied.files.digest == target_files.digest
                    engine = target_engine if same else build(applied.files)
                    measured = effect(base, engine.assess(provider, base_params))
            except (DataValidationError, EditRejected, KeyError):
                measured = None  # the group cannot stand alone (it needs another group)
        edit_causes.append(Cause("graph_edit", label, tuple(records), "", measured))

    # Step 2: date effects, on the target version.
    dates_total = effect(middle, target)
    date_causes: list[Cause] = []
    graph = target_engine.graph
    before_state = regime_state(graph.regimes, base_params.as_of)
    after_state = regime_state(graph.regimes, target_params.as_of)
    flipped = [
        r
        for r in graph.regimes.values()
        if r.binds and (r.id in before_state.in_force) != (r.id in after_state.in_force)
    ]
    for k, regime in enumerate(sorted(flipped, key=lambda r: (r.effective_from, r.id))):
        entering = regime.id in after_state.in_force
        verb = "enters" if entering else "leaves"
        label = f"regime {regime.id} {verb} force"
        measured = None
        if k < MAX_MEASURED_CAUSES:
            alone = replace(at_base_date, regime_overrides=((regime.id, entering),))
            measured = effect(middle, target_engine.assess(provider, alone))
        date_causes.append(Cause("date_effect", label, (), regime.id, measured))

    steps = (
        Step(
            "graph_edits",
            edits_total,
            tuple(edit_causes),
            _minus(edits_total, [c.effect for c in edit_causes if c.effect]),
        ),
        Step(
            "date_effects",
            dates_total,
            tuple(date_causes),
            _minus(dates_total, [c.effect for c in date_causes if c.effect]),
        ),
    )
    before = {c.id: c for c in base.checks}
    check_changes = tuple(
        CheckChange(
            c.id,
            c.title,
            str(before[c.id].status) if c.id in before else "",
            str(c.status),
        )
        for c in target.checks
        if c.id not in before or before[c.id].status != c.status
    )
    return Comparison(provider, base, target, effect(base, target), steps, check_changes)
