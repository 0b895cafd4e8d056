"""DreamerV3: symlog and twohot, categorical latents, the RSSM and its learned initial state, KL balancing,
lambda-returns by their n-step expansion, the imagination's weights, bounded actions, the initialisation,
a world model that learns a small dataset, the recurrent policy's state, the pretrain burst, and every
task through the runner."""

import copy
import math

import pytest
import torch
from torch import nn

from algorithms.dreamerv3 import (
    RSSM,
    TRUNCATED_STD,
    Actor,
    DreamerV3,
    DreamerV3Config,
    Latent,
    TwoHot,
    actor_loss,
    bound_action,
    categorical_kl,
    frozen,
    imagination_weights,
    kl_balance,
    lambda_returns,
    sample_one_hot,
    symexp,
    symlog,
    unimix_probs,
)
from algorithms.replay import Sequences

TINY = dict(deter=16, units=16, stoch=4, classes=4, cnn_depth=4, batch_size=4, batch_length=8, buffer_size=2000,
            seed_frames=16, train_ratio=8)  # fmt: skip


def learner(env, **overrides) -> DreamerV3:
    return DreamerV3(env, DreamerV3Config(**{**TINY, **overrides}))


def test_symlog_and_symexp_invert_each_other_and_compress_large_values():
    x = torch.tensor([-1e6, -100.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 100.0, 1e6])
    assert torch.allclose(symexp(symlog(x)), x, rtol=1e-5)
    assert symlog(torch.tensor(1e6)) == pytest.approx(math.log(1e6 + 1))
    assert symlog(torch.tensor(-3.0)) == pytest.approx(-math.log(4.0))


def test_twohot_puts_all_weight_on_the_two_buckets_around_symlog_x_and_decodes_to_it():
    twohot = TwoHot()
    x = torch.tensor([-250.0, -0.3, 0.0, 0.05, 7.0, 1234.5])
    weights = twohot.encode(x)
    assert torch.allclose(weights.sum(-1), torch.ones(len(x)))
    for row in weights:
        nonzero = row.nonzero().flatten()
        assert len(nonzero) <= 2 and (len(nonzero) == 1 or nonzero[1] - nonzero[0] == 1)
    assert torch.allclose((weights * twohot.buckets).sum(-1), symlog(x), atol=1e-5)
    logits = torch.where(weights > 0, weights.log(), torch.full_like(weights, -1e9))  # the twohot as logits
    assert torch.allclose(twohot.mean(logits), x, rtol=1e-4)


def test_unimix_keeps_every_class_above_its_floor_and_one_hot_samples_pass_straight_through_gradients():
    logits = torch.tensor([[[50.0, -50.0, -50.0, -50.0]] * 3]).requires_grad_()
    probs = unimix_probs(logits, 0.01)
    assert (probs >= 0.01 / 4 - 1e-7).all() and torch.allclose(probs.sum(-1), torch.ones(1, 3))
    sample = sample_one_hot(probs)
    assert torch.equal(sample.detach().sum(-1), torch.ones(1, 3)) and set(sample.detach().unique().tolist()) <= {0, 1}
    (sample * torch.arange(4.0)).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_rssm_shapes_and_the_posterior_ignores_the_past_where_an_episode_begins():
    torch.manual_seed(0)
    cfg = DreamerV3Config(**TINY)
    rssm = RSSM(embed_dim=10, act_dim=2, cfg=cfg)
    embed, action = torch.randn(3, 5, 10), torch.randn(3, 5, 2)
    is_first = torch.zeros(3, 5, dtype=torch.bool)
    states, posteriors, priors = rssm.observe(embed, action, is_first)
    assert states.h.shape == (3, 5, 16) and states.z.shape == (3, 5, 16) and states.feat.shape == (3, 5, 32)
    assert posteriors.shape == priors.shape == (3, 5, 4, 4)

    past = [rssm.observe(torch.randn(3, 4, 10), torch.randn(3, 4, 2), is_first[:, :4])[0] for _ in range(2)]
    last = [type(p)(p.h[:, -1], p.z[:, -1]) for p in past]
    first, later = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
    posterior = [rssm.observe_step(state, action[:, 0], embed[:, 0], first)[1] for state in last]
    assert torch.allclose(posterior[0], posterior[1])  # two different pasts, the same frame
    posterior = [rssm.observe_step(state, action[:, 0], embed[:, 0], later)[1] for state in last]
    assert not torch.allclose(posterior[0], posterior[1])  # mid-episode the past counts


def test_kl_balance_is_the_free_bits_floor_when_posterior_equals_prior_and_grows_past_it():
    cfg = DreamerV3Config(free_nats=1.0, dyn_scale=0.5, rep_scale=0.1)
    probs = unimix_probs(torch.randn(6, 8, 32, 32), 0.01)
    assert categorical_kl(probs, probs).abs().max() < 1e-6
    assert kl_balance(probs, probs, cfg).item() == pytest.approx(0.6)  # (0.5 + 0.1) x 1 nat
    far = unimix_probs(torch.randn(6, 8, 32, 32) * 10, 0.01)
    kl = categorical_kl(far, probs).mean().item()
    assert kl > 1 and kl_balance(far, probs, cfg).item() == pytest.approx(0.6 * kl, rel=1e-4)


def test_lambda_returns_equal_their_n_step_expansion_and_the_closed_form_for_constant_reward():
    torch.manual_seed(0)
    horizon, gamma, lam = 6, 0.9, 0.8
    reward, cont, value = torch.randn(horizon + 1, 3), torch.rand(horizon + 1, 3), torch.randn(horizon + 1, 3)

    def n_step(t: int, n: int) -> torch.Tensor:  # G^n_t = sum_k (prod gamma c) r + (prod gamma c) v_{t+n}
        total, discount = torch.zeros(3), torch.ones(3)
        for k in range(1, n + 1):
            total = total + discount * reward[t + k]
            discount = discount * gamma * cont[t + k]
        return total + discount * value[t + n]

    expected = []
    for t in range(horizon):
        steps = horizon - t  # R^lambda_t = (1 - lam) sum_n lam^(n-1) G^n_t + lam^(steps-1) G^steps_t
        mixed = sum((1 - lam) * lam ** (n - 1) * n_step(t, n) for n in range(1, steps))
        expected.append(mixed + lam ** (steps - 1) * n_step(t, steps))
    assert torch.allclose(lambda_returns(reward, cont, value, gamma, lam), torch.stack(expected), atol=1e-5)

    ones, zeros = torch.ones(horizon + 1, 1), torch.zeros(horizon + 1, 1)
    returns = lambda_returns(ones, ones, zeros, gamma, 1.0)  # no bootstrap: a geometric series
    closed = torch.tensor([(1 - gamma ** (horizon - t)) / (1 - gamma) for t in range(horizon)])
    assert torch.allclose(returns.squeeze(1), closed)
    fixed_point = lambda_returns(ones, ones, ones / (1 - gamma), gamma, lam)  # the true value, any lambda
    assert torch.allclose(fixed_point, torch.full((horizon, 1), 1 / (1 - gamma)), rtol=1e-5)


def test_the_weights_are_the_discounted_continues_from_the_start_on_and_leave_the_entropy_bonus_whole():
    horizon, gamma = 5, 0.9
    cont = torch.tensor([[1.0, 0.0, 0.9],  # the starts: the second is a terminal frame
                         [1.0, 1.0, 0.8],
                         [0.0, 1.0, 1.0],
                         [1.0, 1.0, 0.0],
                         [1.0, 1.0, 1.0],
                         [0.0, 0.0, 0.0]])  # fmt: skip
    expected = torch.ones(horizon, 3)  # dreamerv3-torch's cumprod: w_0 = 1, w_t = w_{t-1} gamma c_{t-1}
    for t in range(1, horizon):
        expected[t] = expected[t - 1] * gamma * cont[t - 1]
    weight = imagination_weights(cont, gamma)
    assert torch.allclose(weight, expected)
    assert weight[1:, 1].abs().max() == 0 and weight[3:, 0].abs().max() == 0  # nothing after a terminal state

    advantage, entropy = torch.randn(horizon, 3), torch.rand(horizon, 3)
    loss = actor_loss(advantage, entropy, weight, 0.1)
    assert loss.item() == pytest.approx((-(weight * advantage).mean() - 0.1 * entropy.mean()).item())


def test_the_actor_also_climbs_the_critic_along_the_imagined_states_its_baseline_is_not_detached(pixel_bandit):
    """dreamerv3-torch keeps the baseline v(s_t) in the graph: under dynamics backpropagation the actor's
    gradient is that of the detached-baseline loss plus grad (1 / (H N scale)) sum_t w_t v(s_t). In float64:
    the two parts cancel in part, which float32 rounding would blur."""
    torch.manual_seed(0)
    default = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        _check_the_actor_gradient_by_hand(learner(pixel_bandit(2, frames=1), horizon=3, actor_critic_grad_clip=1e9))
    finally:
        torch.set_default_dtype(default)


def _check_the_actor_gradient_by_hand(agent: DreamerV3) -> None:
    with torch.no_grad():  # a critic that does not predict 0 everywhere (its head starts at zero)
        for p in agent.critic.parameters():
            p.add_(0.3 * torch.randn_like(p))
    start = Latent(torch.randn(6, 16), sample_one_hot(unimix_probs(torch.randn(6, 4, 4), 0.01)).flatten(-2))
    before = {name: copy.deepcopy(getattr(agent, name).state_dict()) for name in ("actor", "critic")}
    return_range = agent.return_range.clone()

    torch.manual_seed(1)
    agent.update_actor_critic(start)
    ours = [p.grad.clone() for p in agent.actor.parameters()]

    for name, state in before.items():  # the update stepped both
        getattr(agent, name).load_state_dict(state)
    agent.return_range.copy_(return_range)
    torch.manual_seed(1)  # the same imagined trajectories, by hand
    with frozen(agent.world_model, agent.critic):
        feats = agent.imagine(start)
        reward = agent.twohot.mean(agent.reward_head(feats))
        cont = torch.sigmoid(agent.continue_head(feats)).squeeze(-1)
        value = agent.twohot.mean(agent.critic(feats))
    returns = lambda_returns(reward, cont, value, agent.config.gamma, agent.config.lam)
    weight = imagination_weights(cont, agent.config.gamma)
    scale = agent.return_scale(returns.detach())
    detached = actor_loss((returns - value[:-1].detach()) / scale, agent.actor.entropy(feats[:-1]), weight,
                          agent.config.entropy)  # fmt: skip
    climb = (weight * value[:-1]).mean() / scale
    baseline_part = torch.autograd.grad(climb, list(agent.actor.parameters()), retain_graph=True)
    by_hand = torch.autograd.grad(detached + climb, list(agent.actor.parameters()))
    assert max(g.abs().max() for g in baseline_part) > 1e-6  # the baseline's own gradient is not nothing
    for mine, hand in zip(ours, by_hand, strict=True):
        assert torch.allclose(mine, hand, rtol=1e-9, atol=1e-12)


def test_dreamerv3_counts_the_start_state_in_its_imagination_as_dreamerv3_torch_does():
    """imag_horizon 15 there is the start and 14 imagined steps: 14 returns per start."""
    assert DreamerV3Config().horizon == 14
    layer_norms = [m for m in RSSM(8, 2, DreamerV3Config(**TINY)).modules() if isinstance(m, nn.LayerNorm)]
    assert layer_norms and all(m.eps == 1e-3 for m in layer_norms)


def test_actions_beyond_the_bounds_are_scaled_back_onto_them_with_a_shrunk_gradient_not_clamped():
    raw = torch.tensor([[2.5, -0.5, 0.3], [-3.0, 1.0, -0.2]], requires_grad=True)
    bounded = bound_action(raw)
    assert torch.allclose(bounded, torch.tensor([[1.0, -0.5, 0.3], [-1.0, 1.0, -0.2]]))  # per component
    bounded.sum().backward()
    assert torch.allclose(raw.grad, torch.tensor([[0.4, 1.0, 1.0], [1 / 3, 1.0, 1.0]]))  # a clamp: all ones

    actor, feat = Actor(8, 2, DreamerV3Config(**TINY)), torch.randn(256, 8)
    torch.manual_seed(0)
    action = actor.sample(feat)
    torch.manual_seed(0)
    mean, std = actor(feat)
    raw = mean + std * torch.randn_like(mean)
    assert (raw.abs() > 1).any() and torch.equal(action, bound_action(raw))


def test_layers_start_as_truncated_normals_of_fan_avg_variance_and_the_heads_as_scaled_uniforms(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(2, frames=1), deter=64, units=64, cnn_depth=8)
    heads = {agent.reward_head[-1]: 0.0, agent.critic[-1]: 0.0, agent.continue_head[-1]: 1.0,
             agent.actor.mean_head: 1.0, agent.actor.std_head: 1.0, agent.rssm.prior_net[-1]: 1.0,
             agent.rssm.posterior_net[-1]: 1.0, agent.decoder.linear: 1.0, agent.decoder.deconvs[-1]: 1.0}  # fmt: skip
    hidden, uniform = [], []
    for layer in [*agent.world_model.modules(), *agent.actor.modules(), *agent.critic.modules()]:
        if not isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            continue
        w = layer.weight.detach()
        fan_avg = (w.shape[0] + w.shape[1]) / 2 * w[0, 0].numel()  # a convolution counts its kernel taps
        assert layer.bias is None or layer.bias.abs().max() == 0
        if layer not in heads:
            hidden.append((w * math.sqrt(fan_avg)).flatten())  # unit variance
        elif heads[layer] == 0:
            assert w.abs().max() == 0
        else:
            uniform.append((w / math.sqrt(3 * heads[layer] / fan_avg)).flatten())  # uniform in [-1, 1]
    hidden, uniform = torch.cat(hidden), torch.cat(uniform)
    assert hidden.abs().max() <= 2 / TRUNCATED_STD + 1e-4 and hidden.std().item() == pytest.approx(1.0, abs=0.03)
    assert uniform.abs().max() <= 1 and uniform.std().item() == pytest.approx(1 / math.sqrt(3), abs=0.03)


def moving_square(batch: int, length: int, size: int = 16) -> Sequences:
    """A fixed dataset: a bright square steps right by its action's sign; reward = its column."""
    frames = torch.zeros(batch, length, 3, size, size, dtype=torch.uint8)
    action = torch.randint(0, 2, (batch, length, 2)).float() * 2 - 1
    column = torch.randint(0, size - 4, (batch,))
    reward = torch.zeros(batch, length)
    for t in range(length):
        for b in range(batch):
            frames[b, t, :, 6:10, column[b] : column[b] + 4] = 255
        reward[:, t] = column.float() / size
        column = (column + action[:, t, 0].long()).clamp(0, size - 4)
    flags = torch.zeros(batch, length, dtype=torch.bool)
    first = flags.clone()
    first[:, 0] = True
    return Sequences(frames, action, reward, flags, first, flags.clone())


def test_the_world_model_loss_at_least_halves_on_a_fixed_dataset(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(2, frames=1), model_lr=1e-3)
    data = moving_square(8, 9)
    losses = [agent.update_world_model(data)[1]["model_loss"] for _ in range(200)]
    assert losses[-1] < 0.5 * losses[0], (losses[0], losses[-1])


def test_the_initial_state_is_learned_by_the_world_model_loss_and_starts_every_episode(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(2, frames=1))
    initial = agent.rssm.initial_deter
    assert isinstance(initial, nn.Parameter) and any(initial is p for p in agent.model_opt.param_groups[0]["params"])
    agent.world_model_loss(moving_square(4, 9))[0].backward()
    assert initial.grad is not None and initial.grad.abs().sum() > 0

    rssm = agent.rssm
    with torch.no_grad():
        initial.copy_(torch.randn_like(initial))
        embed, action, zeros = torch.randn(3, agent.encoder.out_dim), torch.randn(3, 2), torch.zeros(3, 32)
        first, later = torch.ones(3, dtype=torch.bool), torch.zeros(3, dtype=torch.bool)
        past = Latent(torch.randn(3, 16), torch.rand(3, 16))
        reset = rssm.observe_step(past, action, embed, first)[1]
        from_initial = rssm.observe_step(rssm.initial(3), torch.zeros(3, 2), embed, later)[1]
        from_zeros = rssm.observe_step(Latent(zeros[:, :16], zeros[:, 16:]), torch.zeros(3, 2), embed, later)[1]
    assert torch.allclose(reset, from_initial) and not torch.allclose(reset, from_zeros)


def test_each_new_policy_starts_afresh_and_forgets_the_past_where_an_episode_begins(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(4, frames=1))
    frames = [torch.randint(0, 256, (4, 3, 16, 16), dtype=torch.uint8) for _ in range(4)]
    first, later = torch.ones(4, dtype=torch.bool), torch.zeros(4, dtype=torch.bool)

    def act(policy, obs, is_first):
        torch.manual_seed(1)  # the same latent samples
        return policy(obs, is_first)

    fresh = act(agent.new_policy(4), frames[3], first)
    running = agent.new_policy(4)
    for obs in frames[:3]:
        act(running, obs, later)
    assert not torch.allclose(act(running, frames[3], later), fresh)  # it remembers
    assert torch.allclose(act(running, frames[3], first), fresh)  # until an episode begins
    assert torch.allclose(act(agent.new_policy(4), frames[3], first), fresh)  # and a new one starts clean
    torch.manual_seed(1)
    assert torch.allclose(agent.act(frames[3]), fresh)  # act: these frames alone


def test_refuses_a_frame_stack_and_images_its_convolutions_cannot_halve(pixel_bandit):
    with pytest.raises(ValueError, match="frames=1"):
        learner(pixel_bandit(2, frames=3))
    with pytest.raises(ValueError, match="multiple of 16"):
        learner(pixel_bandit(2, size=24, frames=1))


def test_updates_follow_the_train_ratio(pixel_bandit):
    agent = learner(pixel_bandit(4, frames=1), train_ratio=4, pretrain=0)  # 4 x 4 / (4 x 8): half an update a step
    metrics = [agent.train_iteration() for _ in range(12)]
    started = [not math.isnan(m["model_loss"]) for m in metrics]
    assert agent.updates_per_step == 0.5 and not any(started[:3])  # 16 seed frames: 4 iterations
    ran = started[started.index(True) :]
    assert ran == [True, False] * (len(ran) // 2) + [True] * (len(ran) % 2)


def count_updates(agent: DreamerV3) -> list[int]:
    """Replaces the agent's update by a stub that counts its calls (in the list returned)."""
    calls = [0]

    def update() -> dict[str, float]:
        calls[0] += 1
        return dict.fromkeys(DreamerV3.METRICS, 0.0)

    agent.update = update
    return calls


def updates_per_iteration(agent: DreamerV3, iterations: int) -> list[int]:
    calls, made = count_updates(agent), []
    for _ in range(iterations):
        before = calls[0]
        agent.train_iteration()
        made.append(calls[0] - before)
    return made


def test_pretrain_runs_once_when_the_seed_frames_are_in_on_top_of_the_regular_updates_not_after_a_resume(
    pixel_bandit,
):
    with pytest.raises(ValueError, match="pretrain"):
        DreamerV3Config(pretrain=-1)
    agent = learner(pixel_bandit(4, frames=1), pretrain=5)  # train_ratio 8: 4 envs x 8 / (4 x 8) = 1 a step
    made = updates_per_iteration(agent, 8)
    start = next(i for i, n in enumerate(made) if n)
    assert start >= 3 and made == [0] * start + [5 + 1] + [1] * (len(made) - start - 1)

    resumed = learner(pixel_bandit(4, frames=1), pretrain=5)  # its replay refills, the burst does not repeat
    resumed.load_state_dict(agent.state_dict())
    made = updates_per_iteration(resumed, 10)
    start = next(i for i, n in enumerate(made) if n)
    assert made == [0] * start + [1] * (len(made) - start)


def test_runs_resumes_and_writes_results(tmp_path, six_iterations_then_a_resume):
    """On the hopper; every task's pixel env is checked once, with D.Va (tests/algorithms/test_apg_family.py)."""
    task = "hopper"
    overrides = ["preset=cpu", "num_envs=2", "image_size=16", "eval_envs=2", "eval_max_steps=4", "deter=16",
                 "units=16", "stoch=4", "classes=4", "cnn_depth=4", "batch_size=2", "batch_length=4",
                 "train_ratio=8", "buffer_size=400", "seed_frames=8", "pretrain=2", f"results_dir={tmp_path}",
                 "run_name=tiny", "checkpoint_every=1"]  # fmt: skip
    metrics = six_iterations_then_a_resume("dreamerv3", task, overrides)
    # updates once the replay holds a window of batch_length + 1 slots in an env (the 4th step writes the 5th)
    assert metrics["model_loss"].notna().tolist() == [False] * 3 + [True] * 3
