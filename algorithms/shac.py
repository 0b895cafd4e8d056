"""SHAC (Xu et al. 2021): short-horizon analytic policy gradients through a differentiable simulator,
with a TD(lambda) critic on the state.

One trainer for the whole APG family, with two switches:

- what the actor sees: the env's observation, i.e. the state, or a frame stack when the run has a
  renderer (``PixelEnv``); images go through the DrQ-v2 encoder. The critic always sees the state.
- ``detach_actor_input`` (D.Va's switch): the actor sees ``obs.detach()``, so the policy gradient flows
  only through dynamics and rewards (the decoupled policy gradient, DPG), never through the
  observation: ``dpg_state`` in state space, ``dva`` with images. Attached images with the ``diff``
  renderer send gradients through the renderer into the state (``shac_diffrender``).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from algorithms.base import MAX_STEPS, MAX_WIDTH, Learner, LearnerConfig, bounded
from algorithms.common import EpisodeStats, PhaseTimer, RunningMeanStd, linear_decay
from algorithms.networks import GaussianActor, PixelEncoder, mlp, on_device
from envs import Env
from envs.core import branch_needed


@dataclass
class SHACConfig(LearnerConfig):
    horizon: int = bounded(32, low=1, high=MAX_STEPS)  # steps per short-horizon window
    gamma: float = bounded(0.99, low=0, high=1)
    lam: float = bounded(0.95, low=0, high=1)  # TD(lambda) for the critic targets
    actor_hidden: list[int] = bounded([64, 64], low=1, high=MAX_WIDTH)
    critic_hidden: list[int] = bounded([64, 64], low=1, high=MAX_WIDTH)
    actor_lr: float = bounded(2e-3, above=0)
    critic_lr: float = bounded(2e-4, above=0)
    final_lr: float = bounded(1e-5, low=0)  # both learning rates decay linearly to this over ``iterations``
    betas: list[float] = bounded([0.7, 0.95], low=0, below=1, count=2)  # Adam
    critic_iterations: int = bounded(16, low=1)  # critic passes over each window's data
    critic_minibatches: int = bounded(4, low=1)
    target_alpha: float = bounded(0.2, low=0, high=1)  # target <- alpha * target + (1 - alpha) * critic
    grad_clip: float = bounded(1.0, above=0)  # max gradient norm (actor and critic)
    log_std_init: float = -1.0
    normalize_obs: bool = True
    detach_actor_input: bool = False  # D.Va's decoupled policy gradient


class SHAC(Learner):
    name = "shac"
    Config = SHACConfig
    # 2: one normaliser per window, updated after it, and the critic's unshuffled minibatches (D.Va's and SHAC's)
    version = 2

    def __init__(self, env: Env, config: SHACConfig) -> None:
        super().__init__(env, config)
        dev = env.device
        pixels = len(env.obs_shape) == 3
        # images: encoder + trunk to the first actor width, then the actor MLP; state: normalised state
        self.encoder = on_device(PixelEncoder(env.obs_shape, config.actor_hidden[0]), dev) if pixels else None
        actor_in = config.actor_hidden[0] if pixels else env.state_dim
        self.actor = GaussianActor(actor_in, config.actor_hidden, env.act_dim, config.log_std_init).to(dev)
        self.critic = mlp(env.state_dim, config.critic_hidden, 1, orthogonal_gain=math.sqrt(2)).to(dev)
        self.target_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.obs_rms = RunningMeanStd((env.state_dim,)).to(dev)
        betas = tuple(config.betas)
        self.actor_params = list(self.actor.parameters()) + (list(self.encoder.parameters()) if pixels else [])
        self.actor_opt = torch.optim.Adam(self.actor_params, lr=config.actor_lr, betas=betas)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=config.critic_lr, betas=betas)
        self.iteration = 0
        self.timer = PhaseTimer(env.device)
        self.episodes = EpisodeStats()
        self.obs = env.reset()
        self.state = env.state_observation()

    # ------------------------------------------------------------------ policy
    def _normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_rms.normalize(obs) if self.config.normalize_obs else obs

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        """What the actor reads: the encoded frames, or the normalised state (public for diagnostics)."""
        return self.encoder(obs) if self.encoder is not None else self._normalize(obs)

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        return self.actor(self.features(obs), deterministic)

    def _value(self, network: nn.Module, obs: torch.Tensor) -> torch.Tensor:
        return network(self._normalize(obs)).squeeze(-1)

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> dict[str, float]:
        cfg, env = self.config, self.env
        progress = self.iteration / max(cfg.iterations, 1)
        for opt, lr in ((self.actor_opt, cfg.actor_lr), (self.critic_opt, cfg.critic_lr)):
            for group in opt.param_groups:
                group["lr"] = linear_decay(lr, cfg.final_lr, progress)

        with self.timer.apart_from_rendering("forward", env):
            actor_loss, window = self.window_loss()
        with self.timer("backward"):
            self.actor_opt.zero_grad(set_to_none=True)
            actor_loss.backward()
        with self.timer("update"):
            grad_norm = nn.utils.clip_grad_norm_(self.actor_params, cfg.grad_clip)
            skipped = not torch.isfinite(grad_norm)
            if not skipped:
                self.actor_opt.step()
            critic_loss = self._train_critic(*window)
            with torch.no_grad():
                for target, online in zip(self.target_critic.parameters(), self.critic.parameters(), strict=True):
                    target.lerp_(online, 1.0 - cfg.target_alpha)
        env.cut_graph()
        self.obs, self.state = self.obs.detach(), self.state.detach()
        self.iteration += 1
        return {
            "env_steps": cfg.horizon * env.num_envs * env.action_repeat,
            "actor_loss": actor_loss.item(),
            "critic_loss": critic_loss,
            "actor_grad_norm": float(grad_norm),
            "skipped_updates": int(skipped),
            "policy_std": self.actor.log_std.exp().mean().item(),
            **self.episodes.pop(),
            **self.timer.pop(),
        }

    def window_loss(self, policy: Callable[[int, torch.Tensor], torch.Tensor] | None = None):
        """Actor loss of one window, plus the (detached) data the critic trains on (public: the gradient
        diagnostics replay windows through it, ``benchmark/diagnostics/apg_vs_dpg.py``).

        The state normaliser is D.Va's and SHAC's: one set of statistics normalises the whole window
        (the critic's inputs and targets, a state actor's input), and the window's raw states update it
        once at the end, so the next window sees them. The critic trains on the states as normalised
        here. ``policy(t, obs) -> actions`` stands in for the actor (the gradient diagnostics replay a
        window with fixed noise, detached inputs or open-loop actions)."""
        cfg, env = self.config, self.env
        n, h = env.num_envs, cfg.horizon
        state_buf = torch.empty(h, n, env.state_dim, device=env.device)
        raw_states = torch.empty(h + 1, n, env.state_dim, device=env.device)  # statistics' next update
        rewards = torch.empty(h, n, device=env.device)
        dones = torch.empty(h, n, device=env.device)
        next_values = torch.empty(h, n, device=env.device)
        discount = torch.ones(n, device=env.device)
        reward_sum = torch.zeros(n, device=env.device)
        loss = torch.zeros((), device=env.device)

        obs, state = self.obs, self.state
        raw_states[0] = state.detach()
        for t in range(h):
            state_buf[t] = self._normalize(state.detach())
            if policy is None:
                actions = self.actor(self.features(obs.detach() if cfg.detach_actor_input else obs))
            else:
                actions = policy(t, obs)
            obs, reward, terminated, truncated, info = env.step(actions)
            state = info["state"]
            raw_states[t + 1] = state.detach()
            self.episodes.record(info)
            done = terminated | truncated

            # bootstrap with the target critic; truncated envs use their true last observation,
            # terminated ones nothing
            value = self._value(self.target_critic, state)
            if branch_needed(done):
                last_value = self._value(self.target_critic, info["state_before_reset"])
                last_ok = truncated & torch.isfinite(last_value) & (last_value.abs() < 1e6)
                value = torch.where(done, torch.where(last_ok, last_value, torch.zeros_like(value)), value)

            reward_sum = reward_sum + discount * reward
            ends_here = done if t < h - 1 else torch.ones_like(done)
            loss = loss - torch.where(ends_here, reward_sum + cfg.gamma * discount * value, 0.0).sum()
            discount = torch.where(done, torch.ones_like(discount), discount * cfg.gamma)
            reward_sum = torch.where(done, torch.zeros_like(reward_sum), reward_sum)

            rewards[t], dones[t], next_values[t] = reward.detach(), ends_here.float(), value.detach()
        if cfg.normalize_obs:
            # the window's start and every state after a step, as D.Va and SHAC count them (a window's
            # start is also the previous window's last state: counted in both)
            self.obs_rms.update(raw_states)
        self.obs, self.state = obs, state
        return loss / (h * n), (state_buf, rewards, dones, next_values)

    # ------------------------------------------------------------------ critic
    def _td_lambda_targets(self, rewards, dones, next_values) -> torch.Tensor:
        cfg = self.config
        targets = torch.empty_like(rewards)
        a = torch.zeros_like(rewards[0])
        b = torch.zeros_like(rewards[0])
        lam = torch.ones_like(rewards[0])
        for t in reversed(range(rewards.shape[0])):
            d = dones[t]
            lam = lam * cfg.lam * (1 - d) + d
            a = (1 - d) * (
                cfg.lam * cfg.gamma * a + cfg.gamma * next_values[t] + (1 - lam) / (1 - cfg.lam) * rewards[t]
            )
            b = cfg.gamma * (next_values[t] * d + b * (1 - d)) + rewards[t]
            targets[t] = (1 - cfg.lam) * a + lam * b
        return targets

    def _train_critic(self, state_buf, rewards, dones, next_values) -> float:
        """``critic_iterations`` passes over the window in the same ``critic_minibatches`` chunks, time
        step by time step (SHAC's and D.Va's ``CriticDataset``, never shuffled). ``state_buf`` holds the
        states already normalised as the window saw them."""
        cfg = self.config
        obs = state_buf.reshape(-1, state_buf.shape[-1])
        targets = self._td_lambda_targets(rewards, dones, next_values).reshape(-1)
        batch = max(obs.shape[0] // cfg.critic_minibatches, 1)
        chunks = [slice(start, start + batch) for start in range(0, obs.shape[0], batch)]
        total = 0.0
        for _ in range(cfg.critic_iterations):
            for chunk in chunks:
                loss = ((self.critic(obs[chunk]).squeeze(-1) - targets[chunk]) ** 2).mean()
                self.critic_opt.zero_grad(set_to_none=True)
                loss.backward()
                if torch.isfinite(nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.grad_clip)):
                    self.critic_opt.step()  # a non-finite step would poison the critic for good
                total += loss.item()
        return total / (cfg.critic_iterations * len(chunks))

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        return {
            "actor": self.actor.state_dict(),
            "encoder": self.encoder.state_dict() if self.encoder is not None else None,
            "critic": self.critic.state_dict(),
            "target_critic": self.target_critic.state_dict(),
            "obs_rms": self.obs_rms.state_dict(),
            "actor_opt": self.actor_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "iteration": self.iteration,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("actor", "critic", "target_critic", "obs_rms", "actor_opt", "critic_opt"):
            getattr(self, key).load_state_dict(state[key])
        if self.encoder is not None:
            self.encoder.load_state_dict(state["encoder"])
        self.iteration = state["iteration"]
