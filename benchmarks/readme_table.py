"""Rewrites README.md's performance summary from the measured data: benchmarks/RESULTS.md (figures 1 to 6)
and benchmarks/peers.json (figure 7, OVH's Terraform provider and pulumi-ovh run side by side).

    .venv/bin/python -m benchmarks.readme_table                  # rewrites README.md in place
    .venv/bin/python -m benchmarks.readme_table --check          # exit 1 if README.md is not up to date

Only the block between `<!-- benchmarks:begin -->` and `<!-- benchmarks:end -->` changes; without those two
markers (in that order) it changes nothing and says so. Imports nothing from the rest of `benchmarks/`, so
that the tests can load it without the benchmarks' dependencies.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DATA = ROOT / "benchmarks" / "peers.json"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
BEGIN = "<!-- benchmarks:begin -->"
END = "<!-- benchmarks:end -->"


MISSING = (
    f"no `{BEGIN}` ... `{END}` block: add the two markers, each on its own line and in that order, where "
    "the comparison with the peers belongs, then run `python -m benchmarks.readme_table` again"
)


class MarkersMissing(ValueError):
    pass


def figure_rows(results: str) -> dict[int, dict[str, list[str]]]:
    """Each figure's table in RESULTS.md: its rows' cells, by the row's first cell."""
    figures: dict[int, dict[str, list[str]]] = {}
    number = 0
    for line in results.splitlines():
        if line.startswith("## ") and line[3:].split(".", 1)[0].isdigit():
            number = int(line[3:].split(".", 1)[0])
            figures[number] = {}
        elif number and line.startswith("| ") and not line.startswith("| ---"):
            cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
            figures[number].setdefault(cells[0], cells[1:])  # the header row first, then the rows
    return figures


def _alone_and_together(ours: dict[str, Any] | None) -> str:
    """Figure 7's latencies of one install alone and of several that end at the same moment: the request
    budget serves simultaneous ends in turn, so those are the worst case of the first row, not its median.
    Its largest size is left out: there ours waits its turn for every request, not only at the end."""
    by_size = (ours or {}).get("latency_median_at_ovh_pace_s_by_size", {})
    said = [
        f"one alone: {by_size[size]:g} s"
        if size == "1"
        else f"{size} ending at the same moment: {by_size[size]:g} s"
        for size in sorted(by_size, key=int)[:-1]
    ]
    return f"; {', '.join(said)} (figure 7)" if said else ""


def summary_rows(
    figures: dict[int, dict[str, list[str]]], peers: dict[str, Any]
) -> list[tuple[str, str, str]]:
    """(what, ovh-byoi, baseline) for each figure that has the row it needs; a figure's layout that changed
    drops its row rather than put a wrong number in the README."""
    terraform = next((t for t in peers["tools"] if "default parallelism" in t["tool"]), None)
    pulumi_ovh = next((t for t in peers["tools"] if t["tool"].startswith("pulumi-ovh")), None)
    ours = next((t for t in peers["tools"] if t["tool"].startswith("ovh-byoi")), None)
    rows: list[tuple[str, str, str]] = []
    found = {number: rows_ for number, rows_ in figures.items()}
    try:
        detection = found[1]["10 min"]
        unmetered = found[1].get("10 min, budget off")
        rows.append(
            (
                "A 10-minute install's end noticed after (median)",
                # Figure 1's installs share one request budget: alone, an install's end is noticed sooner.
                f"{detection[2]} s, {detection[5]} polls, "
                f"{detection[0]} installs ending seconds apart, sharing the request budget"
                + (f" ({unmetered[2]} s without it)" if unmetered else "")
                + _alone_and_together(ours),
                "; ".join(
                    f"{name}, run: {peer['latency_median_at_ovh_pace_s']:g} s, "
                    f"{peer['task_reads_per_install_at_ovh_pace']:g} polls"
                    if peer
                    else f"{name}: not run"
                    for name, peer in ((TERRAFORM, terraform), (PULUMI_OVH, pulumi_ovh))
                ),
            )
        )
    except (KeyError, IndexError):
        pass
    # Figure 2's request budget column ("45 a minute"): the budget ours kept to, rather than a copy of it.
    metered = found.get(2, {}).get("#1", [])
    budget = f"within its request budget of {metered[2]}" if len(metered) > 2 else "within its request budget"
    if terraform and ours:
        sizes = sorted(set(terraform["wall_s"]) & set(ours["wall_s"]), key=int)
        if sizes:
            biggest = sizes[-1]
            rows.append(
                (
                    f"{biggest} servers installed by one `pulumi up` / `tofu apply` (wall time)",
                    # Ours keeps to its request budget; pulumi-ovh reads every install every 10 s, all at
                    # once, whatever OVH's limit (Terraform's default parallelism keeps it near the limit).
                    f"{ours['wall_s'][biggest]:g} s, {budget}",
                    f"{TERRAFORM}: {terraform['wall_s'][biggest]:g} s at parallelism 10"
                    + (
                        f"; {PULUMI_OVH}: {pulumi_ovh['wall_s'][biggest]:g} s, reading every install every "
                        f"10 s: about {_per_minute(pulumi_ovh, int(biggest), peers['install_seconds']):.0f} "
                        "requests a minute at OVH's pace, where OVH allows about 60"
                        if pulumi_ovh and biggest in pulumi_ovh["wall_s"]
                        else ""
                    ),
                )
            )
    for number, label, pick in SUMMARY:
        try:
            rows.append((label, *pick(found[number])))
        except (KeyError, IndexError):
            continue
    return rows


def _per_minute(peer: dict[str, Any], servers: int, install_seconds: float) -> float:
    """The requests a minute a peer asks at OVH's pace with `servers` installs at once: per install, over an
    install's length."""
    return float(peer["requests_per_install_at_ovh_pace"]) * servers / (install_seconds / 60)


TERRAFORM = "OVH's Terraform provider"
PULUMI_OVH = "pulumi-ovh"
SUMMARY = (
    (
        3,
        "`pulumi preview` of 200 servers",
        lambda f: (
            f"{f['ByoiFleet, one shared provider'][1]} s as one `ByoiFleet`, "
            f"{f['ByoiFleet, one shared provider'][2]} OVH API calls, "
            f"{f['ByoiFleet, one shared provider'][3]} provider process",
            f"{f['ByoiInstallation, default provider'][1]} s as plain resources",
        ),
    ),
    (
        2,
        "A fleet of 16 installed at once by `pulumi up`",
        lambda f: (f"{f['16'][1]} x one install's wall time", f"{f['16'][4]} x on the default provider"),
    ),
    (
        4,
        "Provider cold start, to its first Check answered",
        lambda f: (
            f"{f['ByoiProvider'][2]} s",
            f"{f['pulumi.dynamic + an empty provider (baseline)'][2]} s for an empty dynamic provider",
        ),
    ),
    (
        5,
        "`verify-image --full` of a 1024 MiB raw image",
        lambda f: (
            f"{f['verify-image --full, local raw'][1]} MiB/s, "
            f"{f['verify-image --full, local raw'][3]} MiB peak memory",
            f"`sha512sum`: {f['sha512sum, local raw'][1]} MiB/s",
        ),
    ),
    (
        6,
        "200 installs at once on one consumer key",
        lambda f: (
            f"busiest minute {f['200'][3]} requests ({f['200'][4]} answered 429)",
            "OVH's limit: 60 a minute",
        ),
    ),
)


def render(document: dict[str, Any], results: str = "") -> str:
    """The block's content: the summary, then what each tool did when things went wrong."""
    lines = [
        "<!-- generated by `python -m benchmarks.readme_table` from benchmarks/RESULTS.md and "
        "benchmarks/peers.json: do not edit -->",
        "| What | ovh-byoi | Baseline |",
        "| --- | --- | --- |",
    ]
    lines += [
        f"| {what} | {ours} | {baseline} |"
        for what, ours, baseline in summary_rows(figure_rows(results), document)
    ]
    # README.md stays under 200 lines: the scenarios in two rows, their full output in RESULTS.md's figure 7.
    for what, scenarios in BEHAVIOUR_ROWS:
        rows = [row for row in document["behaviour"] if row["scenario"] in scenarios]
        ours = [row for row in rows if row["tool"].startswith("ovh-byoi")]
        terraform = [row for row in rows if row["tool"].startswith("OpenTofu")]
        pulumi_ovh = [row for row in rows if row["tool"].startswith("pulumi-ovh")]
        if ours:
            theirs = "; ".join(
                f"{name}: {_outcomes(peer) or 'not run'}"
                for name, peer in ((TERRAFORM, terraform), (PULUMI_OVH, pulumi_ovh))
            )
            lines.append(f"| {what} | {_outcomes(ours)} | {theirs} |")
    return "\n".join(lines).rstrip() + "\n"


BEHAVIOUR_ROWS = (
    ("A call fails (figure 7): exit status, installs made", ("bursts", "dropped answer", "customerError")),
    (
        "The server changes (figure 7): exit status, installs made, what it says",
        ("image moved", "out-of-band"),
    ),
)


def _outcomes(rows: list[dict[str, Any]]) -> str:
    return "; ".join(
        f"{row['scenario']}: exit {row['exit']}, {row['installs (statuses)']}{_says(row)}" for row in rows
    )


def _says(row: dict[str, Any]) -> str:
    if row["scenario"] not in BEHAVIOUR_ROWS[1][1]:
        return ""
    # The summary line, without the progress and timing lines around it.
    parts = str(row["last lines it wrote"]).split(" / ")
    noise = ("Duration:", "Still ", "complete after", "OpenTofu has compared", "found no")
    kept = [
        part for part in parts if part != "Resources:" and not any(word in part for word in noise)
    ] or parts
    said = " / ".join(kept).replace("|", "\\|").replace("`", "'")
    return f", `{said if len(said) <= 60 else said[:57] + '...'}`"


def block(readme: str) -> tuple[int, int]:
    """Where the block's content starts and ends in `readme`."""
    start, end = readme.find(BEGIN), readme.find(END)
    if start < 0 or end < start:
        raise MarkersMissing(MISSING)
    return start + len(BEGIN), end


def rewrite(readme: str, document: dict[str, Any], results: str) -> str:
    """`readme` with its benchmarks block replaced by `render(document)`."""
    start, end = block(readme)
    return readme[:start] + "\n" + render(document, results) + readme[end:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.readme_table", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--readme", type=Path, default=README, help="the README to rewrite")
    parser.add_argument(
        "--data", type=Path, default=DATA, help="figure 7's JSON (python -m benchmarks writes it)"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="figures 1 to 6 (benchmarks/RESULTS.md)"
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if the block is stale")
    options = parser.parse_args(argv)
    readme = options.readme.read_text(encoding="utf-8")
    try:
        block(readme)
    except MarkersMissing:
        print(f"{options.readme}: {MISSING}", file=sys.stderr)
        return 1
    try:
        document = json.loads(options.data.read_text(encoding="utf-8"))
        results = options.results.read_text(encoding="utf-8") if options.results.exists() else ""
        wanted = rewrite(readme, document, results)
    except (OSError, ValueError, KeyError) as error:
        print(
            f"cannot use {options.data}: {error}; run `python -m benchmarks --only 7` first", file=sys.stderr
        )
        return 1
    if options.check:
        if wanted != readme:
            print(f"{options.readme} is stale: run `python -m benchmarks.readme_table`", file=sys.stderr)
            return 1
        return 0
    options.readme.write_text(wanted, encoding="utf-8")
    print(f"rewrote the benchmarks block of {options.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
