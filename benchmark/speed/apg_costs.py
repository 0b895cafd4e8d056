"""Table 1 and Fig. 10 of the D.Va paper, measured here: backward time per iteration and peak memory
of one iteration, ``dva`` vs ``shac_diffrender``, per task, same machine and settings, in one run.

``python -m benchmark.speed.apg_costs [--preset cpu] [--iterations 4]`` prints a Markdown table (median of the
measured iterations, after one warm-up) and writes ``results/figures/apg_costs.{csv,md,png}``.
``--learners`` names what to compare (``algo`` or ``algo@renderer``); by default ``dva``, ``shac_diffrender``
(our differentiable renderer) and, when PyTorch3D is installed, ``shac_diffrender@pytorch3d`` (the paper's).
``--scene-growth cartpole --shapes 0,8,32,128`` instead adds that many visual-only spheres to the
task's scene (Fig. 10's growing scenes) and writes ``results/figures/scene_growth.{csv,md,png}``;
``--scene-growth cartpole --mesh-detail 1,2,4`` instead grows the vertices of every mesh PyTorch3D
rasterises (Fig. 10's finer meshes; the other renderers cast rays at analytic shapes and have none) and
writes ``results/figures/mesh_detail.{csv,md,png}``.
``--before <commit>`` instead measures seconds per iteration and per phase with that commit's code and
with this checkout's, case after case in one run, and writes ``results/figures/apg_costs_before.{csv,md}``.
Each measurement runs in its own process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from importlib.util import find_spec
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import newton  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
import warp as wp  # noqa: E402

from algorithms import get_learner  # noqa: E402
from benchmark.build import make_env  # noqa: E402
from benchmark.config import ConfigError, learner_config, load_config  # noqa: E402
from benchmark.memory import IterationMemory  # noqa: E402
from benchmark.results import markdown_table  # noqa: E402
from benchmark.speed.isolated import (  # noqa: E402
    MeasurementFailed,
    checkout,
    chosen_device,
    require_commit,
    run_isolated,
)
from envs.render.pytorch3d_mesh import MAX_MESH_DETAIL, vertices_per_mesh  # noqa: E402
from envs.tasks import get_task  # noqa: E402
from envs.tasks.base import Task  # noqa: E402

BASELINE = "dva"


def default_learners() -> str:
    with_pytorch3d = find_spec("pytorch3d") is not None
    return "dva,shac_diffrender" + (",shac_diffrender@pytorch3d" if with_pytorch3d else "")


def learner_overrides(learner: str) -> tuple[str, list[str]]:
    """``algo@renderer`` -> (algo, [renderer=...]); a plain ``algo`` keeps its config's renderer."""
    algo, _, renderer = learner.partition("@")
    return algo, [f"renderer={renderer}"] if renderer else []


def with_extra_shapes(task: str, count: int) -> Task:
    """The task with ``count`` extra visual-only spheres (no mass, no collision) on a ring around its
    first body: the same dynamics, a scene that costs the renderers more."""
    base = type(get_task(task))

    def build(self, builder: newton.ModelBuilder) -> None:
        base.build(self, builder)
        cfg = newton.ModelBuilder.ShapeConfig(density=0.0, has_shape_collision=False)
        for i in range(count):
            angle = 2 * math.pi * i / max(count, 1)
            where = wp.transform((0.4 * math.cos(angle), 0.0, 0.4 * math.sin(angle)), wp.quat_identity())
            builder.add_shape_sphere(0, xform=where, radius=0.04, cfg=cfg, color=(0.2, 0.7, 0.3))

    return type(f"{base.__name__}With{count}Shapes", (base,), {"build": build})()


def measure(learner: str, task: str, overrides: list[str], iterations: int, extra_shapes: int = 0,
            device: str = "cpu", mesh_detail: int = 1) -> dict:  # fmt: skip
    algo, renderer = learner_overrides(learner)
    cfg = load_config(algo, task, [*overrides, *renderer, f"device={device}"])
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    torch.manual_seed(0)
    grown = with_extra_shapes(task, extra_shapes) if extra_shapes else None
    options = {"mesh_detail": mesh_detail} if cfg.renderer == "pytorch3d" else {}
    env = make_env(cfg, cfg.num_envs, torch.device(device), 0, task=grown, renderer_options=options)
    agent = get_learner(cfg.learner)(env, learner_config(cfg))
    agent.train_iteration()  # warm-up: kernel compilation, allocator growth
    memory, rows = IterationMemory(torch.device(device)), []
    for _ in range(iterations):
        memory.start()
        start = time.perf_counter()
        metrics = agent.train_iteration()
        rows.append({**metrics, "iteration_s": time.perf_counter() - start, "iteration_memory_mb": memory.added_mb()})
    median = lambda key: float(np.median([r.get(key, 0.0) for r in rows]))  # noqa: E731
    return {
        "algo": learner,
        "task": task,
        "num_envs": cfg.num_envs,
        "horizon": cfg.horizon,
        "image_size": cfg.image_size,
        "extra_shapes": extra_shapes,
        "vertices_per_mesh": vertices_per_mesh(mesh_detail),
        "iteration_s": median("iteration_s"),
        "forward_s": median("time_forward"),
        "render_s": median("time_render"),
        "backward_s": median("time_backward"),
        "update_s": median("time_update"),
        "iteration_memory_mb": median("iteration_memory_mb"),
        "peak_memory_mb": memory.peak_mb(),
        "device": device,
    }


def measure_isolated(algo: str, task: str, shapes: int, extra: list[str], code_root: Path | None = None,
                     mesh_detail: int = 1) -> dict:  # fmt: skip
    """:func:`measure` in its own process (``code_root``: against another checkout's learners and envs);
    a case that dies (``shac_diffrender`` on a big scene runs out of memory) becomes a row without
    numbers that says why, and the other cases still get reported."""
    detail = ["--mesh-detail", str(mesh_detail)] if mesh_detail != 1 else []  # an older checkout knows no detail
    try:
        found = run_isolated("benchmark.speed.apg_costs", algo, task, str(shapes), *extra, *detail,
                             code_root=code_root)  # fmt: skip
        return {**found, "failed": ""}
    except MeasurementFailed as error:
        print(f"warning: {algo} {task} with {shapes} extra shapes, mesh detail {mesh_detail}: {error.reason}",
              file=sys.stderr)  # fmt: skip
        nothing = dict.fromkeys(("backward_s", "iteration_memory_mb", "peak_memory_mb"), np.nan)
        return {"algo": algo, "task": task, "extra_shapes": shapes, "vertices_per_mesh": vertices_per_mesh(mesh_detail),
                **nothing, "failed": f"{algo}: {error.reason}"}  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--learners", default=None, help="algo or algo@renderer, comma-separated; dva first")
    parser.add_argument("--preset", default=None, help="e.g. cpu")
    parser.add_argument("--iterations", type=int, default=4)
    parser.add_argument("--set", nargs="*", default=[], help="extra overrides for both learners, key=value")
    parser.add_argument("--out", type=Path, default=Path("results/figures"))
    parser.add_argument("--scene-growth", metavar="TASK", help="sweep extra scene shapes on this task instead")
    parser.add_argument("--shapes", default="0,8,32,128", help="extra shapes per scene for --scene-growth")
    parser.add_argument("--mesh-detail", default=None,
                        help="--scene-growth over PyTorch3D's mesh detail (e.g. 1,2,4): vertices per mesh")  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto (cuda when torch and Warp see one), cpu, cuda:<i>")
    parser.add_argument("--before", metavar="REF", help="seconds per iteration now against this git commit's code")
    parser.add_argument("--one", nargs=3, metavar=("ALGO", "TASK", "SHAPES"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    overrides = [*([f"preset={args.preset}"] if args.preset else []), *args.set]
    if args.one:
        algo, task, shapes = args.one
        detail = int(args.mesh_detail or 1)
        print(json.dumps(measure(algo, task, overrides, args.iterations, int(shapes), args.device, detail)))
        return
    args.device = chosen_device(args.device)
    try:  # every case's config, before anything runs or is overwritten
        if args.iterations < 1:
            raise ConfigError(f"--iterations={args.iterations}: measure at least 1 iteration")
        try:
            shapes = [int(n) for n in args.shapes.split(",")]
        except ValueError:
            raise ConfigError(f"--shapes '{args.shapes}' not understood; write e.g. 0,8,32,128") from None
        try:
            details = [int(k) for k in (args.mesh_detail or "1").split(",")]
        except ValueError:
            raise ConfigError(f"--mesh-detail '{args.mesh_detail}' not understood; write e.g. 1,2,4") from None
        if args.mesh_detail and not (args.scene_growth and all(1 <= k <= MAX_MESH_DETAIL for k in details)):
            raise ConfigError(f"--mesh-detail {args.mesh_detail}: give --scene-growth TASK too, and details "
                              f"from 1 to {MAX_MESH_DETAIL}")  # fmt: skip
        tasks = [args.scene_growth] if args.scene_growth else args.tasks.split(",")
        if args.mesh_detail:
            cases = [(tasks[0], 0, k) for k in details]
        elif args.scene_growth:
            cases = [(tasks[0], n, 1) for n in shapes]
        else:
            cases = [(task, 0, 1) for task in tasks]
        learners = (args.learners or default_learners()).split(",")
        if learners[0] != BASELINE:
            raise ConfigError(
                f"--learners {','.join(learners)}: start with {BASELINE}, the one the others are compared to"
            )
        for task, *_ in cases:
            for learner in learners:
                algo, renderer = learner_overrides(learner)
                load_config(algo, task, [*overrides, *renderer])
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)
    extra = ["--iterations", str(args.iterations), "--device", args.device,
             *(["--preset", args.preset] if args.preset else [])]  # fmt: skip
    extra += ["--set", *args.set] if args.set else []
    if args.before:
        print(before_and_now(args.before, cases, learners, extra, args.out))
        return
    rows = [measure_isolated(learner, task, shapes, extra, mesh_detail=detail)
            for task, shapes, detail in cases for learner in learners]  # fmt: skip
    if all(row["failed"] for row in rows):  # keep the figures of an earlier, good run
        print("error: every measurement failed (warnings above); nothing was written", file=sys.stderr)
        sys.exit(1)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scene_growth:
        by = "vertices_per_mesh" if args.mesh_detail else "extra_shapes"
        print(scene_growth_report(pd.DataFrame(rows), args.out, by=by))
    else:
        print(per_task_report(pd.DataFrame(rows), args.out))


def before_and_now(ref: str, cases: list[tuple[str, int, int]], learners: list[str], extra: list[str],
                   out: Path) -> str:  # fmt: skip
    """Seconds per iteration and per phase of every case with the code of commit ``ref`` and with this
    checkout's, measured one right after the other in one run; the speed-up is before / now. Writes
    ``<out>/apg_costs_before.{csv,md}``."""
    require_commit(ref)
    rows = []
    with checkout(ref) as root:
        for task, shapes, detail in cases:
            for learner in learners:
                for code, code_root in ((ref, root), ("now", None)):
                    rows.append({"code": code, **measure_isolated(learner, task, shapes, extra, code_root, detail)})
    table = pd.DataFrame(rows)
    columns = ["task", "algo", "code", "iteration_s", "forward_s", "render_s", "backward_s", "update_s"]
    table = table.reindex(columns=columns)
    before = table[table["code"] == ref].set_index(["task", "algo"])["iteration_s"]
    table["speed-up"] = [before.get((r.task, r.algo), np.nan) / r.iteration_s for r in table.itertuples()]
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "apg_costs_before.csv", index=False)
    text = markdown_table(table.round(3))
    (out / "apg_costs_before.md").write_text(text + "\n")
    return text


def _compare(table: pd.DataFrame, index: str) -> pd.DataFrame:
    """One row per ``index`` value, side by side: backward times and their ratios to D.Va's, the memory
    one iteration adds (``benchmark.memory``) and its ratios, and the process's peak (which also holds
    what torch, Warp and the env keep before any iteration)."""
    learners = list(dict.fromkeys(table["algo"]))  # in measured order, the baseline first
    wide = table.pivot(index=index, columns="algo", values=["backward_s", "iteration_memory_mb", "peak_memory_mb"])
    backward, own, peak = wide["backward_s"], wide["iteration_memory_mb"], wide["peak_memory_mb"]
    columns = {f"backward {learner} (s)": backward[learner] for learner in learners}
    columns |= {f"ratio {learner} / {BASELINE}": backward[learner] / backward[BASELINE] for learner in learners[1:]}
    columns |= {f"iteration memory {learner} (MB)": own[learner] for learner in learners}
    columns |= {f"memory ratio {learner} / {BASELINE}": own[learner] / own[BASELINE] for learner in learners[1:]}
    columns |= {f"process peak {learner} (MB)": peak[learner] for learner in learners}
    columns["failed"] = table.groupby(index)["failed"].agg(lambda notes: "; ".join(n for n in notes if n))
    return pd.DataFrame(columns).reindex(table[index].unique())


def per_task_report(table: pd.DataFrame, out: Path) -> str:
    """Table 1 and Fig. 10 per task: ``apg_costs.{csv,md,png}``."""
    summary = _compare(table, "task")
    table.to_csv(out / "apg_costs.csv", index=False)
    markdown = markdown_table(summary.round(3).reset_index())
    (out / "apg_costs.md").write_text(markdown + "\n")
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
    summary.filter(regex="^backward").plot.bar(ax=axes[0], rot=0)
    summary.filter(regex="^iteration memory").plot.bar(ax=axes[1], rot=0)
    axes[0].set(ylabel="backward time per iteration (s)", title="Table 1")
    axes[1].set(ylabel="memory one iteration adds (MB)", title="Fig. 10 (above what the process held before)")
    fig.tight_layout()
    fig.savefig(out / "apg_costs.png", dpi=120)
    plt.close(fig)
    return markdown


GROWTH = {"extra_shapes": ("scene_growth", "extra shapes per scene"),
          "vertices_per_mesh": ("mesh_detail", "vertices per sphere or capsule mesh (PyTorch3D)")}  # fmt: skip


def scene_growth_report(table: pd.DataFrame, out: Path, by: str = "extra_shapes") -> str:
    """Fig. 10, growing scenes: memory and backward time against extra shapes (``scene_growth.*``) or
    against the vertices of every mesh (``by="vertices_per_mesh"``, ``mesh_detail.*``)."""
    name, xlabel = GROWTH[by]
    summary = _compare(table, by)
    table.to_csv(out / f"{name}.csv", index=False)
    markdown = markdown_table(summary.round(3).reset_index())
    (out / f"{name}.md").write_text(markdown + "\n")
    fig, (ax_mem, ax_time) = plt.subplots(1, 2, figsize=(10, 3.5))
    ram_mb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    for algo in dict.fromkeys(table["algo"]):
        (line,) = ax_mem.plot(summary.index, summary[f"iteration memory {algo} (MB)"], marker="o", label=algo)
        ax_time.plot(summary.index, summary[f"backward {algo} (s)"], marker="o", label=algo)
        died = table[(table["algo"] == algo) & (table["failed"] != "")]
        if len(died):  # the cases that died, marked at the RAM line and labelled once
            ax_mem.plot(died[by], [ram_mb] * len(died), "x", color=line.get_color(), ms=10, mew=2)
            label = f"{algo} died" + (": out of memory" if "out of memory" in died["failed"].iloc[0] else "")
            ax_mem.annotate(label, (died[by].iloc[0], ram_mb), textcoords="offset points",
                            xytext=(-8, -14), ha="right", fontsize=8, color=line.get_color())  # fmt: skip
    if (table["failed"] != "").any():
        ax_mem.axhline(ram_mb, color="grey", ls="--", lw=1, label="this machine's RAM")
    ax_mem.set(xlabel=xlabel, ylabel="memory one iteration adds (MB)", ylim=(0, None))
    ax_time.set(xlabel=xlabel, ylabel="backward time per iteration (s)", ylim=(0, None))
    for ax in (ax_mem, ax_time):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(f"Fig. 10, growing scenes ({table['task'].iloc[0]})")
    fig.tight_layout()
    fig.savefig(out / f"{name}.png", dpi=120)
    plt.close(fig)
    return markdown


if __name__ == "__main__":
    main()
