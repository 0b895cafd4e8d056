"""``make paper``: every figure and table of the paper's comparison, ours beside it (docs/paper.md), in one
command. What is missing is made first: the campaigns' cells this machine and the reference set lack
(``make campaign``), then the script figures whose image is not in docs/ (their commands in
docs/figures.yaml, the image copied in from where the command writes it); then everything is redrawn
(``make plots``). On a checkout with everything shipped it only redraws. ``--dry-run`` (``make -n
paper``) lists what would run, with its cost in core-hours, and runs nothing.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

from benchmark.campaign import RESULTS, Campaign, grid
from benchmark.config import ConfigError, parse_budget
from benchmark.figures import manifest
from benchmark.provenance import ROOT
from benchmark.reference import REFERENCE

TO_RUN = ("missing", "stopped", "stale")  # a campaign cell in one of these states is run again


def campaigns_needed(figures: dict[str, dict]) -> list[str]:
    """The campaigns the runs-kind figures draw from, in the manifest's order."""
    names = [e["command"].split("NAME=")[-1].split()[0] for e in figures.values() if "NAME=" in e["command"]]
    return list(dict.fromkeys(names))


def cells_to_run(name: str, results: Path = RESULTS, reference: Path = REFERENCE) -> tuple[int, float]:
    """(cells, core-hours) a campaign still needs: each cell its task's budget on one core (a DAgger
    cell's teacher, when it must run too, is a cell of its own)."""
    campaign = Campaign.load(name)
    todo = grid(campaign, results, reference)
    todo = todo[todo["state"].isin(TO_RUN) | (todo["state"] == "waiting")]
    hours = sum(parse_budget(campaign.budget[task])[0] / 3600 for task in todo["task"])
    return len(todo), hours


def scripts_needed(figures: dict[str, dict], root: Path = ROOT) -> list[tuple[str, dict]]:
    """Script figures whose image is not in docs/ yet."""
    return [(out, e) for out, e in figures.items() if e["kind"] == "script" and not (root / out).exists()]


def plan(figures: dict[str, dict], results: Path, reference: Path, root: Path) -> list[str]:
    """What a run of ``make paper`` would do, one line each, costs included."""
    lines = []
    for name in campaigns_needed(figures):
        cells, hours = cells_to_run(name, results, reference)
        if cells:
            lines.append(f"make campaign NAME={name}  # {cells} cell(s), about {hours:.1f} core-hours")
    for out, entry in scripts_needed(figures, root):
        cost = f"about {entry['core_hours']:.1f} core-hours" if "core_hours" in entry else "minutes"
        lines.append(f"{entry['command']}  # for {out}, {cost}")
    lines.append("make plots  # redraw every figure and table from the reference set: minutes, no training")
    return lines


def run(command: list[str]) -> None:
    print("$ " + shlex.join(command), flush=True)
    done = subprocess.run(command, cwd=ROOT)
    if done.returncode != 0:
        raise ConfigError(f"'{shlex.join(command)}' failed (exit {done.returncode}); what ran before it is kept")


def make(figures: dict[str, dict], results: Path, reference: Path, root: Path) -> None:
    for name in campaigns_needed(figures):
        if cells_to_run(name, results, reference)[0]:
            run([sys.executable, "-m", "benchmark.campaign", "run", "--name", name])
            run([sys.executable, "-m", "benchmark.campaign", "publish", "--name", name])
    for out, entry in scripts_needed(figures, root):
        run(shlex.split(entry["command"]))
        if "writes" in entry and (root / entry["writes"]).exists():
            (root / out).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / entry["writes"], root / out)
    run([sys.executable, "-m", "benchmark.figures"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dry-run", "-n", action="store_true", help="list what would run and its cost; run nothing")
    args = parser.parse_args(argv)
    try:
        figures = manifest.load()
        if args.dry_run:
            print("\n".join(plan(figures, RESULTS, REFERENCE, ROOT)))
            return
        make(figures, RESULTS, REFERENCE, ROOT)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
