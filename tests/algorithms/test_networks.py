"""The shared networks: the pixel encoder starts with DrQ-v2's initialisation, so a fresh policy already
tells poses apart."""

import math

import torch
from torch import nn

from algorithms.common import RunningMeanStd
from algorithms.networks import PixelEncoder
from algorithms.shac import SHAC, SHACConfig
from envs import DiffEnv
from envs.pixels import PixelEnv


def test_pixel_encoder_starts_orthogonal_with_zero_biases():
    encoder = PixelEncoder((9, 48, 48), 128)
    convs = [m for m in encoder.convs if isinstance(m, nn.Conv2d)]
    for layer, gain in [(conv, math.sqrt(2)) for conv in convs] + [(encoder.trunk[0], 1.0)]:
        rows = layer.weight.detach().flatten(1)  # (out, in): fewer rows than columns, so rows orthogonal
        torch.testing.assert_close(rows @ rows.T, gain**2 * torch.eye(rows.shape[0]), atol=1e-4, rtol=0)
        assert torch.all(layer.bias == 0)


def test_a_fresh_encoder_tells_hopper_poses_apart():
    """Default PyTorch initialisation maps these frames to features with cosine 0.999 (a blind policy)."""
    torch.manual_seed(0)
    env = PixelEnv(DiffEnv("hopper", 8, device="cpu", seed=0), "newton", frames=3, size=48)
    env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for _ in range(30):
            obs, *_ = env.step(torch.rand(8, 3, generator=generator) * 2 - 1)
        features = PixelEncoder(obs.shape[1:], 128)(obs)
    cosine = nn.functional.cosine_similarity(features[:, None], features[None], dim=-1)
    off_diagonal = cosine[~torch.eye(8, dtype=torch.bool)]
    assert off_diagonal.mean() < 0.98


def test_the_observation_normaliser_passes_gradient_far_from_the_mean():
    """SHAC and D.Va do not clip normalised states: a coordinate 10 std out still has gradient 1 / std."""
    rms = RunningMeanStd((2,))
    rms.update(torch.tensor([[0.0, 0.0], [2.0, 2.0]]))  # mean 1, std 1 (with the tiny prior count)
    x = (rms.mean + 10 * rms.var.sqrt()).clone().requires_grad_(True)
    rms.normalize(x).sum().backward()
    torch.testing.assert_close(x.grad, 1 / torch.sqrt(rms.var + 1e-5))


def test_the_shac_critic_starts_orthogonal_with_gain_sqrt2_and_zero_biases():
    """D.Va's (and DiffRL's) CriticMLP: orthogonal weights, gain sqrt(2), zero biases, every layer."""
    torch.manual_seed(0)
    env = DiffEnv("cartpole", 2, device="cpu", seed=0)
    critic = SHAC(env, SHACConfig(critic_hidden=[64, 32])).critic
    layers = [m for m in critic if isinstance(m, nn.Linear)]
    assert [layer.weight.shape for layer in layers] == [(64, 5), (32, 64), (1, 32)]
    for layer in layers:
        w = layer.weight.detach()
        short = w @ w.T if w.shape[0] <= w.shape[1] else w.T @ w  # the Gram matrix on the short side
        torch.testing.assert_close(short, 2 * torch.eye(short.shape[0]), atol=1e-4, rtol=0)
        assert torch.all(layer.bias == 0)
