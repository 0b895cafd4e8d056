"""Re-evaluate a finished or running run's newest checkpoint: ``python -m benchmark.evaluate <run dir>``.

Prints the mean return and episode length of one episode in each of ``--envs`` fresh envs, with the
policy's mean action and with actions sampled as in training: the two numbers that explain a gap
between a run's training return (sampled) and its final evaluation (deterministic).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from benchmark.config import ConfigError, load_run_config
from benchmark.reference import policy_returns
from benchmark.run import evaluate, restore_learner, run_device


def random_policy_return(task: str, action_repeat: int = 1, episodes: int = 256, seed: int = 10_000) -> float:
    """Mean return of uniformly random actions in [-1, 1], one episode per env: the floor a learner
    must beat (held ``action_repeat`` control steps, as the learner's actions are)."""
    return float(policy_returns(task, "random", action_repeat, episodes, seed).mean())


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
