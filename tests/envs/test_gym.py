"""The tasks in gymnasium training loops: registered ids, spaces gymnasium checks, autoreset modes, pixel
observations equal to a learner's, videos, torch in and out."""

import runpy
import subprocess
import sys
from pathlib import Path

import gymnasium
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env, check_space_limit, data_equivalence
from gymnasium.utils.passive_env_checker import check_action_space, check_observation_space
from gymnasium.vector import AutoresetMode
from gymnasium.wrappers.vector import ClipAction, NormalizeObservation, NormalizeReward, RecordEpisodeStatistics

import envs
from envs import DiffEnv
from envs.gym_adapter import GymVectorEnv, env_id
from envs.pixels import PixelEnv
from envs.render import renderers

TASKS = sorted(envs.registry())
ROOT = Path(__file__).resolve().parents[2]


def test_every_task_has_an_id_with_its_version_and_a_fresh_interpreter_finds_it_through_the_package():
    assert [env_id(task) for task in TASKS] == [
        f"DVaBench/{t.capitalize()}-v{envs.registry()[t].version}" for t in TASKS
    ]
    assert all(env_id(task) in gymnasium.registry for task in TASKS)
    code = ("import gymnasium; env = gymnasium.make('envs:DVaBench/Cartpole-v2'); "
            "print(env.unwrapped.batch.env.task.name, env.observation_space.shape)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[-2] == "cartpole (5,)"


@pytest.mark.parametrize("task", TASKS)
def test_check_env_passes_on_every_task_with_states_and_with_pixels(task):
    for obs_mode in ("state", "rgb"):
        env = gymnasium.make(env_id(task), obs_mode=obs_mode, image_size=16, render_mode="rgb_array")
        check_env(env.unwrapped)  # raises on any failure; warns only that the state's bounds are infinite
        env.reset(seed=0)
        frame = env.render()
        assert frame.shape == (256, 256, 3) and frame.dtype == np.uint8 and frame.std() > 0


def test_vector_env_adapter_passes_gymnasium_checks():
    env = GymVectorEnv("cartpole", 4, device="cpu")
    for space in (env.single_action_space, env.single_observation_space):
        check_space_limit(space, "action" if space is env.single_action_space else "observation")
    check_action_space(env.single_action_space)
    check_observation_space(env.single_observation_space)

    obs, info = env.reset(seed=123)
    assert obs in env.observation_space and isinstance(info, dict)
    env.action_space.seed(0)
    action = env.action_space.sample()
    first = env.step(action)
    env.reset(seed=123)
    second = env.step(action)
    assert data_equivalence(first[:4], second[:4]), "seeded steps must be deterministic"
    assert not np.shares_memory(first[0], second[0])

    stats = RecordEpisodeStatistics(GymVectorEnv("cartpole", 4, device="cpu", autoreset_mode="SameStep"))
    stats.reset(seed=0)
    for _ in range(300):
        obs, reward, terminated, truncated, info = stats.step(stats.action_space.sample())
        assert obs in env.observation_space and reward.shape == (4,)
        if "episode" in info:
            done = info["_episode"]
            assert (info["_final_obs"] == done).all()
            finals, lengths = info["final_obs"][done], info["episode"]["l"][done]
            assert all(abs(o[0]) > 2.5 or n == 240 for o, n in zip(finals, lengths, strict=True))
            break
    else:
        pytest.fail("no episode finished in 300 random steps")


def test_next_step_autoreset_shows_the_reset_one_step_later_and_ignores_that_action():
    """Gymnasium's default: the ending step returns the true last observation; the next returns the reset
    observation, reward 0, no flags, whatever action that env was given."""
    envs = [GymVectorEnv("hopper", 4, device="cpu", autoreset_mode=AutoresetMode.NEXT_STEP) for _ in range(2)]
    for env in envs:
        env.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(400):
        action = rng.uniform(-1, 1, (4, 3)).astype(np.float32)
        (obs, _, term, trunc, _), other = envs[0].step(action), envs[1].step(action)
        assert data_equivalence(obs, other[0])
        if (term | trunc).any():
            break
    else:
        pytest.fail("no hopper fell in 400 random steps")
    ended = term | trunc
    assert (obs[ended, 0] < -0.45).all()  # the true last observation: the fallen torso's height
    first = envs[0].step(rng.uniform(-1, 1, (4, 3)).astype(np.float32))
    second = envs[1].step(rng.uniform(-1, 1, (4, 3)).astype(np.float32))  # other actions everywhere
    assert data_equivalence(first[0][ended], second[0][ended])  # the reset ignores the action
    assert (np.abs(first[0][ended, 0]) <= 0.05 + 1e-6).all()  # a fresh start: height noise only
    assert (first[1][ended] == 0).all() and not first[2][ended].any() and not first[3][ended].any()
    assert not data_equivalence(first[0][~ended], second[0][~ended])  # the others did step


def test_gymnasium_vector_wrappers_run_on_the_adapter_for_thousands_of_steps():
    """Episode statistics, action clipping, observation and reward normalisation, stacked as a gymnasium
    user would; the recorded episode returns are the sums of the raw rewards, by hand."""
    from gymnasium.wrappers.vector import ClipAction, NormalizeReward

    inner = GymVectorEnv("hopper", 8, device="cpu")
    stats = RecordEpisodeStatistics(ClipAction(inner))
    env = NormalizeReward(NormalizeObservation(stats))
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    raw = stats.step  # the raw rewards, seen under the normalising wrappers
    running, recorded, by_hand = np.zeros(8), [], []

    def recording_step(action):
        obs, reward, term, trunc, info = raw(action)
        running[:] += reward
        for i in np.flatnonzero(term | trunc):
            by_hand.append(running[i])
            recorded.append(info["episode"]["r"][i])
            running[i] = 0.0
        return obs, reward, term, trunc, info

    stats.step = recording_step
    for _ in range(3000):
        obs, reward, *_ = env.step(rng.uniform(-2, 2, (8, 3)))  # out of range: ClipAction's job
        assert np.isfinite(obs).all() and np.isfinite(reward).all()
    assert len(recorded) > 50
    np.testing.assert_allclose(recorded, by_hand, rtol=1e-5)


def test_make_vec_with_pixels_runs_under_gymnasiums_vector_wrappers():
    vec = gymnasium.make_vec(env_id("hopper"), num_envs=4, obs_mode="rgb", image_size=16)
    assert isinstance(vec, GymVectorEnv) and vec.single_observation_space.shape == (9, 16, 16)
    env = NormalizeReward(RecordEpisodeStatistics(ClipAction(vec)))
    env.reset(seed=0)
    rng, episodes = np.random.default_rng(0), 0
    for _ in range(300):
        obs, reward, terminated, truncated, info = env.step(rng.uniform(-2, 2, (4, 3)))
        assert obs.dtype == np.uint8 and obs in vec.observation_space and np.isfinite(reward).all()
        episodes += int((terminated | truncated).sum())
    assert episodes > 0


def test_pixel_observations_equal_a_learners_bit_for_bit_through_resets():
    vec = GymVectorEnv("hopper", 3, obs_mode="state_rgb", image_size=16, seed=4, autoreset_mode="same_step")
    learner_view = PixelEnv(DiffEnv("hopper", 3, device="cpu", seed=4, differentiable=False), "newton", 3, 16)
    obs, _ = vec.reset(seed=4)
    assert np.array_equal(obs["rgb"], learner_view.reset(seed=4).numpy())
    rng, ended = np.random.default_rng(1), 0
    for _ in range(120):
        action = rng.uniform(-1, 1, (3, 3)).astype(np.float32)
        obs, _, terminated, truncated, info = vec.step(action)
        with torch.no_grad():
            rgb, _, *_, learner_info = learner_view.step(torch.from_numpy(action))
        assert np.array_equal(obs["rgb"], rgb.numpy()) and np.array_equal(obs["state"], learner_info["state"].numpy())
        for i in np.flatnonzero(terminated | truncated):
            assert np.array_equal(info["final_obs"][i]["rgb"], learner_info["obs_before_reset"][i].numpy())
            ended += 1
    assert ended > 0


def test_next_step_autoreset_with_pixels_shows_the_fresh_stack_one_step_later():
    vec = GymVectorEnv("hopper", 4, obs_mode="rgb", image_size=16, seed=5)
    vec.reset(seed=5)
    rng = np.random.default_rng(0)
    for _ in range(400):
        _, _, terminated, truncated, _ = vec.step(rng.uniform(-1, 1, (4, 3)).astype(np.float32))
        if (terminated | truncated).any():
            break
    ended = terminated | truncated
    obs, reward, terminated, truncated, _ = vec.step(rng.uniform(-1, 1, (4, 3)).astype(np.float32))
    first = obs[ended].reshape(-1, 3, 3, 16, 16)  # (envs, frames, rgb, H, W)
    assert (first == first[:, :1]).all()  # a fresh episode's stack: its first frame three times
    assert (reward[ended] == 0).all() and not (terminated | truncated)[ended].any()


def test_record_video_films_an_episode_frame_by_frame(tmp_path):
    pytest.importorskip("moviepy", reason="RecordVideo needs moviepy: pip install -e '.[video]'")
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg", reason="pip install -e '.[video]'")
    from gymnasium.wrappers import RecordVideo

    filmed = gymnasium.make(env_id("hopper"), render_mode="rgb_array", render_size=64)
    env = RecordVideo(filmed, str(tmp_path), disable_logger=True)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, _, terminated, truncated, _ = env.step(np.ones(3, np.float32))  # a hopper that falls soon
        steps, done = steps + 1, terminated or truncated
    env.close()
    (video,) = tmp_path.glob("*.mp4")
    frames, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
    assert 5 < steps < 1000 and frames == steps + 1  # the reset's frame, then one per step
    reader = imageio_ffmpeg.read_frames(str(video))
    assert next(reader)["size"] == (64, 64)


def test_torch_io_takes_and_gives_tensors_on_the_envs_device_and_refuses_numpy_in_one_line():
    vec = gymnasium.make_vec(env_id("cartpole"), num_envs=2, torch_io=True, device="cpu")
    obs, _ = vec.reset(seed=0)
    obs, reward, terminated, truncated, _ = vec.step(torch.zeros(2, 1))
    for value in (obs, reward, terminated, truncated):
        assert isinstance(value, torch.Tensor) and value.device == vec.device
    with pytest.raises(TypeError, match="torch_io=True takes actions as torch tensors") as error:
        vec.step(np.zeros((2, 1), np.float32))
    assert "\n" not in str(error.value)
    single = gymnasium.make(env_id("cartpole"), torch_io=True, device="cpu")
    single.reset(seed=0)
    obs, reward, *_ = single.step(torch.zeros(1))
    assert isinstance(obs, torch.Tensor) and obs.shape == (5,) and reward.dim() == 0


@pytest.mark.parametrize(
    ("option", "message"),
    [({"obs_mode": "pixels"}, "obs_mode='pixels': choose one of state, rgb, state_rgb"),
     ({"renderer": "newtn"}, f"renderer='newtn': choose one of {', '.join(renderers())}"),
     ({"render_mode": "ansi"}, "render_mode='ansi': choose rgb_array or None"),
     ({"image_size": 4}, "image_size=4: give a whole number of pixels in [8, 1024]"),
     ({"image_size": 60000}, "image_size=60000: give a whole number of pixels in [8, 1024]"),
     ({"frames": 0}, "frames=0: give a whole number of frames in [1, 16]"),
     ({"frames": 200000}, "frames=200000: give a whole number of frames in [1, 16]"),
     ({"seed": 1.5}, "seed=1.5: give a whole number >= 0, or None")],
)  # fmt: skip
def test_a_bad_option_is_one_line_naming_the_allowed_values(option, message):
    for make in (gymnasium.make, lambda i, **kw: gymnasium.make_vec(i, num_envs=2, **kw)):
        with pytest.raises(ValueError) as error:
            make(env_id("cartpole"), **option)
        assert str(error.value) == message


def test_the_docs_ppo_example_runs_its_loop_and_reports_each_iteration(capsys):
    example = runpy.run_path(str(ROOT / "examples" / "ppo_pixels.py"), run_name="example")
    returns = example["main"](["--env-id", env_id("cartpole"), "--num-envs", "2", "--rollout", "4",
                               "--image-size", "16", "--iterations", "2"])  # fmt: skip
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("iteration")]
    assert len(returns) == 2 and [line.split()[3] for line in lines] == ["8", "16"]  # steps: 2 envs x 4, twice


def test_actions_of_another_shape_or_no_numbers_are_refused_never_reshaped():
    """A transposed or flattened batch would hand env k another env's numbers; None would become NaN."""
    vec = gymnasium.make_vec(env_id("hopper"), num_envs=2, device="cpu")
    vec.reset(seed=0)
    for bad in (np.zeros((3, 2), np.float32), np.zeros(6, np.float32)):
        with pytest.raises(ValueError, match=r"actions of shape \(.*\); this env takes \(2, 3\)"):
            vec.step(bad)
    with pytest.raises(TypeError, match="actions must be numbers"):
        vec.step(None)
    _, reward, *_ = vec.step(np.zeros((2, 3), np.float32))
    assert np.isfinite(reward).all()


def test_seeds_are_whole_numbers_and_a_vector_env_takes_gymnasiums_list_of_seeds():
    vec = gymnasium.make_vec(env_id("cartpole"), num_envs=3, device="cpu")
    by_int, _ = vec.reset(seed=7)
    by_list, _ = vec.reset(seed=[7, 8, 9])  # what gymnasium's own vector envs make of seed=7
    np.testing.assert_array_equal(by_int, by_list)
    for bad in ([7, 7, 7], [1.5, 2.5, 3.5], 1.5, -1, True):
        with pytest.raises(ValueError, match="seed="):
            vec.reset(seed=bad)
    with pytest.raises(ValueError, match=r"num_envs=0: give a whole number of envs in \[1, 65536\]"):
        gymnasium.make_vec(env_id("cartpole"), num_envs=0)


def test_a_single_env_refuses_to_step_past_its_episodes_end_until_reset():
    single = gymnasium.make(env_id("hopper"), device="cpu", disable_env_checker=True)
    with pytest.raises(gymnasium.error.ResetNeeded):
        single.step(np.zeros(3, np.float32))
    single.reset(seed=0)
    ended, steps = False, 0
    while not ended:
        _, _, terminated, truncated, _ = single.step(np.ones(3, np.float32))
        ended, steps = terminated or truncated, steps + 1
    with pytest.raises(gymnasium.error.ResetNeeded, match="call reset"):
        single.step(np.zeros(3, np.float32))
    single.reset()
    single.step(np.zeros(3, np.float32))
    assert steps < 1000
