import json
import os
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
# one thread per xdist worker (`make test` runs a worker per core), else up to two
torch.set_num_threads(1 if os.environ.get("PYTEST_XDIST_WORKER") else max(1, min(2, os.cpu_count() or 1)))

from benchmark.config import load_config  # noqa: E402
from benchmark.results import METRIC_COLUMNS  # noqa: E402
from benchmark.run import run  # noqa: E402
from envs import DiffEnv  # noqa: E402

_ENVS: dict = {}


@pytest.fixture(scope="session")
def make_env():
    """Envs are cached per (task, num_envs): building one compiles nothing new but costs a model build."""

    def make(task: str, num_envs: int) -> DiffEnv:
        key = (task, num_envs)
        if key not in _ENVS:
            _ENVS[key] = DiffEnv(task, num_envs, device="cpu", seed=0)
        env = _ENVS[key]
        env.reset(seed=0)
        return env

    return make


class PixelBandit:
    """A tiny pixel task for the off-policy learners: each one-step episode shows a white or a black
    image; the reward is 1 when the first action's sign matches (white: +, black: -), else 0. The
    best mean reward is 1, a random policy's 0.5. It has ``PixelEnv``'s interface."""

    def __init__(self, num_envs: int, size: int = 16, frames: int = 3) -> None:
        self.num_envs, self.act_dim, self.device, self.action_repeat = num_envs, 2, torch.device("cpu"), 1
        self.obs_shape, self.episode_length, self.render_seconds = (3 * frames, size, size), 1, 0.0
        self.sign = torch.ones(num_envs)

    def _observe(self) -> torch.Tensor:
        self.sign = torch.randint(0, 2, (self.num_envs,)).float() * 2 - 1
        return ((self.sign > 0).to(torch.uint8) * 255)[:, None, None, None].expand(-1, *self.obs_shape).contiguous()

    def reset(self, seed=None) -> torch.Tensor:
        return self._observe()

    def step(self, actions: torch.Tensor):
        reward = (actions[:, 0] * self.sign > 0).float()
        last = ((self.sign > 0).to(torch.uint8) * 255)[:, None, None, None].expand(-1, *self.obs_shape).contiguous()
        done = torch.ones(self.num_envs, dtype=torch.bool)
        info = {"obs_before_reset": last, "episode_return": reward.clone(), "episode_length": torch.ones(self.num_envs)}
        return self._observe(), reward, done, torch.zeros_like(done), info


@pytest.fixture
def pixel_bandit():
    return PixelBandit


@pytest.fixture
def six_iterations_then_a_resume():
    """Runs a replay learner for 6 iterations through ``run()`` (2 envs, action repeat 2), checks the
    results schema, marks the run preempted and resumes it to 7; returns the first run's metrics."""

    def check(algo: str, task: str, overrides: list[str]) -> pd.DataFrame:
        out = run(load_config(algo, task, [*overrides, "iterations=6"]), progress=False)
        summary = json.loads((out / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["iterations"] == 6
        metrics = pd.read_csv(out / "metrics.csv")
        assert list(metrics.columns[: len(METRIC_COLUMNS)]) == METRIC_COLUMNS
        assert metrics["env_steps"].tolist() == [4 * i for i in range(1, 7)]  # 2 envs x action repeat 2

        (out / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # as if preempted
        resumed = run(load_config(algo, task, [*overrides, "iterations=7"]), progress=False)
        summary = json.loads((resumed / "summary.json").read_text())
        assert summary["status"] == "complete" and summary["iterations"] == 7 and summary["resumed"] == 1
        assert pd.read_csv(resumed / "metrics.csv")["iteration"].tolist() == list(range(1, 8))
        return metrics

    return check
