"""A learner's evaluation (:func:`evaluate`, the runner's last step), and ``python -m benchmark.evaluate
<run dir>``, which re-evaluates a finished or running run's newest checkpoint.

Prints the mean return and episode length of one episode in each of ``--envs`` fresh envs, with the
policy's mean action and with actions sampled as in training: the two numbers that explain a gap
between a run's training return (sampled) and its final evaluation (deterministic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from omegaconf import DictConfig

from algorithms import Learner
from benchmark.build import make_env, restore_learner, run_device
from benchmark.config import ConfigError
from benchmark.results import load_run_config


@torch.no_grad()
def evaluate(
    learner: Learner, cfg: DictConfig, device: torch.device, deterministic: bool = True, num_envs: int | None = None
) -> tuple[float, float]:
    """Mean return and length of one episode in each of ``num_envs`` (default ``eval_envs``) fresh envs,
    with the policy's mean action (``deterministic``) or sampling as in training. ``eval_max_steps``
    cuts episodes short (their return so far counts)."""
    env = make_env(cfg, num_envs or cfg.eval_envs, device, cfg.seed + 10_000, differentiable=False)
    obs = env.reset()
    returns = torch.zeros(env.num_envs, device=device)
    lengths = torch.zeros_like(returns)
    alive = torch.ones(env.num_envs, dtype=torch.bool, device=device)
    policy = learner.new_policy(env.num_envs, deterministic)  # a recurrent learner's state starts fresh
    for _ in range(min(env.episode_length, cfg.eval_max_steps or env.episode_length)):
        obs, reward, terminated, truncated, _ = env.step(policy(obs, alive & (lengths == 0)))
        returns += torch.where(alive, reward, torch.zeros_like(reward))
        lengths += alive.float()
        alive &= ~(terminated | truncated)
        if not alive.any():
            break
    return float(returns.mean()), float(lengths.mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--envs", type=int, default=64, help="episodes per evaluation (one per env)")
    args = parser.parse_args(argv)
    if not (args.run / "config.yaml").exists():
        sys.exit(f"error: {args.run} is not a run directory (no config.yaml); pass results/<run>/")
    cfg = load_run_config(args.run)
    torch.set_num_threads(cfg.torch_threads or torch.get_num_threads())
    device = run_device(cfg)
    try:
        learner, cfg, checkpoint = restore_learner(args.run, device)
    except ConfigError as error:
        sys.exit(f"error: {error}")
    iteration = checkpoint["runner"]["iteration"]
    for deterministic in (True, False):
        mean, length = evaluate(learner, cfg, device, deterministic=deterministic, num_envs=args.envs)
        kind = "mean action" if deterministic else "sampled   "
        print(f"{args.run.name} iteration {iteration}, {kind}: return {mean:.1f}, episode length {length:.1f}")


if __name__ == "__main__":
    main()
