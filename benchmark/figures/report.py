"""``make plots``: the paper's figures and tables from whatever is in ``results/``.

Every run directory under ``results/`` (found by its ``summary.json``) is grouped into experiments by
its whole resolved config, less the seed, where it was written and how it was run and reported
(``benchmark.config.experiment``, the one definition the figures and the reference set share). An
experiment's label is its algo plus its preset and budget and every setting that differs from the
algo's config files (``dva [preset=cpu, num_envs=64]``). Seeds are aggregated as the mean with
a 95% bootstrap interval; diverged seeds are counted and shown. Figures go to ``results/figures/`` as
PNG and PDF, tables as Markdown and CSV. A figure whose runs do not exist is listed as missing with
the command that makes them, never drawn from anything else.

Results of different task versions never pool (``task_version`` in ``summary.json``, 1 when missing: runs
from before it was recorded). A run on an older version of its task than the current one (the code's,
or the newest seen if newer) is kept as a separate experiment rather than dropped, so old results stay
visible: its learner reads ``<learner> [task v<k>]`` in every curve and table, and the final-returns
table sets no published value beside it (the paper's numbers are for the current tasks). A run of an
older version of its learner (``learner_version``, or its teacher's) is left out of every figure and
table, with a note naming it: the learner it measured is not the code's any more.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from scipy import stats  # noqa: E402

from benchmark import floors as stored_floors  # noqa: E402
from benchmark.campaign import Campaign, experiment_dirs  # noqa: E402
from benchmark.config import parse_budget, with_defaults  # noqa: E402
from benchmark.experiments import experiment, settings_shown  # noqa: E402
from benchmark.figures import aggregate  # noqa: E402
from benchmark.figures.plots import plot_grad_norms  # noqa: E402
from benchmark.reference import recorded_settings  # noqa: E402
from benchmark.results import (  # noqa: E402
    clock_start,
    final_training,
    load_metrics,
    load_summary,
    markdown_table,
    outdated_learners,
    read_run_config,
)
from envs.tasks import registry  # noqa: E402

PUBLISHED = Path(__file__).with_name("published.yaml")


# ---------------------------------------------------------------------------------------------- data
def collect(results: Path) -> pd.DataFrame:
    """One row per run (the newest where an experiment's seed was run twice): experiment label, status,
    eval return, settings, task version, and the run's path."""
    rows, left_out = [], []
    for summary_path in sorted(results.rglob("summary.json")):
        run = summary_path.parent
        if (
            not ((run / "metrics.csv").exists() or (run / "curve.csv.gz").exists())
            or not (run / "config.yaml").exists()
        ):
            continue
        try:  # one damaged run is left out with a note, never the end of every figure
            summary, config = load_summary(run), with_defaults(read_run_config(run))
            if load_metrics(run).empty:
                raise ValueError("metrics.csv has no rows")
        except Exception as error:
            print(f"note: {run} left out: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            continue
        if summary.get("role") == "teacher" or (run.parent / "summary.json").exists():
            continue  # trained for a student, or a teacher shipped inside its student: drawn and tabled with it
        if outdated := outdated_learners(run):
            left_out.append(f"{config['algo']} by {', '.join(outdated)}")
            continue
        rows.append(
            {
                "algo": config["algo"],
                "task": config["task"],
                "seed": config["seed"],
                "experiment": experiment(config),
                "settings": recorded_settings(run),
                "task_version": int(summary.get("task_version", 1)),  # not recorded before version 2
                "status": summary["status"],
                "eval_return": summary.get("eval_return", np.nan),
                **final_training(run),
                "peak_memory_mb": summary.get("peak_memory_mb", np.nan),
                "num_envs": config["num_envs"],
                "action_repeat": config["action_repeat"],
                "image_size": config["image_size"] if config.get("renderer") else None,
                "path": run,
                "written": summary_path.stat().st_mtime,
                "teacher_run": run / summary["teacher_run"] if "teacher_run" in summary else None,  # relative: shipped
                "teacher_eval_return": summary.get("teacher_eval_return", np.nan),
            }
        )
    columns = ["algo", "task", "seed", "experiment", "settings", "task_version", "status", "eval_return",
               "train_return", "env_steps", "hours", "peak_memory_mb",
               "num_envs", "action_repeat", "image_size", "path", "written", "teacher_run",
               "teacher_eval_return"]  # fmt: skip
    if left_out:
        counts = "; ".join(f"{n} {what}" for what, n in sorted(Counter(left_out).items()))
        print(f"note: {len(left_out)} run(s) of an older learner version left out of every figure and table "
              f"(figures draw the code's learners only; `make campaign` re-runs shipped cells): {counts}")  # fmt: skip
    runs = pd.DataFrame(rows, columns=columns)
    runs.insert(0, "learner", experiment_labels(runs))
    runs = apart_by_task_version(runs)
    # a seed run twice in one experiment is one sample, not two: the newest run counts
    key = runs["learner"] + "|" + runs["task"] + "|" + runs["seed"].astype(str)
    repeated = key.loc[runs.sort_values("written").index].duplicated(keep="last").reindex(runs.index)
    for _, run in runs[repeated].iterrows():
        print(f"note: {run['path']} repeats {run['learner']} {run['task']} seed {run['seed']}; the newest run is used")
    return runs[~repeated].drop(columns=["experiment", "settings"]).reset_index(drop=True)


def experiment_labels(runs: pd.DataFrame) -> pd.Series:
    """``algo``, plus ``[key=value, ...]``: the preset and budget when set, then every setting that
    differs from the algo's config file for the task (with that preset), e.g. ``dva [preset=cpu,
    num_envs=64]``. The paper's settings read as the algo's bare name. The settings are those the run
    recorded when it started; a run from before they were recorded has them derived from today's configs."""
    return pd.Series([_label(row.experiment, row.settings) for row in runs.itertuples()], index=runs.index,
                     dtype=object)  # fmt: skip


def _label(config: dict, recorded: list[str] | None) -> str:
    shown = settings_shown(config) if recorded is None else recorded
    return config["algo"] + (f" [{', '.join(shown)}]" if shown else "")


def apart_by_task_version(runs: pd.DataFrame) -> pd.DataFrame:
    """Mark runs on an older version of their task than the current one (``superseded``) and label their
    learner ``<learner> [task v<k>]``: other physics is another experiment, never a seed of this one."""
    code = {name: task.version for name, task in registry().items()}
    current = np.maximum(runs.groupby("task")["task_version"].transform("max"), runs["task"].map(code).fillna(0))
    runs = runs.assign(superseded=runs["task_version"] < current)
    runs.loc[runs["superseded"], "learner"] += " [task v" + runs["task_version"].astype(str) + "]"
    for (task, version), group in runs[runs["superseded"]].groupby(["task", "task_version"]):
        now = int(current[group.index[0]])
        print(f"note: {len(group)} run(s) of {task} are on task version {version}, the current is {now}: "
              f"shown apart as '<learner> [task v{version}]', with no published value")  # fmt: skip
    return runs


def mean_ci(values: np.ndarray, confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """Mean and a percentile-bootstrap interval over seeds (the interval collapses for one seed)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        return np.nan, np.nan, np.nan
    if len(values) == 1 or np.all(values == values[0]):
        return float(values[0]), float(values[0]), float(values[0])
    boot = stats.bootstrap((values,), np.mean, confidence_level=confidence, method="percentile",
                           n_resamples=2000, random_state=seed)  # fmt: skip
    return float(values.mean()), float(boot.confidence_interval.low), float(boot.confidence_interval.high)


def curve(run: Path, x: str, grid: np.ndarray, smooth: int = 10) -> np.ndarray:
    """A run's smoothed training return interpolated on ``grid`` (NaN beyond the run's end)."""
    metrics = load_metrics(run)
    ret = metrics["train_return"].interpolate(limit_direction="both").rolling(smooth, min_periods=1).mean()
    xs = metrics[x].to_numpy() / (60 if x == "wall_clock" else 1)
    return np.interp(grid, xs, ret.to_numpy(), left=np.nan, right=np.nan)


def floors_of(runs: pd.DataFrame, reference: Path) -> tuple[pd.DataFrame, list[str]]:
    """The shipped floors (``make floors``), one row per task, version and action repeat, and a note for
    every task among ``runs`` that has none at a repeat it uses: the figures never run the simulator."""
    shipped = stored_floors.wide(stored_floors.load(reference))
    current = runs[runs["task"].map({name: task.version for name, task in registry().items()}) == runs["task_version"]]
    lacking = stored_floors.unmeasured(current, shipped)
    notes = [f"floors of {task} (drawn without them): make floors TASKS={task}" for task in lacking]
    return shipped, notes


# ---------------------------------------------------------------------------------------------- figures
def returns_figure(runs: pd.DataFrame, task: str, points: int = 100, floors: pd.DataFrame | None = None) -> Figure:
    """Return vs wall-clock and vs env steps, one line per learner: mean over seeds, 95% bootstrap band;
    dashed, the random policy's return (``floors``, per action repeat)."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for ax, x, xlabel in ((axes[0], "wall_clock", "wall-clock (min)"), (axes[1], "env_steps", "env steps")):
        draw_floors(ax, floors, task, set(runs["action_repeat"]), legend=ax is axes[0])
        draw_learners(ax, runs, x, points)
        ax.set(xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[0].set(ylabel="training return (mean over seeds, 95% CI)")
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{task}: return vs wall-clock and env steps")
    fig.tight_layout()
    return fig


def draw_floors(ax, floors: pd.DataFrame | None, task: str, repeats: set, legend: bool = True) -> None:
    """The random policy's and the zero action's returns on ``task``, per action repeat among ``repeats``."""
    for floor in [] if floors is None else floors[floors["task"] == task].itertuples():
        if floor.action_repeat in repeats:
            style = "--" if floor.action_repeat == 1 else ":"
            for value, what, color in ((floor.random_return, "random policy", "grey"),
                                       (getattr(floor, "zero_return", np.nan), "zero action", "tan")):  # fmt: skip
                if np.isfinite(value):
                    label = f"{what} (action repeat {floor.action_repeat})" if legend else None
                    ax.axhline(value, color=color, ls=style, lw=1, label=label)


def draw_learners(ax, runs: pd.DataFrame, x: str, points: int = 100, colors: dict[str, str] | None = None) -> None:
    """One line per learner against ``x`` (wall_clock in minutes, or env_steps): mean over seeds with a
    95% bootstrap band; a student's state teacher dashed before it (its clock starts at the teacher's end)."""
    scale = 60 if x == "wall_clock" else 1
    for learner, group in runs.groupby("learner", sort=False):
        spans = [load_metrics(p)[x].iloc[[0, -1]].to_numpy() / scale for p in group["path"]]
        grid = np.linspace(min(s[0] for s in spans), max(s[1] for s in spans), points)
        ys = np.stack([curve(p, x, grid) for p in group["path"]])
        bands = np.array([mean_ci(col) if np.isfinite(col).any() else (np.nan,) * 3 for col in ys.T])
        color = (colors or {}).get(learner)
        (line,) = ax.plot(grid, bands[:, 0], color=color,
                          label=f"{learner} ({len(group)} seed{'s' * (len(group) > 1)})")  # fmt: skip
        ax.fill_between(grid, bands[:, 1], bands[:, 2], color=line.get_color(), alpha=0.2)
        teachers = group["teacher_run"].dropna().unique()
        if len(teachers):
            end = min(load_metrics(p)[x].iloc[-1] for p in teachers) / scale
            before = np.linspace(0, end, points)
            mean = np.stack([curve(p, x, before) for p in teachers]).mean(axis=0)
            ax.plot(before, mean, ls="--", color=line.get_color(), label=f"{learner}: its state teacher")


def campaign_runs(runs: pd.DataFrame, campaign: Campaign, reference: Path) -> pd.DataFrame:
    """The campaign's shipped cells among ``runs``, each labelled by its learner's bare name."""
    where = {path.resolve(): key for key, path in experiment_dirs(campaign, reference=reference).items()}
    keys = [where.get(Path(p).resolve().parent) for p in runs["path"]]
    picked = runs[[k is not None for k in keys]].copy()
    picked["learner"] = picked["algo"]
    return picked


def learner_colors(campaign: Campaign) -> dict[str, str]:
    """One colour per learner of a campaign, the same in every figure drawn from it."""
    return {algo: f"C{k}" for k, algo in enumerate(campaign.learners)}


def name_not_yet_run(ax, missing: list[str]) -> None:
    """A campaign panel's note of the learners it names that have no shipped cell yet."""
    if missing:
        ax.text(0.02, 0.02, "not yet run: " + ", ".join(missing), transform=ax.transAxes, fontsize=7,
                color="dimgrey", va="bottom", wrap=True)  # fmt: skip


def learner_handles(axes: np.ndarray) -> dict:
    """One legend handle per learner over every panel (a label's `` (2 seeds)`` and the like dropped)."""
    handles = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label.split(" (")[0], handle)
    return handles


def comparison_figure(runs: pd.DataFrame, campaign: Campaign, floors: pd.DataFrame | None = None,
                      colors: dict[str, str] | None = None) -> Figure:  # fmt: skip
    """The paper's Fig. 4 from a campaign, on both of its axes: a column per task, training return against
    wall-clock (top) and against env steps (bottom), every learner (mean over seeds, 95% band), the floors
    drawn; a panel names the learners not shipped yet."""
    n = len(campaign.tasks)
    fig, axes = plt.subplots(2, n, figsize=(4.2 * n, 7.6), squeeze=False)
    colors = colors or learner_colors(campaign)
    for column, task in enumerate(campaign.tasks):
        cells = runs[runs["task"] == task]
        order = [a for a in campaign.learners_for(task) if a in set(cells["algo"])]
        cells = cells.set_index("algo").loc[order].reset_index() if order else cells
        missing = [a for a in campaign.learners_for(task) if a not in order]
        for ax, x in zip(axes[:, column], ("wall_clock", "env_steps"), strict=True):
            draw_floors(ax, floors, task, set(cells["action_repeat"]) or {1, 2}, legend=False)
            draw_learners(ax, cells, x, colors=colors)
            draw_published(ax, task, campaign.learners_for(task), colors)
            name_not_yet_run(ax, missing)
            ax.grid(alpha=0.3)
        budget_minutes = parse_budget(campaign.budget[task])[0] / 60
        top, bottom = axes[0, column], axes[1, column]
        top.set_xlim(0, max(budget_minutes, top.get_xlim()[1] if len(cells) else 0))
        top.set(title=f"{task} ({campaign.budget[task]} per run)", xlabel="wall-clock (min)")
        bottom.set(xlabel="env steps")
    for ax in axes[:, 0]:
        ax.set(ylabel="training return (mean over seeds, 95% CI)")
    handles = learner_handles(axes)
    grey = [plt.Line2D([], [], color="grey", ls="--", lw=1), plt.Line2D([], [], color="tan", ls="--", lw=1)]
    fig.legend([*handles.values(), *grey], [*handles, "random policy", "zero action"], loc="lower center",
               ncol=min(len(handles) + 2, 9), fontsize=8)  # fmt: skip
    title = f"campaign '{campaign.name}': return against wall-clock and env steps"
    key = "floors dashed: action repeat 1, dotted: 2; thick ticks at the right: the paper's published returns"
    fig.suptitle(f"{title}\n({key})", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    return fig


def published_value(text: str) -> float:
    """The number a published entry reads as: ``"~4500-5000"`` is 4750, ``"~1000 (fails)"`` 1000, NaN for none."""
    numbers = [float(n) for n in re.findall(r"\d+(?:\.\d+)?", str(text).split("(")[0])]
    return float(np.mean(numbers)) if numbers else np.nan


def draw_published(ax, task: str, learners: list[str], colors: dict[str, str]) -> None:
    """Each learner's published return on ``task`` as a thick tick at the panel's right edge, in its colour."""
    published = yaml.safe_load(PUBLISHED.read_text())
    for algo in learners:
        value = published_value(published.get(algo, {}).get(task, ""))
        if np.isfinite(value):
            ax.axhline(value, xmin=0.94, xmax=1.0, color=colors.get(algo), lw=4, alpha=0.7, solid_capstyle="butt")


def grad_norms_figure(runs: pd.DataFrame, campaign: Campaign, colors: dict[str, str] | None = None,
                      smooth: int = 20) -> Figure:  # fmt: skip
    """The paper's Fig. 9 from a campaign: a panel per task, the actor's gradient norm before clipping
    (rolling median) against iteration, log scale, one line per seed in its learner's colour; a learner
    that logs no gradient norm (a replay learner) has no line, and a panel names the learners not shipped."""
    n = len(campaign.tasks)
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 3.8), squeeze=False)
    colors = colors or learner_colors(campaign)
    for ax, task in zip(axes[0], campaign.tasks, strict=True):
        cells = runs[runs["task"] == task]
        for run in cells.sort_values(["algo", "seed"]).itertuples():
            metrics = load_metrics(run.path)
            if "actor_grad_norm" not in metrics:
                continue
            norm = metrics["actor_grad_norm"].where(np.isfinite(metrics["actor_grad_norm"]))
            ax.plot(metrics["iteration"], norm.rolling(smooth, min_periods=1).median(), color=colors.get(run.algo),
                    lw=1, label=run.algo)  # fmt: skip
        missing = [a for a in campaign.learners_for(task) if a not in set(cells["algo"])]
        name_not_yet_run(ax, missing)
        ax.set(title=task, xlabel="iteration", yscale="log" if ax.lines else "linear")
        ax.grid(alpha=0.3, which="both")
    axes[0, 0].set(ylabel=f"actor gradient norm (median of {smooth})")
    handles = learner_handles(axes)
    if handles:
        fig.legend(handles.values(), handles.keys(), loc="lower center", ncol=len(handles), fontsize=8)
    fig.suptitle(f"campaign '{campaign.name}': the actor's gradient norm before clipping, one line per seed "
                 "(the paper's Fig. 9)", fontsize=10)  # fmt: skip
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    return fig


# Fig. 5's phases, as the learners time them
PHASES = {
    "time_forward": "forward simulation",
    "time_render": "rendering",
    "time_backward": "backward",
    "time_update": "network update",
}


def phase_shares(runs: pd.DataFrame) -> pd.DataFrame:
    """Per task and learner, the share of wall-clock in each phase (the paper's Fig. 5), summed over seeds:
    the learners' timed phases (a compact curve sums them, so its totals are the run's), and what none
    of them covers (logging, checkpoints, a replay learner's bookkeeping) as ``other``. A DAgger
    student's time is its own: its teacher's clock is not in its curve."""
    rows = []
    for (task, learner), group in runs.groupby(["task", "learner"], sort=False):
        totals = dict.fromkeys([*PHASES, "wall"], 0.0)
        for path in group["path"]:
            metrics = load_metrics(path)
            totals["wall"] += metrics["wall_clock"].iloc[-1] - clock_start(Path(path))
            for phase in PHASES:
                totals[phase] += metrics[phase].fillna(0).sum()
        row = {"task": task, "learner": learner, "seeds": len(group), "minutes": totals["wall"] / 60 / len(group)}
        row |= {PHASES[p]: totals[p] / totals["wall"] for p in PHASES}
        row["other"] = max(1.0 - sum(row[name] for name in PHASES.values()), 0.0)
        rows.append(row)
    return pd.DataFrame(rows)


def phases_figure(runs: pd.DataFrame, campaign: Campaign) -> Figure:
    """Fig. 5: a stacked bar of wall-clock shares per learner, one panel per task of the campaign."""
    shares = phase_shares(runs)
    fig, axes = plt.subplots(1, len(campaign.tasks), figsize=(4.2 * len(campaign.tasks), 3.6), squeeze=False)
    names = [*PHASES.values(), "other"]
    for ax, task in zip(axes[0], campaign.tasks, strict=True):
        rows = shares[shares["task"] == task].set_index("learner")
        order = [a for a in campaign.learners_for(task) if a in rows.index]
        left = np.zeros(len(order))
        for k, name in enumerate(names):
            values = rows.loc[order, name].to_numpy() if order else np.zeros(0)
            ax.barh(order, values, left=left, color=f"C{k}", label=name)
            left += values
        missing = [a for a in campaign.learners_for(task) if a not in order]
        name_not_yet_run(ax, missing)
        if not order:
            ax.set_yticks([])
        ax.set(title=task, xlim=(0, 1), xlabel="share of wall-clock")
        ax.invert_yaxis()
    fig.legend(*axes[0][0].get_legend_handles_labels(), loc="lower center", ncol=len(names), fontsize=8)
    fig.suptitle(f"campaign '{campaign.name}': where the wall-clock goes (the paper's Fig. 5)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def normalise_by() -> dict[str, float]:
    """D.Va's published return per task: a normalised score's 1 (``published.yaml``)."""
    return yaml.safe_load(PUBLISHED.read_text())["normalise_by"]


def campaign_table(runs: pd.DataFrame, campaign: Campaign, floors: pd.DataFrame) -> pd.DataFrame:
    """Per task and learner: seeds shipped, the final sampled training return (mean and 95% CI, like
    the paper's curves), the deterministic evaluation, the published value, and the normalised score
    ``(return - random) / (published D.Va - random)``, with the random policy at the learner's action
    repeat and D.Va's published return per task (``normalise_by`` in ``published.yaml``)."""
    published = yaml.safe_load(PUBLISHED.read_text())
    low = aggregate.random_by_repeat(floors) if len(floors) else {}
    rows = []
    for task in campaign.tasks:
        for algo in campaign.learners_for(task):
            cells = runs[(runs["task"] == task) & (runs["algo"] == algo)]
            done = cells[cells["status"] == "complete"]
            train, ci_low, ci_high = mean_ci(done["train_return"].to_numpy())
            evaluation, _, _ = mean_ci(done["eval_return"].to_numpy())
            repeat = int(cells["action_repeat"].iloc[0]) if len(cells) else -1
            normalised = float(aggregate.normalised(train, task, repeat, low, published["normalise_by"]))
            rows.append({"task": task, "learner": algo, "seeds": f"{len(done)} of {len(campaign.seeds)}",
                         "not complete": ", ".join(sorted(set(cells["status"]) - {"complete"})),
                         "train_return": train, "ci_low": ci_low, "ci_high": ci_high, "eval_return": evaluation,
                         "random": low.get((task, repeat), np.nan), "published": published.get(algo, {}).get(task, ""),
                         "normalised": normalised, "minutes": done["hours"].mean() * 60})  # fmt: skip
    return pd.DataFrame(rows)


def time_breakdown_figure(shares: pd.DataFrame) -> Figure:
    """Fig. 5 over every run here: one stacked bar of wall-clock shares per learner and task."""
    fig, ax = plt.subplots(figsize=(max(6, 1.2 * len(shares)), 4))
    labels = [f"{r.learner}\n{r.task}" for r in shares.itertuples()]
    bottom = np.zeros(len(shares))
    for name in [*PHASES.values(), "other"]:
        ax.bar(labels, shares[name], bottom=bottom, label=name)
        bottom += shares[name].to_numpy()
    ax.set(ylabel="share of training wall-clock", ylim=(0, 1), title="Fig. 5: time per phase")
    ax.legend(ncols=5, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    fig.tight_layout()
    return fig


def backward_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Table 1 from the runs: median backward time per iteration per learner and task, settings beside."""
    rows = []
    for (learner, task), group in runs.groupby(["learner", "task"]):
        backward = np.concatenate([load_metrics(p)["time_backward"].to_numpy() for p in group["path"]])
        rows.append({"task": task, "learner": learner, "backward_s": float(np.median(backward)),
                     "num_envs": int(group["num_envs"].iloc[0]), "image_size": group["image_size"].iloc[0],
                     "peak_memory_mb": float(group["peak_memory_mb"].mean()), "seeds": len(group)})  # fmt: skip
    return pd.DataFrame(rows)


def memory_figure(table: pd.DataFrame) -> Figure:
    wide = table.pivot(index="task", columns="learner", values="peak_memory_mb")
    fig, ax = plt.subplots(figsize=(7, 3.5))
    wide.plot.bar(ax=ax, rot=0)
    ax.set(ylabel="peak memory (MB)", title="Fig. 10: peak memory per learner")
    fig.tight_layout()
    return fig


def apg_vs_dpg_figure(table: pd.DataFrame) -> Figure:
    fig, (ax_cos, ax_ratio) = plt.subplots(1, 2, figsize=(10, 3.5))
    for task, group in table.groupby("task", sort=False):
        ax_cos.plot(group["iteration"], group["cosine"], marker="o", label=task)
        ax_ratio.plot(group["iteration"], group["norm_ratio"], marker="o", label=task)
    ax_cos.set(xlabel="state SHAC iteration", ylabel="cosine(APG, DPG)", ylim=(-1.05, 1.05))
    ax_ratio.set(xlabel="state SHAC iteration", ylabel="|APG| / |DPG|", yscale="log")  # tasks differ 100x
    ax_ratio.axhline(1.0, color="grey", lw=0.8, ls=":")
    for ax in (ax_cos, ax_ratio):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("Fig. 3: full APG vs decoupled DPG in state space")
    fig.tight_layout()
    return fig


def final_table(runs: pd.DataFrame) -> pd.DataFrame:
    """Final returns per learner and task, like with like: the published values are read off curves of
    sampled training episodes, so they stand beside our final sampled training return (the last 10% of
    each run's wall-clock; mean and 95% CI over seeds, with the env steps and hours it took); the
    deterministic evaluation has its own columns. Diverged seeds are counted beside (no evaluation); a
    student's teacher's evaluation (mean over seeds); the published value only for the current task
    version (the paper's values are not results of older physics)."""
    published = yaml.safe_load(PUBLISHED.read_text())
    rows = []
    for (learner, algo, task), group in runs.groupby(["learner", "algo", "task"]):
        done = group[group["status"] == "complete"]
        diverged = int((group["status"] == "diverged").sum())
        train, train_low, train_high = mean_ci(done["train_return"].to_numpy())
        mean, low, high = mean_ci(done["eval_return"].to_numpy())
        paper = published.get(algo, {}).get(task, "")
        if group["superseded"].any():
            paper = f"n/a: task v{group['task_version'].iloc[0]}" if paper != "" else ""
        teacher = done["teacher_eval_return"].mean() if done["teacher_run"].notna().any() else ""
        rows.append({"task": task, "learner": learner, "seeds": len(done) + diverged, "diverged": diverged,
                     "train_return": train, "train_ci_low": train_low, "train_ci_high": train_high,
                     "published": paper, "env_steps": done["env_steps"].mean(), "hours": done["hours"].mean(),
                     "eval_return": mean, "eval_ci_low": low, "eval_ci_high": high,
                     "teacher": teacher})  # fmt: skip
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------------------------- driver
def write_figure(fig: Figure, out: Path, name: str, made: list[str]) -> None:
    for ext in ("png", "pdf"):
        fig.savefig(out / f"{name}.{ext}", dpi=120)
    plt.close(fig)
    made += [f"{name}.png", f"{name}.pdf"]


def write_table(table: pd.DataFrame, out: Path, name: str, made: list[str]) -> None:
    table.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(markdown_table(table.round(3)) + "\n")
    made += [f"{name}.md", f"{name}.csv"]


def make_all(results: Path, out: Path, runs: pd.DataFrame | None = None) -> tuple[list[str], list[str]]:
    """Write every figure and table the runs allow (``runs``: :func:`collect` of ``results`` when already
    read); returns (files written, missing items with the fix)."""
    out.mkdir(parents=True, exist_ok=True)
    runs = collect(results) if runs is None else runs
    made: list[str] = []
    missing: list[str] = []
    need = lambda what, how: missing.append(f"{what}: no runs yet; {how}")  # noqa: E731
    if runs.empty:
        need("every figure", "make bench ALGO=shac TASK=cartpole (or make sweep)")
        return made, missing
    has_metrics = runs[runs["status"].isin(["complete", "diverged", "running", "interrupted"])]
    floors, lacking = floors_of(has_metrics, results / "reference")
    missing += lacking
    write_table(floors, out, "floors", made)
    for task, group in has_metrics.groupby("task"):
        write_figure(returns_figure(group, task, floors=floors), out, f"returns_{task}", made)
    shares = phase_shares(has_metrics)
    write_figure(time_breakdown_figure(shares), out, "time_breakdown", made)
    write_table(shares, out, "time_breakdown", made)

    steps: list[tuple[str, Callable[[pd.DataFrame], bool], str]] = [
        ("Table 1 / Fig. 10 (dva vs shac_diffrender)", lambda r: r["algo"].isin(["dva", "shac_diffrender"]),
         "make sweep ALGOS=dva,shac_diffrender TASKS=cartpole (or make apg-costs)"),
        ("Fig. 13 (dpg_state vs shac_diffrl)", lambda r: r["algo"].isin(["dpg_state", "shac_diffrl"]),
         "make campaign NAME=fig13"),
    ]  # fmt: skip
    apg_runs = has_metrics[steps[0][1](has_metrics)]
    if apg_runs.empty:
        need(steps[0][0], steps[0][2])
    else:
        table = backward_table(apg_runs)
        write_table(table, out, "table1_backward", made)
        write_figure(memory_figure(table), out, "fig10_memory", made)
        for task, group in apg_runs.groupby("task"):
            name = f"fig9_grad_norms_{task}"
            labels = [f"{run.learner} seed {run.seed}" for run in group.itertuples()]  # labels show older task versions
            write_figure(plot_grad_norms(list(group["path"]), out / f"{name}.png", labels=labels), out, name, made)
    state_runs = has_metrics[steps[1][1](has_metrics)]
    if state_runs.empty:
        need(steps[1][0], steps[1][2])
    for task, group in state_runs.groupby("task"):
        fig = returns_figure(group, task)
        fig.suptitle(f"Fig. 13, {task}: DPG (actor input detached) vs SHAC in state space, SHAC's settings")
        write_figure(fig, out, f"fig13_dpg_vs_shac_{task}", made)
    fig3 = out / "apg_vs_dpg.csv"
    if fig3.exists():
        write_figure(apg_vs_dpg_figure(pd.read_csv(fig3)), out, "fig3_apg_vs_dpg", made)
    else:
        need("Fig. 3 (APG vs DPG cosine)", "make apg-vs-dpg")
    write_table(final_table(runs), out, "final_returns", made)
    return made, missing
