"""docs/questions.md is what scripts/cookbook.py writes: the cookbook's answers come from the
code (the same functions the CLI and the API call) and cannot drift from it."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_questions_page_is_generated_by_the_script() -> None:
    spec = importlib.util.spec_from_file_location("cookbook", ROOT / "scripts" / "cookbook.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["cookbook"] = module
    spec.loader.exec_module(module)
    expected = module.Cookbook().render()
    current = (ROOT / "docs" / "questions.md").read_text(encoding="utf-8")
    assert current == expected, "docs/questions.md is stale: run python scripts/cookbook.py"
    # Every question the issue asks is on the page.
    for heading in (
        "own silicon reduce",
        "CoWoS easing",
        "20 % CoWoS shortfall",
        "TPU and Microsoft's Maia",
        "today and over 2024-2027",
        "Taiwan Strait",
        "export-control escalation",
    ):
        assert heading in current, heading
