"""State-to-visual DAgger (Mu et al. 2025, with D.Va's SHAC expert): distil a state teacher into a
pixel student.

The teacher is a trained state learner (the runner trains it first, see ``teacher`` in the config);
the student is D.Va's pixel actor (the DrQ-v2 encoder and the same MLP). One iteration:

1. the student acts in the N envs for ``horizon`` steps, continuing from the last segment (with
   probability ``beta`` an env executes the teacher's action instead; 0 in the paper's code);
2. the teacher labels every visited state with its deterministic action, and the (frame stack, label)
   pairs enter a FIFO dataset of ``dataset_size`` pairs;
3. once it holds ``learning_starts`` pairs, behaviour cloning: minibatches of ``batch_size``, up to
   ``max_updates``, stopping early at the first minibatch loss below ``stop_loss``. The loss compares
   pre-tanh actions: mean squared error of the student's mean (``loss=mse``), or the negative
   log-likelihood of the teacher's action under the student's Gaussian (``loss=nll``, cartpole's
   stochastic student).

The dataset is not checkpointed (like the replay buffers): a resumed run refills it to
``learning_starts`` before it trains again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from algorithms.base import MAX_BATCH, MAX_STEPS, MAX_WIDTH, Learner, LearnerConfig, bounded
from algorithms.common import EpisodeStats, PhaseTimer, linear_decay
from algorithms.networks import GaussianActor, PixelEncoder, orthogonal_init
from envs.pixels import PixelEnv

# labels are tanh-squashed actions; atanh of (1 - 1e-6) caps a saturated teacher's pre-tanh action at ~7.3
LABEL_LIMIT = 1.0 - 1e-6


@dataclass
class DAggerConfig(LearnerConfig):
    iterations: int = 10_000  # segments (the paper's epochs; humanoid 40000)
    horizon: int = bounded(32, low=1, high=MAX_STEPS)  # steps per segment
    actor_hidden: list[int] = bounded([64, 64], low=1, high=MAX_WIDTH)  # D.Va's actor for the task
    log_std_init: float = -1.0
    # mse: deterministic student; nll: stochastic student (it samples when it acts)
    loss: str = bounded("mse", choices=("mse", "nll"))
    beta: float = bounded(0.0, low=0, high=1)  # probability that an env executes the teacher's action at a step
    # (frame stack, label) pairs: 9 x H x W bytes each (0.64 GB at 84 x 84 per 1e4)
    dataset_size: int = bounded(100_000, low=1)
    # auto: the run's device; cpu keeps the pairs in host memory
    dataset_device: str = bounded("auto", choices=("auto", "cpu"))
    learning_starts: int = bounded(32_000, low=0)  # pairs collected before the first update
    batch_size: int = bounded(128, low=1, high=MAX_BATCH)
    max_updates: int = bounded(2000, low=1)  # per iteration
    stop_loss: float = 0.1  # an iteration's updates stop at the first minibatch loss below this
    lr: float = bounded(2e-3, above=0)  # decays linearly to final_lr over iterations x max_updates updates
    final_lr: float = bounded(1e-5, low=0)
    betas: list[float] = bounded([0.7, 0.95], low=0, below=1, count=2)  # Adam


class FIFODataset:
    """The newest ``capacity`` (observation, label) pairs; a full dataset overwrites its oldest."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: torch.dtype, label_dim: int,
                 device: torch.device) -> None:  # fmt: skip
        self.capacity, self.added = capacity, 0
        self.obs = torch.zeros(capacity, *obs_shape, dtype=obs_dtype, device=device)
        self.label = torch.zeros(capacity, label_dim, device=device)

    def __len__(self) -> int:
        return min(self.added, self.capacity)

    def add(self, obs: torch.Tensor, label: torch.Tensor) -> None:
        keep = min(obs.shape[0], self.capacity)  # a batch larger than the dataset keeps its newest
        self.added += obs.shape[0] - keep
        index = (self.added + torch.arange(keep, device=self.obs.device)) % self.capacity
        self.obs[index] = obs[-keep:].to(self.obs.device, self.obs.dtype)
        self.label[index] = label[-keep:].to(self.label.device, torch.float32)
        self.added += keep

    def oldest_first(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Every pair held, oldest first."""
        index = (self.added - len(self) + torch.arange(len(self), device=self.obs.device)) % self.capacity
        return self.obs[index], self.label[index]

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``batch`` distinct pairs drawn uniformly (the head of a fresh permutation, as D.Va's code)."""
        index = torch.randperm(len(self), device=self.obs.device)[:batch]
        return self.obs[index], self.label[index]


class DAgger(Learner):
    name = "dagger"
    Config = DAggerConfig
    needs_teacher = True

    def __init__(self, env: PixelEnv, config: DAggerConfig, teacher: Learner) -> None:
        super().__init__(env, config)
        if len(env.obs_shape) != 3:
            raise ValueError("dagger's student learns from pixels: give the run a renderer (renderer=newton)")
        dev = env.device
        self.teacher = teacher
        self.encoder = PixelEncoder(env.obs_shape, config.actor_hidden[0]).to(dev)
        self.actor = GaussianActor(config.actor_hidden[0], config.actor_hidden, env.act_dim, config.log_std_init)
        if config.loss == "mse":  # D.Va's deterministic student (ActorDeterministicMLP) starts orthogonal
            orthogonal_init(self.actor.mean, math.sqrt(2))
        self.actor.to(dev)
        self.params = list(self.encoder.parameters()) + list(self.actor.parameters())
        self.opt = torch.optim.Adam(self.params, lr=config.lr, betas=tuple(config.betas))
        data_device = dev if config.dataset_device == "auto" else torch.device("cpu")
        self.obs = env.reset()
        self.dataset = FIFODataset(config.dataset_size, env.obs_shape, self.obs.dtype, env.act_dim, data_device)
        self.state = env.state_observation()
        self.iteration = 0
        self.updates = 0  # over the run: the learning rate decays with it
        self.timer = PhaseTimer(env.device)
        self.episodes = EpisodeStats()

    # ------------------------------------------------------------------ policy
    def _mean(self, obs: torch.Tensor) -> torch.Tensor:
        """The student's pre-tanh mean action."""
        return self.actor.mean(self.encoder(obs))

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self.actor(self.encoder(obs), deterministic)

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> dict[str, float]:
        imitation_error = self.collect()
        loss, updates = self.clone_teacher()
        self.iteration += 1
        return {
            "env_steps": self.config.horizon * self.env.num_envs * self.env.action_repeat,
            "imitation_error": imitation_error,
            "bc_loss": loss,
            "bc_updates": updates,
            "dataset_pairs": len(self.dataset),
            **self.episodes.pop(),
            **self.timer.pop(),
        }

    @torch.no_grad()
    def collect(self) -> float:
        """One segment into the dataset; returns the student's imitation error on it, before it trains on
        it: the mean squared difference of its mean action from the teacher's, per action dimension."""
        cfg, env = self.config, self.env
        sampled = cfg.loss == "nll"
        error = torch.zeros((), device=env.device)
        for _ in range(cfg.horizon):
            with self.timer("label"):
                label = self.teacher.act(self.state, deterministic=True)
            with self.timer.apart_from_rendering("forward", env):
                student = self.act(self.obs, deterministic=not sampled)
                error += ((torch.tanh(self._mean(self.obs)) - label) ** 2).mean()
                if cfg.beta > 0:
                    teach = torch.rand(env.num_envs, 1, device=env.device) < cfg.beta
                    student = torch.where(teach, label, student)
                self.dataset.add(self.obs, label)
                self.obs, _, _, _, info = env.step(student)
                self.state = info["state"]
                self.episodes.record(info)
        return float(error) / cfg.horizon

    def clone_teacher(self) -> tuple[float, int]:
        """Behaviour cloning on the dataset; returns (the last minibatch loss, updates made)."""
        cfg = self.config
        if len(self.dataset) < max(cfg.learning_starts, 1):
            return float("nan"), 0
        loss_value, made = float("nan"), 0
        with self.timer("update"):
            while made < cfg.max_updates:
                progress = self.updates / (cfg.iterations * cfg.max_updates)
                for group in self.opt.param_groups:
                    group["lr"] = linear_decay(cfg.lr, cfg.final_lr, progress)
                obs, label = self.dataset.sample(cfg.batch_size)
                loss = self.imitation_loss(obs.to(self.env.device), label.to(self.env.device))
                self.opt.zero_grad(set_to_none=True)
                loss.backward()
                self.opt.step()
                self.updates, made = self.updates + 1, made + 1
                loss_value = loss.item()
                if loss_value < cfg.stop_loss:
                    break
        return loss_value, made

    def imitation_loss(self, obs: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """The loss on pre-tanh actions: MSE of the student's mean, or the NLL of its Gaussian."""
        target = torch.atanh(label.clamp(-LABEL_LIMIT, LABEL_LIMIT))
        mean = self._mean(obs)
        if self.config.loss == "mse":
            return F.mse_loss(mean, target)
        student = torch.distributions.Normal(mean, self.actor.log_std.exp())
        return -student.log_prob(target).sum(-1).mean()

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "encoder": self.encoder.state_dict(),
            "actor": self.actor.state_dict(),
            "opt": self.opt.state_dict(),
            "iteration": self.iteration,
            "updates": self.updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("encoder", "actor", "opt"):
            getattr(self, key).load_state_dict(state[key])
        self.iteration, self.updates = state["iteration"], state["updates"]
