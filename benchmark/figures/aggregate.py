"""Who wins, by how much, and how sure: the aggregate statistics of Agarwal et al. (2021, "Deep RL at the
edge of the statistical precipice", the rliable toolkit), written on numpy and scipy.

Every run's final training return becomes a normalised score, ``(return - random policy) / (D.Va's
published return - random policy)`` per task. Per learner, as rliable defines them: the interquartile
mean (IQM: the mean of the middle 50% of runs, pooled over tasks), the mean and the median of the
per-task mean scores, and the optimality gap (the mean shortfall below a score of 1 over all runs), each
with a 95% stratified-bootstrap interval (runs resampled within each task, so every task keeps its
weight); the probability that D.Va improves on each other learner (per task the Mann-Whitney U statistic
over all pairs of runs, ties counting a half, then averaged over tasks); performance profiles (the share
of runs above each score); and the IQM against the share of the budget used. Every draw comes from one
seeded generator: the same runs give the same intervals.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from matplotlib.figure import Figure
from scipy import stats

from benchmark.results import load_metrics

Scores = dict[str, np.ndarray]  # task -> the normalised scores of one learner's runs on it
BASELINE = "dva"
RESAMPLES = 2000


def iqm(x: np.ndarray) -> float:
    return float(stats.trim_mean(x, 0.25))


def optimality_gap(x: np.ndarray, target: float = 1.0) -> float:
    return float(np.mean(np.maximum(target - x, 0.0)))


def pooled(per_task: Scores) -> np.ndarray:
    return np.concatenate(list(per_task.values()))


def task_means(per_task: Scores) -> np.ndarray:
    return np.array([np.mean(x) for x in per_task.values()])


# rliable's aggregate_iqm and optimality_gap take every run; its aggregate_mean and aggregate_median
# take the mean over runs per task first (np.mean(scores, axis=0)), then the mean or median over tasks
STATISTICS: dict[str, Callable[[Scores], float]] = {
    "IQM": lambda s: iqm(pooled(s)), "mean": lambda s: float(np.mean(task_means(s))),
    "median": lambda s: float(np.median(task_means(s))), "optimality gap": lambda s: optimality_gap(pooled(s)),
}  # fmt: skip


def random_by_repeat(floors: pd.DataFrame) -> dict[tuple[str, int], float]:
    """(task, action repeat) -> the random policy's mean return."""
    return {(f.task, int(f.action_repeat)): float(f.random_return) for f in floors.itertuples()}


def normalised(values: np.ndarray, task: str, repeat: int, floors: dict, reference: dict[str, float]) -> np.ndarray:
    low = floors.get((task, int(repeat)), np.nan)
    return (np.asarray(values, dtype=float) - low) / (reference.get(task, np.nan) - low)


def normalised_scores(cells: pd.DataFrame, floors: pd.DataFrame, reference: dict[str, float]) -> pd.DataFrame:
    """``cells`` (one row per run: task, algo, action_repeat, train_return) with its ``score``."""
    low = random_by_repeat(floors)
    scores = [float(normalised(r.train_return, r.task, r.action_repeat, low, reference)) for r in cells.itertuples()]
    return cells.assign(score=scores)


def by_task(scored: pd.DataFrame, tasks: list[str]) -> dict[str, Scores]:
    """learner -> task -> scores, over ``tasks`` only (runs without a final return left out)."""
    scored = scored[np.isfinite(scored["score"]) & scored["task"].isin(tasks)]
    return {
        algo: {t: g["score"].to_numpy() for t, g in group.groupby("task")} for algo, group in scored.groupby("algo")
    }


def common_tasks(scored: pd.DataFrame) -> list[str]:
    """The tasks on which every learner with a scored run has one: aggregates compare like with like."""
    scored = scored[np.isfinite(scored["score"])]
    learners = set(scored["algo"])
    return sorted(t for t, g in scored.groupby("task") if set(g["algo"]) == learners)


def stratified(scores: Scores, rng: np.random.Generator) -> Scores:
    return {task: x[rng.integers(0, len(x), len(x))] for task, x in scores.items()}


def interval(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))


def aggregate_table(scores: dict[str, Scores], seed: int = 0) -> pd.DataFrame:
    """One row per learner: each statistic with its 95% stratified-bootstrap interval."""
    rng = np.random.default_rng(seed)
    rows = []
    for algo, per_task in scores.items():
        boots = [stratified(per_task, rng) for _ in range(RESAMPLES)]
        row = {"learner": algo, "runs": len(pooled(per_task))}
        for name, statistic in STATISTICS.items():
            low, high = interval([statistic(b) for b in boots])
            row |= {name: statistic(per_task), f"{name} low": low, f"{name} high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def probability_of_improvement(x: Scores, y: Scores) -> float:
    """P(a run of X scores above a run of Y), per task by the U statistic, averaged over tasks."""
    per_task = []
    for task in sorted(set(x) & set(y)):
        u = stats.mannwhitneyu(x[task], y[task]).statistic
        per_task.append(u / (len(x[task]) * len(y[task])))
    return float(np.mean(per_task))


def improvement_table(scores: dict[str, Scores], baseline: str = BASELINE, seed: int = 0) -> pd.DataFrame:
    """P(baseline > learner) for every other learner, with its 95% stratified-bootstrap interval."""
    rng = np.random.default_rng(seed)
    rows = []
    for algo in [a for a in scores if a != baseline]:
        x, y = scores[baseline], scores[algo]
        boots = [probability_of_improvement(stratified(x, rng), stratified(y, rng)) for _ in range(RESAMPLES)]
        low, high = interval(boots)
        rows.append({"comparison": f"P({baseline} > {algo})", "probability": probability_of_improvement(x, y),
                     "low": low, "high": high})  # fmt: skip
    return pd.DataFrame(rows)


def performance_profile(per_task: Scores, taus: np.ndarray) -> np.ndarray:
    """The share of runs scoring above each tau, every task weighted alike."""
    return np.mean([(x[:, None] > taus[None, :]).mean(axis=0) for x in per_task.values()], axis=0)


def score_over_budget(cells: pd.DataFrame, floors: pd.DataFrame, reference: dict[str, float],
                      shares: np.ndarray) -> dict[str, np.ndarray]:  # fmt: skip
    """learner -> (runs, shares): each run's normalised training return (10-iteration mean) at each share
    of its own wall-clock."""
    low, curves = random_by_repeat(floors), {}
    for run in cells.itertuples():
        metrics = load_metrics(run.path)
        returns = metrics["train_return"].interpolate(limit_direction="both").rolling(10, min_periods=1).mean()
        clock = metrics["wall_clock"].to_numpy()
        at = np.interp(shares * clock[-1], clock, returns.to_numpy())
        curves.setdefault(run.algo, []).append(normalised(at, run.task, run.action_repeat, low, reference))
    return {algo: np.stack(rows) for algo, rows in curves.items()}


def aggregate_figure(scores: dict[str, Scores], table: pd.DataFrame, over_budget: dict[str, np.ndarray],
                     shares: np.ndarray, colors: dict[str, str], tasks: list[str]) -> Figure:  # fmt: skip
    """IQM and optimality gap with intervals, performance profiles, and the IQM over the budget."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    order = table.sort_values("IQM")["learner"].tolist()
    for k, algo in enumerate(order):
        row = table.set_index("learner").loc[algo]
        for offset, name, marker in ((-0.12, "IQM", "o"), (0.12, "optimality gap", "s")):
            spread = [[row[name] - row[f"{name} low"]], [row[f"{name} high"] - row[name]]]
            axes[0].errorbar(row[name], k + offset, xerr=spread, fmt=marker, color=colors.get(algo), capsize=3,
                             label=name if k == 0 else None, mfc="white" if marker == "s" else None)  # fmt: skip
    axes[0].set(yticks=range(len(order)), yticklabels=order, xlabel="normalised score (1 = D.Va's published return)",
                title="IQM (o) and optimality gap (s), 95% CI")  # fmt: skip
    axes[0].axvline(1.0, color="grey", lw=0.8, ls=":")
    taus = np.linspace(min(0.0, min(np.concatenate(list(s.values())).min() for s in scores.values())),
                       max(1.5, max(np.concatenate(list(s.values())).max() for s in scores.values())), 100)  # fmt: skip
    rng = np.random.default_rng(0)
    for algo, per_task in scores.items():
        boots = np.stack([performance_profile(stratified(per_task, rng), taus) for _ in range(200)])
        axes[1].plot(taus, performance_profile(per_task, taus), color=colors.get(algo), label=algo)
        axes[1].fill_between(taus, *np.percentile(boots, [2.5, 97.5], axis=0), color=colors.get(algo), alpha=0.15)
    axes[1].set(xlabel="normalised score tau", ylabel="share of runs scoring above tau", title="performance profiles")
    axes[1].legend(fontsize=8)
    for algo, runs in over_budget.items():
        axes[2].plot(100 * shares, [iqm(runs[:, k]) for k in range(len(shares))], color=colors.get(algo), label=algo)
    axes[2].set(xlabel="share of the run's wall-clock budget (%)", ylabel="IQM normalised training return",
                title="IQM over the budget")  # fmt: skip
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"aggregate over {', '.join(tasks)} (the tasks every learner shown has run)")
    fig.tight_layout()
    return fig


def of_campaign(cells: pd.DataFrame, learners: list[str], floors: pd.DataFrame,
                reference: dict[str, float]) -> tuple[list[str], dict[str, Scores], pd.DataFrame] | None:  # fmt: skip
    """A campaign's complete cells as (common tasks, learner -> scores in the campaign's order, statistics
    table); None while fewer than two learners share a task."""
    done = cells[cells["status"] == "complete"]
    scored = normalised_scores(done, floors, reference)
    tasks = common_tasks(scored)
    found = by_task(scored, tasks)
    scores = {algo: found[algo] for algo in learners if algo in found}
    if not tasks or len(scores) < 2:
        return None
    return tasks, scores, aggregate_table(scores)


def campaign_figure(cells: pd.DataFrame, learners: list[str], floors: pd.DataFrame, reference: dict[str, float],
                    tasks: list[str], scores: dict[str, Scores], table: pd.DataFrame) -> Figure:  # fmt: skip
    """:func:`aggregate_figure` of a campaign (:func:`of_campaign`), colours as in its comparison figure."""
    shares = np.linspace(0.05, 1.0, 20)
    done = cells[(cells["status"] == "complete") & cells["task"].isin(tasks)]
    over = score_over_budget(done, floors, reference, shares)
    colors = {algo: f"C{k}" for k, algo in enumerate(learners)}
    return aggregate_figure(scores, table, over, shares, colors, tasks)
