"""Global sensitivity of each provider's simulated loss to its drivers (scikit-learn).

The drivers of a simulation (``simulate(..., keep_drivers=True)``) are, per sample, each
event's realised severity x occurrence (``sev_e X_e``) and the summed severity of the
independent node failures. For each provider the samples are split once into a training and a
held-out part (``train_test_split`` with a fixed ``random_state``), and two measures are
reported for every driver:

* **permutation importance** (headline): the drop in held-out R^2 of a gradient-boosted tree
  model (``HistGradientBoostingRegressor``) when the driver's column is shuffled
  (``sklearn.inspection.permutation_importance``, ``n_repeats`` shuffles, fixed
  ``random_state``). Model-agnostic and measured out of sample, so it sees the non-linear
  AND/OR response (saturation at total loss, minimum over input categories, multiplied
  shocks). Its usual weakness, correlated features sharing credit, does not arise: the
  drivers are drawn independently.
* **standardised regression coefficient**: the coefficient of a ``LinearRegression`` on
  ``StandardScaler`` features, divided by the standard deviation of the loss (change of the
  loss, in its standard deviations, per standard deviation of the driver). Signed, linear,
  first-order: easy to read, but it misstates saturating and interacting effects.

Drivers are ranked by permutation importance (ties: larger coefficient, then driver id).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.inspection import permutation_importance
from sklearn.linear_model import LinearRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from sovrisk.models.analysis.simulation import DriverSamples, SimulationResult
from sovrisk.models.engine.compiled import FloatArray
from sovrisk.models.errors import FieldViolation, InvalidParameterError, NotFoundError

#: Fewest samples a sensitivity analysis accepts (both parts need enough to fit and score).
MIN_SAMPLES = 40
#: The boosted model: small and deterministic (no early stopping, fixed random_state).
BOOSTING_ITERATIONS = 30
BOOSTING_LEARNING_RATE = 0.3
BOOSTING_LEAF_NODES = 15


@dataclass(frozen=True, slots=True)
class DriverImportance:
    driver: str  # an event id, or "independent_failures"
    standardized_coefficient: float
    permutation_importance: float  # mean drop in held-out R^2 when the driver is shuffled
    permutation_importance_std: float  # over the n_repeats shuffles
    rank: int  # 1 = most important (by permutation importance)


@dataclass(frozen=True, slots=True)
class ProviderSensitivity:
    provider: str
    linear_r2: float  # held-out R^2 of the linear model
    model_r2: float  # held-out R^2 of the boosted model the permutation importance uses
    drivers: tuple[DriverImportance, ...]  # rank order

    def driver(self, driver_id: str) -> DriverImportance:
        for d in self.drivers:
            if d.driver == driver_id:
                return d
        raise NotFoundError("driver", driver_id)


@dataclass(frozen=True, slots=True)
class SensitivityResult:
    n_train: int
    n_test: int
    n_repeats: int
    random_state: int
    providers: tuple[ProviderSensitivity, ...]

    def provider(self, provider_id: str) -> ProviderSensitivity:
        for p in self.providers:
            if p.provider == provider_id:
                return p
        raise NotFoundError("provider", provider_id)


def sensitivity(
    samples: SimulationResult | DriverSamples,
    *,
    providers: Sequence[str] | None = None,
    test_fraction: float = 0.25,
    n_repeats: int = 5,
    random_state: int = 0,
    max_samples: int | None = None,
) -> SensitivityResult:
    """Importance of every driver for every provider's loss (see the module docstring).

    ``samples``: a result of ``simulate(..., keep_drivers=True)`` or its ``drivers``.
    ``max_samples`` uses only the first samples (a run's first N samples are the same for
    any longer run with the same seed). The same inputs give the same numbers.
    """
    drivers = samples.drivers if isinstance(samples, SimulationResult) else samples
    if drivers is None:
        raise InvalidParameterError(
            [FieldViolation("keep_drivers", "false", "simulate with keep_drivers=True first")]
        )
    n = drivers.x.shape[0] if max_samples is None else min(max_samples, drivers.x.shape[0])
    bad: list[FieldViolation] = []
    if n < MIN_SAMPLES:
        bad.append(FieldViolation("n_samples", str(n), f"needs at least {MIN_SAMPLES} samples"))
    if not (math.isfinite(test_fraction) and 0.05 <= test_fraction <= 0.5):
        bad.append(FieldViolation("test_fraction", str(test_fraction), "must be in [0.05, 0.5]"))
    if n_repeats < 1:
        bad.append(FieldViolation("n_repeats", str(n_repeats), "must be >= 1"))
    if random_state < 0:
        bad.append(FieldViolation("random_state", str(random_state), "must be >= 0"))
    if bad:
        raise InvalidParameterError(bad)
    chosen = tuple(providers) if providers is not None else drivers.providers
    for pid in chosen:
        if pid not in drivers.providers:
            raise NotFoundError("provider", pid)

    x = np.asarray(drivers.x[:n], dtype=np.float64)
    rows = np.arange(n)
    train, test = train_test_split(rows, test_size=test_fraction, random_state=random_state)
    results = []
    # One OpenMP thread: the boosted model is small, and a threaded one slows to a crawl when
    # the cores are shared (a server, a test run). The numbers do not depend on it.
    with threadpool_limits(limits=1, user_api="openmp"):
        for pid in chosen:
            y = np.asarray(drivers.loss[:n, drivers.providers.index(pid)], dtype=np.float64)
            results.append(
                _provider(pid, drivers.drivers, x, y, train, test, n_repeats, random_state)
            )
    return SensitivityResult(
        n_train=len(train),
        n_test=len(test),
        n_repeats=n_repeats,
        random_state=random_state,
        providers=tuple(results),
    )


def _provider(
    provider: str,
    names: tuple[str, ...],
    x: FloatArray,
    y: FloatArray,
    train: FloatArray,
    test: FloatArray,
    n_repeats: int,
    random_state: int,
) -> ProviderSensitivity:
    k = len(names)
    y_train, y_test = y[train], y[test]
    if np.ptp(y_train) == 0.0 or np.ptp(y_test) == 0.0:
        # No variation to explain (e.g. a provider no driver reaches): nothing matters.
        coef = np.zeros(k)
        perm, perm_std = np.zeros(k), np.zeros(k)
        linear_r2 = model_r2 = 0.0
    else:
        scaler = StandardScaler().fit(x[train])
        linear = LinearRegression().fit(scaler.transform(x[train]), y_train)
        coef = np.asarray(linear.coef_, dtype=np.float64) / float(np.std(y_train))
        linear_r2 = float(linear.score(scaler.transform(x[test]), y_test))
        model = HistGradientBoostingRegressor(
            max_iter=BOOSTING_ITERATIONS,
            learning_rate=BOOSTING_LEARNING_RATE,
            max_leaf_nodes=BOOSTING_LEAF_NODES,
            early_stopping=False,
            random_state=random_state,
        ).fit(x[train], y_train)
        model_r2 = float(model.score(x[test], y_test))
        result = permutation_importance(
            model, x[test], y_test, n_repeats=n_repeats, random_state=random_state
        )
        perm = np.asarray(result.importances_mean, dtype=np.float64)
        perm_std = np.asarray(result.importances_std, dtype=np.float64)
    order = sorted(range(k), key=lambda d: (-perm[d], -abs(coef[d]), names[d]))
    return ProviderSensitivity(
        provider=provider,
        linear_r2=linear_r2,
        model_r2=model_r2,
        drivers=tuple(
            DriverImportance(
                driver=names[d],
                standardized_coefficient=float(coef[d]),
                permutation_importance=float(perm[d]),
                permutation_importance_std=float(perm_std[d]),
                rank=r,
            )
            for r, d in enumerate(order, start=1)
        ),
    )
