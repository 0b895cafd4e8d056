"""Networks shared by the learners: MLPs (Linear -> ELU -> LayerNorm blocks), the tanh-Gaussian actor,
the DrQ-v2 pixel encoder."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    """SHAC's MLP: hidden blocks Linear -> ELU -> LayerNorm, then a linear output layer."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(in_dim, width), nn.ELU(), nn.LayerNorm(width)]
        in_dim = width
    layers.append(nn.Linear(in_dim, out_dim))
    return nn.Sequential(*layers)


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


class PixelEncoder(nn.Module):
    """DrQ-v2's encoder and trunk: conv(C->32, 3x3, stride 2), 3 x conv(32->32, 3x3), ReLU, then
    Linear -> LayerNorm -> Tanh to ``feature_dim``. Pixels (uint8 in [0, 255] or float in [0, 1])
    are scaled to [-0.5, 0.5].

    Initialised as DrQ-v2 and D.Va do: orthogonal weights (gain sqrt(2) for the ReLU convolutions, 1 for
    the trunk) and zero biases. With PyTorch's default initialisation each convolution shrinks the
    signal about 2.5x while its biases stay, so after four of them the features of different poses are
    nearly identical (cosine 0.999 between hopper frames, vs 0.94 here): the policy starts blind."""

    def __init__(self, obs_shape: Sequence[int], feature_dim: int) -> None:
        super().__init__()
        channels = obs_shape[0]
        self.convs = nn.Sequential(
            nn.Conv2d(channels, 32, 3, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=1), nn.ReLU(),
        )  # fmt: skip
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, *obs_shape)).numel()
        self.trunk = nn.Sequential(nn.Linear(flat, feature_dim), nn.LayerNorm(feature_dim), nn.Tanh())
        gains = [(conv, math.sqrt(2)) for conv in self.convs if isinstance(conv, nn.Conv2d)] + [(self.trunk[0], 1.0)]
        for layer, gain in gains:
            nn.init.orthogonal_(layer.weight, gain)
            nn.init.zeros_(layer.bias)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        x = pixels / 255.0 - 0.5 if pixels.dtype == torch.uint8 else pixels - 0.5
        return self.trunk(self.convs(x).flatten(1))
