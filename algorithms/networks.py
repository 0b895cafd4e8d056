"""Networks shared by the learners: MLPs (Linear -> ELU -> LayerNorm blocks), the tanh-Gaussian actor."""

from __future__ import annotations

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

    def forward(self, features: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        mu = self.mean(features)
        if deterministic:
            return torch.tanh(mu)
        return torch.tanh(mu + self.log_std.exp() * torch.randn_like(mu))
