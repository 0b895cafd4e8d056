"""The figures of the README and docs/ from ``docs/figures.yaml``: each one drawn from the shipped reference
set (so anyone can rebuild it), or listed as missing with the command that makes its runs.

Only shipped runs (``results/reference/``) draw a docs figure: a figure drawn from one machine's local
runs could not be rebuilt by anyone else.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from benchmark.figures.plots import plot_grad_norms
from benchmark.figures.report import returns_figure
from benchmark.provenance import ROOT

MANIFEST = ROOT / "docs" / "figures.yaml"
DRAWERS = ("returns", "grad_norms")


def load(path: Path = MANIFEST) -> dict[str, dict]:
    figures = yaml.safe_load(path.read_text())["figures"]
    for out, entry in figures.items():
        if entry.get("kind") not in ("runs", "script") or "command" not in entry:
            raise ValueError(f"{path}: {out} needs kind (runs or script) and command")
        if entry["kind"] == "runs" and (entry.get("draw") not in DRAWERS or "task" not in entry.get("select", {})):
            raise ValueError(f"{path}: {out} draws from runs: give draw ({', '.join(DRAWERS)}) and select.task")
    return figures


def shipped(runs: pd.DataFrame, reference: Path) -> pd.DataFrame:
    reference = reference.resolve()
    return runs[[Path(p).resolve().is_relative_to(reference) for p in runs["path"]]]


def selected(runs: pd.DataFrame, select: dict) -> pd.DataFrame:
    pick = runs["task"] == select["task"]
    if "algos" in select:
        pick &= runs["algo"].isin(select["algos"])
    if "experiment" in select:
        pick &= [Path(p).parent.name == select["experiment"] for p in runs["path"]]
    return runs[pick]


def rebuild(runs: pd.DataFrame, reference: Path, floors: pd.DataFrame | None = None,
            root: Path = ROOT, path: Path = MANIFEST) -> tuple[list[str], list[str]]:  # fmt: skip
    """Draw every runs-kind figure whose runs are shipped; returns (written, missing with the fix)."""
    made, missing = [], []
    ours = shipped(runs, reference) if not runs.empty else runs
    for out, entry in load(path).items():
        if entry["kind"] == "script":
            continue
        group = selected(ours, entry["select"]) if not ours.empty else ours
        lacking = sorted(set(entry["select"].get("algos", [])) - set(group["algo"]))
        if group.empty or lacking:  # never a figure that quietly leaves out a learner it names
            what = (
                f"no runs of {', '.join(lacking)} shipped"
                if lacking and not group.empty
                else "its runs are not shipped"
            )
            missing.append(f"{out}: {what}; {entry['command']}")
            continue
        if entry["draw"] == "returns":
            fig = returns_figure(group, entry["select"]["task"], floors=floors)
        else:
            fig = plot_grad_norms(
                list(group["path"]), root / out, labels=[f"{r.learner} seed {r.seed}" for r in group.itertuples()]
            )
        (root / out).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(root / out, dpi=120)
        plt.close(fig)
        made.append(out)
    return made, missing
