"""The README's promise, tried as a new user would: a task is one file in ``envs/tasks/``, a learner one
file in ``algorithms/`` plus ``configs/<algo>/defaults.yaml``; neither touches the runner. Each test
writes its file into a temporary directory that joins the package's search path (a temporary copy of
the package, as far as the registry can tell), so the real tree is untouched."""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

import algorithms
import benchmark.config as config_module
import envs.tasks
from benchmark.build import restore_learner
from benchmark.config import load_config
from benchmark.evaluate import evaluate
from benchmark.run import run
from envs import DiffEnv

PENDULUM = '''
"""A pendulum that must swing up and balance: one hinge, one motor."""
import math

import newton
import torch
import warp as wp

from envs.tasks.base import Camera, Task


class Pendulum(Task):
    name = "pendulum"
    obs_dim, act_dim = 3, 1
    episode_length = 50
    substeps = 4
    camera = Camera(body=None, target=(0.0, 0.0, 1.0), eye_offset=(0.0, -4.0, 0.0))
    reset_q_noise = 0.1

    def build(self, builder):
        cfg = newton.ModelBuilder.ShapeConfig(density=100.0, has_shape_collision=False)
        pole = builder.add_link(label="pole")
        builder.add_shape_capsule(pole, xform=wp.transform((0.0, 0.0, 0.4), wp.quat_identity()), radius=0.08,
                                  half_height=0.3, cfg=cfg, color=(0.9, 0.45, 0.1))
        hinge = builder.add_joint_revolute(-1, pole, axis=(0.0, 1.0, 0.0),
                                           parent_xform=wp.transform((0.0, 0.0, 1.0), wp.quat_identity()))
        builder.add_articulation([hinge])
        builder.joint_q[-1] = math.pi  # hanging down

    def actuators(self, model):
        import numpy as np

        return np.array([0]), np.array([20.0], np.float32)

    def observe(self, q, qd, actions):
        return torch.stack([torch.sin(q[:, 0]), torch.cos(q[:, 0]), qd[:, 0]], -1)

    def reward(self, q, qd, actions):
        upright = torch.remainder(q[:, 0] + math.pi, 2 * math.pi) - math.pi
        return -(upright**2) - 0.1 * qd[:, 0] ** 2

    def terminated(self, q, qd):
        return torch.zeros_like(q[:, 0], dtype=torch.bool)
'''

RANDOM_SEARCH = '''
"""Basic random search (Mania et al. 2018), deterministic linear policy: one learner in one file."""
from dataclasses import dataclass

import torch

from algorithms.base import Learner, LearnerConfig, require
from algorithms.common import EpisodeStats


@dataclass
class RandomSearchConfig(LearnerConfig):
    directions: int = 2
    step_size: float = 0.02
    noise: float = 0.03
    horizon: int = 10

    def __post_init__(self):
        super().__post_init__()
        require(self.directions >= 1, f"directions={self.directions}: must be at least 1")


class RandomSearch(Learner):
    name = "random_search"
    Config = RandomSearchConfig

    def __init__(self, env, config):
        super().__init__(env, config)
        self.weights = torch.zeros(env.act_dim, env.obs_dim, device=env.device)
        self.episodes, self.obs = EpisodeStats(), env.reset()

    def act(self, obs, deterministic=True):
        return torch.tanh(obs @ self.weights.T)

    @torch.no_grad()
    def _window_return(self, weights):
        total = torch.zeros(self.env.num_envs, device=self.env.device)
        for _ in range(self.config.horizon):
            self.obs, reward, _, _, info = self.env.step(torch.tanh(self.obs @ weights.T))
            self.episodes.record(info)
            total += reward
        return total.mean()

    def train_iteration(self):
        cfg, step = self.config, torch.zeros_like(self.weights)
        for _ in range(cfg.directions):
            delta = torch.randn_like(self.weights)
            ahead = self._window_return(self.weights + cfg.noise * delta)
            step += (ahead - self._window_return(self.weights - cfg.noise * delta)) * delta
        self.weights += cfg.step_size / cfg.directions * step
        env_steps = 2 * cfg.directions * cfg.horizon * self.env.num_envs
        return {"env_steps": env_steps, **self.episodes.pop()}

    def state_dict(self):
        return {"weights": self.weights.clone()}

    def load_state_dict(self, state):
        self.weights.copy_(state["weights"])
'''

SMALL = ["preset=cpu", "num_envs=2", "eval_envs=2", "eval_max_steps=10", "checkpoint_every=1"]


@pytest.fixture
def pendulum_task(tmp_path, monkeypatch):
    """``pendulum.py`` in a directory on ``envs.tasks``' search path, found by the registry."""
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "pendulum.py").write_text(PENDULUM)
    monkeypatch.setattr(envs.tasks, "__path__", [*envs.tasks.__path__, str(tmp_path / "tasks")])
    envs.tasks.registry.cache_clear()
    yield
    envs.tasks.registry.cache_clear()


@pytest.mark.parametrize("algo", ["shac", "dva"])
def test_a_task_added_as_one_file_runs_state_shac_and_dva_with_no_other_file(pendulum_task, tmp_path, algo):
    assert not list(config_module.CONFIG_DIR.glob("*/pendulum.yaml"))  # no config of its own
    overrides = [*SMALL, "iterations=2", "horizon=4", "image_size=16", f"results_dir={tmp_path}"]
    out = run(load_config(algo, "pendulum", overrides), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["iterations"] == 2 and summary["task"] == "pendulum"
    assert out.name == f"{algo}-pendulum-seed0-preset-cpu_checkpoint_every-1_horizon-4_image_size-16_num_envs-2"
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["actor_grad_norm"].gt(0).all()  # the physics' gradients reached the actor
    assert metrics["time_render"].gt(0).all() == (algo == "dva")
    env = DiffEnv("pendulum", 1, device="cpu")  # the hanging start: the reward is -pi^2, give or take the noise
    assert -10.5 < env.task.reward(env.joint_q, env.joint_qd, env.actions).item() < -9.2


@pytest.fixture
def random_search_learner(tmp_path, monkeypatch):
    """``random_search.py`` on ``algorithms``' search path and ``configs/random_search/defaults.yaml`` in a
    copy of the configs folder."""
    (tmp_path / "learners").mkdir()
    (tmp_path / "learners" / "random_search.py").write_text(RANDOM_SEARCH)
    monkeypatch.setattr(algorithms, "__path__", [*algorithms.__path__, str(tmp_path / "learners")])
    configs = tmp_path / "configs"
    shutil.copytree(config_module.CONFIG_DIR, configs)
    (configs / "random_search").mkdir()
    (configs / "random_search" / "defaults.yaml").write_text("learner: random_search\niterations: 3\n")
    monkeypatch.setattr(config_module, "CONFIG_DIR", configs)
    algorithms.registry.cache_clear()
    yield
    algorithms.registry.cache_clear()


def test_a_learner_added_as_one_file_and_a_config_runs_resumes_and_evaluates(random_search_learner, tmp_path):
    overrides = [*SMALL, f"results_dir={tmp_path / 'results'}"]
    out = run(load_config("random_search", "cartpole", overrides), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["iterations"] == 3 and "eval_return" in summary
    assert out.name == "random_search-cartpole-seed0-preset-cpu_checkpoint_every-1_num_envs-2"  # no timestamp

    (out / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # as if preempted
    again = run(load_config("random_search", "cartpole", [*overrides, "iterations=4"]), progress=False)
    assert again == out  # the same command names the same run: it resumes
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["status"] == "complete" and resumed["resumed"] == 1
    assert pd.read_csv(out / "metrics.csv")["iteration"].tolist() == [1, 2, 3, 4]

    learner, cfg, checkpoint = restore_learner(out, torch.device("cpu"))
    assert checkpoint["runner"]["iteration"] == 4 and learner.weights.abs().sum() > 0
    mean, length = evaluate(learner, cfg, torch.device("cpu"))
    assert length == 10 and mean == pytest.approx(resumed["eval_return"])


def test_the_help_lists_the_registered_tasks_and_algos(pendulum_task, capsys):
    from benchmark.run import main

    with pytest.raises(SystemExit):
        main(["--help"])
    shown = capsys.readouterr().out
    assert "pendulum" in shown and "shac_diffrender" in shown


def test_an_unknown_task_names_where_tasks_live():
    with pytest.raises(
        config_module.ConfigError, match=r"choose one of: .*humanoid \(a task is one file in envs/tasks/"
    ):
        load_config("shac", "pendulum")


# small values for whichever of these fields a learner has: a learner added since needs no entry here
SMALL_SETTINGS = {
    "num_envs": 2, "image_size": 32, "crop_size": 32, "eval_envs": 2, "eval_max_steps": 4, "horizon": 3,
    "actor_hidden": [16], "critic_hidden": [16], "hidden_dim": 16, "feature_dim": 8, "batch_size": 4,
    "buffer_size": 400, "seed_frames": 8, "deter": 16, "units": 16, "stoch": 4, "classes": 4, "cnn_depth": 4,
    "batch_length": 4, "train_ratio": 8, "pretrain": 2, "learning_starts": 7, "max_updates": 2, "dataset_size": 100,
    "teacher_overrides": "[iterations=2,num_envs=2,horizon=4,eval_envs=2,eval_max_steps=4]",
}  # fmt: skip


@pytest.mark.parametrize("learner", list(algorithms.registry()))
def test_every_registered_learner_runs_resumes_and_evaluates_on_one_task(learner, tmp_path):
    """Generated from the registry: the first algo whose defaults name the learner, small where it has
    the field, 2 iterations on the cartpole, then resumed to 3 by the same command and evaluated."""
    algo = next(a for a in config_module.algorithms() if load_config(a, "cartpole").learner == learner)
    fields = set(load_config(algo, "cartpole"))
    small = [f"{k}={v}" for k, v in SMALL_SETTINGS.items() if k in fields]
    overrides = ["preset=cpu", *small, "checkpoint_every=1", f"results_dir={tmp_path}"]
    out = run(load_config(algo, "cartpole", [*overrides, "iterations=2"]), progress=False)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete" and summary["iterations"] == 2
    (out / "summary.json").write_text(json.dumps({**summary, "status": "interrupted"}))  # as if preempted
    assert run(load_config(algo, "cartpole", [*overrides, "iterations=3"]), progress=False) == out
    resumed = json.loads((out / "summary.json").read_text())
    assert resumed["status"] == "complete" and resumed["resumed"] == 1 and np.isfinite(resumed["eval_return"])
    assert pd.read_csv(out / "metrics.csv")["iteration"].tolist() == [1, 2, 3]
