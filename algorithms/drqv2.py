"""DrQ-v2 (Yarats et al. 2021): DDPG from pixels with image augmentation.

Per iteration the learner takes one step in each of the N envs, stores the frames in the replay
buffer, then makes ``updates_per_step`` updates (the paper's parallel variant: N / 2). One update:

1. sample n-step transitions (o, a, R, gamma^n, o') as upstream DrQ-v2 does (its ``replay_buffer.py``,
   as D.Va vendors it): an episode uniformly among the finished ones, then a step uniformly within it,
   always with full n-step returns (:meth:`~algorithms.replay.ReplayBuffer.sample_by_episode`); augment
   both frame stacks by a random shift;
2. critic: y = R + gamma^n * min(Q1', Q2')(o', a' ~ clip(mu(o') + clip(eps, c), -1, 1)) with the
   target critic; the twin Q and the conv encoder minimise (Q1 - y)^2 + (Q2 - y)^2;
3. actor: maximise min(Q1, Q2)(o, mu(o) + clipped noise) on the encoder's detached features (the
   encoder learns from the critic only);
4. target critic <- soft update (tau).

Exploration noise has a scheduled standard deviation (1.0 -> 0.1, linear in agent steps: one per env per
policy step, as DrQ-v2 and D.Va count them, so 500k steps are 1M frames at action repeat 2), the first
``seed_frames`` are uniformly random actions. Updates begin once the seed frames are in AND the replay
holds a finished episode of at least ``n_step`` steps (an episode being collected is never sampled; on a
task without early termination that is the end of the first episodes). The replay buffer is not
checkpointed (21 GB at the paper's settings): a resumed run refills it before it updates again.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.augment import random_shift
from algorithms.base import MAX_BATCH, MAX_WIDTH, bounded
from algorithms.common import linear_decay
from algorithms.networks import ConvEncoder, TwinQ, on_device, relu_mlp, soft_update, trunk
from algorithms.replay_learner import Metrics, ReplayConfig, ReplayLearner
from envs.pixels import PixelEnv


@dataclass
class DrQv2Config(ReplayConfig):
    buffer_size: int = 1_000_000  # frames, all envs together: 3 x 84 x 84 bytes each (~21 GB at 1e6)
    batch_size: int = bounded(256, low=1, high=MAX_BATCH)
    n_step: int = bounded(3, low=1)
    gamma: float = bounded(0.99, low=0, high=1)
    lr: float = bounded(1e-4, above=0)  # encoder, actor and critic
    feature_dim: int = bounded(50, low=1, high=MAX_WIDTH)  # trunk output
    hidden_dim: int = bounded(1024, low=1, high=MAX_WIDTH)  # actor and Q heads: two hidden layers each
    critic_tau: float = bounded(0.01, low=0, high=1)
    std_start: float = bounded(1.0, low=0)  # exploration noise: linear from std_start to std_end ...
    std_end: float = bounded(0.1, low=0)
    std_decay_steps: int = bounded(500_000, low=1)  # ... over this many agent steps (one per env per policy step)
    std_clip: float = bounded(0.3, low=0)  # noise clip for the target and actor actions
    seed_frames: int = 4000
    updates_per_step: int = 0  # 0: num_envs / 2 (the paper's)
    shift_pad: int = bounded(4, low=0)  # random shift augmentation (0: none)


class Actor(nn.Module):
    """Trunk to ``feature_dim``, then a ReLU MLP to the mean action tanh(mu); the std is scheduled."""

    def __init__(self, repr_dim: int, act_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)
        self.policy = relu_mlp(feature_dim, [hidden_dim, hidden_dim], act_dim)

    def forward(self, h: torch.Tensor, std: float, clip: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean action, a noisy action): mean + N(0, std) noise (clipped to +-``clip`` when given),
        clamped to [-1, 1] with a straight-through gradient, as DrQ-v2's truncated normal."""
        mean = torch.tanh(self.policy(self.trunk(h)))
        noise = torch.randn_like(mean) * std
        if clip is not None:
            noise = noise.clamp(-clip, clip)
        action = mean + noise
        return mean, action - action.detach() + action.detach().clamp(-1.0, 1.0)


class Critic(nn.Module):
    """Its own trunk on the conv features, then twin Q heads."""

    def __init__(self, repr_dim: int, act_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim)
        self.q = TwinQ(feature_dim, act_dim, [hidden_dim, hidden_dim])

    def forward(self, h: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.q(self.trunk(h), action)


class DrQv2(ReplayLearner):
    name = "drqv2"
    Config = DrQv2Config
    # 2: upstream's replay sampling (an episode uniformly, then a step; full n-step returns)
    version = 2

    def __init__(self, env: PixelEnv, config: DrQv2Config) -> None:
        super().__init__(env, config)
        dev = env.device
        self.encoder = on_device(ConvEncoder(env.obs_shape), dev)
        dims = (self.encoder.repr_dim, env.act_dim, config.feature_dim, config.hidden_dim)
        self.actor = Actor(*dims).to(dev)
        self.critic = Critic(*dims).to(dev)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), lr=config.lr)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), lr=config.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.lr)
        self.updates_per_step = config.updates_per_step or max(env.num_envs // 2, 1)

    def replay_can_sample(self) -> bool:
        """A finished episode of at least ``n_step`` steps (what the replay's ``sample_by_episode`` draws)."""
        return self.replay.can_sample_episodes(self.config.n_step)

    # ------------------------------------------------------------------ acting
    def std(self) -> float:
        """The scheduled exploration std at the agent steps taken so far (frames / action repeat)."""
        cfg = self.config
        agent_steps = self.frames / self.env.action_repeat
        return linear_decay(cfg.std_start, cfg.std_end, agent_steps / cfg.std_decay_steps)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        mean, noisy = self.actor(self.encoder(obs), self.std())
        return mean if deterministic else noisy

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> dict[str, float]:
        steps = self.collect()
        metrics = dict.fromkeys(("critic_loss", "actor_loss", "q_target"), math.nan)  # until updates begin
        if self.ready():
            with self.timer("update"):
                for _ in range(self.updates_per_step):
                    metrics = self.update()
        return self.iteration_metrics(steps, {"std": self.std(), **metrics})

    def update(self) -> Metrics:
        """One DrQ-v2 update on a replay batch (steps 1-4 of the module docstring)."""
        cfg = self.config
        batch = self.replay.sample_by_episode(cfg.batch_size, cfg.n_step, cfg.gamma)
        device = self.env.device
        # uint8 throughout: the encoder scales pixels to [-0.5, 0.5] here as when acting
        obs = random_shift(batch.obs.to(device), cfg.shift_pad)
        next_obs = random_shift(batch.next_obs.to(device), cfg.shift_pad)
        h = self.encoder(obs)
        with torch.no_grad():
            h_next = self.encoder(next_obs)
        target = self.critic_target_value(batch.reward.to(device), batch.discount.to(device), h_next)
        critic_loss = self.update_critic(h, batch.action.to(device), target)
        actor_loss = self.update_actor(h.detach())
        soft_update(self.critic_target, self.critic, cfg.critic_tau)
        return {"critic_loss": critic_loss, "actor_loss": actor_loss, "q_target": target.mean()}

    @torch.no_grad()
    def critic_target_value(self, reward: torch.Tensor, discount: torch.Tensor, h_next: torch.Tensor) -> torch.Tensor:
        """y = R + gamma^n * min(Q1', Q2')(o', a'), a' the actor's clipped-noise action at o'."""
        _, next_action = self.actor(h_next, self.std(), clip=self.config.std_clip)
        q1, q2 = self.critic_target(h_next, next_action)
        return reward + discount * torch.minimum(q1, q2)

    def update_critic(self, h: torch.Tensor, action: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        q1, q2 = self.critic(h, action)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        self.encoder_opt.step()
        return loss.detach()

    def update_actor(self, h: torch.Tensor) -> torch.Tensor:
        _, action = self.actor(h, self.std(), clip=self.config.std_clip)
        q1, q2 = self.critic(h, action)
        loss = -torch.minimum(q1, q2).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()  # reaches the critic's parameters too; only the actor's step uses them
        self.actor_opt.step()
        return loss.detach()

    # ------------------------------------------------------------------ checkpoints
    MODULES = ("encoder", "actor", "critic", "critic_target", "encoder_opt", "actor_opt", "critic_opt")

    def state_dict(self) -> dict[str, Any]:
        return {**{key: getattr(self, key).state_dict() for key in self.MODULES}, "frames": self.frames}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.MODULES:
            getattr(self, key).load_state_dict(state[key])
        self.frames = state["frames"]
