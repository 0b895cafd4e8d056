"""Physics speed: ``python -m benchmark.speed.physics_speed`` (``make bench-physics``) prints, per task and N:
forward env-steps/s without gradients, forward and backward seconds of one 32-step SHAC window with
gradients, peak memory, and MuJoCo's own CPU step rate on the same MJCF (one thread) with the ratio.

Each (task, N) runs in a fresh process so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from benchmark.config import parse_names, positive_ints
from benchmark.speed.isolated import run_isolated
from envs import DiffEnv, get_task
from envs.tasks import registry as task_registry
from envs.tasks.base import MJCFTask


def measure(task: str, num_envs: int, window: int, no_grad_steps: int) -> dict:
    torch.set_num_threads(1)
    env = DiffEnv(task, num_envs, device="cpu", seed=0)
    zeros = torch.zeros(num_envs, env.act_dim)
    with torch.no_grad():
        env.step(zeros)  # warm-up: kernel loading
        start = time.perf_counter()
        for _ in range(no_grad_steps):
            env.step(0.2 * torch.randn(num_envs, env.act_dim).clamp(-1, 1))
        fwd_rate = no_grad_steps * num_envs / (time.perf_counter() - start)
    env.reset(seed=0)
    actions = torch.zeros(num_envs, env.act_dim, requires_grad=True)
    start = time.perf_counter()
    total = sum(env.step(actions)[1].sum() for _ in range(window))
    window_fwd = time.perf_counter() - start
    start = time.perf_counter()
    total.backward()
    window_bwd = time.perf_counter() - start
    return {
        "task": task,
        "num_envs": num_envs,
        "fwd_steps_per_s": fwd_rate,
        "window_fwd_s": window_fwd,
        "window_bwd_s": window_bwd,
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20,
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--num-envs", default="16,64,256")
    parser.add_argument("--window", type=int, default=32)
    parser.add_argument("--no-grad-steps", type=int, default=50)
    parser.add_argument("--one", nargs=2, metavar=("TASK", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]), args.window, args.no_grad_steps)))
        return

    tasks = parse_names(parser, "--tasks", args.tasks, task_registry())
    num_envs = positive_ints(parser, "--num-envs", args.num_envs)
    print(
        "| task | N | fwd env-steps/s (no grad) | 32-step window fwd / bwd (s) | bwd/fwd | peak RSS (GB) "
        "| MuJoCo env-steps/s (1 thread) | Newton / MuJoCo |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for task in tasks:
        reference = mujoco_rate(task)
        for n in num_envs:
            extra = ("--window", str(args.window), "--no-grad-steps", str(args.no_grad_steps))
            r = run_isolated("benchmark.speed.physics_speed", task, str(n), *extra)
            ref = f"{reference:.0f}" if reference else "n/a (no MJCF)"
            ratio = f"{r['fwd_steps_per_s'] / reference:.2f}" if reference else "n/a"
            print(
                f"| {task} | {n} | {r['fwd_steps_per_s']:.0f} | {r['window_fwd_s']:.2f} / {r['window_bwd_s']:.2f} "
                f"| {r['window_bwd_s'] / r['window_fwd_s']:.1f} | {r['peak_rss_gb']:.2f} | {ref} | {ratio} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
