"""Score alerts: which thresholds fire when a provider's scores move from one version to the
next. Level thresholds fire on the crossing only (not on every version the score stays
beyond them), so a subscriber is told once, when it matters."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.scoring.params import SUB_SCORES

#: The watched scores: the composite and the sub-scores (models.scoring.params.SUB_SCORES).
METRICS: tuple[str, ...] = ("composite", *SUB_SCORES)


class ThresholdKind(enum.StrEnum):
    ABOVE = "above"
    BELOW = "below"
    CHANGE = "change"


@dataclass(frozen=True, slots=True)
class Threshold:
    metric: str
    kind: ThresholdKind
    value: float

    def describe(self) -> str:
        if self.kind is ThresholdKind.CHANGE:
            return f"{self.metric} changed by more than {self.value:g} points"
        verb = "rose above" if self.kind is ThresholdKind.ABOVE else "fell below"
        return f"{self.metric} {verb} {self.value:g}"


@dataclass(frozen=True, slots=True)
class Alert:
    provider: str
    threshold: Threshold
    before: float
    after: float

    @property
    def delta(self) -> float:
        return round(self.after - self.before, 6)

    def message(self, display_name: str) -> str:
        return f"{display_name} {self.threshold.describe()}: {self.before:.1f} -> {self.after:.1f}"


def validate_thresholds(thresholds: Sequence[Threshold], field: str = "thresholds") -> None:
    bad: list[FieldViolation] = []
    if not thresholds:
        bad.append(FieldViolation(field, "", "at least one threshold is required"))
    for k, t in enumerate(thresholds):
        if t.metric not in METRICS:
            bad.append(FieldViolation(f"{field}[{k}].metric", t.metric, "unknown score"))
        if not math.isfinite(t.value):
            bad.append(FieldViolation(f"{field}[{k}].value", repr(t.value), "must be finite"))
        elif t.kind is ThresholdKind.CHANGE and t.value <= 0:
            bad.append(FieldViolation(f"{field}[{k}].value", repr(t.value), "must be > 0"))
        elif t.kind is not ThresholdKind.CHANGE and not 0 <= t.value <= 100:
            bad.append(
                FieldViolation(f"{field}[{k}].value", repr(t.value), "must be within [0, 100]")
            )
    if bad:
        raise InvalidParameterError(bad)


def fired(
    before: Mapping[str, Mapping[str, float | None]],
    after: Mapping[str, Mapping[str, float | None]],
    thresholds: Sequence[Threshold],
    providers: Sequence[str],
) -> list[Alert]:
    """Alerts for ``providers`` between two versions' scores (provider -> metric -> value;
    None = not available, which never fires)."""
    alerts: list[Alert] = []
    for provider in providers:
        old, new = before.get(provider, {}), after.get(provider, {})
        for t in thresholds:
            a, b = old.get(t.metric), new.get(t.metric)
            if a is None or b is None:
                continue
            if (
                (t.kind is ThresholdKind.ABOVE and a <= t.value < b)
                or (t.kind is ThresholdKind.BELOW and b < t.value <= a)
                or (t.kind is ThresholdKind.CHANGE and abs(b - a) > t.value)
            ):
                alerts.append(Alert(provider, t, a, b))
    return alerts
