"""Render speed: ``python -m benchmark.speed.render_speed`` (``make bench-render``) prints frames/s per backend,
task, batch and image size, counting the copy into torch and the 3-frame stack (``PixelEnv``'s work per
step, without the physics), and the differentiable backend's forward + backward time and peak memory."""

from __future__ import annotations

import argparse
import json
import resource
import time

import torch

from benchmark.cli import parse_backends, parse_names, positive_ints
from benchmark.speed.isolated import chosen_device, run_isolated
from envs import DiffEnv
from envs.render import make_renderer
from envs.tasks import registry as task_registry


def measure(backend: str, task: str, num_envs: int, size: int, repeats: int, device: str = "cpu") -> dict:
    torch.set_num_threads(1)
    env = DiffEnv(task, num_envs, device=device, seed=0)
    renderer = make_renderer(backend, env.task, num_envs, size, size, env.device)
    poses = env.body_transforms()
    stack = renderer.render(poses)[:, None].expand(-1, 3, -1, -1, -1)
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(repeats):
            frame = renderer.render(poses)
            stack = torch.cat([stack[:, 1:], frame[:, None]], dim=1)
    fps = repeats * num_envs / (time.perf_counter() - start)
    result = {"fps": fps, "fwd_s": float("nan"), "bwd_s": float("nan")}
    if renderer.differentiable:
        pose = poses.clone().requires_grad_(True)
        start = time.perf_counter()
        image = renderer.render(pose)
        result["fwd_s"] = time.perf_counter() - start
        start = time.perf_counter()
        image.mean().backward()
        result["bwd_s"] = time.perf_counter() - start
    result["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    result["device"] = device
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", default=None, help="default: every backend installed here")
    parser.add_argument("--tasks", default="cartpole,hopper,ant,humanoid")
    parser.add_argument("--num-envs", default="16,64")
    parser.add_argument("--sizes", default="84,48")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="auto", help="auto (cuda when torch and Warp see one), cpu, cuda:<i>")
    parser.add_argument("--one", nargs=4, metavar=("BACKEND", "TASK", "N", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        backend, task, n, size = args.one
        print(json.dumps(measure(backend, task, int(n), int(size), args.repeats, args.device)))
        return
    args.device = chosen_device(args.device)
    tasks = parse_names(parser, "--tasks", args.tasks, task_registry())
    num_envs, sizes = positive_ints(parser, "--num-envs", args.num_envs), positive_ints(parser, "--sizes", args.sizes)
    backends = parse_backends(parser, args.backends)
    print("| backend | task | N | size | device | frames/s (render + stack) | diff fwd / bwd (s) | peak RSS (GB) |")
    print("|---|---|---|---|---|---|---|---|")
    for backend in backends:
        for task in tasks:
            for n in num_envs:
                for size in sizes:
                    r = run_isolated("benchmark.speed.render_speed", backend, task, str(n), str(size), "--repeats",
                                     str(args.repeats), "--device", args.device)  # fmt: skip
                    grads = "-" if r["fwd_s"] != r["fwd_s"] else f"{r['fwd_s']:.2f} / {r['bwd_s']:.2f}"
                    row = f"| {backend} | {task} | {n} | {size}x{size} | {r['device']} | {r['fps']:.0f} | {grads} "
                    print(row + f"| {r['peak_rss_gb']:.2f} |", flush=True)


if __name__ == "__main__":
    main()
