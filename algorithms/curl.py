"""CURL (Laskin et al. 2020): SAC from pixels with a contrastive auxiliary loss on the encoder.

The env renders ``image_size`` frames; every update draws random ``crop_size`` crops (the agent acts on
the centre crop). Per iteration the learner steps all N envs once, stores the frames, then makes
``updates_per_step`` updates (the paper's Table 5: 8 for its 16 envs, N / 2; D.Va's script makes N,
docs/fidelity.md row 15). One update, on a replay batch (o, a, r, o'):

1. critic (SAC): y = r + gamma * (min(Q1', Q2')(o', a') - alpha log pi(a'|o')), a' ~ pi(o'), the
   targets from the momentum encoder and target Q; the encoder and twin Q minimise the squared errors
   of Q1 and Q2 at the anchor crop of o;
2. every ``actor_update_every`` updates: the actor (on the encoder's detached conv features) maximises
   min Q - alpha log pi; the temperature alpha moves log pi toward the target entropy -|A|; the
   targets follow by soft updates (Q tau 0.01, encoder tau 0.05);
3. contrastive (InfoNCE): the anchor crop's query q = f(o_anchor) and the key k = f_target(o_positive)
   of another crop of the same frames; logits q^T W k over the batch, the positives on the diagonal.
   Only the query encoder and W learn from it; the key encoder is the momentum copy. As in CURL's code,
   two Adam optimisers step on this one loss: the encoder's own, and the contrastive one that holds the
   encoder and W, so the encoder takes two steps per contrastive loss.

The encoder is CURL's: pixels scaled to [0, 1], delta-orthogonal convolutions. Rewards are the env's,
summed over the action repeat (D.Va's CURL wrapper averages them and then divides by the repeat again:
a quirk we leave out, see docs/fidelity.md).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.augment import center_crop, random_crop
from algorithms.base import MAX_BATCH, MAX_WIDTH, bounded
from algorithms.networks import PixelEncoder, TwinQ, on_device, relu_mlp, soft_update, squashed_gaussian, trunk
from algorithms.replay_learner import Metrics, ReplayConfig, ReplayLearner
from envs.pixels import PixelEnv

LOG_STD_MIN, LOG_STD_MAX = -10.0, 2.0  # CURL's (and SAC-AE's) bounds on the policy's log std


@dataclass
class CURLConfig(ReplayConfig):
    # random crops of the image_size frames (the paper: 100 -> 84); the encoder needs 16 pixels
    crop_size: int = bounded(84, low=16, high=1024)
    buffer_size: int = 100_000  # frames, all envs together: 3 x image_size^2 bytes each (~3 GB at 100 x 100)
    # the paper's config (CURL's authors report 512 in their final runs)
    batch_size: int = bounded(32, low=1, high=MAX_BATCH)
    gamma: float = bounded(0.99, low=0, high=1)
    lr: float = bounded(1e-3, above=0)  # actor, critic, encoder and W
    betas: list[float] = bounded([0.9, 0.999], low=0, below=1, count=2)
    feature_dim: int = bounded(50, low=1, high=MAX_WIDTH)  # encoder output, also the size of the bilinear W
    hidden_dim: int = bounded(1024, low=1, high=MAX_WIDTH)
    critic_tau: float = bounded(0.01, low=0, high=1)
    encoder_tau: float = bounded(0.05, low=0, high=1)  # the momentum (key) encoder
    actor_update_every: int = bounded(2, low=1)  # actor, temperature and target updates every this many updates
    init_temperature: float = bounded(0.1, above=0)
    alpha_lr: float = bounded(1e-4, above=0)
    alpha_betas: list[float] = bounded([0.5, 0.999], low=0, below=1, count=2)
    seed_frames: int = 32_000  # 1000 vector steps of 16 envs
    updates_per_step: int = 0  # 0: num_envs / 2 (the paper's Table 5: 8 with its 16 envs)


class Actor(nn.Module):
    """Its own trunk (Linear -> LayerNorm) on the shared, detached conv features, then a ReLU MLP to the
    tanh-Gaussian's mean and log std (tanh-bounded to [LOG_STD_MIN, LOG_STD_MAX])."""

    def __init__(self, repr_dim: int, act_dim: int, feature_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.trunk = trunk(repr_dim, feature_dim, squash=False)
        self.policy = relu_mlp(feature_dim, [hidden_dim, hidden_dim], 2 * act_dim)

    def forward(self, conv_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, log std) of the Gaussian before the tanh."""
        mean, log_std = self.policy(self.trunk(conv_features)).chunk(2, dim=-1)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std


class CURL(ReplayLearner):
    name = "curl"
    Config = CURLConfig
    # 2: the paper's update ratio, num_envs / 2 updates per vector step (was num_envs, D.Va's script)
    version = 2

    def __init__(self, env: PixelEnv, config: CURLConfig) -> None:
        if config.crop_size > min(env.obs_shape[1:]):
            raise ValueError(f"crop_size={config.crop_size} exceeds image_size={env.obs_shape[1]}; "
                             "render larger images or crop smaller")  # fmt: skip
        super().__init__(env, config)
        dev, cfg = env.device, config
        crop_shape = (env.obs_shape[0], cfg.crop_size, cfg.crop_size)
        query_encoder = PixelEncoder(crop_shape, cfg.feature_dim, squash=False, curl=True)
        self.encoder = on_device(query_encoder, dev)
        self.q = TwinQ(cfg.feature_dim, env.act_dim, [cfg.hidden_dim, cfg.hidden_dim]).to(dev)
        self.encoder_target = copy.deepcopy(self.encoder).requires_grad_(False)  # the key encoder
        self.q_target = copy.deepcopy(self.q).requires_grad_(False)
        self.actor = Actor(self.encoder.repr_dim, env.act_dim, cfg.feature_dim, cfg.hidden_dim).to(dev)
        self.W = nn.Parameter(torch.rand(cfg.feature_dim, cfg.feature_dim, device=dev))
        self.log_alpha = nn.Parameter(torch.tensor(math.log(cfg.init_temperature), device=dev))
        self.target_entropy = -float(env.act_dim)
        betas = tuple(cfg.betas)
        self.critic_opt = torch.optim.Adam([*self.encoder.parameters(), *self.q.parameters()], cfg.lr, betas)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), cfg.lr, betas)
        self.encoder_opt = torch.optim.Adam(self.encoder.parameters(), cfg.lr, betas)
        self.contrastive_opt = torch.optim.Adam([*self.encoder.parameters(), self.W], cfg.lr, betas)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], cfg.alpha_lr, tuple(cfg.alpha_betas))
        self.updates_per_step = cfg.updates_per_step or max(env.num_envs // 2, 1)
        self.updates = 0

    @property
    def alpha(self) -> torch.Tensor:
        return self.log_alpha.exp()

    # ------------------------------------------------------------------ acting
    def policy(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(sampled action, its log pi, mean action) at crops; the encoder gets no gradient from here."""
        return self.policy_at(self.encoder.conv_features(pixels).detach())

    def policy_at(self, conv_features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:meth:`policy` on the encoder's convolution features, computed once by the caller."""
        mean, log_std = self.actor(conv_features)
        action, log_pi = squashed_gaussian(mean, log_std)
        return action, log_pi, torch.tanh(mean)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        action, _, mean = self.policy(center_crop(obs, self.config.crop_size))
        return mean if deterministic else action

    # ------------------------------------------------------------------ one iteration
    def train_iteration(self) -> dict[str, float]:
        steps = self.collect()
        keys = ("critic_loss", "actor_loss", "alpha", "contrastive_loss", "contrastive_accuracy")
        metrics = dict.fromkeys(keys, math.nan)  # until updates begin
        if self.ready():
            with self.timer("update"):
                for _ in range(self.updates_per_step):
                    metrics.update(self.update())
        return self.iteration_metrics(steps, metrics)

    def update(self) -> Metrics:
        """One CURL update (steps 1-3 of the module docstring)."""
        cfg, device = self.config, self.env.device
        batch = self.replay.sample(cfg.batch_size, n_step=1, gamma=cfg.gamma)
        frames, next_frames = batch.obs.to(device), batch.next_obs.to(device)  # uint8: scaled as when acting
        anchor, positive = random_crop(frames, cfg.crop_size), random_crop(frames, cfg.crop_size)
        next_crop = random_crop(next_frames, cfg.crop_size)
        out = {"critic_loss": self.update_critic(anchor, batch.action.to(device), batch.reward.to(device),
                                                 batch.discount.to(device), next_crop)}  # fmt: skip
        if self.updates % cfg.actor_update_every == 0:
            out.update(self.update_actor_and_alpha(anchor))
            soft_update(self.q_target, self.q, cfg.critic_tau)
            soft_update(self.encoder_target, self.encoder, cfg.encoder_tau)
        out.update(self.update_contrastive(anchor, positive))
        self.updates += 1
        return out

    def update_critic(self, obs, action, reward, discount, next_obs) -> torch.Tensor:
        with torch.no_grad():
            next_action, next_log_pi, _ = self.policy(next_obs)
            q1, q2 = self.q_target(self.encoder_target(next_obs), next_action)
            target = reward + discount * (torch.minimum(q1, q2) - self.alpha * next_log_pi)
        q1, q2 = self.q(self.encoder(obs), action)
        loss = F.mse_loss(q1, target) + F.mse_loss(q2, target)
        self.critic_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.critic_opt.step()
        return loss.detach()

    def update_actor_and_alpha(self, obs: torch.Tensor) -> Metrics:
        with torch.no_grad():  # the actor's loss trains neither the encoder nor the critic's trunk
            conv = self.encoder.conv_features(obs)
            features = self.encoder.trunk(conv)
        action, log_pi, _ = self.policy_at(conv)
        q1, q2 = self.q(features, action)
        actor_loss = (self.alpha.detach() * log_pi - torch.minimum(q1, q2)).mean()
        self.actor_opt.zero_grad(set_to_none=True)
        actor_loss.backward()  # reaches the Q heads too; only the actor's step uses it
        self.actor_opt.step()
        alpha_loss = self.alpha_loss(log_pi.detach())
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_loss.backward()
        self.alpha_opt.step()
        return {"actor_loss": actor_loss.detach(), "alpha": self.alpha.detach()}

    def alpha_loss(self, log_pi: torch.Tensor) -> torch.Tensor:
        """alpha * (entropy - target entropy): alpha falls while the policy's entropy exceeds the target."""
        return (self.alpha * (-log_pi - self.target_entropy)).mean()

    def contrastive_logits(self, queries: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        """B x B bilinear similarities q_i^T W k_j, shifted by each row's max; positives on the diagonal."""
        logits = queries @ self.W @ keys.T
        return logits - logits.max(dim=1, keepdim=True).values.detach()

    def update_contrastive(self, anchor: torch.Tensor, positive: torch.Tensor) -> Metrics:
        queries = self.encoder(anchor)
        with torch.no_grad():
            keys = self.encoder_target(positive)
        logits = self.contrastive_logits(queries, keys)
        labels = torch.arange(len(logits), device=logits.device)
        loss = F.cross_entropy(logits, labels)
        self.encoder_opt.zero_grad(set_to_none=True)
        self.contrastive_opt.zero_grad(set_to_none=True)
        loss.backward()
        self.encoder_opt.step()  # two Adam steps on the encoder from one loss, as CURL's code takes them
        self.contrastive_opt.step()
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"contrastive_loss": loss.detach(), "contrastive_accuracy": accuracy}

    # ------------------------------------------------------------------ checkpoints
    MODULES = ("encoder", "q", "encoder_target", "q_target", "actor", "critic_opt", "actor_opt", "encoder_opt",
               "contrastive_opt", "alpha_opt")  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        state = {key: getattr(self, key).state_dict() for key in self.MODULES}
        return {**state, "W": self.W.detach().clone(), "log_alpha": self.log_alpha.detach().clone(),
                "frames": self.frames, "updates": self.updates}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.MODULES:
            getattr(self, key).load_state_dict(state[key])
        with torch.no_grad():
            self.W.copy_(state["W"])
            self.log_alpha.copy_(state["log_alpha"])
        self.frames, self.updates = state["frames"], state["updates"]
