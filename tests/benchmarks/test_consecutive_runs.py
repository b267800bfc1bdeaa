"""A verdict must hold on two consecutive full runs: a full run's report puts the full run before it beside
it, and says where a verdict changed."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from benchmarks.__main__ import earlier_full_run, report  # noqa: E402
from benchmarks.common import Figure  # noqa: E402

ABOUT = {"cpu": "test", "commit": "abc123"}


def figures(cold_start: str, budget: str) -> list[Figure]:
    return [
        Figure(4, "Provider cold start", "goal: under 1.5 s", [], verdict=cold_start),
        Figure(6, "Request budget of a fleet", "goal: 60 a minute", [], verdict=budget),
    ]


def test_a_full_run_is_reported_beside_the_one_before_and_a_changed_verdict_shows(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    results.write_text(report(figures("goal met: 0.43 s", "budget kept"), ABOUT, "python -m benchmarks", 0.0))

    before = earlier_full_run(results)
    assert before == ("1970-01-01 00:00", "abc123", {4: "goal met: 0.43 s", 6: "budget kept"})
    text = report(figures("goal met: 0.61 s", "budget exceeded: 64 a minute"), ABOUT, "x", 60.0, before)

    section = text.partition("## Two consecutive runs")[2]
    assert "the same code" in section
    assert "| 4 | goal met: 0.43 s | goal met: 0.61 s | yes |" in section
    assert "| 6 | budget kept | budget exceeded: 64 a minute | **no** |" in section


def test_only_a_full_run_is_compared_with(tmp_path: Path) -> None:
    results = tmp_path / "RESULTS.md"
    some = report(figures("goal met: 0.43 s", "budget kept"), ABOUT, "python -m benchmarks --only 4,6", 0.0)
    results.write_text(some)
    assert earlier_full_run(results) is None
    assert earlier_full_run(tmp_path / "none.md") is None
