"""DrQ-v2: exploration schedule, the critic target by hand, what each update may change, a tiny pixel
task it must learn, and every task through the runner."""

import math

import pytest
import torch

from algorithms.drqv2 import DrQv2, DrQv2Config
from benchmark.config import load_config
from envs.tasks.hopper import Hopper

# n_step 1: the pixel bandit's episodes are one step long, and only episodes of n_step steps or more are sampled
TINY = dict(feature_dim=16, hidden_dim=32, batch_size=16, buffer_size=2000, seed_frames=64, n_step=1)


def learner(env, **overrides) -> DrQv2:
    return DrQv2(env, DrQv2Config(**{**TINY, **overrides}))


def fill(agent: DrQv2, iterations: int = 20) -> None:
    for _ in range(iterations):
        agent.train_iteration()


@pytest.mark.parametrize("action_repeat", [1, 2])
def test_exploration_noise_is_scheduled_in_agent_steps_not_frames(pixel_bandit, action_repeat):
    """After k iterations the std is the schedule at k x num_envs agent steps (DrQ-v2 and D.Va count one
    step per env per policy step), whatever the action repeat."""
    env = pixel_bandit(4)
    env.action_repeat = action_repeat
    agent = learner(env, std_start=1.0, std_end=0.1, std_decay_steps=40, seed_frames=10**6)  # no updates
    for k in range(1, 13):
        agent.train_iteration()
        assert agent.std() == pytest.approx(1.0 - 0.9 * min(k * 4 / 40, 1.0))


def test_critic_target_is_reward_plus_discounted_min_of_target_q_under_fixed_noise(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(4), std_clip=0.3)
    fill(agent)
    h_next = torch.randn(8, agent.encoder.repr_dim)
    reward, discount = torch.randn(8), torch.tensor([0.0, 0.5, 0.9, 0.99] * 2)
    torch.manual_seed(1)
    target = agent.critic_target_value(reward, discount, h_next)

    torch.manual_seed(1)  # the same noise, by hand
    with torch.no_grad():
        mean = torch.tanh(agent.actor.policy(agent.actor.trunk(h_next)))
        noise = (torch.randn_like(mean) * agent.std()).clamp(-0.3, 0.3)
        action = (mean + noise).clamp(-1, 1)
        x = torch.cat([agent.critic_target.trunk(h_next), action], -1)
        q_min = torch.minimum(agent.critic_target.q.q1(x), agent.critic_target.q.q2(x)).squeeze(-1)
    assert torch.allclose(target, reward + discount * q_min, atol=1e-6)
    assert not torch.allclose(q_min, agent.critic(h_next, action)[0])  # the target net, not the online one


def test_the_actor_update_leaves_encoder_and_critic_unchanged_and_the_critic_update_the_actor(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(4))
    fill(agent)
    snapshot = lambda module: [p.detach().clone() for p in module.parameters()]  # noqa: E731
    same = lambda module, before: all(torch.equal(p, q) for p, q in zip(module.parameters(), before, strict=True))  # noqa: E731
    encoder, critic, actor = snapshot(agent.encoder), snapshot(agent.critic), snapshot(agent.actor)
    h = agent.encoder(torch.rand(16, *agent.env.obs_shape))
    agent.update_actor(h.detach())
    assert same(agent.encoder, encoder) and same(agent.critic, critic) and not same(agent.actor, actor)

    actor = snapshot(agent.actor)
    agent.update_critic(h, torch.rand(16, 2) * 2 - 1, torch.randn(16))
    assert same(agent.actor, actor) and not same(agent.encoder, encoder) and not same(agent.critic, critic)


def test_no_updates_before_the_seed_frames_then_num_envs_over_two(pixel_bandit):
    agent = learner(pixel_bandit(8), seed_frames=32)
    first = [agent.train_iteration() for _ in range(3)]  # 24 frames of random actions
    assert all(math.isnan(m["critic_loss"]) and m["time_update"] == 0 for m in first)
    assert agent.updates_per_step == 4 and not math.isnan(agent.train_iteration()["critic_loss"])  # 32: updates begin


def episodes_of(env, length: int):
    """The bandit with its episodes cut to ``length`` steps by a time limit (all envs together)."""
    step, taken = env.step, [0]

    def stepping(actions):
        obs, reward, _, _, info = step(actions)
        taken[0] += 1
        ended = torch.full((env.num_envs,), taken[0] % length == 0)
        return obs, reward, torch.zeros_like(ended), ended, info

    env.step = stepping
    return env


def test_updates_wait_for_a_finished_episode_of_n_steps_and_sample_by_episode(pixel_bandit, monkeypatch):
    """As upstream DrQ-v2, updates draw full n-step returns from finished episodes only: past the seed
    frames, none begins before the first episode of at least n_step steps has ended."""
    agent = learner(pixel_bandit(4), n_step=3, seed_frames=0)  # one-step episodes: never n_step long
    fill(agent, 10)
    assert not agent.ready() and agent.replay.can_sample(3)  # uniform slots would have been ready
    with pytest.raises(ValueError, match="no finished episode"):
        agent.update()

    agent = learner(episodes_of(pixel_bandit(4), 5), n_step=3, seed_frames=0)
    rows = [agent.train_iteration() for _ in range(6)]
    assert [math.isnan(row["critic_loss"]) for row in rows] == [True] * 4 + [False] * 2  # the 5th step ends them
    monkeypatch.setattr(agent.replay, "sample", None)  # the uniform sampler is not DrQ-v2's
    assert torch.isfinite(agent.update()["critic_loss"])


def test_learns_which_action_sign_pays_from_pixels(pixel_bandit):
    torch.manual_seed(0)
    agent = learner(pixel_bandit(16), lr=1e-3, std_decay_steps=2000, updates_per_step=4)
    rewards = []
    for _ in range(150):  # 600 updates
        rewards.append(agent.train_iteration()["train_return"])
    env = agent.env
    greedy = sum(float(env.step(agent.act(env.reset()))[1].mean()) for _ in range(10)) / 10
    assert greedy > 0.9, (greedy, rewards[-10:])


def test_runs_resumes_and_writes_results(tmp_path, six_iterations_then_a_resume, monkeypatch):
    """On the hopper; every task's pixel env is checked once, with D.Va (tests/algorithms/test_apg_family.py)."""
    task = "hopper"
    monkeypatch.setattr(Hopper, "episode_length", 6)  # 3 agent steps at action repeat 2: episodes end early on
    overrides = ["preset=cpu", "num_envs=2", "image_size=32", "eval_envs=2", "eval_max_steps=4", "hidden_dim=32",
                 "batch_size=8", "buffer_size=400", "seed_frames=8", f"results_dir={tmp_path}", "run_name=tiny",
                 "checkpoint_every=1"]  # fmt: skip
    metrics = six_iterations_then_a_resume("drqv2", task, overrides)
    # updates once the seed frames are in and an episode of n_step (3) agent steps has ended: the third iteration
    assert metrics["critic_loss"].notna().tolist() == [False] * 2 + [True] * 4


def test_cpu_preset_layers_the_algos_own_file_over_the_shared_one():
    paper = load_config("drqv2", "cartpole")
    cpu = load_config("drqv2", "cartpole", ["preset=cpu"])
    assert (paper.num_envs, paper.batch_size, paper.buffer_size) == (16, 256, 1_000_000)
    assert (cpu.num_envs, cpu.image_size, cpu.batch_size, cpu.buffer_size) == (16, 48, 64, 100_000)  # batch: its own
    assert load_config("drqv2", "cartpole", ["preset=cpu", "batch_size=32"]).batch_size == 32
    assert load_config("dva", "cartpole", ["preset=cpu"]).image_size == 48  # no file of its own: shared only
