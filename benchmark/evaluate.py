"""Evaluate a run's newest checkpoint (``python -m benchmark.evaluate <run dir>``), finished or running.

:func:`rollout` is the policy-in-env loop that evaluation (:func:`evaluate`, the runner's last step),
videos and the posture measures share. The command prints the mean return and episode length of one
episode in each of ``--envs`` fresh envs, with the policy's mean action and with actions sampled as in
training: the two numbers that explain a gap between a run's training return (sampled) and its final
evaluation (deterministic).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from algorithms import Learner
from benchmark.build import make_env, restore_learner, run_device
from benchmark.config import ConfigError
from benchmark.results import load_run_config
from envs import Env


@dataclass
class Step:
    """One step of :func:`rollout`: ``index`` from 0, the reward, which envs were still in an episode that
    counts (``counting``; a finished env's later steps do not), whose counted episode ended here
    (``ended``), and the env's ``info`` (its poses and frames before any reset)."""

    index: int
    reward: torch.Tensor
    counting: torch.Tensor
    ended: torch.Tensor
    info: dict


@torch.no_grad()
def rollout(learner: Learner, env: Env, deterministic: bool = True, episodes: int = 1,
            max_steps: int | None = None) -> Iterator[Step]:  # fmt: skip
    """The learner's policy in ``env`` from a reset until each env has ended ``episodes`` episodes (or
    ``max_steps`` steps per episode have passed): the loop that evaluation, videos and the posture
    measures share. A recurrent policy's state starts fresh, and again where an env's episode ended."""
    obs = env.reset()
    policy = learner.new_policy(env.num_envs, deterministic)
    ended = torch.zeros(env.num_envs, dtype=torch.long, device=obs.device)
    first = torch.ones(env.num_envs, dtype=torch.bool, device=obs.device)
    for index in range(min(env.episode_length, max_steps or env.episode_length) * episodes):
        obs, reward, terminated, truncated, info = env.step(policy(obs, first))
        counting, first = ended < episodes, terminated | truncated
        yield Step(index, reward, counting, first & counting, info)
        ended += first.long()
        if not (ended < episodes).any():
            return


def evaluate(
    learner: Learner, cfg: DictConfig, device: torch.device, deterministic: bool = True, num_envs: int | None = None
) -> tuple[float, float]:
    """Mean return and length of one episode in each of ``num_envs`` (default ``eval_envs``) fresh envs,
    with the policy's mean action (``deterministic``) or sampling as in training. ``eval_max_steps``
    cuts episodes short (their return so far counts)."""
    env = make_env(cfg, num_envs or cfg.eval_envs, device, cfg.seed + 10_000, differentiable=False)
    returns = torch.zeros(env.num_envs, device=device)
    lengths = torch.zeros_like(returns)
    for step in rollout(learner, env, deterministic, max_steps=cfg.eval_max_steps):
        returns += torch.where(step.counting, step.reward, torch.zeros_like(step.reward))
        lengths += step.counting.float()
    return float(returns.mean()), float(lengths.mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
