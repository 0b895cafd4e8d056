"""CURL: the contrastive logits and loss at their known limits, the momentum key encoder, the
temperature's direction, the tanh-Gaussian's density, a tiny pixel task it must learn, and every task
through the runner."""

import math

import pytest
import torch

from algorithms.curl import CURL, CURLConfig
from algorithms.networks import squashed_gaussian
from benchmark.run import main

TINY = dict(crop_size=16, feature_dim=16, hidden_dim=32, batch_size=16, buffer_size=2000, seed_frames=64)


def learner(env, **overrides) -> CURL:
    return CURL(env, CURLConfig(**{**TINY, **overrides}))


def test_logits_are_batch_by_batch_with_the_positives_on_the_diagonal(pixel_bandit):
    agent = learner(pixel_bandit(2, size=20))
    z = torch.randn(8, 16)
    logits = agent.contrastive_logits(z, z)
    assert logits.shape == (8, 8)
    expected = z @ agent.W @ z.T
    assert torch.allclose(logits, expected - expected.max(dim=1, keepdim=True).values, atol=1e-5)
    assert torch.all(logits.max(dim=1).values == 0)  # shifted for a stable softmax


def test_loss_is_near_zero_for_identical_keys_with_w_a_scaled_identity_and_near_log_b_for_random(pixel_bandit):
    agent = learner(pixel_bandit(2, size=20))
    torch.manual_seed(0)
    batch, labels = 32, torch.arange(32)
    z = torch.nn.functional.normalize(torch.randn(batch, 16), dim=1) * 4
    with torch.no_grad():
        agent.W.copy_(10 * torch.eye(16))
    identical = torch.nn.functional.cross_entropy(agent.contrastive_logits(z, z), labels)
    assert identical.item() < 1e-3
    with torch.no_grad():
        agent.W.copy_(1e-3 * torch.randn(16, 16))
    unrelated = torch.nn.functional.cross_entropy(agent.contrastive_logits(z, torch.randn(batch, 16)), labels)
    assert unrelated.item() == pytest.approx(math.log(batch), abs=0.05)


def test_the_contrastive_update_trains_the_query_encoder_and_w_but_never_the_key_encoder(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(2, size=20))
    keys_before = [p.clone() for p in agent.encoder_target.parameters()]
    query_before = [p.detach().clone() for p in agent.encoder.parameters()]
    w_before = agent.W.detach().clone()
    frames = torch.rand(16, *agent.env.obs_shape) * 255
    agent.update_contrastive(frames[..., :16, :16], frames[..., 2:18, 2:18])
    keys_after = list(agent.encoder_target.parameters())
    assert all(torch.equal(p, q) and p.grad is None for p, q in zip(keys_after, keys_before, strict=True))
    assert not all(torch.equal(p, q) for p, q in zip(agent.encoder.parameters(), query_before, strict=True))
    assert not torch.equal(agent.W, w_before)


@pytest.mark.parametrize("entropy, direction", [(5.0, -1), (-5.0, +1)])
def test_temperature_moves_toward_the_entropy_target(pixel_bandit, entropy, direction):
    agent = learner(pixel_bandit(2, size=20))  # target entropy -|A| = -2
    before = agent.alpha.item()
    for _ in range(10):
        loss = agent.alpha_loss(torch.full((16,), -entropy))
        agent.alpha_opt.zero_grad()
        loss.backward()
        agent.alpha_opt.step()
    assert (agent.alpha.item() - before) * direction > 0  # too random: alpha falls; too certain: it rises


def test_squashed_gaussian_log_density_matches_a_histogram():
    torch.manual_seed(0)
    mean, log_std = torch.full((200_000, 1), 0.3), torch.full((200_000, 1), -0.5)
    action, log_pi = squashed_gaussian(mean, log_std)
    assert action.abs().max() < 1
    counts = torch.histc(action, bins=40, min=-1, max=1)
    centres = torch.linspace(-1 + 1 / 40, 1 - 1 / 40, 40)
    u = torch.atanh(centres)
    normal = torch.distributions.Normal(0.3, math.exp(-0.5))
    density = normal.log_prob(u).exp() / (1 - centres**2)
    empirical = counts / (len(action) * 2 / 40)
    assert torch.allclose(empirical, density, atol=0.03)
    # and each sample's log-density is the formula's
    u_sample = torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6))
    by_hand = normal.log_prob(u_sample) - torch.log(1 - action.pow(2))
    assert torch.allclose(log_pi, by_hand.squeeze(-1), atol=2e-3, rtol=1e-3)


def test_learns_which_action_sign_pays_from_pixels(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(16, size=20), updates_per_step=4)
    for _ in range(150):  # 600 updates
        agent.train_iteration()
    env = agent.env
    greedy = sum(float(env.step(agent.act(env.reset()))[1].mean()) for _ in range(10)) / 10
    assert greedy > 0.9, greedy


def test_runs_resumes_and_writes_results(tmp_path, six_iterations_then_a_resume):
    """On the hopper; every task's pixel env is checked once, with D.Va (tests/algorithms/test_apg_family.py)."""
    task = "hopper"
    overrides = ["preset=cpu", "num_envs=2", "image_size=36", "crop_size=32", "eval_envs=2", "eval_max_steps=4",
                 "hidden_dim=32", "batch_size=8", "buffer_size=400", "seed_frames=8", f"results_dir={tmp_path}",
                 "run_name=tiny", "checkpoint_every=1"]  # fmt: skip
    metrics = six_iterations_then_a_resume("curl", task, overrides)
    # updates once the replay holds a frame stack and the step after it (4 slots per env)
    assert metrics["contrastive_loss"].notna().tolist() == [False] * 2 + [True] * 4


def test_a_crop_larger_than_the_image_is_one_line_before_anything_is_written(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["curl", "cartpole", "preset=cpu", "image_size=48", "crop_size=64", f"results_dir={tmp_path}"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.endswith(
        "error: crop_size=64 exceeds image_size=48; render larger images or crop smaller\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_one_contrastive_loss_moves_the_encoder_by_two_adam_steps_and_w_by_one(pixel_bandit):
    """CURL's code steps the encoder's optimiser and the contrastive one (encoder and W) on the same
    loss. A first Adam step moves a parameter by lr * g / (|g| + eps), so fresh optimisers move the
    encoder by twice that and W by once."""
    torch.manual_seed(0)
    agent = learner(pixel_bandit(2, size=20), lr=1e-3)
    anchor, positive = torch.rand(16, 9, 16, 16), torch.rand(16, 9, 16, 16)
    encoder_before = [p.detach().clone() for p in agent.encoder.parameters()]
    w_before = agent.W.detach().clone()

    logits = agent.contrastive_logits(agent.encoder(anchor), agent.encoder_target(positive).detach())
    loss = torch.nn.functional.cross_entropy(logits, torch.arange(16))
    grads = torch.autograd.grad(loss, [*agent.encoder.parameters(), agent.W])
    agent.update_contrastive(anchor, positive)

    step = lambda g: 1e-3 * g / (g.abs() + 1e-8)  # noqa: E731
    for p, before, g in zip(agent.encoder.parameters(), encoder_before, grads[:-1], strict=True):
        torch.testing.assert_close(before - p.detach(), 2 * step(g), atol=1e-7, rtol=1e-4)
    torch.testing.assert_close(w_before - agent.W.detach(), step(grads[-1]), atol=1e-7, rtol=1e-4)


def test_the_encoder_is_curls_pixels_in_0_1_and_delta_orthogonal_convolutions(pixel_bandit):
    agent = learner(pixel_bandit(2, size=20))
    convs = [m for m in agent.encoder.convs if isinstance(m, torch.nn.Conv2d)]
    for conv in convs:
        centre = conv.weight.detach()[:, :, 1, 1]
        off_centre = conv.weight.detach().clone()
        off_centre[:, :, 1, 1] = 0
        assert torch.all(off_centre == 0) and torch.all(conv.bias == 0)
        gram = centre @ centre.T if centre.shape[0] <= centre.shape[1] else centre.T @ centre
        torch.testing.assert_close(gram, 2 * torch.eye(gram.shape[0]), atol=1e-4, rtol=0)
    black = torch.zeros(1, 9, 16, 16, dtype=torch.uint8)
    assert torch.all(agent.encoder.conv_features(black) == 0)  # 0 in, zero biases: 0 out (not -0.5 in)
