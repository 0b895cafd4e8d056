"""Networks shared by the learners: SHAC's MLPs (Linear -> ELU -> LayerNorm blocks) and Gaussian actor,
the DrQ-v2 pixel encoder and trunk, ReLU heads, twin Q, SAC's tanh-Gaussian sample with its
log-density, and soft target updates."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int, orthogonal_gain: float | None = None) -> nn.Sequential:
    """SHAC's MLP: hidden blocks Linear -> ELU -> LayerNorm, then a linear output layer. PyTorch's default
    initialisation (SHAC's actor), or orthogonal weights with ``orthogonal_gain`` and zero biases (its
    critic: gain sqrt(2) in D.Va's and DiffRL's ``CriticMLP``)."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ELU(), nn.LayerNorm(width)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    net = nn.Sequential(*layers)
    return net if orthogonal_gain is None else orthogonal_init(net, orthogonal_gain)


class GaussianActor(nn.Module):
    """Gaussian policy with a state-independent log-std; the env receives ``tanh`` of the sample."""

    def __init__(self, in_dim: int, hidden: Sequence[int], act_dim: int, log_std_init: float = -1.0) -> None:
        super().__init__()
        self.mean = mlp(in_dim, hidden, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), float(log_std_init)))

    def forward(
        self, features: torch.Tensor, deterministic: bool = False, noise: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``tanh(mean + std * noise)``; ``noise`` is drawn when not given (given: replayable samples)."""
        mu = self.mean(features)
        if deterministic:
            return torch.tanh(mu)
        return torch.tanh(mu + self.log_std.exp() * (torch.randn_like(mu) if noise is None else noise))


def orthogonal_init(module: nn.Module, gain: float = 1.0) -> nn.Module:
    """Orthogonal weights and zero biases for every Linear and Conv2d in ``module`` (DrQ-v2, CURL, D.Va);
    returns the module."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d):
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)
    return module


def on_device(module: nn.Module, device: torch.device) -> nn.Module:
    """``module`` on ``device``; on the CPU with its convolution weights channels-last, where oneDNN runs
    them ~1.5x faster forward and backward (``make update-costs ARGS="--before <ref>"`` measures it).
    Other devices keep PyTorch's default layout: it has not been measured there."""
    module = module.to(device)
    return module.to(memory_format=torch.channels_last) if torch.device(device).type == "cpu" else module


def like_weights(x: torch.Tensor, conv: nn.Module) -> torch.Tensor:
    """``x`` in the memory layout of ``conv``'s weights (channels-last after :func:`on_device` on the CPU),
    so the convolution does not convert it on every call."""
    weight = conv.weight
    layout = torch.channels_last if weight.is_contiguous(memory_format=torch.channels_last) else torch.contiguous_format
    return x.contiguous(memory_format=layout)


def delta_orthogonal_init(module: nn.Module, gain: float) -> nn.Module:
    """CURL's (and SAC-AE's) initialisation of convolutions (Xiao et al. 2018): every kernel tap zero but
    the centre one, which is orthogonal with ``gain``; zero biases. Linear layers: orthogonal, gain 1."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.zeros_(layer.weight)
            mid = layer.weight.shape[2] // 2
            nn.init.orthogonal_(layer.weight.data[:, :, mid, mid], gain)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.Linear):
            orthogonal_init(layer)
    return module


class ConvEncoder(nn.Module):
    """DrQ-v2's convolutions: conv(C->32, 3x3, stride 2), 3 x conv(32->32, 3x3), ReLU, flattened to
    ``repr_dim`` features. Pixels (uint8 in [0, 255] or float in [0, 1]) are scaled to [-0.5, 0.5].

    Initialised as DrQ-v2 and D.Va do: orthogonal weights with the ReLU gain sqrt(2), zero biases. With
    PyTorch's default initialisation each convolution shrinks the signal about 2.5x while its biases
    stay, so after four of them the features of different poses are nearly identical (cosine 0.999
    between hopper frames, vs 0.94 here): the policy starts blind.

    ``curl=True`` is CURL's variant of the same layers: pixels scaled to [0, 1] (no shift) and
    delta-orthogonal convolutions."""

    def __init__(self, obs_shape: Sequence[int], curl: bool = False) -> None:
        super().__init__()
        channels = obs_shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
        )  # fmt: skip
        (delta_orthogonal_init if curl else orthogonal_init)(self.convs, math.sqrt(2))
        self.pixel_offset = 0.0 if curl else 0.5
        with torch.no_grad():
            self.repr_dim = self.convs(torch.zeros(1, *obs_shape)).numel()

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = like_weights(pixels, self.convs[0])  # before scaling: a uint8 copy is 4x smaller
        x = x / 255.0 if x.dtype == torch.uint8 else x
        return self.convs(x - self.pixel_offset if self.pixel_offset else x).flatten(1)


def trunk(in_dim: int, feature_dim: int, squash: bool = True) -> nn.Sequential:
    """Linear -> LayerNorm (-> Tanh when ``squash``): DrQ-v2's projection of the conv features
    (orthogonal, gain 1); CURL's leaves out the Tanh."""
    layers = [nn.Linear(in_dim, feature_dim), nn.LayerNorm(feature_dim), *([nn.Tanh()] if squash else [])]
    return orthogonal_init(nn.Sequential(*layers))


class PixelEncoder(ConvEncoder):
    """The convolutions and one trunk to ``feature_dim``: the D.Va actor's image encoder (CURL's
    critic encoder with ``squash=False, curl=True``)."""

    def __init__(self, obs_shape: Sequence[int], feature_dim: int, squash: bool = True, curl: bool = False) -> None:
        super().__init__(obs_shape, curl)
        self.trunk = trunk(self.repr_dim, feature_dim, squash)

    def conv_features(self, pixels: torch.Tensor) -> torch.Tensor:
        """The flattened convolution output, before the trunk."""
        return super().forward(pixels)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.trunk(super().forward(pixels))


def relu_mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """Linear -> ReLU blocks and a linear output (the heads of DrQ-v2 and CURL), orthogonal."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ReLU()]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return orthogonal_init(nn.Sequential(*layers))


class TwinQ(nn.Module):
    """Two Q heads on (features, action) (clipped double Q): ``forward`` returns both."""

    def __init__(self, feature_dim: int, act_dim: int, hidden: Sequence[int]) -> None:
        super().__init__()
        self.q1 = relu_mlp(feature_dim + act_dim, hidden, 1)
        self.q2 = relu_mlp(feature_dim + act_dim, hidden, 1)

    def forward(self, features: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([features, action], -1)
        return self.q1(x).squeeze(-1), self.q2(x).squeeze(-1)


def squashed_gaussian(mean: torch.Tensor, log_std: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A reparameterised sample a = tanh(mean + std * eps) and its log-density log pi(a), with the
    change of variables log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)) (SAC, CURL)."""
    eps = torch.randn_like(mean)
    u = mean + log_std.exp() * eps
    gaussian = (-0.5 * eps.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    jacobian = (2 * (math.log(2) - u - F.softplus(-2 * u))).sum(-1)
    return torch.tanh(u), gaussian - jacobian


@torch.no_grad()
def soft_update(target: nn.Module, online: nn.Module, tau: float) -> None:
    """target <- (1 - tau) * target + tau * online, parameter by parameter."""
    for t, o in zip(target.parameters(), online.parameters(), strict=True):
        t.lerp_(o, tau)
