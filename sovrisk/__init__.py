"""sovrisk: silicon-sovereignty risk scores for cloud providers' AI-accelerator supply.

The domain library (``sovrisk.models``), the service adapters (``sovrisk.service``) and the
bundled, sourced dataset (``sovrisk.data``) in one package. For a notebook::

    >>> from sovrisk import load_default, ranking_frame, score_all
    >>> engine = load_default()                       # the bundled dataset
    >>> aws = engine.assess("aws", engine.default_params())
    >>> aws                                            # doctest: +SKIP
    <RiskAssessment aws composite=55.1 band=high (concentration=58.1, ...) ...>
    >>> aws.summary()["band"]
    'high'
    >>> ranking_frame(score_all(engine))              # doctest: +SKIP  (needs pandas)

Every score is 0-100 and higher means riskier. Importing this package is light: the engine
(numpy, scipy, networkx) loads when a function here is first called.
"""

from __future__ import annotations

import datetime as dt
import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sovrisk.models.scoring.assessment import RiskAssessment
    from sovrisk.models.scoring.risk_engine import RiskEngine

__all__ = ["DATA_DIR", "__version__", "load", "load_default", "ranking_frame", "score_all"]

#: The bundled dataset (package data): CSV tables, every figure with its source.
DATA_DIR = Path(__file__).resolve().parent / "data"


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed metadata when first asked for (importing
    importlib.metadata costs the CLI's start a third of its budget)."""
    if name != "__version__":
        raise AttributeError(f"module 'sovrisk' has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("sovrisk")
    except PackageNotFoundError:  # a checkout that was never installed
        return "0+unknown"


def load(path: str | Path) -> RiskEngine:
    """The engine over a dataset folder (docs/data-format.md)."""
    from sovrisk.models.graph.bundle import load_bundle
    from sovrisk.models.scoring.risk_engine import RiskEngine

    return RiskEngine(*load_bundle(path))


def load_default() -> RiskEngine:
    """The engine over the bundled dataset."""
    return load(DATA_DIR)


def score_all(
    engine: RiskEngine | None = None, as_of: dt.date | None = None
) -> list[RiskAssessment]:
    """Every provider's assessment, riskiest first (the bundled dataset by default)."""
    engine = engine or load_default()
    return engine.assess_all(engine.default_params(as_of))


def ranking_frame(assessments: list[RiskAssessment]) -> Any:
    """A pandas DataFrame, one row per provider (its :meth:`RiskAssessment.summary`);
    pandas is optional and imported here."""
    try:
        pd = importlib.import_module("pandas")
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("ranking_frame() needs pandas: pip install pandas") from exc
    return pd.DataFrame([a.summary() for a in assessments]).set_index("provider")
