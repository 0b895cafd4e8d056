"""The paper's Fig. 8, measured: how much of the robot the training camera sees under a learner's policy.

The paper shows frames in which D.Va's policies keep the robot's limbs in the camera's view while the
distilled (DAgger) student, copying a state expert that never saw an image, folds limbs behind its own
body. This script films the final policies of shipped (or local) runs through the training camera and
measures, per frame and env, over a deterministic episode:

- ``coverage``: the share of the image the robot covers;
- ``hidden``: the share of the robot's shapes' projected area that other shapes hide
  (1 - robot pixels / sum over shapes of the pixels each would cover alone);
- ``parts hidden``: the share of the shapes in view that are more than half hidden.

Rays are cast exactly against the task's analytic shapes (``DiffRenderer.shape_depths``, hard edges).
``python -m benchmark.diagnostics.postures [--tasks ant,humanoid] [--runs DIR ...]`` writes
``results/figures/postures.{csv,md,png}``: a strip of frames per run and the measures per learner.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from benchmark.build import make_env, restore_learner  # noqa: E402
from benchmark.cli import parse_names, usage_error  # noqa: E402
from benchmark.config import ConfigError  # noqa: E402
from benchmark.evaluate import rollout  # noqa: E402
from benchmark.figures.render_views import to_uint8  # noqa: E402
from benchmark.reference import REFERENCE  # noqa: E402
from benchmark.results import checkpoints, load_summary, markdown_table  # noqa: E402
from envs.render import make_renderer  # noqa: E402
from envs.render.diff import DiffRenderer  # noqa: E402
from envs.render.scene import Scene  # noqa: E402
from envs.tasks import registry as task_registry  # noqa: E402

LEARNERS = ("dva", "dagger", "shac")  # D.Va, the distilled student, and the state expert it copies
OUT = Path("results") / "figures"
MEASURES = ("coverage", "hidden", "parts hidden")


def occlusion(depths: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three measures per image from per-shape hit depths (N, H, W, S), each (N,): see the module."""
    hit = torch.isfinite(depths)  # (N, H, W, S): shape k alone would cover the pixel
    robot = hit.any(-1)
    front = torch.nn.functional.one_hot(depths.argmin(-1), depths.shape[-1]).bool() & robot[..., None]
    alone = hit.flatten(1, 2).sum(1).float()  # (N, S): each shape's area were it alone
    seen = front.flatten(1, 2).sum(1).float()  # (N, S): the pixels where it is the nearest
    in_view = alone > 0
    mostly_hidden = (seen < 0.5 * alone) & in_view
    total = alone.sum(-1)
    return {
        "coverage": robot.flatten(1).float().mean(1),
        "hidden": torch.where(total > 0, 1 - robot.flatten(1).sum(1) / total.clamp_min(1), torch.zeros_like(total)),
        "parts hidden": mostly_hidden.sum(-1) / in_view.sum(-1).clamp_min(1),
    }


@torch.no_grad()
def film(run: Path, num_envs: int = 4, size: int = 64, every: int = 10, strip: int = 6,
         max_steps: int | None = None) -> tuple[pd.DataFrame, list[np.ndarray]]:  # fmt: skip
    """One deterministic episode per env of the run's newest policy: the measures every ``every`` steps
    (one row per env and step, ``size``-pixel rays through the task's training camera) and ``strip``
    frames of env 0 from Newton's ray tracer, evenly spaced over its episode."""
    device = torch.device("cpu")
    learner, cfg, _ = restore_learner(run, device)
    env = make_env(cfg, num_envs, device, cfg.seed + 30_000, differentiable=False)
    task = env.task
    rays = DiffRenderer(Scene.from_task(task, device), num_envs, size, size, device)
    camera = make_renderer("newton", task, 1, 2 * size, 2 * size, device)
    steps = min(env.episode_length, max_steps or env.episode_length)
    shown = set(np.linspace(0, steps - 1, strip).round().astype(int).tolist())
    rows, frames = [], []
    for step in rollout(learner, env, deterministic=True, max_steps=max_steps):
        body_q = step.info["body_q_before_reset"]
        if step.index % every == 0 or step.index == steps - 1:
            measured = occlusion(rays.shape_depths(body_q))
            for k in np.flatnonzero(step.counting.numpy()):
                rows.append({"step": step.index + 1, "env": int(k), **{m: float(measured[m][k]) for m in MEASURES}})
        if step.index in shown and step.counting[0]:
            frames.append(to_uint8(camera.render(body_q[:1]))[0])
    return pd.DataFrame(rows), frames


def label(run: Path) -> str:
    summary = load_summary(run)
    what = {"shac": "state expert (DAgger's teacher)", "dagger": "DAgger student", "dva": "D.Va"}.get(
        summary["algo"], summary["algo"]
    )
    return f"{summary['task']}: {what}, seed {summary['seed']}"


def shipped_runs(tasks: list[str], reference: Path = REFERENCE) -> list[Path]:
    """Every shipped cell of ``LEARNERS`` on ``tasks`` with a checkpoint (an on-policy cell ships its policy,
    a state expert its last checkpoint), the newest experiment per learner, task and seed."""
    found: dict[tuple[str, str, int], Path] = {}
    for task in tasks:
        for algo in LEARNERS:
            seeds = sorted((reference / task / algo).glob("*/seed*"), key=lambda p: p.stat().st_mtime)
            for run in seeds:
                if checkpoints(run) and (run / "config.yaml").exists():
                    found[task, algo, int(run.name.removeprefix("seed"))] = run
    return [found[key] for key in sorted(found, key=lambda k: (k[0], LEARNERS.index(k[1]), k[2]))]


def summary_table(measures: pd.DataFrame) -> pd.DataFrame:
    """Per run: each measure's mean over frames and envs."""
    return measures.groupby("run", sort=False)[list(MEASURES)].mean().reset_index()


def figure(table: pd.DataFrame, strips: dict[str, list[np.ndarray]]) -> Figure:
    """A row per run: its strip of frames, then its three measures as bars."""
    width = max(len(s) for s in strips.values())
    fig, axes = plt.subplots(len(strips), width + 1, figsize=(1.6 * (width + 2), 1.7 * len(strips)),
                             squeeze=False, gridspec_kw={"width_ratios": [1] * width + [2]})  # fmt: skip
    for row, (name, frames) in enumerate(strips.items()):
        for col in range(width):
            ax = axes[row, col]
            ax.axis("off")
            if col < len(frames):
                ax.imshow(frames[col])
        axes[row, 0].set_title(name, fontsize=8, loc="left")
        bars = axes[row, width]
        values = table.set_index("run").loc[name, list(MEASURES)].to_numpy(float)
        bars.barh(list(MEASURES), values, color=["C0", "C3", "C1"])
        bars.set(xlim=(0, 1))
        bars.tick_params(labelsize=7)
        bars.invert_yaxis()
        for y, value in enumerate(values):
            bars.text(min(value + 0.02, 0.8), y, f"{value:.2f}", va="center", fontsize=7)
    fig.suptitle("Fig. 8, measured: each final policy through the training camera (env 0, over its episode), "
                 "and the share of the image the robot covers and of its own area it hides", fontsize=9)  # fmt: skip
    fig.tight_layout()
    return fig


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="ant,humanoid", help="shipped cells of these tasks (comma-separated)")
    parser.add_argument("--runs", nargs="*", type=Path, default=None, help="these run folders instead")
    parser.add_argument("--envs", type=int, default=4, help="episodes per run (one per env)")
    parser.add_argument("--max-steps", type=int, default=None, help="cut episodes at this many steps")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    tasks = parse_names(parser, "--tasks", args.tasks, list(task_registry()))
    if args.envs < 1 or (args.max_steps is not None and args.max_steps < 1):
        usage_error(parser, f"--envs {args.envs} --max-steps {args.max_steps}: both must be at least 1")
    runs = args.runs if args.runs is not None else shipped_runs(tasks)
    for run in runs:
        if not (run / "config.yaml").is_file():
            usage_error(parser, f"{run} is not a run directory (no config.yaml); pass results/<run>/")
    if not runs:
        usage_error(parser, f"no shipped cell of {', '.join(LEARNERS)} with a policy on {args.tasks}; "
                            "make campaign NAME=cpu ships them")  # fmt: skip
    torch.set_num_threads(1)
    measures, strips = [], {}
    for run in runs:
        try:
            rows, frames = film(run, args.envs, max_steps=args.max_steps)
        except ConfigError as error:
            print(f"note: {run} left out: {error}")
            continue
        strips[label(run)] = frames
        measures.append(rows.assign(run=label(run)))
        print(f"{label(run)}: " + ", ".join(f"{m} {rows[m].mean():.3f}" for m in MEASURES))
    if not measures:
        raise SystemExit("error: no run could be filmed (notes above)")
    table = summary_table(pd.concat(measures))
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "postures.csv", index=False)
    (args.out / "postures.md").write_text(markdown_table(table.round(3)) + "\n")
    fig = figure(table, strips)
    fig.savefig(args.out / "postures.png", dpi=120)
    plt.close(fig)
    print(f"wrote {args.out / 'postures.png'}, postures.csv, postures.md")


if __name__ == "__main__":
    main()
