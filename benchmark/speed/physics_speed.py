"""Physics speed: ``python -m benchmark.speed.physics_speed`` (``make bench-physics``) prints, per task and N,
kernel-by-kernel stepping (``capture_graphs=false``: today's kernels launched one by one from Python)
beside captured graphs (the default): forward env-steps/s without gradients against MuJoCo's own CPU
step rate on the same MJCF (one thread), and forward and backward seconds of a 32-step SHAC window with
gradients.

The window is timed four times: the first captures each step slot's graphs once (its cost is printed
too); the median of the other three is reported (kernel-by-kernel windows vary with Python's garbage
collector). Each (task, N, way of stepping) runs in a fresh process, so its peak RSS
is its own. ``--ways captured`` measures one way only.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import torch

from benchmark.cli import parse_names, positive_ints
from benchmark.speed.isolated import run_isolated
from envs import DiffEnv, get_task
from envs.tasks import registry as task_registry
from envs.tasks.base import MJCFTask

WAYS = {"eager": False, "captured": True}  # capture_graphs; "before" is a git ref's env layer, as it was


def taped_window(env: DiffEnv, window: int, sync=lambda: None) -> tuple[float, float]:
    """Forward and backward seconds of one SHAC-like window of differentiable steps from a reset."""
    env.reset(seed=0)
    env.cut_graph()
    actions = torch.zeros(env.num_envs, env.act_dim, requires_grad=True, device=env.device)
    sync()
    start = time.perf_counter()
    total = sum(env.step(actions)[1].sum() for _ in range(window))
    sync()
    forward = time.perf_counter() - start
    start = time.perf_counter()
    total.backward()
    sync()
    return forward, time.perf_counter() - start


def measure(task: str, num_envs: int, way: str, window: int, no_grad_steps: int, device: str = "cpu") -> dict:
    torch.set_num_threads(1)
    stepping = {} if way == "before" else {"capture_graphs": WAYS[way]}  # a ref before graphs has no such option
    env = DiffEnv(task, num_envs, device=device, seed=0, **stepping)
    sync = (lambda: torch.cuda.synchronize(env.device)) if env.device.type == "cuda" else (lambda: None)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        env.step(torch.zeros(num_envs, env.act_dim, device=env.device))  # warm-up: kernel loading, the no-grad graph
        noise = [
            0.2 * torch.randn(num_envs, env.act_dim, generator=generator).clamp(-1, 1) for _ in range(no_grad_steps)
        ]
        noise = [n.to(env.device) for n in noise]
        sync()
        start = time.perf_counter()
        for actions in noise:
            env.step(actions)
        sync()
        fwd_rate = no_grad_steps * num_envs / (time.perf_counter() - start)
    first_fwd, first_bwd = taped_window(env, window, sync)
    windows = torch.tensor([taped_window(env, window, sync) for _ in range(3)])
    window_fwd, window_bwd = windows.median(dim=0).values.tolist()
    return {
        "fwd_steps_per_s": fwd_rate,
        "first_window_s": first_fwd + first_bwd,
        "window_fwd_s": window_fwd,
        "window_bwd_s": window_bwd,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
        "device": device,
    }


def mujoco_rate(task: str, seconds: float = 2.0) -> float | None:
    """MuJoCo env-steps/s (one thread) on the task's MJCF at the same physics step; None without MJCF."""
    spec = get_task(task)
    if not isinstance(spec, MJCFTask):
        return None
    try:
        import mujoco
    except ImportError:
        return None
    model = mujoco.MjModel.from_xml_path(str(spec.mjcf_path()))
    model.opt.timestep = spec.dt / spec.substeps
    data = mujoco.MjData(model)
    data.ctrl[:] = 0.2
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(spec.substeps):
            mujoco.mj_step(model, data)
        steps += 1
    return steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--num-envs", default="1,16,64,256")
    parser.add_argument("--ways", default="eager,captured", help="eager (kernel by kernel), captured or both")
    parser.add_argument("--before", metavar="REF", help="also measure the env layer of this git ref")
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--no-grad-steps", type=int, default=50)
    parser.add_argument("--device", default="auto", help="auto (cuda when torch and Warp see one), cpu, cuda:<i>")
    parser.add_argument("--one", nargs=3, metavar=("TASK", "N", "WAY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        task, n, way = args.one
        print(json.dumps(measure(task, int(n), way, args.window, args.no_grad_steps, args.device)))
        return
    from benchmark.speed.isolated import chosen_device  # here: measuring processes may run an older checkout

    args.device = chosen_device(args.device)

    tasks = parse_names(parser, "--tasks", args.tasks, task_registry())
    num_envs = positive_ints(parser, "--num-envs", args.num_envs)
    ways = parse_names(parser, "--ways", args.ways, list(WAYS))
    if args.before:
        # imported here: the measuring processes run this file against an older checkout's modules
        from benchmark.speed.isolated import checkout, require_commit

        require_commit(args.before)
        with checkout(args.before) as root:
            table(tasks, num_envs, ["before", *ways], args, root)
    else:
        table(tasks, num_envs, ways, args, None)


def table(tasks: list[str], num_envs: list[int], ways: list[str], args: argparse.Namespace, root: Path | None) -> None:
    """One row per (task, N, way), the first way the baseline of the speed-up column."""
    print(
        "| task | N | stepping | fwd env-steps/s (no grad) | MuJoCo (1 thread) | Newton / MuJoCo "
        "| 32-step window fwd / bwd (s) "
        "| window speed-up | first window, with capture (s) | peak RSS (GB) | device |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for task in tasks:
        reference = mujoco_rate(task)
        for n in num_envs:
            baseline = None
            for way in ways:
                extra = (
                    "--window",
                    str(args.window),
                    "--no-grad-steps",
                    str(args.no_grad_steps),
                    "--device",
                    args.device,
                )
                r = run_isolated("benchmark.speed.physics_speed", task, str(n), way, *extra,
                                 code_root=root if way == "before" else None)  # fmt: skip
                seconds = r["window_fwd_s"] + r["window_bwd_s"]
                baseline = baseline or seconds
                mujoco, ratio = (
                    (f"{reference:.0f}", f"{r['fwd_steps_per_s'] / reference:.2f}")
                    if reference
                    else ("n/a (no MJCF)", "n/a")
                )
                print(
                    f"| {task} | {n} | {way} | {r['fwd_steps_per_s']:.0f} | {mujoco} | {ratio} "
                    f"| {r['window_fwd_s']:.3f} / {r['window_bwd_s']:.3f} | {baseline / seconds:.1f}x "
                    f"| {r['first_window_s']:.2f} | {r['peak_rss_gb']:.2f} | {r.get('device', 'cpu')} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
