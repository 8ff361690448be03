"""Which regimes bind on a date: own dates, suspensions that lapse, replacements (METHODS v2 §5).

One function, :func:`regime_state`, so that scoring, scenarios, comparisons and reports agree on
what is in force. A suspension record holds the regimes it ``suspends`` out of force while its
own dates cover the day; the day it lapses they are back, unless their own ``effective_to`` or
another suspension says otherwise. A record that ``replaces`` others (a loosening, or a
tightening) is in force like any restriction; the engine then lets it, not them, bind the
nodes it reaches for its destinations (:meth:`models.engine.impacts.ImpactModel.regime_scale`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sovrisk.models.graph.schema import Regime


@dataclass(frozen=True, slots=True)
class RegimeState:
    """The regimes binding on ``on`` and why the others do not."""

    on: dt.date
    #: Binding records in force (suspensions applied; suspension records themselves excluded).
    in_force: frozenset[str]
    #: Regime -> the suspension records holding it out of force on ``on``.
    suspended: Mapping[str, tuple[str, ...]]
    #: Suspension records that ran out on or before ``on`` and whose regime binds again.
    lapsed: tuple[str, ...]
    #: Regime in force -> the records in force that replace it where they reach.
    replaced_by: Mapping[str, frozenset[str]]
    #: Regime in force again after a suspension lapsed -> the day it came back (its bind
    #: travels downstream from then, as a new restriction's does).
    resumed: Mapping[str, dt.date] = dataclasses.field(default_factory=dict)

    def status(self, regime: Regime) -> str:
        """``in_force``, ``suspended``, ``not_yet`` (before ``effective_from``) or ``ended``;
        a suspension record is ``in_force`` while its dates cover the day and ``lapsed`` once
        they have run out (its regimes bind again)."""
        if not regime.binds:
            if regime.in_force(self.on):
                return "in_force"
            return "not_yet" if self.on < regime.effective_from else "lapsed"
        if regime.id in self.in_force:
            return "in_force"
        if regime.id in self.suspended:
            return "suspended"
        return "not_yet" if self.on < regime.effective_from else "ended"


def regime_state(
    regimes: Mapping[str, Regime],
    on: dt.date,
    overrides: Iterable[tuple[str, bool]] = (),
) -> RegimeState:
    """What binds on ``on``. ``overrides`` hold regimes in (True) or out (False) of force
    whatever the dates and suspensions say (a scenario, a comparison's single-regime step)."""
    forced = dict(overrides)
    suspensions = [r for r in regimes.values() if not r.binds]
    holding: dict[str, list[str]] = {}
    lapsed: list[str] = []
    for s in suspensions:
        active = forced.get(s.id, s.in_force(on))
        for target in sorted(s.suspends):
            if active:
                holding.setdefault(target, []).append(s.id)
            elif s.effective_to is not None and s.effective_to <= on:
                lapsed.append(s.id)
    in_force = set()
    for r in regimes.values():
        if not r.binds:
            continue
        if r.id in forced:
            if forced[r.id]:
                in_force.add(r.id)
        elif r.in_force(on) and r.id not in holding:
            in_force.add(r.id)
    suspended = {rid: tuple(by) for rid, by in sorted(holding.items()) if rid not in in_force}
    back = tuple(sorted({s for s in lapsed for t in regimes[s].suspends if t in in_force}))
    resumed: dict[str, dt.date] = {}
    for sid in back:
        end = regimes[sid].effective_to
        for target in regimes[sid].suspends:
            if target in in_force and target not in forced and end is not None:
                resumed[target] = max(resumed.get(target, end), end)
    replaced: dict[str, set[str]] = {}
    for rid in sorted(in_force):
        for target in regimes[rid].replaces:
            if target in in_force:
                replaced.setdefault(target, set()).add(rid)
    return RegimeState(
        on=on,
        in_force=frozenset(in_force),
        suspended=suspended,
        lapsed=back,
        replaced_by={k: frozenset(v) for k, v in sorted(replaced.items())},
        resumed=dict(sorted(resumed.items())),
    )
