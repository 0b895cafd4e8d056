"""What a run is built from, by the runner and by every script that reopens one: the env its config
names, the learner on it, a learner restored from a run's newest checkpoint, the device and the seeds."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig

from algorithms import Learner, get_learner
from benchmark.config import ConfigError, learner_config
from benchmark.results import latest_checkpoint, load_run_config, load_summary
from envs import DiffEnv, default_device
from envs.pixels import PixelEnv
from envs.render import make_renderer
from envs.tasks.base import Task


def run_device(cfg: DictConfig) -> torch.device:
    """The config's device; ``auto``: cuda when available, else cpu."""
    return default_device() if cfg.device == "auto" else torch.device(cfg.device)


def seed_everything(seed: int) -> None:
    """Python's, NumPy's and torch's global generators (the learners draw from torch's)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def make_env(
    cfg: DictConfig,
    num_envs: int,
    device: torch.device,
    seed: int,
    differentiable: bool = True,
    task: Task | None = None,
    renderer_options: dict | None = None,
):
    """The run's env: state observations, or a frame stack when the config names a renderer.
    ``task`` replaces the config's task by an instance (e.g. a scene grown for a benchmark),
    ``renderer_options`` go to the renderer (e.g. PyTorch3D's ``mesh_detail``)."""
    env = DiffEnv(
        task or cfg.task,
        num_envs,
        device=device,
        seed=seed,
        differentiable=differentiable,
        contact_law=cfg.contact_law,
        action_repeat=cfg.action_repeat,
        capture_graphs=cfg.capture_graphs,
    )
    if cfg.renderer is None:
        return env
    renderer = make_renderer(cfg.renderer, env.task, num_envs, cfg.image_size, cfg.image_size, device,
                             **(renderer_options or {}))  # fmt: skip
    return PixelEnv(env, renderer, frames=cfg.frames)


def build_learner(cfg: DictConfig, env, teacher: Learner | None = None) -> Learner:
    """The config's learner on ``env``, with its teacher when it distils one."""
    learner_class = get_learner(cfg.learner)
    extra = {"teacher": teacher} if learner_class.needs_teacher else {}
    try:
        return learner_class(env, learner_config(cfg), **extra)
    except ValueError as error:  # the learner refuses this env (e.g. a crop larger than the images)
        raise ConfigError(str(error)) from None


def restore_learner(run_dir: Path, device: torch.device) -> tuple[Learner, DictConfig, dict]:
    """A run's learner at its newest checkpoint (a student with its teacher), its config and the
    checkpoint; built on one env."""
    cfg = load_run_config(run_dir)
    teacher = None
    if get_learner(cfg.learner).needs_teacher:
        teacher = restore_learner(run_dir / load_summary(run_dir)["teacher_run"], device)[0]  # shipped: relative
    learner = build_learner(cfg, make_env(cfg, 1, device, cfg.seed, differentiable=False), teacher)
    fresh = learner.state_dict()  # a shipped policy-only checkpoint lacks the optimisers: fresh ones stand in
    fits = lambda state: learner.load_state_dict({**fresh, **state["learner"]})  # noqa: E731
    checkpoint = latest_checkpoint(run_dir, fits=fits, set_aside=False)  # a viewer changes nothing it reads
    if checkpoint is None:
        raise ConfigError(f"{run_dir} has no checkpoint that loads into its config's learner (warnings above)")
    return learner, cfg, checkpoint
