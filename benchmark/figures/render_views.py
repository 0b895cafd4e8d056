"""``make render TASK=ant [BACKENDS=newton,diff]``: a PNG grid of a few envs and a GIF of a random
rollout per backend, under ``results/render/``, to look at what the learners see."""

from __future__ import annotations

import argparse
from pathlib import Path

import imageio.v2 as imageio
import numpy as np
import torch

from benchmark.cli import parse_backends, parse_names
from envs import DiffEnv
from envs.pixels import PixelEnv
from envs.render import make_renderer
from envs.tasks import registry as task_registry


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, 3, H, W) uint8 or float in [0, 1] -> (N, H, W, 3) uint8."""
    images = images.detach()
    if images.is_floating_point():
        images = (images.clamp(0, 1) * 255).round().to(torch.uint8)
    return images.permute(0, 2, 3, 1).cpu().numpy()


def grid(images: np.ndarray, columns: int) -> np.ndarray:
    n, h, w, c = images.shape
    rows = -(-n // columns)
    canvas = np.zeros((rows * h, columns * w, c), np.uint8)
    for i, image in enumerate(images):
        canvas[(i // columns) * h : (i // columns + 1) * h, (i % columns) * w : (i % columns + 1) * w] = image
    return canvas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("task")
    parser.add_argument("--backends", default=None, help="default: every backend installed here")
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--out", type=Path, default=Path("results/render"))
    args = parser.parse_args(argv)
    if args.steps < 1 or args.envs < 1 or args.size < 1:
        parser.error("--steps, --envs and --size must be positive")
    parse_names(parser, "task", args.task, task_registry())
    backends = parse_backends(parser, args.backends)
    still = min(30, args.steps - 1)  # the step drawn to the PNG grid
    args.out.mkdir(parents=True, exist_ok=True)
    for backend in backends:
        env = DiffEnv(args.task, args.envs, seed=0)
        pixels = PixelEnv(env, make_renderer(backend, env.task, args.envs, args.size, args.size, env.device))
        pixels.reset(seed=0)
        generator = torch.Generator(device=env.device).manual_seed(0)
        frames = []
        with torch.no_grad():
            for step in range(args.steps):
                actions = torch.rand(args.envs, env.act_dim, generator=generator, device=env.device) * 2 - 1
                obs, *_ = pixels.step(0.5 * actions)
                newest = to_uint8(obs[:, -3:])
                if step == still:
                    png = args.out / f"{args.task}-{backend}-grid.png"
                    imageio.imwrite(png, grid(newest, columns=4))
                frames.append(grid(newest[:4], columns=4))
        gif = args.out / f"{args.task}-{backend}-rollout.gif"
        imageio.mimsave(gif, frames, duration=1 / 30, loop=0)
        print(f"{backend}: {png} {gif}")


if __name__ == "__main__":
    main()
