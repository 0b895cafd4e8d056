"""Run one learner on one task: ``python -m benchmark.run <algo> <task> [key=value ...]``.

The runner owns the loop: budget, wall-clock, memory, checkpoints, results, progress bar. Learners
only implement ``train_iteration``.
"""

from __future__ import annotations

import argparse
import math
import random
import resource
import sys
import time
import traceback
from datetime import datetime
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig
from tqdm import tqdm

from algorithms import Learner, get_learner
from benchmark.config import ConfigError, learner_config, load_config, parse_budget
from benchmark.results import RunDir
from envs import DiffEnv, default_device
from envs.pixels import PixelEnv
from envs.render import make_renderer
from envs.tasks.base import Task


def peak_memory_mb(device: torch.device) -> float:
    """Peak CUDA allocator memory on GPU; peak resident set size of this process on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


def make_env(
    cfg: DictConfig,
    num_envs: int,
    device: torch.device,
    seed: int,
    differentiable: bool = True,
    task: Task | None = None,
):
    """The run's env: state observations, or a frame stack when the config names a renderer.
    ``task`` replaces the config's task by an instance (e.g. a scene grown for a benchmark)."""
    env = DiffEnv(task or cfg.task, num_envs, device=device, seed=seed, differentiable=differentiable)
    if cfg.renderer is None:
        return env
    try:
        renderer = make_renderer(cfg.renderer, env.task, num_envs, cfg.image_size, cfg.image_size, device)
    except KeyError as error:
        raise ConfigError(error.args[0]) from None
    return PixelEnv(env, renderer, frames=cfg.frames)


@torch.no_grad()
def evaluate(learner: Learner, cfg: DictConfig, device: torch.device) -> tuple[float, float]:
    """Mean return and length of one deterministic episode in each of ``eval_envs`` fresh envs."""
    env = make_env(cfg, cfg.eval_envs, device, cfg.seed + 10_000, differentiable=False)
    obs = env.reset()
    returns = torch.full((env.num_envs,), math.nan, device=device)
    lengths = torch.full_like(returns, math.nan)
    for _ in range(env.episode_length):
        obs, _, _, _, info = env.step(learner.act(obs, deterministic=True))
        first = torch.isnan(returns) & ~torch.isnan(info["episode_return"])
        returns = torch.where(first, info["episode_return"], returns)
        lengths = torch.where(first, info["episode_length"], lengths)
        if not torch.isnan(returns).any():
            break
    return float(returns.mean()), float(lengths.mean())


def run(cfg: DictConfig, progress: bool = True) -> Path:
    """Train until ``iterations`` or the budget; returns the run directory."""
    device = default_device() if cfg.device == "auto" else torch.device(cfg.device)
    if cfg.torch_threads:
        torch.set_num_threads(cfg.torch_threads)
    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    budget_seconds, budget_steps = parse_budget(cfg.budget)

    name = cfg.run_name or f"{cfg.algo}-{cfg.task}-seed{cfg.seed}-{datetime.now():%Y%m%d-%H%M%S}"
    out = RunDir(Path(cfg.results_dir) / name)
    out.path.mkdir(parents=True, exist_ok=True)
    out.write_config(cfg)
    summary = {"status": "running", "algo": cfg.algo, "task": cfg.task, "seed": cfg.seed, "device": str(device)}
    out.write_summary(summary)

    env = make_env(cfg, cfg.num_envs, device, cfg.seed)
    learner = get_learner(cfg.learner)(env, learner_config(cfg))
    wall_clock, env_steps, skipped, iteration = 0.0, 0, 0, 0
    bar = tqdm(total=learner.config.iterations, desc=f"{cfg.algo}/{cfg.task}", disable=not progress, file=sys.stdout)
    try:
        for iteration in range(1, learner.config.iterations + 1):
            start = time.perf_counter()
            metrics = learner.train_iteration()
            wall_clock += time.perf_counter() - start
            env_steps += int(metrics["env_steps"])
            skipped += int(metrics.get("skipped_updates", 0))
            out.append_metrics(
                {
                    **metrics,
                    "iteration": iteration,
                    "wall_clock": wall_clock,
                    "env_steps": env_steps,
                    "peak_memory_mb": peak_memory_mb(device),
                }
            )
            if not math.isnan(metrics.get("train_return", math.nan)):
                bar.set_postfix(ret=f"{metrics['train_return']:.1f}", refresh=False)
            bar.update()
            if iteration % cfg.checkpoint_every == 0:
                out.save_checkpoint(learner.state_dict(), iteration, cfg.keep_checkpoints)
            if (budget_seconds and wall_clock >= budget_seconds) or (budget_steps and env_steps >= budget_steps):
                break
        bar.close()
        if iteration % cfg.checkpoint_every:
            out.save_checkpoint(learner.state_dict(), iteration, cfg.keep_checkpoints)
        eval_return, eval_length = evaluate(learner, cfg, device)
    except BaseException as error:
        bar.close()
        summary.update(status="failed", error=f"{type(error).__name__}: {error}", iterations=iteration)
        summary["traceback"] = traceback.format_exc(limit=5)
        out.write_summary(summary)
        raise
    summary.update(
        status="complete",
        iterations=iteration,
        env_steps=env_steps,
        wall_clock=wall_clock,
        skipped_updates=skipped,
        eval_return=eval_return,
        eval_episode_length=eval_length,
        peak_memory_mb=peak_memory_mb(device),
    )
    out.write_summary(summary)
    return out.path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train one learner on one task and write results/<run-id>/.")
    parser.add_argument("algo", help="algorithm: a directory of configs/")
    parser.add_argument("task", help="task: cartpole, hopper, ant, humanoid")
    parser.add_argument("overrides", nargs="*", help="config overrides, key=value (e.g. num_envs=16 seed=3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.algo, args.task, args.overrides)
    except ConfigError as error:
        sys.exit(f"error: {error}")
    path = run(cfg, progress=not args.no_progress)
    summary = (path / "summary.json").read_text()
    print(f"results written to {path}/ (config.yaml, metrics.csv, summary.json, checkpoints/)")
    print(summary)


if __name__ == "__main__":
    main()
