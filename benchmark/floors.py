"""The floors every task is read against: the returns of uniformly random actions and of the zero action.

A return means nothing alone (the zero action scores 2118 of the cartpole's 2400), so every table and
figure sets a learner's return beside these two. They are measured once per task, version and action
repeat (``make floors``: 64 episodes each, fixed seeds) into ``results/reference/floors.csv``, shipped with
the reference set; figures and the runner only read them there, they never run the simulator.

    python -m benchmark.floors [--tasks cartpole,hopper] [--episodes 64]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark.cli import usage_error
from benchmark.reference import REFERENCE
from envs import DiffEnv
from envs.tasks import registry

FILE_NAME = "floors.csv"  # in the reference set's folder
POLICIES = ("random", "zero")
ACTION_REPEATS = (1, 2)  # the state learners' and the replay learners' (DrQ-v2, CURL, DreamerV3)


@torch.no_grad()
def policy_returns(task: str, policy: str, action_repeat: int, episodes: int = 64, seed: int = 10_000) -> np.ndarray:
    """One episode's return in each of ``episodes`` envs under uniformly ``random`` actions in [-1, 1] or
    the ``zero`` action, held ``action_repeat`` control steps as a learner's are (fixed seeds)."""
    env = DiffEnv(task, episodes, device="cpu", seed=seed, differentiable=False, action_repeat=action_repeat)
    env.reset(seed=seed)
    generator = torch.Generator().manual_seed(seed)
    returns, alive = torch.zeros(episodes, dtype=torch.float64), torch.ones(episodes, dtype=torch.bool)
    while alive.any():
        action = torch.rand(episodes, env.act_dim, generator=generator) * 2 - 1
        _, reward, terminated, truncated, _ = env.step(action if policy == "random" else torch.zeros_like(action))
        returns += torch.where(alive, reward, torch.zeros_like(reward)).double()
        alive &= ~(terminated | truncated)
    return returns.numpy()


def measure(tasks: list[str], episodes: int = 64) -> pd.DataFrame:
    """Both floors of ``tasks`` at every action repeat a learner uses: one row per task, policy and repeat."""
    rows = []
    for task in tasks:
        for action_repeat in ACTION_REPEATS:
            for policy in POLICIES:
                returns = policy_returns(task, policy, action_repeat, episodes)
                rows.append({"task": task, "task_version": registry()[task].version, "policy": policy,
                             "action_repeat": action_repeat, "episodes": episodes, "mean": returns.mean(),
                             "std": returns.std(), "min": returns.min(), "max": returns.max()})  # fmt: skip
    return pd.DataFrame(rows)


def store(new: pd.DataFrame, reference: Path = REFERENCE) -> None:
    """Replace the stored floors of ``new``'s tasks, keeping every other task's."""
    path = reference / FILE_NAME
    old = pd.read_csv(path) if path.exists() else new.iloc[:0]
    kept = old[~old["task"].isin(new["task"])]
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pd.concat([kept, new]).sort_values(["task", "action_repeat", "policy"])
    table.to_csv(path, index=False, float_format="%.2f")


def load(reference: Path = REFERENCE) -> pd.DataFrame:
    """The stored floors of the current task versions (empty when none are stored)."""
    path = reference / FILE_NAME
    if not path.exists():
        return pd.DataFrame(columns=["task", "task_version", "policy", "action_repeat", "mean", "std"])
    floors = pd.read_csv(path)
    current = floors["task"].map({name: task.version for name, task in registry().items()})
    return floors[floors["task_version"] == current].reset_index(drop=True)


def wide(floors: pd.DataFrame) -> pd.DataFrame:
    """:func:`load`'s rows as one row per task, version and action repeat, with ``random_return`` and
    ``zero_return`` columns (the figures' layout)."""
    columns = ["task", "task_version", "action_repeat", "random_return", "zero_return"]
    if floors.empty:
        return pd.DataFrame(columns=columns)
    table = floors.pivot_table(index=["task", "task_version", "action_repeat"], columns="policy", values="mean")
    table = table.rename(columns={"random": "random_return", "zero": "zero_return"}).reset_index()
    return table.reindex(columns=columns)


def lookup(task: str, policy: str, action_repeat: int, reference: Path = REFERENCE) -> float | None:
    """One stored floor, or None when ``make floors`` has not measured it."""
    floors = load(reference)
    hit = floors[(floors["task"] == task) & (floors["policy"] == policy) & (floors["action_repeat"] == action_repeat)]
    return float(hit["mean"].iloc[0]) if len(hit) else None


def unmeasured(runs: pd.DataFrame, floors: pd.DataFrame) -> list[str]:
    """The tasks among ``runs`` (columns task, action_repeat) without a stored floor at a repeat they use."""
    have = set(zip(floors["task"], floors["action_repeat"], strict=True))
    return sorted({task for task, repeat in zip(runs["task"], runs["action_repeat"], strict=True)
                   if (task, repeat) not in have})  # fmt: skip


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", default=",".join(registry()), help="comma-separated, e.g. cartpole,hopper")
    parser.add_argument("--episodes", type=int, default=64)
    args = parser.parse_args(argv)
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = [t for t in tasks if t not in registry()]
    if unknown or not tasks or args.episodes < 1:
        usage_error(parser, f"--tasks {args.tasks} / --episodes {args.episodes}: tasks from "
                            f"{', '.join(registry())}, episodes >= 1")  # fmt: skip
    torch.set_num_threads(1)
    new = measure(tasks, args.episodes)
    store(new)
    print(new.round(1).to_string(index=False))


if __name__ == "__main__":
    main()
