"""Run the performance suite, print each figure, and write benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks                 # every figure, 40 to 50 minutes on 2 cores
    .venv/bin/python -m benchmarks --only 1,4      # some figures
    .venv/bin/python -m benchmarks --quick         # smaller sizes, a few minutes: a smoke run

1. detection latency and API calls per install (10- and 40-minute installs), against Terraform's schedule;
2. `pulumi up` of 64 servers at once (a ByoiFleet, plain ByoiInstallations) against one install, installs
   lasting a minute; 200 plain ByoiInstallations in one stack, all in flight at once;
3. no-change `pulumi preview` of an existing 200-server fleet: time, provider memory, OVH API calls;
4. provider cold start to the first Check answered;
5. full preflight hashing rate against sha512sum, and peak memory (benchmarks/preflight_bench.py);
6. requests per minute per consumer key and completion latency of 1, 10, 64 and 200 installs at once under
   OVH's rate limit (the emulator's realistic mode);
7. side by side with OVH's Terraform provider under OpenTofu: requests, latency, wall time of 1, 8 and 64
   servers, and what each tool does when things go wrong (writes peers.json beside the report, from which
   `python -m benchmarks.readme_table` rewrites README.md's comparison).

Every figure is measured against its baseline in the same run, on real provider processes and the local OVH
API emulator. Not a test: the figures depend on the machine and on what else it runs (its load average is
recorded).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from . import cold_start, detection, fleets, peers, preflight, preview, request_budget
from .common import ROOT, Figure, machine

DEFAULT_OUTPUT = ROOT / "benchmarks" / "RESULTS.md"


def plan(quick: bool, output: Path = DEFAULT_OUTPUT) -> dict[int, Callable[[], Figure]]:
    peers_json = output.with_name("peers.json")
    if quick:
        return {
            1: lambda: detection.figure(speed=40, count=2, budget_cost=False),
            2: lambda: fleets.figure(speed=60, size=4, many=8, budget_cost=False),
            3: lambda: preview.figure(servers=20),
            4: lambda: cold_start.figure(runs=3),
            5: lambda: preflight.figure(size_mib=256, runs=1),
            6: lambda: request_budget.figure(speed=60, sizes=(1, 10)),
            7: lambda: peers.figure(speed=20, sizes=(1, 8), json_path=peers_json),
        }
    return {
        1: lambda: detection.figure(speed=10, count=8),
        2: lambda: fleets.figure(speed=10, size=64, many=200),
        3: lambda: preview.figure(servers=200),
        4: lambda: cold_start.figure(runs=7),
        5: lambda: preflight.figure(size_mib=1024, runs=3),
        6: lambda: request_budget.figure(speed=60, sizes=(1, 10, 64, 200)),
        7: lambda: peers.figure(speed=10, sizes=(1, 8, 64), json_path=peers_json),
    }


# "- 4. Provider cold start: goal met: 0.43 s": no title holds ": ".
SUMMARY_LINE = re.compile(r"^- (\d+)\. .+?: (.+)$")
COMMIT_ROW = re.compile(r"^\| commit \| (.+) \|$", re.MULTILINE)
MEASURED_ON = re.compile(r"^Measured on (\S+ \S+) UTC by `(python -m benchmarks)` ", re.MULTILINE)


def earlier_full_run(path: Path) -> tuple[str, str, dict[int, str]] | None:
    """(when, which commit, each figure's verdict) of the full run `path` holds; None for another kind of run.

    A verdict must hold on two consecutive full runs: a full run's report puts the one before beside it."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return None
    header = MEASURED_ON.search(text)
    if header is None:
        return None
    verdicts = {}
    summary = text.partition("\n## Summary\n")[2].partition("\n## ")[0]
    for line in summary.splitlines():
        found = SUMMARY_LINE.match(line)
        if found:
            verdicts[int(found[1])] = found[2]
    commit = COMMIT_ROW.search(text)
    return header[1], commit[1] if commit else "unknown", verdicts


def consecutive(figures: list[Figure], before: tuple[str, str, dict[int, str]], commit: str) -> list[str]:
    when, commit_before, verdicts = before
    same = commit_before == commit and "changes" not in commit
    code = "the same code" if same else f"commit {commit_before}"
    lines = [
        "## Two consecutive runs",
        "",
        f"The run above and the full run just before it ({when} UTC, {code}, written to this same file), "
        "each figure's verdict:",
        "",
        "| figure | run before | this run | agree |",
        "| --- | --- | --- | --- |",
    ]
    for figure in figures:
        earlier = verdicts.get(figure.number, "-")
        agree = "yes" if _outcome(earlier) == _outcome(figure.verdict) else "**no**"
        lines.append(f"| {figure.number} | {earlier} | {figure.verdict} | {agree} |")
    return [*lines, ""]


def _outcome(verdict: str) -> str:
    """The verdict without its figures: "goal met", "goal missed", "budget kept"..."""
    return verdict.split(":", 1)[0].split(" (", 1)[0].strip()


def report(
    figures: list[Figure],
    about: dict[str, str],
    command: str,
    started: float,
    before: tuple[str, str, dict[int, str]] | None = None,
) -> str:
    lines = [
        "# Benchmark results",
        "",
        f"Measured on {datetime.fromtimestamp(started, UTC):%Y-%m-%d %H:%M} UTC by `{command}` "
        f"in {(time.time() - started) / 60:.0f} minutes. Each figure is compared with its baseline measured "
        "in the same run; what is measured and how is in each module of `benchmarks/`.",
        "",
        "| machine | |",
        "| --- | --- |",
    ]
    lines += [f"| {key} | {value} |" for key, value in about.items()]
    lines += ["", "## Summary", ""]
    lines += [f"- {figure.number}. {figure.title}: {figure.verdict}" for figure in figures]
    lines.append("")
    for figure in figures:
        lines += [figure.markdown()]
    if before is not None:
        lines += consecutive(figures, before, about.get("commit", "unknown"))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--only", help="comma-separated figure numbers, e.g. 1,4")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="where to write the report")
    options = parser.parse_args(argv)
    figures_to_run = plan(options.quick, options.output)
    if options.only:
        wanted = {int(number) for number in options.only.split(",")}
        unknown = wanted - set(figures_to_run)
        if unknown:
            parser.error(f"no figure {', '.join(map(str, sorted(unknown)))}; figures are 1 to 7")
        figures_to_run = {number: run for number, run in figures_to_run.items() if number in wanted}

    full = not options.only and not options.quick
    # Read before this run overwrites it: a full run is reported beside the full run before it.
    before = earlier_full_run(options.output) if full else None
    started = time.time()
    about = machine()
    command = "python -m benchmarks " + " ".join(argv if argv is not None else sys.argv[1:])
    print(f"machine: {about['cpu']}, {about['memory']}, load {about['load']}", flush=True)
    figures: list[Figure] = []
    for number, run in figures_to_run.items():
        print(f"\nfigure {number} ...", flush=True)
        try:
            figures.append(run())
        except Exception as error:  # one figure's failure must not cost the run the others' figures
            traceback.print_exc()
            reason = f"not measured: {type(error).__name__}: {(str(error).splitlines() or [''])[0]}"[:300]
            figures.append(Figure(number, "not measured", "see its module", [], verdict=reason))
        print(figures[-1].text(), flush=True)
        about["load at the end"] = " ".join(f"{value:.2f}" for value in os.getloadavg())
        # Written after each figure: an interrupted run keeps what it measured.
        options.output.write_text(report(figures, about, command.strip(), started, before), encoding="utf-8")
    print(f"\nwritten to {options.output}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
