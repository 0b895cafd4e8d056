"""Figures from ``results/`` only.

- ``python -m benchmark.figures.plots curves <run dir>... --out fig.png``: training return against wall-clock
  minutes and env steps, one line per run.
- ``python -m benchmark.figures.plots grad-norms <run dir>... --out fig.png`` (Fig. 9): the actor gradient norm
  (before clipping) over training, one line per run, e.g. ``dva`` vs ``shac_diffrender``.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmark.cli import usage_error  # noqa: E402
from benchmark.experiments import NOT_THE_EXPERIMENT  # noqa: E402
from benchmark.results import load_metrics, load_summary, read_run_config  # noqa: E402


def run_labels(runs: Sequence[Path]) -> list[str]:
    """'algo task seed N', plus every config value that differs between runs of the same algo (e.g.
    contact_law=newton), so two runs of one seed with different settings are told apart; different
    algos are told apart by name, not by the keys only one of them has."""
    configs = [read_run_config(run) for run in runs]
    labels = []
    for config in configs:
        peers = [c for c in configs if c["algo"] == config["algo"]]
        keys = sorted({k for c in peers for k in c} - NOT_THE_EXPERIMENT - {"algo", "task"})
        differing = [k for k in keys if len({repr(c.get(k)) for c in peers}) > 1]
        extra = "".join(f" {k}={config.get(k)}" for k in differing)
        labels.append(f"{config['algo']} {config['task']} seed {config['seed']}{extra}")
    return labels


def plot_learning_curves(runs: Sequence[Path], out: Path, smooth: int = 10) -> Figure:
    """Return vs wall-clock (minutes) and vs env steps, saved to ``out``; the final evaluation return
    is marked per run. Returns the figure (the caller closes it)."""
    fig, (ax_time, ax_steps) = plt.subplots(1, 2, figsize=(11, 4.5), sharey=True, layout="constrained")
    for run, label in zip(runs, run_labels(runs), strict=True):
        metrics = load_metrics(run)
        summary = load_summary(run)
        ret = metrics["train_return"].interpolate(limit_direction="both").rolling(smooth, min_periods=1).mean()
        (line,) = ax_time.plot(metrics["wall_clock"] / 60, ret, label=label)
        ax_steps.plot(metrics["env_steps"], ret, label=label, color=line.get_color())
        if "eval_return" in summary:
            end = metrics["wall_clock"].iloc[-1] / 60
            ax_time.scatter([end], [summary["eval_return"]], marker="*", s=80, color=line.get_color())
    ax_time.set(xlabel="wall-clock (min)", ylabel=f"training return (mean of {smooth} iterations)")
    ax_steps.set(xlabel="env steps")
    for ax in (ax_time, ax_steps):
        ax.grid(alpha=0.3)
    fig.legend(*ax_time.get_legend_handles_labels(), loc="outside lower center", ncol=2, fontsize=8)  # off the data
    fig.suptitle("training return (star: final deterministic evaluation)")
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return fig


def plot_grad_norms(runs: Sequence[Path], out: Path, smooth: int = 20, labels: Sequence[str] | None = None) -> Figure:
    """Fig. 9: actor gradient norm before clipping (rolling median) against iteration and wall-clock,
    log scale; iterations whose gradient was not finite are marked at the top. ``labels`` name the runs
    (default: algo, task and seed from their summaries)."""
    fig, (ax_iter, ax_time) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for k, run in enumerate(runs):
        metrics = load_metrics(run)
        summary = load_summary(run)
        label = labels[k] if labels else f"{summary['algo']} {summary['task']} seed {summary['seed']}"
        norm = metrics["actor_grad_norm"].where(np.isfinite(metrics["actor_grad_norm"]))
        line = norm.rolling(smooth, min_periods=1).median()
        (drawn,) = ax_iter.plot(metrics["iteration"], line, label=label)
        ax_time.plot(metrics["wall_clock"] / 60, line, color=drawn.get_color())
        bad = metrics["iteration"][norm.isna()]
        if len(bad):
            ax_iter.plot(bad, np.full(len(bad), np.nanmax(line) * 2), "x", color=drawn.get_color(), ms=3)
    ax_iter.set(xlabel="iteration", ylabel=f"actor gradient norm (median of {smooth})", yscale="log")
    ax_time.set(xlabel="wall-clock (min)")
    for ax in (ax_iter, ax_time):
        ax.grid(alpha=0.3, which="both")
    ax_iter.legend(fontsize=8)
    fig.suptitle("Fig. 9: actor gradient norm before clipping (x: non-finite, update skipped)")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return fig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    curves = sub.add_parser("curves", help="learning curves of some runs")
    curves.add_argument("runs", nargs="+", type=Path)
    curves.add_argument("--out", type=Path, default=Path("results/figures/curves.png"))
    norms = sub.add_parser("grad-norms", help="Fig. 9: actor gradient norm over training")
    norms.add_argument("runs", nargs="+", type=Path)
    norms.add_argument("--out", type=Path, default=Path("results/figures/grad_norms.png"))
    args = parser.parse_args()
    for run_dir in args.runs:
        if not (run_dir / "config.yaml").is_file():
            usage_error(parser, f"{run_dir} is not a run directory (no config.yaml); pass results/<run>/")
    if args.out.is_dir() or args.out.suffix.lower() not in (".png", ".pdf", ".svg"):
        usage_error(
            parser, f"--out {args.out}: give an image file (.png, .pdf or .svg), e.g. {args.out / 'curves.png'}"
        )
    plot = {"curves": plot_learning_curves, "grad-norms": plot_grad_norms}[args.command]
    plt.close(plot(args.runs, args.out))
    print(args.out)


if __name__ == "__main__":
    main()
