"""DreamerV3 (Hafner et al. 2023): a world model learned from pixels, and an actor-critic trained in its
imagination. Where the paper leaves details open, this follows dreamerv3-torch (NM512), as D.Va ran it.

Each iteration every env takes one step, acting through the world model's recurrent state (kept per env
by the policy, reset to the learned initial state where an episode begins); the replay buffer stores the
frame. Once the seed frames are in, ``pretrain`` updates run at once (never again, also not after a
resume), then ``train_ratio`` replayed steps per agent step. One update:

1. world model, on ``batch_size`` sequences of ``batch_length`` steps: the RSSM filters the frames from
   a learned initial state (h = tanh(W), z the prior's mode at h; W is trained by this loss),
   h_t = GRU(h_{t-1}, z_{t-1}, a_{t-1}), prior z_t ~ p(z | h_t), posterior z_t ~ q(z | h_t, x_t), with
   32 categoricals of 32 classes mixed with 1% uniform (unimix). The loss is the image reconstruction
   (MSE), reward (twohot over symlog buckets) and continue (Bernoulli) likelihoods, and KL balancing
   with free bits: 0.5 max(1, KL[sg(q) || p]) + 0.1 max(1, KL[q || sg(p)]);
2. imagination: from every posterior state the actor rolls the prior ``horizon`` steps forward;
   lambda-returns of the predicted rewards and continues, bootstrapped with the critic. Step t weighs
   w_t = prod_{k<t} gamma c_k, the continues c_k predicted from the start state on;
3. actor: maximise the weighted advantages (returns minus the critic's values) scaled by max(1, the
   returns' 95th - 5th percentile) (an EMA), backpropagated through the learned dynamics (continuous
   actions, as dreamerv3-torch does), the values included: the baseline is not detached, so the actor
   also climbs the critic along the imagined states (-sum_t w_t grad v(s_t)); plus an entropy bonus
   that the weights do not discount. A sampled
   action component beyond [-1, 1] is multiplied by sg(1 / |a|): it lands on +-1 and its gradient
   shrinks by that factor (a clamp would pass it in full);
4. critic: twohot regression of the lambda-returns, weighted as the actor's, regularised toward its
   slow (EMA) copy.

Initialisation: truncated normals of variance 1 / fan_avg, zero biases; output layers uniform of
variance scale / fan_avg, scale 0 for the reward and critic heads (they start predicting 0), 1 elsewhere.

The replay buffer is not checkpointed (a resumed run refills it, then trains again).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from algorithms.base import MAX_BATCH, MAX_STEPS, MAX_WIDTH, Policy, bounded, require
from algorithms.networks import like_weights, on_device, soft_update
from algorithms.replay import Sequences
from algorithms.replay_learner import Metrics, ReplayConfig, ReplayLearner
from envs.pixels import PixelEnv

STAGES = 4  # the image encoder halves the resolution this many times (64 -> 4, 48 -> 3)
NORM_EPS = 1e-3  # every LayerNorm's epsilon (dreamerv3-torch's; PyTorch's default is 1e-5)


@dataclass
class DreamerV3Config(ReplayConfig):
    buffer_size: int = 1_000_000  # frames (one per step): 3 x 64 x 64 bytes each, ~12 GB
    seed_frames: int = 5000  # dreamerv3-torch's prefill: 2500 agent steps at action repeat 2
    updates_per_step: int = 0  # 0: from train_ratio
    pretrain: int = bounded(100, low=0)  # updates in one burst once the seed frames are in (dreamerv3-torch's)
    # replayed steps per agent step: an update every batch_size * batch_length / 512 steps
    train_ratio: int = bounded(512, low=1)
    batch_size: int = bounded(16, low=1, high=MAX_BATCH)
    batch_length: int = bounded(64, low=1, high=MAX_STEPS)
    deter: int = bounded(512, low=1, high=MAX_WIDTH)  # GRU state
    units: int = bounded(512, low=1, high=MAX_WIDTH)  # hidden width of every MLP
    stoch: int = bounded(32, low=1, high=MAX_WIDTH)  # categorical latents ...
    classes: int = bounded(32, low=1, high=MAX_WIDTH)  # ... of this many classes each
    cnn_depth: int = bounded(32, low=1, high=MAX_WIDTH)  # channels of the first convolution (doubling per stage)
    unimix: float = bounded(0.01, low=0, high=1)
    free_nats: float = 1.0
    dyn_scale: float = 0.5
    rep_scale: float = 0.1
    # imagined steps after the start state: dreamerv3-torch's imag_horizon 15 counts the start, so 14 returns
    horizon: int = bounded(14, low=1, high=MAX_STEPS)
    gamma: float = bounded(0.997, low=0, high=1)
    lam: float = bounded(0.95, low=0, high=1)
    model_lr: float = bounded(1e-4, above=0)
    actor_lr: float = bounded(3e-5, above=0)
    critic_lr: float = bounded(3e-5, above=0)
    model_grad_clip: float = bounded(1000.0, above=0)
    actor_critic_grad_clip: float = bounded(100.0, above=0)
    entropy: float = 3e-4
    critic_ema: float = bounded(0.98, low=0, high=1)  # slow critic <- 0.98 slow + 0.02 critic, every update
    return_decay: float = bounded(0.99, low=0, high=1)  # EMA of the return percentiles
    min_std: float = bounded(0.1, above=0)
    max_std: float = 1.0

    def __post_init__(self) -> None:
        super().__post_init__()
        stds = f"min_std={self.min_std}, max_std={self.max_std}"
        require(0 < self.min_std <= self.max_std, f"{stds}: need 0 < min_std <= max_std")


# ---------------------------------------------------------------------- distributions
def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


class TwoHot(nn.Module):
    """Scalars as a distribution over 255 buckets evenly spaced in symlog space, [-20, 20]."""

    def __init__(self, buckets: int = 255, limit: float = 20.0) -> None:
        super().__init__()
        self.register_buffer("buckets", torch.linspace(-limit, limit, buckets), persistent=False)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """(..., buckets) weights on the two buckets around symlog(x), linear in the distance."""
        y = symlog(x).clamp(self.buckets[0], self.buckets[-1])
        above = torch.searchsorted(self.buckets, y.contiguous(), right=True).clamp(1, len(self.buckets) - 1)
        below = above - 1
        w_above = (y - self.buckets[below]) / (self.buckets[above] - self.buckets[below])
        weights = torch.zeros(*y.shape, len(self.buckets), device=y.device)
        weights.scatter_(-1, below[..., None], (1 - w_above)[..., None])
        return weights.scatter_add_(-1, above[..., None], w_above[..., None])

    def mean(self, logits: torch.Tensor) -> torch.Tensor:
        """symexp of the expected bucket: the prediction (differentiable in ``logits``)."""
        return symexp((logits.softmax(-1) * self.buckets).sum(-1))

    def nll(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return -(self.encode(x) * logits.log_softmax(-1)).sum(-1)


def unimix_probs(logits: torch.Tensor, unimix: float) -> torch.Tensor:
    """Softmax mixed with ``unimix`` of the uniform distribution: every class keeps >= unimix / K."""
    return (1 - unimix) * logits.softmax(-1) + unimix / logits.shape[-1]


def sample_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """A one-hot sample per categorical, with the straight-through gradient of ``probs``."""
    index = torch.multinomial(probs.reshape(-1, probs.shape[-1]), 1).reshape(probs.shape[:-1])
    return F.one_hot(index, probs.shape[-1]).to(probs) + probs - probs.detach()


def mode_one_hot(probs: torch.Tensor) -> torch.Tensor:
    """The most likely class per categorical, one-hot, with the straight-through gradient of the
    log-probabilities (dreamerv3-torch's ``OneHotDist.mode``)."""
    log_probs = probs.log()
    return F.one_hot(probs.argmax(-1), probs.shape[-1]).to(probs) + log_probs - log_probs.detach()


def bound_action(action: torch.Tensor) -> torch.Tensor:
    """Each component scaled by sg(1 / max(1, |a|)): the env gets actions in [-1, 1], and one beyond
    passes on a gradient shrunk by the same factor, not a clamp's full one (dreamerv3-torch's absmax)."""
    return action * (1 / action.abs().clamp(min=1)).detach()


def categorical_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL[p || q] of (..., stoch, classes) categoricals, summed over the latents."""
    return (p * (p.log() - q.log())).sum((-2, -1))


def kl_balance(posterior: torch.Tensor, prior: torch.Tensor, cfg: DreamerV3Config) -> torch.Tensor:
    """dyn_scale max(free, KL[sg(q) || p]) + rep_scale max(free, KL[q || sg(p)]), averaged over steps:
    the prior learns to predict the posterior, the posterior is pulled (less) toward the prior."""
    dynamics = categorical_kl(posterior.detach(), prior).clamp(min=cfg.free_nats).mean()
    representation = categorical_kl(posterior, prior.detach()).clamp(min=cfg.free_nats).mean()
    return cfg.dyn_scale * dynamics + cfg.rep_scale * representation


def lambda_returns(reward: torch.Tensor, cont: torch.Tensor, value: torch.Tensor, gamma: float, lam: float):
    """R_t = r_{t+1} + gamma c_{t+1} ((1 - lam) v_{t+1} + lam R_{t+1}) for t < H, with R_H = v_H. Inputs
    are (H + 1, ...) over the imagined states (reward and continue predicted on entering each)."""
    returns, following = [], value[-1]
    for t in reversed(range(len(reward) - 1)):
        following = reward[t + 1] + gamma * cont[t + 1] * ((1 - lam) * value[t + 1] + lam * following)
        returns.append(following)
    return torch.stack(returns[::-1])


def imagination_weights(cont: torch.Tensor, gamma: float) -> torch.Tensor:
    """(H, ...) weights of the states an action is taken from, given the continues (H + 1, ...)
    predicted for all imagined states: w_t = prod_{k<t} gamma c_k, so the start's own continue counts
    (after a start on a terminal frame the steps weigh ~0). dreamerv3-torch's cumprod weights."""
    discount = gamma * cont.detach()
    return torch.cumprod(torch.cat([torch.ones_like(discount[:1]), discount[:-1]]), 0)[:-1]


def actor_loss(advantage: torch.Tensor, entropy: torch.Tensor, weight: torch.Tensor, scale: float) -> torch.Tensor:
    """-(w A + scale H), averaged: the weights discount the advantages only, the entropy bonus counts
    in full at every imagined step (as dreamerv3-torch adds it after weighting)."""
    return -(weight * advantage + scale * entropy).mean()


# ---------------------------------------------------------------------- networks
TRUNCATED_STD = 0.87962566103423978  # the standard deviation of a unit normal truncated to [-2, 2]
Layer = nn.Linear | nn.Conv2d | nn.ConvTranspose2d


def fan_avg(layer: Layer) -> float:
    """The mean of a layer's fan-in and fan-out (a convolution's count every kernel tap)."""
    if isinstance(layer, nn.Linear):
        return (layer.in_features + layer.out_features) / 2
    return math.prod(layer.kernel_size) * (layer.in_channels + layer.out_channels) / 2


def truncated_normal_init(module: nn.Module) -> nn.Module:
    """Every linear map and convolution in ``module``: weights of a normal truncated to two of its
    standard deviations, scaled to variance 1 / fan_avg, zero biases (dreamerv3-torch's ``weight_init``)."""
    for layer in module.modules():
        if isinstance(layer, Layer):
            std = fan_avg(layer) ** -0.5 / TRUNCATED_STD
            nn.init.trunc_normal_(layer.weight, 0.0, std, -2 * std, 2 * std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def uniform_init(layer: Layer, scale: float) -> Layer:
    """An output layer: uniform weights of variance ``scale`` / fan_avg (all zero at scale 0), zero bias
    (dreamerv3-torch's ``uniform_weight_init(outscale)``)."""
    limit = math.sqrt(3 * scale / fan_avg(layer))
    nn.init.uniform_(layer.weight, -limit, limit)
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def dense(in_dim: int, units: int, layers: int, out_dim: int | None = None, out_scale: float = 1.0) -> nn.Sequential:
    """``layers`` blocks Linear -> LayerNorm -> SiLU, then a linear output when ``out_dim`` is given,
    initialised with ``out_scale`` (0: the head starts predicting 0, as DreamerV3's reward and critic)."""
    blocks: list[nn.Module] = []
    for _ in range(layers):
        blocks += [nn.Linear(in_dim, units, bias=False), nn.LayerNorm(units, eps=NORM_EPS), nn.SiLU()]
        in_dim = units
    net = truncated_normal_init(nn.Sequential(*blocks))
    if out_dim is not None:
        net.append(uniform_init(nn.Linear(in_dim, out_dim), out_scale))
    return net


class ChannelNorm(nn.LayerNorm):
    """LayerNorm over the channels of every pixel."""

    def __init__(self, channels: int) -> None:
        super().__init__(channels, eps=NORM_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ImageEncoder(nn.Module):
    """Convolutions (4 x 4, stride 2) of depth d, 2d, 4d, 8d with channel LayerNorm and SiLU, flattened."""

    def __init__(self, size: int, depth: int) -> None:
        super().__init__()
        layers, channels = [], 3
        for stage in range(STAGES):
            out = depth * 2**stage
            layers += [nn.Conv2d(channels, out, 4, 2, 1, bias=False), ChannelNorm(out), nn.SiLU()]
            channels = out
        self.convs = truncated_normal_init(nn.Sequential(*layers))
        self.out_dim = channels * (size // 2**STAGES) ** 2

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.convs(like_weights(frames, self.convs[0]) / 255.0 - 0.5).flatten(1)  # uint8 copied: 4x smaller


class ImageDecoder(nn.Module):
    """The encoder mirrored: a linear map to 8d x s x s, transposed convolutions back to 3 x H x W. The
    linear map and the last convolution are initialised as output layers (dreamerv3-torch's)."""

    def __init__(self, feat_dim: int, size: int, depth: int) -> None:
        super().__init__()
        self.start = (depth * 2 ** (STAGES - 1), size // 2**STAGES)
        self.linear = uniform_init(nn.Linear(feat_dim, self.start[0] * self.start[1] ** 2), 1.0)
        layers: list[nn.Module] = []
        for stage in reversed(range(STAGES)):
            channels, out = depth * 2**stage, (depth * 2 ** (stage - 1) if stage else 3)
            layers.append(nn.ConvTranspose2d(channels, out, 4, 2, 1, bias=not stage))
            if stage:
                layers += [ChannelNorm(out), nn.SiLU()]
        self.deconvs = truncated_normal_init(nn.Sequential(*layers))
        uniform_init(self.deconvs[-1], 1.0)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        """Frames in [0, 1] (the mean of a unit Gaussian: the loss is the squared error)."""
        channels, side = self.start
        return self.deconvs(like_weights(self.linear(feat).view(-1, channels, side, side), self.deconvs[0])) + 0.5


class NormGRUCell(nn.Module):
    """DreamerV3's GRU: one LayerNormed linear map to reset, candidate and update (biased to keep h)."""

    def __init__(self, in_dim: int, size: int) -> None:
        super().__init__()
        self.linear = truncated_normal_init(nn.Linear(in_dim + size, 3 * size, bias=False))
        self.norm = nn.LayerNorm(3 * size, eps=NORM_EPS)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        reset, candidate, update = self.norm(self.linear(torch.cat([x, h], -1))).chunk(3, -1)
        candidate = torch.tanh(torch.sigmoid(reset) * candidate)
        update = torch.sigmoid(update - 1)
        return update * candidate + (1 - update) * h


@dataclass
class Latent:
    """The RSSM state of a batch: deterministic ``h`` and the flattened one-hot stochastic ``z``."""

    h: torch.Tensor
    z: torch.Tensor

    @property
    def feat(self) -> torch.Tensor:
        return torch.cat([self.h, self.z], -1)


class RSSM(nn.Module):
    def __init__(self, embed_dim: int, act_dim: int, cfg: DreamerV3Config) -> None:
        super().__init__()
        self.deter, self.stoch, self.classes, self.unimix = cfg.deter, cfg.stoch, cfg.classes, cfg.unimix
        self.feat_dim = cfg.deter + cfg.stoch * cfg.classes
        self.img_in = dense(cfg.stoch * cfg.classes + act_dim, cfg.units, 1)
        self.gru = NormGRUCell(cfg.units, cfg.deter)
        self.prior_net = dense(cfg.deter, cfg.units, 1, cfg.stoch * cfg.classes)
        self.posterior_net = dense(cfg.deter + embed_dim, cfg.units, 1, cfg.stoch * cfg.classes)
        self.initial_deter = nn.Parameter(torch.zeros(cfg.deter))  # W: h before a first frame is tanh(W)

    def initial(self, batch: int) -> Latent:
        """The state before an episode's first frame, learned with the world model (dreamerv3-torch's
        ``initial: learned``): h = tanh(W) and z the prior's mode at h."""
        h = torch.tanh(self.initial_deter)[None]
        z = mode_one_hot(self._probs(self.prior_net(h))).flatten(-2)
        return Latent(h.expand(batch, -1), z.expand(batch, -1))

    def _probs(self, logits: torch.Tensor) -> torch.Tensor:
        return unimix_probs(logits.view(*logits.shape[:-1], self.stoch, self.classes), self.unimix)

    def advance(self, state: Latent, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(h_t, prior probabilities of z_t) from z_{t-1}, h_{t-1} and a_{t-1}."""
        h = self.gru(self.img_in(torch.cat([state.z, action], -1)), state.h)
        return h, self._probs(self.prior_net(h))

    def imagine_step(self, state: Latent, action: torch.Tensor) -> Latent:
        h, prior = self.advance(state, action)
        return Latent(h, sample_one_hot(prior).flatten(-2))

    def observe_step(
        self, state: Latent, action: torch.Tensor, embed: torch.Tensor, is_first: torch.Tensor
    ) -> tuple[Latent, torch.Tensor, torch.Tensor]:
        """(posterior state, posterior probs, prior probs) at a step; where ``is_first`` the state before
        is the initial one and the action before zero, so the posterior sees the frame only."""
        initial, reset = self.initial(len(is_first)), is_first[:, None]
        state = Latent(torch.where(reset, initial.h, state.h), torch.where(reset, initial.z, state.z))
        h, prior = self.advance(state, action.masked_fill(reset, 0.0))
        posterior = self._probs(self.posterior_net(torch.cat([h, embed], -1)))
        return Latent(h, sample_one_hot(posterior).flatten(-2)), posterior, prior

    def observe(self, embed: torch.Tensor, action: torch.Tensor, is_first: torch.Tensor):
        """Filters (B, T, ...) sequences from the initial state; ``action[:, t]`` is a_{t-1}. Returns the
        states (B, T, feat), posteriors and priors (B, T, stoch, classes)."""
        state = self.initial(embed.shape[0])
        states, posteriors, priors = [], [], []
        for t in range(embed.shape[1]):
            state, posterior, prior = self.observe_step(state, action[:, t], embed[:, t], is_first[:, t])
            states.append(state)
            posteriors.append(posterior)
            priors.append(prior)
        stack = lambda xs: torch.stack(xs, 1)  # noqa: E731
        return Latent(stack([s.h for s in states]), stack([s.z for s in states])), stack(posteriors), stack(priors)


class Actor(nn.Module):
    """Gaussian with mean tanh(mu) and std in [min_std, max_std]; samples are bounded by
    :func:`bound_action`."""

    def __init__(self, feat_dim: int, act_dim: int, cfg: DreamerV3Config) -> None:
        super().__init__()
        self.trunk = dense(feat_dim, cfg.units, 2)
        self.mean_head = uniform_init(nn.Linear(cfg.units, act_dim), 1.0)
        self.std_head = uniform_init(nn.Linear(cfg.units, act_dim), 1.0)
        self.min_std, self.max_std = cfg.min_std, cfg.max_std

    def forward(self, feat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hidden = self.trunk(feat)
        spread = torch.sigmoid(self.std_head(hidden) + 2)
        return torch.tanh(self.mean_head(hidden)), (self.max_std - self.min_std) * spread + self.min_std

    def sample(self, feat: torch.Tensor) -> torch.Tensor:
        """A reparameterised action."""
        mean, std = self(feat)
        return bound_action(mean + std * torch.randn_like(mean))

    def entropy(self, feat: torch.Tensor) -> torch.Tensor:
        """The Gaussian's entropy (before bounding), summed over the action dimensions."""
        return (self(feat)[1].log() + 0.5 * math.log(2 * math.pi * math.e)).sum(-1)


@contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """Gradients flow through these modules' computations but not into their parameters."""
    for module in modules:
        module.requires_grad_(False)
    try:
        yield
    finally:
        for module in modules:
            module.requires_grad_(True)


# ---------------------------------------------------------------------- the learner
class DreamerV3(ReplayLearner):
    name = "dreamerv3"
    Config = DreamerV3Config
    # 2: the actor's baseline kept in the graph, 14 imagined steps (not 15), LayerNorm epsilon 1e-3
    version = 2

    def __init__(self, env: PixelEnv, config: DreamerV3Config) -> None:
        size = env.obs_shape[-1] if len(env.obs_shape) == 3 else 0
        if len(env.obs_shape) == 3 and env.obs_shape[0] != 3:
            raise ValueError("dreamerv3 sees the last frame only (its RSSM carries the past): use frames=1")
        if size and (size % 2**STAGES or env.obs_shape[1] != size):
            raise ValueError(f"dreamerv3 needs square images, a multiple of {2**STAGES}: use e.g. image_size=64")
        super().__init__(env, config)
        cfg, dev = config, env.device
        self.lookahead = cfg.batch_length  # a window is batch_length steps and the slot before them
        self.encoder = on_device(ImageEncoder(size, cfg.cnn_depth), dev)
        self.rssm = RSSM(self.encoder.out_dim, env.act_dim, cfg).to(dev)
        feat = self.rssm.feat_dim
        self.decoder = on_device(ImageDecoder(feat, size, cfg.cnn_depth), dev)
        self.reward_head = dense(feat, cfg.units, 2, 255, out_scale=0.0).to(dev)
        self.continue_head = dense(feat, cfg.units, 2, 1).to(dev)
        self.actor = Actor(feat, env.act_dim, cfg).to(dev)
        self.critic = dense(feat, cfg.units, 2, 255, out_scale=0.0).to(dev)
        self.slow_critic = copy.deepcopy(self.critic).requires_grad_(False)
        self.twohot = TwoHot().to(dev)
        self.world_model = nn.ModuleList([self.encoder, self.rssm, self.decoder, self.reward_head, self.continue_head])
        self.model_opt = torch.optim.Adam(self.world_model.parameters(), cfg.model_lr, eps=1e-8)
        self.actor_opt = torch.optim.Adam(self.actor.parameters(), cfg.actor_lr, eps=1e-5)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), cfg.critic_lr, eps=1e-5)
        self.return_range = torch.zeros(2, device=dev)  # EMA of the returns' 5th and 95th percentiles
        per_step = env.num_envs * cfg.train_ratio / (cfg.batch_size * cfg.batch_length)
        self.updates_per_step = cfg.updates_per_step or per_step  # may be fractional: credit accumulates
        self.update_credit = 0.0
        self.pretrained = False  # the pretrain burst ran (checkpointed: a resumed run does not repeat it)

    # ------------------------------------------------------------------ acting
    def new_policy(self, num_envs: int, deterministic: bool = True) -> Policy:
        """Filters each env's frames through the RSSM; a new policy starts from the initial state."""
        device = self.env.device
        state = self.rssm.initial(num_envs)
        previous = torch.zeros(num_envs, self.env.act_dim, device=device)

        @torch.no_grad()
        def policy(obs: torch.Tensor, is_first: torch.Tensor) -> torch.Tensor:
            nonlocal state, previous
            state, _, _ = self.rssm.observe_step(state, previous, self.encoder(obs), is_first.to(device))
            previous = self.actor(state.feat)[0] if deterministic else self.actor.sample(state.feat)
            return previous

        return policy

    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        """Actions from these frames alone (a fresh recurrent state); episodes use :meth:`new_policy`."""
        first = torch.ones(len(obs), dtype=torch.bool, device=obs.device)
        return self.new_policy(len(obs), deterministic)(obs, first)

    # ------------------------------------------------------------------ one iteration
    METRICS = ("model_loss", "image_loss", "reward_loss", "continue_loss", "kl", "actor_loss", "critic_loss",
               "entropy", "return_scale")  # fmt: skip

    def train_iteration(self) -> dict[str, float]:
        steps = self.collect()
        metrics = dict.fromkeys(self.METRICS, math.nan)  # until updates begin
        if self.ready():
            burst = 0 if self.pretrained else self.config.pretrain
            self.pretrained = True
            self.update_credit += self.updates_per_step
            with self.timer("update"):
                for _ in range(burst):
                    metrics = self.update()
                while self.update_credit >= 1:
                    metrics = self.update()
                    self.update_credit -= 1
        return self.iteration_metrics(steps, metrics)

    def update(self) -> Metrics:
        """One DreamerV3 update (steps 1-4 of the module docstring)."""
        cfg = self.config
        batch = self.replay.sample_sequences(cfg.batch_size, cfg.batch_length + 1)
        start, metrics = self.update_world_model(batch)
        metrics.update(self.update_actor_critic(start))
        soft_update(self.slow_critic, self.critic, 1 - cfg.critic_ema)
        return metrics

    def world_model_loss(self, batch: Sequences) -> tuple[torch.Tensor, Latent, Metrics]:
        """Slots 1..T of the window are observed; slot t-1 gives the action a_{t-1} that led to slot t,
        the reward it earned and whether it terminated the episode (the slot before a first one holds
        none of them: zeros)."""
        device = self.env.device
        frames = batch.frames[:, 1:].to(device)
        b, t = frames.shape[:2]
        embed = self.encoder(frames.flatten(0, 1)).view(b, t, -1)
        action, reward = batch.action[:, :-1].to(device), batch.reward[:, :-1].to(device)
        states, posterior, prior = self.rssm.observe(embed, action, batch.is_first[:, 1:].to(device))
        feat = states.feat
        image = self.decoder(feat.flatten(0, 1))
        image_loss = (image - frames.flatten(0, 1).float() / 255.0).pow(2).sum((1, 2, 3)).mean()
        reward_loss = self.twohot.nll(self.reward_head(feat), reward).mean()
        cont = (~batch.terminal[:, :-1]).to(device, torch.float32)
        continue_loss = F.binary_cross_entropy_with_logits(self.continue_head(feat).squeeze(-1), cont)
        loss = image_loss + reward_loss + continue_loss + kl_balance(posterior, prior, self.config)
        kl = categorical_kl(posterior, prior).mean()
        metrics = {"image_loss": image_loss.detach(), "reward_loss": reward_loss.detach(),
                   "continue_loss": continue_loss.detach(), "kl": kl.detach()}  # fmt: skip
        return loss, Latent(states.h.detach().flatten(0, 1), states.z.detach().flatten(0, 1)), metrics

    def update_world_model(self, batch: Sequences) -> tuple[Latent, Metrics]:
        loss, start, metrics = self.world_model_loss(batch)
        self.model_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.world_model.parameters(), self.config.model_grad_clip)
        self.model_opt.step()
        return start, {"model_loss": loss.detach(), **metrics}

    def imagine(self, start: Latent) -> torch.Tensor:
        """Features (H + 1, N, feat) of the imagined states; the actor sees detached features, its
        actions carry gradients through the dynamics."""
        state, feats = start, [start.feat]
        for _ in range(self.config.horizon):
            state = self.rssm.imagine_step(state, self.actor.sample(state.feat.detach()))
            feats.append(state.feat)
        return torch.stack(feats)

    def update_actor_critic(self, start: Latent) -> Metrics:
        cfg = self.config
        with frozen(self.world_model, self.critic):
            feats = self.imagine(start)
            reward = self.twohot.mean(self.reward_head(feats))
            cont = torch.sigmoid(self.continue_head(feats)).squeeze(-1)
            value = self.twohot.mean(self.critic(feats))
            returns = lambda_returns(reward, cont, value, cfg.gamma, cfg.lam)  # (H, N)
        # at the imagined features, not detached ones: its gradient also reaches the earlier actions (dreamerv3-torch's)
        entropy = self.actor.entropy(feats[:-1])
        weight = imagination_weights(cont, cfg.gamma)
        scale = self.return_scale(returns.detach())
        advantage = (returns - value[:-1]) / scale  # the baseline in the graph too (dreamerv3-torch's)
        loss = actor_loss(advantage, entropy, weight, cfg.entropy)
        self.actor_opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.actor.parameters(), cfg.actor_critic_grad_clip)
        self.actor_opt.step()

        critic_loss = self.critic_loss(feats[:-1].detach(), returns.detach(), weight)
        self.critic_opt.zero_grad(set_to_none=True)
        critic_loss.backward()
        nn.utils.clip_grad_norm_(self.critic.parameters(), cfg.actor_critic_grad_clip)
        self.critic_opt.step()
        return {"actor_loss": loss.detach(), "critic_loss": critic_loss.detach(),
                "entropy": entropy.detach().mean(), "return_scale": scale}  # fmt: skip

    def critic_loss(self, feats: torch.Tensor, returns: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """Twohot NLL of the lambda-returns plus of the slow critic's prediction (its regulariser)."""
        logits = self.critic(feats)
        with torch.no_grad():
            slow = self.twohot.mean(self.slow_critic(feats))
        return (weight * (self.twohot.nll(logits, returns) + self.twohot.nll(logits, slow))).mean()

    @torch.no_grad()
    def return_scale(self, returns: torch.Tensor) -> torch.Tensor:
        """max(1, P95 - P5) of the returns, the percentiles tracked by an EMA."""
        percentiles = torch.quantile(returns.flatten(), torch.tensor([0.05, 0.95], device=returns.device))
        self.return_range.lerp_(percentiles, 1 - self.config.return_decay)
        return (self.return_range[1] - self.return_range[0]).clamp(min=1.0)

    # ------------------------------------------------------------------ checkpoints
    MODULES = ("world_model", "actor", "critic", "slow_critic", "model_opt", "actor_opt", "critic_opt")

    def state_dict(self) -> dict[str, Any]:
        extra = {"frames": self.frames, "return_range": self.return_range, "update_credit": self.update_credit,
                 "pretrained": self.pretrained}  # fmt: skip
        return {**{key: getattr(self, key).state_dict() for key in self.MODULES}, **extra}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in self.MODULES:
            getattr(self, key).load_state_dict(state[key])
        self.frames, self.update_credit, self.pretrained = state["frames"], state["update_credit"], state["pretrained"]
        self.return_range.copy_(state["return_range"])
