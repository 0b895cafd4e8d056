"""The figures of the README and docs/ from ``docs/figures.yaml``: each one drawn from the shipped reference
set (so anyone can rebuild it), or listed as missing with the command that makes its runs.

Only shipped runs (``results/reference/``) draw a docs figure: a figure drawn from one machine's local
runs could not be rebuilt by anyone else.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import matplotlib.pyplot as plt
import pandas as pd
import yaml

from benchmark.campaign import Campaign
from benchmark.figures import aggregate
from benchmark.figures.plots import plot_grad_norms
from benchmark.figures.report import (
    campaign_runs,
    campaign_table,
    comparison_figure,
    grad_norms_figure,
    learner_colors,
    normalise_by,
    phases_figure,
    returns_figure,
)
from benchmark.provenance import ROOT
from benchmark.results import markdown_table

MANIFEST = ROOT / "docs" / "figures.yaml"
DRAWERS = ("returns", "grad_norms", "comparison", "comparison_table", "aggregate", "aggregate_table", "phases",
           "grad_norms_by_task")  # fmt: skip
CAMPAIGN_DRAWERS = DRAWERS[2:]  # select: {campaign: <name>, algos: [...] to narrow it}; they fill as cells ship


def load(path: Path = MANIFEST) -> dict[str, dict]:
    figures = yaml.safe_load(path.read_text())["figures"]
    for out, entry in figures.items():
        if entry.get("kind") not in ("runs", "script") or "command" not in entry:
            raise ValueError(f"{path}: {out} needs kind (runs or script) and command")
        needs = "campaign" if entry.get("draw") in CAMPAIGN_DRAWERS else "task"
        if entry["kind"] == "runs" and (entry.get("draw") not in DRAWERS or needs not in entry.get("select", {})):
            raise ValueError(f"{path}: {out} draws from runs: give draw ({', '.join(DRAWERS)}) and select.{needs}")
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
        if entry["draw"] in CAMPAIGN_DRAWERS:
            if _draw_campaign(out, entry, ours, reference, floors, root):
                made.append(out)
            else:
                missing.append(
                    f"{out}: no cell of campaign '{entry['select']['campaign']}' shipped by the code's learners; "
                    f"{entry['command']}"
                )
            continue
        group = selected(ours, entry["select"]) if not ours.empty else ours
        lacking = sorted(set(entry["select"].get("algos", [])) - set(group["algo"]))
        if group.empty or lacking:  # never a figure that quietly leaves out a learner it names
            what = (
                f"no runs of {', '.join(lacking)} shipped by the code's learners"
                if lacking and not group.empty
                else "its runs are not shipped by the code's learners"
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


def narrowed(campaign: Campaign, algos: list[str] | None) -> Campaign:
    """The campaign with only ``algos`` among its learners (all of them for None): a figure of a few learners."""
    if algos is None:
        return campaign
    unknown = sorted(set(algos) - set(campaign.learners))
    if unknown:
        raise ValueError(f"{MANIFEST.name}: campaign '{campaign.name}' has no learner {', '.join(unknown)}")
    keep = [a for a in campaign.learners if a in algos]
    only = {task: [a for a in names if a in algos] for task, names in (campaign.only or {}).items()}
    return replace(campaign, learners=keep, only=only or None)


def _draw_campaign(out: str, entry: dict, runs: pd.DataFrame, reference: Path, floors: pd.DataFrame | None,
                   root: Path) -> bool:  # fmt: skip
    """A campaign's comparison figure or its table page from the cells shipped so far; False when none is."""
    campaign = Campaign.load(entry["select"]["campaign"])
    colors = learner_colors(campaign)  # a learner keeps its colour in every figure of its campaign
    campaign = narrowed(campaign, entry["select"].get("algos"))
    cells = campaign_runs(runs, campaign, reference) if not runs.empty else runs  # the narrowed learners only
    if cells.empty:
        return False
    target = root / out
    target.parent.mkdir(parents=True, exist_ok=True)
    if entry["draw"] in ("comparison", "phases", "grad_norms_by_task"):
        if entry["draw"] == "comparison":
            fig = comparison_figure(cells, campaign, floors, colors)
        elif entry["draw"] == "grad_norms_by_task":
            fig = grad_norms_figure(cells, campaign, colors)
        else:
            fig = phases_figure(cells, campaign)
        fig.savefig(target, dpi=120)
        plt.close(fig)
        return True
    if entry["draw"].startswith("aggregate"):
        return _draw_aggregate(target, entry["draw"], cells, campaign, floors)
    table = campaign_table(cells, campaign, floors if floors is not None else pd.DataFrame(columns=["task"]))
    shown = table.assign(**{
        "final training return [95% CI]": [f"{r.train_return:.0f} [{r.ci_low:.0f}, {r.ci_high:.0f}]"
                                           if pd.notna(r.train_return) else "" for r in table.itertuples()],
        "evaluation": table["eval_return"].map(lambda v: f"{v:.0f}" if pd.notna(v) else ""),
        "random policy": table["random"].map(lambda v: f"{v:.0f}" if pd.notna(v) else ""),
        "normalised": table["normalised"].map(lambda v: f"{v:.2f}" if pd.notna(v) else ""),
        "minutes": table["minutes"].map(lambda v: f"{v:.0f}" if pd.notna(v) else ""),
    })  # fmt: skip
    columns = ["task", "learner", "seeds", "not complete", "final training return [95% CI]", "evaluation",
               "random policy", "published", "normalised", "minutes"]  # fmt: skip
    target.write_text(
        f"<!-- written by `make plots` from results/reference/ (campaign '{campaign.name}'); do not edit -->\n"
        f"# Campaign '{campaign.name}': final returns\n\n"
        "Final training return: the mean over the last 10% of each run's wall-clock (sampled actions, as the "
        "paper's curves), mean over seeds with a 95% bootstrap interval. Evaluation: the final policy's mean "
        "action. Normalised: (final training return - random policy) / (D.Va's published return - random "
        "policy), the random policy at the learner's action repeat.\n\n" + markdown_table(shown[columns]) + "\n"
    )
    return True


def _draw_aggregate(target: Path, draw: str, cells: pd.DataFrame, campaign: Campaign,
                    floors: pd.DataFrame | None) -> bool:  # fmt: skip
    """The aggregate statistics of a campaign over the tasks every learner with a run has run."""
    if floors is None or floors.empty:
        return False
    reference = normalise_by()
    found = aggregate.of_campaign(cells, campaign.learners, floors, reference)
    if found is None:
        return False
    tasks, scores, table = found
    if draw == "aggregate":
        fig = aggregate.campaign_figure(cells, campaign.learners, floors, reference, tasks, scores, table)
        fig.savefig(target, dpi=120)
        plt.close(fig)
        return True
    shown = table[["learner", "runs"]].copy()
    for name in aggregate.STATISTICS:
        shown[name] = [f"{r[name]:.2f} [{r[name + ' low']:.2f}, {r[name + ' high']:.2f}]" for _, r in table.iterrows()]
    improvement = aggregate.improvement_table(scores) if aggregate.BASELINE in scores else pd.DataFrame()
    lines = [
        f"<!-- written by `make plots` from results/reference/ (campaign '{campaign.name}'); do not edit -->",
        f"# Campaign '{campaign.name}': aggregate statistics", "",
        f"Over {', '.join(tasks)}: the tasks every learner below has finished runs on (the others wait for "
        "their cells). Normalised score: (final training return - random policy) / (D.Va's published return "
        "- random policy), with D.Va's published returns " + ", ".join(f"{t} {reference[t]}" for t in tasks)
        + ". 95% stratified-bootstrap intervals (runs resampled within each task, 2000 resamples, seed 0); "
        "see `benchmark/figures/aggregate.py`.", "", markdown_table(shown), "",
    ]  # fmt: skip
    if not improvement.empty:
        improvement = improvement.assign(**{"probability [95% CI]": [
            f"{r.probability:.2f} [{r.low:.2f}, {r.high:.2f}]" for r in improvement.itertuples()]})  # fmt: skip
        lines += ["Probability of improvement (a D.Va run scores above the other learner's, per task by the "
                  "Mann-Whitney U statistic, then averaged over tasks):", "",
                  markdown_table(improvement[["comparison", "probability [95% CI]"]]), ""]  # fmt: skip
    target.write_text("\n".join(lines))
    return True
