"""The env layer: sizes, stability, terminations and resets, rewards, graph cuts, action repeat."""

import math

import pytest
import torch

from algorithms.networks import mlp
from envs import DiffEnv, Env, get_task, registry
from envs.pixels import PixelEnv

TASKS = list(registry())  # every registered task: a task added as a file is checked here too
SIZES = {"cartpole": (5, 1, 240), "hopper": (11, 3, 1000), "ant": (37, 8, 1000), "humanoid": (76, 21, 1000)}
# early-termination condition read off the last observation (first entry: x, relative z or height)
TERMINATION = {
    "cartpole": lambda obs: obs[:, 0].abs() > 2.5,
    "hopper": lambda obs: obs[:, 0] < -0.45,
    "ant": lambda obs: obs[:, 0] < 0.27,
    "humanoid": lambda obs: obs[:, 0] < 0.74,
}


def test_registry_lists_the_four_tasks_and_rejects_typos():
    assert set(TASKS) <= set(registry())
    with pytest.raises(KeyError, match="choose one of: .*cartpole"):
        get_task("hoper")


@pytest.mark.parametrize("task", TASKS)
def test_sizes_and_body_transforms(make_env, task):
    env = make_env(task, 3)
    obs_dim, act_dim, length = SIZES[task]
    assert (env.obs_dim, env.act_dim, env.episode_length) == (obs_dim, act_dim, length)
    obs = env.reset(seed=1)
    assert obs.shape == (3, obs_dim) and obs.dtype == torch.float32
    poses = env.body_transforms()
    assert poses.shape == (3, env.num_bodies, 7)
    assert torch.allclose(poses[..., 3:].norm(dim=-1), torch.ones(3, env.num_bodies), atol=1e-5)
    if getattr(env.task, "free_base", False):  # the root body pose is the root joint coordinates
        assert torch.allclose(poses[:, 0, :3], env.joint_q[:, :3], atol=1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_random_actions_stay_finite_and_end_episodes_where_the_task_says(make_env, task):
    env = make_env(task, 16)
    env.reset(seed=0)
    generator = torch.Generator().manual_seed(0)
    ended = 0
    with torch.no_grad():
        for step in range(1000):
            before = env.progress.clone()
            actions = torch.rand(16, env.act_dim, generator=generator) * 2 - 1
            obs, reward, terminated, truncated, info = env.step(actions)
            assert torch.isfinite(obs).all() and torch.isfinite(reward).all(), f"non-finite at step {step}"
            last = info["obs_before_reset"]
            assert torch.equal(terminated, TERMINATION[task](last))
            assert torch.equal(truncated, (before + 1 >= env.episode_length) & ~terminated)
            done = terminated | truncated
            assert (env.progress[done] == 0).all() and (env.progress[~done] == before[~done] + 1).all()
            assert torch.equal(~torch.isnan(info["episode_return"]), done)
            ended += int(done.sum())
    assert ended > 0


def test_reset_envs_start_fresh_and_others_continue(make_env):
    env = make_env("cartpole", 4)
    env.reset(seed=0)
    with torch.no_grad():
        push = torch.tensor([[1.0], [0.0], [0.0], [0.0]])
        for _ in range(200):
            obs, _, terminated, _, info = env.step(push)
            if terminated[0]:
                break
    assert terminated[0] and not terminated[1:].any()
    assert info["obs_before_reset"][0, 0] > 2.5  # the cart left the view...
    assert obs[0, 0].abs() < 0.5  # ...and env 0 restarted near the centre, hanging down
    assert obs[0, 3] < -0.9
    assert torch.equal(obs[1:], info["obs_before_reset"][1:])


@pytest.mark.parametrize("task", ["hopper", "ant"])
def test_a_blown_up_simulation_earns_nothing_and_ends_its_episode(make_env, task):
    """SHAC's envs reset an env whose state is not finite or beyond 1e6 and zero its reward: one
    unstable contact must not hand a learner a huge return or a NaN critic target."""
    env = make_env(task, 4)
    env.reset(seed=0)
    with torch.no_grad():
        env.step(torch.zeros(4, env.act_dim))
        q, qd = env.joint_q.clone(), env.joint_qd.clone()
        qd[1, -1] = 5e6  # a joint spinning absurdly fast
        q[2, -1] = float("nan")
        env.joint_q, env.joint_qd = q, qd
        obs, reward, terminated, truncated, info = env.step(torch.zeros(4, env.act_dim))
    assert terminated.tolist() == [False, True, True, False]
    assert reward[1] == 0 and reward[2] == 0 and torch.isfinite(reward).all()
    assert torch.isfinite(info["episode_return"][1:3]).all() and torch.isfinite(obs).all()  # reset, finite again


# A humanoid state met by a trained state-SHAC policy (seed 0, iteration ~420, 700 steps into an episode),
# 70 m from the world origin: several joints past their limits, saturated actions. Before the physics ran
# each step with the root at the origin, one control step from here blew up (|qd| x2 per substep from
# substep 5, NaN by the 11th): Featherstone's spatial algebra about an origin 70 m away rounds away the
# light links' inertia in float32 (docs/envs.md, "Far from the origin").
FAR_Q = [
    68.84194946289062, 12.533181190490723, 1.038107991218567, -0.14064587652683258, 0.16926464438438416,
    -0.09590017050504684, 0.9707581400871277, 0.19216693937778473, 0.06281004101037979, 0.15143628418445587,
    0.1539900302886963, 0.659227192401886, -1.0683000087738037, -2.802171230316162, 0.908262312412262,
    -0.8874722719192505, 0.05678800120949745, 0.10793496668338776, -0.3181524872779846, -1.5119069814682007,
    -0.7478658556938171, -0.33886533975601196, 0.895784318447113, -1.0691641569137573, -1.6410415172576904,
    -0.4796539545059204, -0.4408605992794037, 0.6502134799957275
]  # fmt: skip
FAR_QD = [
    6.218347072601318, 1.1809196472167969, -0.01601409912109375, 1.1829192638397217, 1.2805709838867188,
    -0.780643880367279, 2.3243675231933594, -5.5625529289245605, -4.5522894859313965, -0.5212999582290649,
    -1.3895076513290405, -12.395637512207031, 9.29429817199707, -0.570971667766571, -0.10222452878952026,
    -0.9939905405044556, -0.35446804761886597, 14.553824424743652, -2.6951558589935303, 3.420130491256714,
    -1.8231534957885742, 1.73468816280365, 0.32268843054771423, 0.19183960556983948, -1.3842549324035645,
    -2.886526107788086, 5.99071741104126
]  # fmt: skip
FAR_ACTION = [
    0.8275730609893799, -0.837758481502533, -0.6742998361587524, 0.9995949864387512, 0.9123743176460266,
    -0.9999976754188538, 0.792725682258606, 0.9943913817405701, -0.9252113699913025, 0.10391339659690857,
    -0.4887312352657318, 0.9999902844429016, -0.8827260136604309, 0.921682596206665, -0.544738233089447,
    0.9861776828765869, -0.2216261476278305, -0.9866290092468262, -0.6145904660224915, -0.9948908090591431,
    0.8959789276123047
]  # fmt: skip


def test_the_humanoid_70_m_out_steps_as_it_would_at_the_origin_and_stays_bounded():
    env = DiffEnv("humanoid", 2, device="cpu", seed=0)
    env.reset(seed=0)
    far = torch.stack([torch.tensor(FAR_Q), torch.tensor(FAR_Q)])
    far[1, :2] = 0.0  # the same robot at the origin
    qd = torch.tensor(FAR_QD).expand(2, -1)
    out = env.sim.step(far, qd, env.torques(torch.tensor(FAR_ACTION).expand(2, -1)))
    assert out.joint_qd[0].abs().max() < 50.0  # 21 rad/s at most going in
    assert torch.equal(out.joint_qd[0], out.joint_qd[1]) and torch.equal(out.joint_q[0, 2:], out.joint_q[1, 2:])
    torch.testing.assert_close(out.joint_q[0, :2] - far[0, :2], out.joint_q[1, :2], atol=1e-5, rtol=0)


@pytest.mark.parametrize("task", [name for name in TASKS if get_task(name).contact is not None])
@pytest.mark.parametrize("capture_graphs", [True, False])
def test_a_step_is_the_same_anywhere_on_the_ground(task, capture_graphs):
    """The ground is an infinite plane: a robot 80 m out steps exactly as at the origin (bit for bit in
    everything but its horizontal position), gradients included. A task whose root can travel declares
    ``horizontal_coords``; without them the far copy drifts apart in float32 and this fails."""
    env = DiffEnv(task, 2, device="cpu", seed=0, capture_graphs=capture_graphs)
    env.reset(seed=3)
    for _ in range(20):  # off the start pose, onto the ground
        env.step(torch.full((2, env.act_dim), 0.5))
    coords = list(env.task.horizontal_coords)
    assert coords, f"{task} has a ground to travel over: declare its root's horizontal_coords"
    q = env.joint_q.detach()[:1].expand(2, -1).clone()
    q[1, coords] += torch.tensor([80.0, 30.0][: len(coords)])
    q.requires_grad_(True)
    qd = env.joint_qd.detach()[:1].expand(2, -1).clone().requires_grad_(True)
    out = env.sim.step(q, qd, env.torques(torch.full((2, env.act_dim), -0.7)))
    assert torch.equal(out.joint_qd[0], out.joint_qd[1])
    rest = [i for i in range(q.shape[1]) if i not in coords]
    assert torch.equal(out.joint_q[0, rest], out.joint_q[1, rest])
    torch.testing.assert_close(out.joint_q[1, coords] - out.joint_q[0, coords], q[1, coords] - q[0, coords])
    torch.testing.assert_close(out.body_q[1, :, 2:], out.body_q[0, :, 2:])
    loss = (out.joint_q[:, 2:] ** 2).sum() + (out.joint_qd**2).sum() + out.body_q[:, :, 2].sum()
    dq, dqd = torch.autograd.grad(loss, (q, qd))
    assert torch.equal(dq[0], dq[1]) and torch.equal(dqd[0], dqd[1])


def test_horizontal_coords_beyond_the_robots_coordinates_are_refused():
    class Misdeclared(type(get_task("hopper"))):
        horizontal_coords = (0, 99)

    with pytest.raises(ValueError, match="horizontal_coords=\\(0, 99\\)"):
        DiffEnv(Misdeclared(), 1, device="cpu")


def _env_with_a_blow_up(capture_graphs: bool = True) -> DiffEnv:
    """Env 0 with a shoulder spun to 1e4 rad/s: no policy reaches that now, but whatever does must be
    confined; its next step is NaN."""
    env = DiffEnv("humanoid", 2, device="cpu", seed=0, capture_graphs=capture_graphs)
    env.reset(seed=0)
    q, qd = env.joint_q.clone(), env.joint_qd.clone()
    q[0], qd[0] = torch.tensor(FAR_Q), torch.tensor(FAR_QD)
    qd[0, 25] = 1e4
    env.joint_q, env.joint_qd, env._body_q = q, qd, None
    return env


@pytest.mark.parametrize("capture_graphs", [True, False])
def test_a_step_that_blows_up_passes_back_zero_gradient_and_leaves_the_other_envs_gradients_finite(capture_graphs):
    """Its adjoint would be NaN (0 x NaN), and through the actor's shared weights void every env's update:
    state SHAC on humanoid skipped 191 of 612 updates that way before this."""
    env = _env_with_a_blow_up(capture_graphs)
    weight = torch.ones(1, requires_grad=True)  # a parameter both envs' actions share, as an actor's
    actions = weight * torch.stack([torch.tensor(FAR_ACTION), torch.full((21,), 0.3)])
    _, reward, terminated, *_ = env.step(actions)
    assert terminated.tolist() == [True, False]
    (grad,) = torch.autograd.grad(reward.sum() + env.state_observation().sum(), weight)
    assert torch.isfinite(grad).all() and grad.abs().item() > 0


def test_a_blown_up_envs_last_state_reads_as_zeros_so_a_masked_critic_passes_back_no_nan():
    """SHAC bootstraps a terminated env with nothing: ``where(truncated, critic(last state), 0)``. On a NaN
    last state the mask comes after the critic, whose backward multiplies the zero by NaN, and the
    NaN reached the actions through the observation (which holds them), past the physics' guard:
    the humanoid's remaining skipped updates."""
    env = _env_with_a_blow_up()
    weight = torch.ones(1, requires_grad=True)
    actions = weight * torch.stack([torch.tensor(FAR_ACTION), torch.full((21,), 0.3)])
    _, _, terminated, truncated, info = env.step(actions)
    assert terminated.tolist() == [True, False]
    assert torch.equal(info["state_before_reset"][0], torch.zeros(env.obs_dim))
    assert torch.isfinite(info["state_before_reset"]).all()
    torch.manual_seed(0)
    critic = mlp(env.obs_dim, [8, 8], 1)  # SHAC's critic: its LayerNorm's backward multiplies by the NaN
    last_value = critic(info["state_before_reset"]).squeeze(-1)
    bootstrap = torch.where(truncated, last_value, torch.zeros_like(last_value))
    (grad,) = torch.autograd.grad((bootstrap + critic(info["state"]).squeeze(-1)).sum(), weight)
    assert torch.isfinite(grad).all() and grad.abs().item() > 0


def test_no_grad_and_grad_paths_simulate_the_same_trajectory(make_env):
    env = make_env("hopper", 2)
    actions = [torch.full((2, 3), 0.3 * (-1) ** t) for t in range(5)]
    env.reset(seed=3)
    with torch.no_grad():
        cheap = [env.step(a)[0] for a in actions]
    env.reset(seed=3)
    graded = [env.step(a.clone().requires_grad_(True))[0] for a in actions]
    for a, b in zip(cheap, graded, strict=True):
        assert torch.allclose(a, b.detach(), atol=1e-5)
    env.cut_graph()


def test_seeding_reproduces_resets(make_env):
    env = make_env("ant", 2)
    first = env.reset(seed=7)
    env.reset(seed=8)
    assert torch.equal(first, env.reset(seed=7))
    assert not torch.equal(first, env.reset(seed=8))


# -- rewards on hand-built states, against the paper's formulas (docs/envs.md) ----------------------------
def test_cartpole_reward():
    task = get_task("cartpole")
    q = torch.tensor([[0.5, math.pi - 0.2], [-1.0, 0.1]])  # theta from upright: pi-0.2 and 0.1
    qd = torch.tensor([[1.0, 2.0], [0.0, -1.0]])
    r = task.reward(q, qd, torch.zeros(2, 1))
    expect = [
        10 - (math.pi - 0.2) ** 2 - 0.1 * 4 - 0.05 * 0.25 - 0.1 * 1,
        10 - 0.01 - 0.1 * 1 - 0.05 * 1 - 0.0,
    ]
    assert torch.allclose(r, torch.tensor(expect), atol=1e-5)
    wrapped = task.reward(q + torch.tensor([0.0, 2 * math.pi]), qd, torch.zeros(2, 1))
    assert torch.allclose(wrapped, r, atol=1e-4)  # angle is wrapped


def test_hopper_reward_reads_the_torso():
    """Height and pitch in the reward are the torso's, read here by forward kinematics (start height 1.25)."""
    env = DiffEnv("hopper", 2, device="cpu")
    q = torch.tensor([[0.3, 0.1, 0.2, -0.3, -0.2, 0.1], [0.0, -0.4, 0.0, 0.0, 0.0, 0.0]])
    qd = torch.zeros(2, 6)
    qd[:, 0] = torch.tensor([1.5, -0.5])
    torso = env.sim.forward_kinematics(q, qd)[:, 0]
    height = torso[:, 2] - 1.25
    pitch = 2 * torch.atan2(torso[:, 4], torso[:, 6])  # quaternion about y: (0, sin, 0, cos)
    assert torch.allclose(torso[:, 0], q[:, 0], atol=1e-6) and torch.allclose(pitch, q[:, 2], atol=1e-5)
    a = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5]])
    d = (height - (-0.45 + 0.15)).clamp(-1.0, 0.3)  # 0.4 clipped to 0.3; -0.1
    shaping = torch.where(d < 0, -200 * d**2, d)
    expect = qd[:, 0] + shaping + 1 - (pitch / (math.pi / 6)) ** 2 - 0.1 * (a**2).sum(-1)
    assert torch.allclose(env.task.reward(q, qd, a), expect, atol=1e-5)
    assert torch.allclose(
        expect, torch.tensor([1.5 + 0.3 + 1 - (0.2 / (math.pi / 6)) ** 2 - 0.1, -0.5 - 2 + 1 - 0.075])
    )


def _quat_about_y(angle):  # (x, y, z, w)
    return [0.0, math.sin(angle / 2), 0.0, math.cos(angle / 2)]


def test_ant_reward():
    task = get_task("ant")
    q = torch.zeros(2, 15)
    q[0, :7] = torch.tensor([0, 0, 0.6, *_quat_about_y(0.0)])
    q[1, :7] = torch.tensor([0, 0, 0.4, *_quat_about_y(math.pi / 3)])  # pitched 60 degrees
    qd = torch.zeros(2, 14)
    qd[:, 0] = torch.tensor([2.0, 1.0])
    r = task.reward(q, qd, torch.ones(2, 8))  # no action penalty for the ant
    expect = [2.0 + 0.1 * 1 + 1 + (0.6 - 0.27), 1.0 + 0.1 * 0.5 + 0.5 + (0.4 - 0.27)]
    assert torch.allclose(r, torch.tensor(expect), atol=1e-5)


def test_humanoid_reward():
    task = get_task("humanoid")
    q = torch.zeros(2, 28)
    q[0, :7] = torch.tensor([0, 0, 1.3, *_quat_about_y(0.0)])
    q[1, :7] = torch.tensor([0, 0, 0.8, *_quat_about_y(math.pi / 2)])
    qd = torch.zeros(2, 27)
    qd[:, 0] = torch.tensor([3.0, 0.0])
    a = torch.full((2, 21), 0.5)
    expect = [
        3.0 + 0.1 + 1 + 10 * 0.1 - 0.002 * 21 * 0.25,
        0.0 + 0.0 + 0.0 - 200 * 0.04**2 - 0.002 * 21 * 0.25,
    ]
    assert torch.allclose(task.reward(q, qd, a), torch.tensor(expect), atol=1e-5)


def test_action_repeat_is_two_single_steps_and_stops_counting_at_a_mid_repeat_end():
    repeat = DiffEnv("cartpole", 3, device="cpu", seed=0, action_repeat=2)
    single = DiffEnv("cartpole", 3, device="cpu")
    single.restore(repeat.snapshot())
    actions = torch.tensor([[0.5], [0.3], [-0.6]])
    with torch.no_grad():
        obs, reward, *_ = repeat.step(actions)
        _, first, *_ = single.step(actions)
        expected_obs, second, *_ = single.step(actions)
    torch.testing.assert_close(obs, expected_obs)
    torch.testing.assert_close(reward, first + second)
    assert repeat.progress.tolist() == [2, 2, 2]

    # env 1's cart leaves the view in the first control step: it earns that step only, shows it, resets once
    q, qd = repeat.joint_q.clone(), repeat.joint_qd.clone()
    q[1, 0], qd[1, 0] = 2.49, 3.0  # |x| > 2.5 after one step of 1/60 s
    repeat.joint_q, repeat.joint_qd = q, qd
    single.restore(repeat.snapshot())
    with torch.no_grad():
        obs, reward, terminated, truncated, info = repeat.step(actions)
        _, first, ended, _, single_info = single.step(actions)
        _, second, *_ = single.step(actions)
    assert terminated.tolist() == [False, True, False] and ended[1]
    torch.testing.assert_close(reward[1], first[1])
    torch.testing.assert_close(reward[[0, 2]], (first + second)[[0, 2]])
    torch.testing.assert_close(info["obs_before_reset"][1], single_info["obs_before_reset"][1])
    assert repeat.progress.tolist() == [4, 0, 4] and info["episode_length"][1] == 3


def test_a_state_env_and_a_pixel_env_are_both_the_env_a_learner_names():
    """``envs.Env`` is what learners take: both env classes have every member it lists, the task included."""
    env = DiffEnv("cartpole", 2, device="cpu")
    pixels = PixelEnv(env, "newton", frames=3, size=24)
    for candidate in (env, pixels):
        assert isinstance(candidate, Env)
        assert candidate.task is env.task
    assert pixels.obs_shape == (9, 24, 24) and env.obs_shape == (env.obs_dim,)


def test_the_env_takes_numpy_and_float64_actions_and_refuses_wrong_shapes_in_one_line():
    import numpy as np

    from envs import DiffEnv
    from envs.gym_adapter import GymVectorEnv

    for count in (0, -1):
        with pytest.raises(ValueError, match=f"num_envs={count}: give a positive whole number"):
            DiffEnv("cartpole", count, device="cpu")
    env = DiffEnv("cartpole", 2, device="cpu", differentiable=False)
    rewards = []
    for actions in (np.full((2, 1), 0.5), torch.full((2, 1), 0.5, dtype=torch.float64), torch.full((2, 1), 0.5)):
        env.reset(seed=0)
        rewards.append(env.step(actions)[1])
    torch.testing.assert_close(rewards[0], rewards[2])
    torch.testing.assert_close(rewards[1], rewards[2])
    for bad in (torch.zeros(3, 1), torch.zeros(2)):
        with pytest.raises(ValueError, match=r"this env takes \(2, 1\) \(num_envs, act_dim\)"):
            env.step(bad)
    with pytest.raises(ValueError, match=r"give a whole number in \[0, 2\*\*63\)"):
        env.reset(seed=2**70)
    assert (
        GymVectorEnv("cartpole", 2, device="cpu", autoreset_mode="same_step").metadata["autoreset_mode"].value
        == "SameStep"
    )
    with pytest.raises(ValueError, match="choose next_step or same_step"):
        GymVectorEnv("cartpole", 2, device="cpu", autoreset_mode="sometimes")
