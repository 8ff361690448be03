"""Scoring parameters: published defaults, validated overrides, a stable cache key."""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from sovrisk.models.errors import FieldViolation, InvalidParameterError
from sovrisk.models.graph.schema import LAYERS

#: Version of the scoring model; part of every result's provenance.
MODEL_VERSION = "0.5.0"

SUB_SCORES: tuple[str, ...] = (
    "concentration",
    "structural",
    "geopolitical",
    "export_control",
    "resilience",
    "tail",
)

#: Published default weights of the composite (docs/methodology.md explains the choice).
#: Without resilience and tail data the first four renormalise to 0.25 / 0.30 / 0.25 / 0.20.
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "concentration": 0.20,
    "structural": 0.24,
    "geopolitical": 0.20,
    "export_control": 0.16,
    "resilience": 0.10,
    "tail": 0.10,
}

#: How much each layer of a provider's supply counts in the concentration and geopolitical
#: sub-scores. Layers absent from a provider's supply tree are dropped and the rest renormalised.
DEFAULT_LAYER_WEIGHTS: Mapping[str, float] = {
    "accelerator": 0.10,
    "design": 0.05,
    "foundry": 0.20,
    "packaging": 0.15,
    "memory": 0.15,
    "substrate": 0.10,
    "lithography": 0.10,
    "fab_equipment": 0.05,
    "assembly_test_equipment": 0.02,
    "materials": 0.05,
    "eda": 0.03,
}

#: The floor ``alpha x max sub-score`` applies only when a sub-score is critical (>= this).
DEFAULT_ALPHA = 0.8
DEFAULT_CRITICAL = 80.0
#: Structural sub-score breadth = mean long-run impact of the K most critical supplier nodes.
#: 25 is about the size of a provider's critical core in the bundled data.
DEFAULT_TOP_K = 25
#: Export-control sub-score = 100 x (w x capacity bound by regimes in force now
#:                                   + (1 - w) x mean of the 3 largest foreign vetoes).
DEFAULT_EXPORT_NOW_WEIGHT = 0.5
DEFAULT_MIN_IMPACT = 0.5
#: The headline horizon in weeks (one of models.engine.impacts.HORIZONS).
DEFAULT_HORIZON_WEEKS = 13.0
ALLOWED_HORIZONS: tuple[float, ...] = (4.0, 13.0, 26.0, 52.0, 104.0)


def _frozen(mapping: Mapping[str, float]) -> tuple[tuple[str, float], ...]:
    return tuple(sorted(mapping.items()))


@dataclass(frozen=True, slots=True)
class ScoringParams:
    """Everything a score depends on besides the graph. Hashable: it is the cache key.

    Build with :meth:`build`, which validates overrides and normalises the weights.
    """

    as_of: dt.date
    weights: tuple[tuple[str, float], ...] = field(default=_frozen(DEFAULT_WEIGHTS))
    layer_weights: tuple[tuple[str, float], ...] = field(default=_frozen(DEFAULT_LAYER_WEIGHTS))
    alpha: float = DEFAULT_ALPHA
    top_k: int = DEFAULT_TOP_K
    export_now_weight: float = DEFAULT_EXPORT_NOW_WEIGHT
    #: Weeks of the headline horizon: country impacts, vetoes and the geopolitical loss.
    horizon_weeks: float = DEFAULT_HORIZON_WEEKS
    #: A sub-score at or above this is critical and switches the floor on.
    critical: float = DEFAULT_CRITICAL
    #: Regimes held in (True) or out (False) of force whatever ``as_of`` says: the effect of
    #: one regime's entry or exit alone (CompareAssessments' date effects).
    regime_overrides: tuple[tuple[str, bool], ...] = ()
    #: The composite weights as given (overrides merged with the defaults, overridden keys
    #: first) when they did not sum to 1 and :meth:`build` renormalised them; empty
    #: otherwise. Kept so that the assessment can say what was changed (a caller who set
    #: structural 0.5 gets 0.397, and must be told why).
    weights_given: tuple[tuple[str, float], ...] = ()

    @property
    def is_standard(self) -> bool:
        """Published weights and parameters (any date and horizon): the assessments every
        caller shares, worth caching generously; anything else is one caller's what-if."""
        return (
            dataclasses.replace(self, as_of=STANDARD_AS_OF, horizon_weeks=DEFAULT_HORIZON_WEEKS)
            == _standard()
        )

    @classmethod
    def build(
        cls,
        *,
        as_of: dt.date,
        weights: Mapping[str, float] | None = None,
        layer_weights: Mapping[str, float] | None = None,
        alpha: float = DEFAULT_ALPHA,
        top_k: int = DEFAULT_TOP_K,
        export_now_weight: float = DEFAULT_EXPORT_NOW_WEIGHT,
        horizon_weeks: float = DEFAULT_HORIZON_WEEKS,
        critical: float = DEFAULT_CRITICAL,
    ) -> ScoringParams:
        """Defaults overridden by the keys given; weights renormalised to sum to 1.

        Raises :class:`InvalidParameterError` naming each bad field and value.
        """
        violations: list[FieldViolation] = []
        merged = _merge("weights", DEFAULT_WEIGHTS, weights or {}, violations)
        layers = _merge("layer_weights", DEFAULT_LAYER_WEIGHTS, layer_weights or {}, violations)
        if not (_is_number(alpha) and math.isfinite(alpha) and 0.0 <= alpha <= 1.0):
            violations.append(FieldViolation("alpha", repr(alpha), "must be within [0, 1]"))
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 1000:
            violations.append(FieldViolation("top_k", str(top_k), "must be within [1, 1000]"))
        if not (
            _is_number(export_now_weight)
            and math.isfinite(export_now_weight)
            and 0.0 <= export_now_weight <= 1.0
        ):
            violations.append(
                FieldViolation(
                    "export_now_weight", repr(export_now_weight), "must be within [0, 1]"
                )
            )
        if horizon_weeks not in ALLOWED_HORIZONS:
            shown = ", ".join(f"{h:g}" for h in ALLOWED_HORIZONS)
            violations.append(
                FieldViolation("horizon_weeks", repr(horizon_weeks), f"must be one of {shown}")
            )
        if not (_is_number(critical) and math.isfinite(critical) and 0.0 < critical <= 100.0):
            violations.append(FieldViolation("critical", repr(critical), "must be in (0, 100]"))
        if violations:
            raise InvalidParameterError(violations)
        return cls(
            as_of=as_of,
            weights=_frozen(_normalised(merged)),
            weights_given=_given(merged, weights or {}),
            layer_weights=_frozen(_normalised(layers)),
            alpha=alpha,
            top_k=top_k,
            export_now_weight=export_now_weight,
            horizon_weeks=float(horizon_weeks),
            critical=float(critical),
        )

    def weight(self, key: str) -> float:
        return dict(self.weights)[key]

    def with_published_weights(self) -> ScoringParams:
        """These parameters with the published composite weights: every sub-score is the
        same (the weights only combine them), so work on sub-scores can be shared."""
        return dataclasses.replace(self, weights=_standard().weights, weights_given=())

    def weight_notes(self) -> tuple[str, ...]:
        """What renormalising the given weights did, with every figure, e.g. ``weights
        renormalised to sum to 1 (given weights summed to 1.26): structural 0.5 -> 0.397,
        ...``; empty when the weights were used as given."""
        if not self.weights_given:
            return ()
        total = math.fsum(v for _, v in self.weights_given)
        effective = dict(self.weights)
        moves = ", ".join(f"{k} {v:g} -> {effective[k]:.3f}" for k, v in self.weights_given)
        return (f"weights renormalised to sum to 1 (given weights summed to {total:g}): {moves}",)

    def as_strings(self) -> dict[str, str]:
        """Every parameter as text, for provenance (replaying a score needs all of them)."""
        out = {
            "as_of": self.as_of.isoformat(),
            "alpha": repr(self.alpha),
            "top_k": str(self.top_k),
            "export_now_weight": repr(self.export_now_weight),
            "horizon_weeks": repr(self.horizon_weeks),
            "critical": repr(self.critical),
        }
        out.update({f"weights.{k}": repr(v) for k, v in self.weights})
        out.update({f"layer_weights.{k}": repr(v) for k, v in self.layer_weights})
        out.update({f"regime_overrides.{k}": str(v).lower() for k, v in self.regime_overrides})
        return dict(sorted(out.items()))


def _merge(
    name: str,
    defaults: Mapping[str, float],
    overrides: Mapping[str, float],
    violations: list[FieldViolation],
) -> dict[str, float]:
    merged = dict(defaults)
    for key, value in overrides.items():
        path = f"{name}.{key}"
        if key not in defaults:
            known = ", ".join(defaults)
            violations.append(FieldViolation(path, repr(value), f"unknown key; one of {known}"))
        elif not _is_number(value) or not math.isfinite(value) or not 0.0 <= value <= 1.0:
            violations.append(FieldViolation(path, repr(value), "must be a number within [0, 1]"))
        else:
            merged[key] = float(value)
    if math.fsum(v for v in merged.values() if _is_number(v)) <= 0.0:
        violations.append(
            FieldViolation(name, repr(dict(overrides)), "at least one weight must be positive")
        )
    return merged


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _given(
    merged: Mapping[str, float], overrides: Mapping[str, float]
) -> tuple[tuple[str, float], ...]:
    """The merged weights, overridden keys first, when renormalising changes them (their sum
    is not 1 to 1e-9); empty otherwise, so default parameters compare equal to built ones."""
    if abs(math.fsum(merged.values()) - 1.0) <= 1e-9:
        return ()
    first = [k for k in merged if k in overrides]
    return tuple((k, merged[k]) for k in [*first, *(k for k in merged if k not in overrides)])


def _normalised(weights: Mapping[str, float]) -> dict[str, float]:
    total = math.fsum(weights.values())
    if total <= 0.0:
        return dict(weights)
    return {k: v / total for k, v in weights.items()}


assert set(DEFAULT_LAYER_WEIGHTS) <= set(LAYERS)


#: Any fixed date: :attr:`ScoringParams.is_standard` compares everything else.
STANDARD_AS_OF = dt.date(2000, 1, 1)


@functools.cache
def _standard() -> ScoringParams:
    return ScoringParams.build(as_of=STANDARD_AS_OF)
