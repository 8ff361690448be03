"""Driver importance (models/sensitivity.py) on a case whose answer is known by construction.

Provider p takes 0.9 of its fleet from chip a and 0.1 from chip b; provider q takes all of its
fleet from chip c. Event ``big`` often takes most of a; ``small`` often takes a little of b;
``elsewhere`` hits c only. So ``big`` drives p's loss, ``small`` barely matters and
``elsewhere`` not at all for p; for q it is the other way round.
"""

from __future__ import annotations

import numpy as np
import pytest

from sovrisk.models.analysis.sensitivity import sensitivity
from sovrisk.models.analysis.simulation import (
    NODE_FAILURES_ID,
    NodeFailures,
    SimulationResult,
    simulate,
)
from sovrisk.models.engine.compiled import CompiledGraph
from sovrisk.models.errors import InvalidParameterError, NotFoundError
from sovrisk.models.graph.events import Event, Pert


def two_providers() -> CompiledGraph:
    return CompiledGraph.from_arrays(
        ["p", "q", "a", "b", "c"],
        np.array([0, 0, 1], dtype=np.int64),
        np.array([2, 3, 4], dtype=np.int64),
        ["fleet", "fleet", "fleet"],
        np.array([0.9, 0.1, 1.0]),
        [(2, "TWN", 1.0), (3, "KOR", 1.0), (4, "USA", 1.0)],
    )


BIG = Event(id="big", probability=0.3, severity=Pert(0.5, 0.8, 1.0), member_nodes=frozenset({"a"}))
SMALL = Event(
    id="small", probability=0.3, severity=Pert(0.0, 0.05, 0.1), member_nodes=frozenset({"b"})
)
ELSEWHERE = Event(
    id="elsewhere", probability=0.4, severity=Pert(0.2, 0.6, 1.0), member_nodes=frozenset({"c"})
)


@pytest.fixture(scope="module")
def simulated() -> SimulationResult:
    failures = NodeFailures(probability=0.01)
    return simulate(
        two_providers(),
        [SMALL, ELSEWHERE, BIG],
        4000,
        11,
        providers=["p", "q"],
        node_failures=failures,
        keep_drivers=True,
    )


def test_the_driving_event_ranks_first(simulated: SimulationResult) -> None:
    result = sensitivity(simulated)
    p = result.provider("p")
    assert [d.rank for d in p.drivers] == [1, 2, 3, 4]
    assert p.drivers[0].driver == "big"
    big, small, elsewhere = p.driver("big"), p.driver("small"), p.driver("elsewhere")
    # Both measures agree on the order.
    assert big.standardized_coefficient > abs(small.standardized_coefficient)
    assert big.standardized_coefficient > abs(elsewhere.standardized_coefficient)
    assert big.permutation_importance > 10 * max(small.permutation_importance, 1e-3)
    assert abs(elsewhere.permutation_importance) < 0.01
    assert abs(elsewhere.standardized_coefficient) < 0.05
    assert p.linear_r2 > 0.5 and p.model_r2 > 0.5
    q = result.provider("q")
    assert q.drivers[0].driver == "elsewhere"
    assert abs(q.driver("big").permutation_importance) < 0.01
    assert {d.driver for d in q.drivers} == {"big", "small", "elsewhere", NODE_FAILURES_ID}


def test_sensitivity_is_reproducible(simulated: SimulationResult) -> None:
    assert sensitivity(simulated) == sensitivity(simulated)
    assert simulated.drivers is not None
    assert sensitivity(simulated.drivers, providers=["q"]).providers == (
        sensitivity(simulated).provider("q"),
    )
    split = sensitivity(simulated, max_samples=1000, test_fraction=0.2)
    assert (split.n_train, split.n_test) == (800, 200)


def test_a_provider_without_loss_variation_has_no_drivers() -> None:
    result = simulate(
        two_providers(),
        [BIG],
        500,
        1,
        providers=["p", "q"],
        node_failures=None,
        keep_drivers=True,
    )
    q = sensitivity(result).provider("q")  # nothing reaches c
    assert all(d.permutation_importance == 0.0 for d in q.drivers)
    assert all(d.standardized_coefficient == 0.0 for d in q.drivers)
    assert q.linear_r2 == 0.0 and q.model_r2 == 0.0


def test_bad_requests() -> None:
    plain = simulate(two_providers(), [BIG], 200, 1, providers=["p"], node_failures=None)
    with pytest.raises(InvalidParameterError):
        sensitivity(plain)  # no drivers kept
    kept = simulate(
        two_providers(), [BIG], 200, 1, providers=["p"], node_failures=None, keep_drivers=True
    )
    with pytest.raises(InvalidParameterError):
        sensitivity(kept, test_fraction=0.9)
    with pytest.raises(InvalidParameterError):
        sensitivity(kept, max_samples=10)
    with pytest.raises(NotFoundError):
        sensitivity(kept, providers=["q"])
