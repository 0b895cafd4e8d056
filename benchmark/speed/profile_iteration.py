"""Where one training iteration's time goes, by operator group: the first step toward cheaper iterations.

``python -m benchmark.speed.profile_iteration dva hopper [--preset cpu] [--threads 1] [--warmup 2]``
builds the learner as a run would (seed 0), trains ``--warmup`` iterations (kernels, graph captures and
the allocator's first touch are paid there), then profiles one more with PyTorch's profiler and prints
a Markdown table: seconds and share of the iteration per group. Each profiled event goes to the first
group its name matches, with all the time spent under it; an event matching none is split into its
children, and what it spends itself is "other". The simulator's control steps are autograd functions
(their forward and their backward are one event each: Warp's kernels run inside), rendering is timed
around the env's renderer, and what no torch event covers (Python, the env's bookkeeping) is "outside
torch's operators".
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict

import pandas as pd
import torch
from torch.autograd.profiler_util import FunctionEvent
from torch.profiler import ProfilerActivity, profile, record_function

from algorithms import get_learner
from benchmark.build import make_env
from benchmark.cli import usage_error
from benchmark.config import ConfigError, learner_config, load_config, tasks
from benchmark.results import markdown_table
from envs.pixels import PixelEnv

GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("simulator backward", ("_CapturedStepBackward", "_EagerStepBackward")),
    ("simulator forward", ("_CapturedStep", "_EagerStep")),
    ("rendering", ("render",)),
    ("convolutions, backward", ("ConvolutionBackward",)),
    ("convolutions, forward", ("aten::conv2d", "aten::convolution", "aten::mkldnn_convolution")),
    ("dense layers, backward", ("AddmmBackward", "MmBackward", "BmmBackward")),
    ("dense layers, forward", ("aten::linear", "aten::addmm", "aten::mm", "aten::bmm", "aten::matmul")),
    ("layer norms", ("layer_norm", "LayerNormBackward")),
    ("optimiser steps and clipping", ("Optimizer.step", "Optimizer.zero_grad", "clip_grad")),
)
OTHER = "other operators (elementwise, copies, autograd bookkeeping)"
OUTSIDE = "outside torch's operators (Python, env bookkeeping)"


def group_of(name: str) -> str | None:
    return next((group for group, keys in GROUPS if any(key in name for key in keys)), None)


def attribute(events: list[FunctionEvent]) -> dict[str, float]:
    """Seconds per group from the profiler's event tree (top-level events first)."""
    seconds: dict[str, float] = defaultdict(float)

    def visit(event: FunctionEvent) -> None:
        group = group_of(event.name)
        if group is not None:
            seconds[group] += event.cpu_time_total / 1e6
            return
        seconds[OTHER] += event.self_cpu_time_total / 1e6
        for child in event.cpu_children:
            visit(child)

    for event in events:
        if event.cpu_parent is None:
            visit(event)
    return seconds


def profile_iteration(algo: str, task: str, overrides: list[str], warmup: int) -> tuple[float, dict[str, float]]:
    """(wall-clock seconds of the profiled iteration, seconds per group)."""
    cfg = load_config(algo, task, [*overrides, "device=cpu"])
    torch.manual_seed(0)
    env = make_env(cfg, cfg.num_envs, torch.device("cpu"), 0)
    if isinstance(env, PixelEnv):
        render = env.renderer.render

        def timed_render(*args, **kwargs):
            with record_function("render"):
                return render(*args, **kwargs)

        env.renderer.render = timed_render
    learner = get_learner(cfg.learner)(env, learner_config(cfg))
    for _ in range(warmup):
        learner.train_iteration()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        learner.train_iteration()
        wall = time.perf_counter() - start
    seconds = attribute(list(prof.events()))
    seconds[OUTSIDE] = max(wall - sum(seconds.values()), 0.0)
    return wall, dict(seconds)


def table(wall: float, seconds: dict[str, float]) -> str:
    order = [group for group, _ in GROUPS] + [OTHER, OUTSIDE]
    rows = [{"group": g, "seconds": round(seconds.get(g, 0.0), 3), "share": f"{seconds.get(g, 0.0) / wall:.0%}"}
            for g in order if seconds.get(g, 0.0) > 0]  # fmt: skip
    return markdown_table(pd.DataFrame(rows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("algo")
    parser.add_argument("task")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value")
    parser.add_argument("--preset", default="cpu", help="configs/presets/<preset>.yaml (default cpu; 'paper': none)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1, as a campaign's runs)")
    parser.add_argument("--warmup", type=int, default=2, help="iterations before the profiled one")
    args = parser.parse_args(argv)
    if args.task not in tasks():
        usage_error(parser, f"unknown task '{args.task}'; choose one of: {', '.join(tasks())}")
    if args.threads < 1 or args.warmup < 0:
        usage_error(parser, "--threads must be at least 1 and --warmup at least 0")
    torch.set_num_threads(args.threads)
    preset = [] if args.preset == "paper" else [f"preset={args.preset}"]
    try:
        wall, seconds = profile_iteration(args.algo, args.task, [*preset, *args.overrides], args.warmup)
    except ConfigError as error:
        usage_error(parser, str(error))
    print(f"{args.algo} on {args.task} ({args.preset} preset, {args.threads} thread(s)): one iteration {wall:.2f} s")
    print(table(wall, seconds))


if __name__ == "__main__":
    main()
