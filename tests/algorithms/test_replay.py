"""The replay buffer and the augmentations, on a synthetic stream whose frames say where they come from.

A counting env stands in for the simulator: env ``e`` in its ``k``-th episode at step ``t`` has body
"poses" (e, k, t), and a fake renderer paints them into the frame's three channels. The real
:class:`PixelEnv` stacks the frames, so every frame in the buffer can be traced back by hand.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch

from algorithms import get_learner
from algorithms.augment import _crop_by_gather, _crop_by_slices, center_crop, random_crop, random_shift, replicate_pad
from algorithms.replay import ReplayBuffer
from envs.pixels import PixelEnv

NUM_ENVS, FRAMES, SIZE, GAMMA = 3, 3, 6, 0.9


class CountingEnv:
    """Episodes of env e, number k, last 2 + (e + k) % 4 steps; even episodes terminate, odd ones are
    truncated by the time limit. The reward of step t (taken from frame t) is 10 * t + e + 100 * k."""

    task, device, act_dim, obs_dim, episode_length, action_repeat = "counting", torch.device("cpu"), 2, 3, 1000, 1

    def __init__(self, num_envs: int) -> None:
        self.num_envs = num_envs
        self.envs = torch.arange(num_envs)
        self.episode = torch.zeros(num_envs, dtype=torch.long)
        self.t = torch.zeros(num_envs, dtype=torch.long)

    def length(self) -> torch.Tensor:
        return 2 + (self.envs + self.episode) % 4

    def body_transforms(self) -> torch.Tensor:
        return torch.stack([self.envs, self.episode, self.t], dim=1)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self.episode.zero_()
        self.t.zero_()
        return self.body_transforms().float()

    def step(self, actions: torch.Tensor):
        reward = (10 * self.t + self.envs + 100 * self.episode).float()
        self.t += 1
        done = self.t >= self.length()
        terminated = done & (self.episode % 2 == 0)
        truncated = done & (self.episode % 2 == 1)
        before = self.body_transforms().clone()
        self.episode = torch.where(done, self.episode + 1, self.episode)
        self.t = torch.where(done, torch.zeros_like(self.t), self.t)
        info = {"body_q_before_reset": before, "obs_before_reset": before.float()}
        return self.body_transforms().float(), reward, terminated, truncated, info


class PaintingRenderer:
    """Frame of poses (e, k, t): channel c is filled with the c-th number."""

    differentiable, height, width = False, SIZE, SIZE

    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        return body_q.to(torch.uint8)[:, :, None, None].expand(-1, -1, SIZE, SIZE).contiguous()


def tag(frame: torch.Tensor) -> tuple[int, int, int]:
    """(env, episode, t) painted into one (3, H, W) frame."""
    return tuple(int(v) for v in frame[:, 0, 0])


def record(steps: int, capacity_per_env: int):
    """Fill a buffer from ``steps`` vector steps and keep, per env, every slot the buffer should hold:
    (stack the agent saw, action, reward, terminated, is_first, is_last)."""
    env = PixelEnv(CountingEnv(NUM_ENVS), PaintingRenderer(), frames=FRAMES, size=SIZE)
    buffer = ReplayBuffer(NUM_ENVS, NUM_ENVS * capacity_per_env, (3, SIZE, SIZE), 2, FRAMES)
    obs = env.reset()
    buffer.start(obs)
    slots = [[dict(obs=obs[e], first=True, last=False)] for e in range(NUM_ENVS)]
    for step in range(steps):
        action = torch.full((NUM_ENVS, 2), float(step)) + torch.arange(NUM_ENVS)[:, None]
        next_obs, reward, terminated, truncated, info = env.step(action)
        buffer.add(action, reward, terminated, truncated, next_obs, info["obs_before_reset"])
        for e in range(NUM_ENVS):
            slots[e][-1].update(action=action[e], reward=float(reward[e]), terminal=bool(terminated[e]))
            if terminated[e] or truncated[e]:
                slots[e].append(dict(obs=info["obs_before_reset"][e], first=False, last=True))
                slots[e].append(dict(obs=next_obs[e], first=True, last=False))
            else:
                slots[e].append(dict(obs=next_obs[e], first=False, last=False))
        obs = next_obs
    return buffer, slots


def by_tag(slots) -> dict[tuple[int, int, int], tuple[int, int]]:
    """(env, episode, t) of a slot's newest frame -> (env, absolute slot index). Last slots are keyed
    apart from the next episode's first (they carry different tags anyway)."""
    return {tag(s["obs"][-3:]): (e, i) for e, stream in enumerate(slots) for i, s in enumerate(stream)}


def test_stacks_equal_pixel_envs_bit_for_bit_after_the_ring_wraps():
    buffer, slots = record(steps=60, capacity_per_env=25)
    assert buffer.written.tolist() == [len(s) for s in slots]
    assert min(len(s) for s in slots) > 2 * buffer.slots  # the ring wrapped twice
    for e, stream in enumerate(slots):
        held = range(len(stream) - buffer.slots + FRAMES - 1, len(stream))  # whole stacks still in the ring
        index = torch.tensor(list(held))
        stacks = buffer.stack(torch.full_like(index, e), index)
        for i, stack in zip(held, stacks, strict=True):
            assert torch.equal(stack, stream[i]["obs"]), (e, i)
            assert bool(buffer.is_first[e, i % buffer.slots]) == stream[i]["first"]
            assert bool(buffer.is_last[e, i % buffer.slots]) == stream[i]["last"]
        oldest = buffer.stack(torch.tensor([e]), torch.tensor([len(stream) - buffer.slots]))[0]
        assert tag(oldest[-3:]) == tag(stream[len(stream) - buffer.slots]["obs"][-3:])  # its own frame survives
    assert len(buffer) == NUM_ENVS * buffer.slots


@pytest.mark.parametrize("n_step", [1, 3])
def test_n_step_returns_discounts_and_next_frames_by_hand(n_step):
    buffer, slots = record(steps=60, capacity_per_env=25)
    buffer.generator = torch.Generator().manual_seed(0)
    batch = buffer.sample(512, n_step=n_step, gamma=GAMMA)
    where = by_tag(slots)
    seen_terminal = seen_truncated = seen_full = 0
    for i in range(512):
        e, start = where[tag(batch.obs[i, -3:])]
        stream = slots[e]
        assert not stream[start]["last"]
        assert start >= len(stream) - buffer.slots + FRAMES - 1  # its whole stack is still in the ring
        reward, discount, k = 0.0, 1.0, 0
        terminal = False
        while k < n_step:  # the explicit recursion, one step at a time
            reward += discount * stream[start + k]["reward"]
            discount *= GAMMA
            terminal = stream[start + k]["terminal"]
            k += 1
            if stream[start + k]["last"]:
                break
        expected_discount = 0.0 if terminal else discount
        assert batch.reward[i].item() == pytest.approx(reward, rel=1e-6)
        assert batch.discount[i].item() == pytest.approx(expected_discount, rel=1e-6)
        assert torch.equal(batch.action[i], stream[start]["action"])
        assert torch.equal(batch.next_obs[i], stream[start + k]["obs"])
        episode = tag(batch.obs[i, -3:])[1]
        assert all(tag(f)[1] == episode for f in batch.next_obs[i].reshape(FRAMES, 3, SIZE, SIZE))  # no reset crossed
        ended = stream[start + k]["last"]
        seen_terminal += ended and terminal
        seen_truncated += ended and not terminal  # bootstrapped from the true last frame
        seen_full += not ended
    assert seen_terminal and seen_truncated and (seen_full or n_step == 1)


def test_truncated_episode_bootstraps_from_its_true_final_frame():
    buffer, slots = record(steps=12, capacity_per_env=40)
    buffer.generator = torch.Generator().manual_seed(1)
    batch = buffer.sample(400, n_step=3, gamma=GAMMA)
    final = [i for i in range(400) if (batch.discount[i] > 0) & (tag(batch.next_obs[i, -3:])[2] > 0)]
    truncations = 0
    for i in final:
        e, k, t = tag(batch.next_obs[i, -3:])
        length = 2 + (e + k) % 4
        if t == length:  # a frame no agent step ever started from: the pre-reset one
            assert k % 2 == 1  # odd episodes are the truncated ones
            truncations += 1
    assert truncations > 0


def test_sequences_are_consecutive_slots_with_episode_starts_marked():
    buffer, slots = record(steps=40, capacity_per_env=30)
    buffer.generator = torch.Generator().manual_seed(2)
    seq = buffer.sample_sequences(64, length=8)
    where = by_tag(slots)
    for b in range(64):
        e, start = where[tag(seq.frames[b, 0])]
        for j in range(8):
            expected = slots[e][start + j]
            assert torch.equal(seq.frames[b, j], expected["obs"][-3:])
            assert bool(seq.is_first[b, j]) == expected["first"]
            assert bool(seq.is_last[b, j]) == expected["last"]
            if "reward" in expected and start + j + 1 < len(slots[e]):
                assert seq.reward[b, j].item() == expected["reward"]
    assert seq.is_first.any() and seq.is_last.any()


# ---------------------------------------------------------------------------- episodes, as DrQ-v2 samples them
def episodes(slots) -> list[tuple[int, int, int | None]]:
    """(env, first slot, last slot or None while unfinished) of every episode in the recorded streams."""
    found = []
    for e, stream in enumerate(slots):
        for i, s in enumerate(stream):
            if s["first"]:
                found.append([e, i, None])
            if s["last"]:
                found[-1][2] = i
    return [tuple(episode) for episode in found]


def episode_of(slots, e: int, index: int) -> tuple[int, int, int | None]:
    return next(ep for ep in episodes(slots) if ep[0] == e and ep[1] <= index and (ep[2] is None or index <= ep[2]))


def paint(k: int, t: int) -> torch.Tensor:
    """A one-env "stack" whose newest frame says (env 0, episode k, step t) (the buffer keeps only that frame)."""
    return torch.tensor([0, k, t], dtype=torch.uint8)[None, :, None, None].expand(1, 3, SIZE, SIZE).contiguous()


def play(buffer: ReplayBuffer, lengths: list[int], terminated: list[bool], unfinished: int = 0) -> None:
    """One env's episodes of ``lengths`` actions (the reward of step t of episode k is 100 k + t), then
    ``unfinished`` steps of one more that never ends."""
    buffer.start(paint(0, 0))
    plan = [
        (k, t, t + 1 == n, term) for k, (n, term) in enumerate(zip(lengths, terminated, strict=True)) for t in range(n)
    ]
    plan += [(len(lengths), t, False, False) for t in range(unfinished)]
    for k, t, end, term in plan:
        following = paint(k + 1, 0) if end else paint(k, t + 1)
        terminated_now, truncated_now = torch.tensor([end and term]), torch.tensor([end and not term])
        action, reward = torch.full((1, 2), float(t)), torch.tensor([100.0 * k + t])
        buffer.add(action, reward, terminated_now, truncated_now, following, paint(k, t + 1))


@pytest.mark.parametrize("n_step", [1, 3])
def test_episode_samples_are_full_n_step_transitions_of_finished_episodes_by_hand(n_step):
    """Episodes of 2 to 5 steps, even ones terminated, odd ones truncated, the last of each env unfinished."""
    buffer, slots = record(steps=30, capacity_per_env=80)  # no wrap
    buffer.generator = torch.Generator().manual_seed(0)
    batch = buffer.sample_by_episode(3000, n_step=n_step, gamma=GAMMA)
    where = by_tag(slots)
    seen, seen_terminal, seen_truncated_end, seen_inside = set(), 0, 0, 0
    for i in range(3000):
        e, start = where[tag(batch.obs[i, -3:])]
        stream = slots[e]
        episode = episode_of(slots, e, start)
        seen.add(episode)
        _, first, last = episode
        assert last is not None  # a finished episode
        assert first <= start and start + n_step <= last  # all n steps inside it
        reward = sum(GAMMA**k * stream[start + k]["reward"] for k in range(n_step))
        terminal = any(stream[start + k]["terminal"] for k in range(n_step))
        assert not terminal or start + n_step == last  # only an episode's last action terminates
        assert batch.reward[i].item() == pytest.approx(reward, rel=1e-6)
        assert batch.discount[i].item() == (0.0 if terminal else pytest.approx(GAMMA**n_step, rel=1e-6))
        assert torch.equal(batch.obs[i], stream[start]["obs"])
        assert torch.equal(batch.action[i], stream[start]["action"])
        assert torch.equal(batch.next_obs[i], stream[start + n_step]["obs"])  # n slots later, the final frame at last
        seen_terminal += terminal
        seen_truncated_end += start + n_step == last and not terminal
        seen_inside += start + n_step < last
    finished = [ep for ep in episodes(slots) if ep[2] is not None]
    assert seen == {ep for ep in finished if ep[2] - ep[1] >= n_step}  # every long enough one, nothing else
    assert n_step == 1 or any(ep[2] - ep[1] < n_step for ep in finished)  # some too short ones were left out
    assert seen_terminal and seen_truncated_end and seen_inside


def test_an_episode_being_collected_or_shorter_than_n_steps_is_never_sampled():
    buffer = ReplayBuffer(1, 64, (3, SIZE, SIZE), 2, FRAMES, generator=torch.Generator().manual_seed(0))
    play(buffer, lengths=[], terminated=[], unfinished=20)
    assert not buffer.can_sample_episodes(1) and buffer.can_sample(3)  # uniform slots would have plenty
    with pytest.raises(ValueError, match="no finished episode"):
        buffer.sample_by_episode(8, n_step=1)
    buffer = ReplayBuffer(1, 64, (3, SIZE, SIZE), 2, FRAMES, generator=torch.Generator().manual_seed(0))
    play(buffer, lengths=[2, 1], terminated=[False, True], unfinished=20)
    assert not buffer.can_sample_episodes(3)
    with pytest.raises(ValueError, match="at least 3 steps"):
        buffer.sample_by_episode(8, n_step=3)
    assert buffer.can_sample_episodes(2)
    batch = buffer.sample_by_episode(200, n_step=2, gamma=GAMMA)
    assert {tag(frame) for frame in batch.obs[:, -3:]} == {(0, 0, 0)}  # the one start of episode 0
    assert {tag(frame) for frame in batch.next_obs[:, -3:]} == {(0, 0, 2)}  # its true final frame
    assert torch.allclose(batch.reward, torch.tensor(0.0 + GAMMA * 1.0))  # rewards 0 and 1
    assert torch.allclose(batch.discount, torch.tensor(GAMMA**2))  # truncated: bootstrapped
    with pytest.raises(ValueError, match="at least 1"):
        buffer.sample_by_episode(8, n_step=0)


@pytest.mark.parametrize("n_step", [1, 3])
def test_episodes_are_drawn_uniformly_then_a_step_within_them(n_step):
    """A 4-step and a 40-step episode: each gets half the samples (uniform slots would give the short one
    about 1/11), and the long one's starts are all drawn."""
    buffer = ReplayBuffer(1, 128, (3, SIZE, SIZE), 2, FRAMES, generator=torch.Generator().manual_seed(0))
    play(buffer, lengths=[4, 40], terminated=[True, False], unfinished=30)
    batch = buffer.sample_by_episode(4000, n_step=n_step, gamma=GAMMA)
    starts = [tag(frame) for frame in batch.obs[:, -3:]]
    short = sum(k == 0 for _, k, _ in starts) / len(starts)
    assert abs(short - 0.5) < 0.05  # ~6 standard deviations; uniform over steps: 0.09 (n=1) or 0.05 (n=3)
    assert {t for _, k, t in starts if k == 0} == set(range(4 - n_step + 1))
    assert {t for _, k, t in starts if k == 1} == set(range(40 - n_step + 1))


def test_evicted_episodes_are_never_sampled():
    """The ring wrapped: episodes whose first slot was overwritten are gone, even while their later
    slots are still held; every episode wholly in the ring is drawn."""
    buffer, slots = record(steps=60, capacity_per_env=25)
    buffer.generator = torch.Generator().manual_seed(3)
    batch = buffer.sample_by_episode(3000, n_step=1, gamma=GAMMA)
    where = by_tag(slots)
    seen = {episode_of(slots, *where[tag(frame)]) for frame in batch.obs[:, -3:]}
    oldest = {e: len(stream) - buffer.slots for e, stream in enumerate(slots)}  # the oldest slot held per env
    finished = [ep for ep in episodes(slots) if ep[2] is not None]
    held = {ep for ep in finished if ep[1] >= oldest[ep[0]]}
    straddling = [ep for ep in finished if ep[1] < oldest[ep[0]] <= ep[2]]
    assert straddling  # partly overwritten episodes exist ...
    assert seen == held  # ... and are never drawn
    indexed = (buffer.episodes_finished - buffer.episodes_evicted).tolist()  # the records sampling looks at
    assert indexed == [sum(ep[0] == e for ep in held) for e in range(NUM_ENVS)]


def test_one_step_episodes_stay_indexed_while_their_first_slot_is_held():
    """Every episode spans two slots at least: the episode index keeps all those the ring can hold (six
    in 13 slots, the most there can be)."""
    buffer = ReplayBuffer(1, 13, (3, SIZE, SIZE), 2, FRAMES, generator=torch.Generator().manual_seed(0))
    play(buffer, lengths=[1] * 20, terminated=[True, False] * 10)  # episode k: slots 2k, 2k + 1; slots 28-40 held
    batch = buffer.sample_by_episode(1000, n_step=1, gamma=GAMMA)
    assert {tag(frame)[1] for frame in batch.obs[:, -3:]} == set(range(14, 20))
    assert buffer.episodes_finished.tolist() == [20] and buffer.episodes_evicted.tolist() == [14]
    terminated = torch.tensor([tag(frame)[1] % 2 == 0 for frame in batch.obs[:, -3:]])
    assert torch.equal(batch.discount == 0, terminated)


def test_the_same_seed_draws_the_same_episode_samples():
    buffer, _ = record(steps=40, capacity_per_env=30)
    draws = []
    for seed in (5, 5, 6):
        buffer.generator = torch.Generator().manual_seed(seed)
        draws.append(buffer.sample_by_episode(64, n_step=3, gamma=GAMMA))
    fields = ("obs", "action", "reward", "discount", "next_obs")
    assert all(torch.equal(getattr(draws[0], f), getattr(draws[1], f)) for f in fields)
    assert not torch.equal(draws[0].obs, draws[2].obs)


def test_memory_is_reported_and_a_too_small_buffer_is_refused():
    buffer = ReplayBuffer(4, 4000, (3, 84, 84), 6, 3)
    assert buffer.nbytes >= 4000 * 3 * 84 * 84
    assert buffer.nbytes < 4000 * (3 * 84 * 84 + 64)
    assert ReplayBuffer.bytes_for(4000, 4, (3, 84, 84), 6) == buffer.nbytes
    assert ReplayBuffer.bytes_for(1_000_000, 32, (3, 84, 84), 6) / 1e9 == pytest.approx(21.2, abs=0.1)  # the paper's
    with pytest.raises(ValueError, match="too small"):
        ReplayBuffer(16, 100, (3, 8, 8), 2, 3)


# ---------------------------------------------------------------------------- one pixel scale
SMALL_LEARNERS = {
    "drqv2": dict(feature_dim=16, hidden_dim=32, batch_size=16, buffer_size=2000, seed_frames=32,
                  n_step=1),  # the bandit's episodes are one step long
    "curl": dict(crop_size=16, feature_dim=16, hidden_dim=32, batch_size=16, buffer_size=2000, seed_frames=32),
    "dreamerv3": dict(deter=16, units=16, stoch=4, classes=4, cnn_depth=4, batch_size=4, batch_length=8,
                      buffer_size=2000, seed_frames=16, train_ratio=8, pretrain=0),
}  # fmt: skip


@pytest.mark.parametrize("algo", sorted(SMALL_LEARNERS))
def test_the_encoder_sees_pixels_on_the_same_scale_when_learning_and_when_acting(pixel_bandit, algo):
    """The first convolution's input in updates spans what it spans when acting (a learner that fed
    0..255 to its updates and 0..1 to its actions trained on images its policy never saw). Seeded: an
    unseeded reset can draw all-black frames to act on, whose maximum says nothing."""
    torch.manual_seed(0)
    env = pixel_bandit(4, frames=1 if algo == "dreamerv3" else 3)
    agent = get_learner(algo)(env, get_learner(algo).Config(**SMALL_LEARNERS[algo]))
    seen: dict[str, list[float]] = {"act": [], "update": []}
    phase = "act"
    agent.encoder.convs[0].register_forward_pre_hook(lambda _, args: seen[phase].append(args[0].abs().max().item()))
    with torch.no_grad():
        agent.act(env.reset())
    phase = "update"
    while not agent.ready():
        agent.train_iteration()
    agent.update()
    assert seen["update"] and max(seen["update"]) == pytest.approx(max(seen["act"])) and 0 < max(seen["act"]) <= 1.0


@pytest.mark.parametrize("algo", sorted(SMALL_LEARNERS))
def test_an_update_leaves_its_metrics_on_the_device_and_the_iteration_reads_them_once(pixel_bandit, algo, monkeypatch):
    """Reading a metric (``.item()``, ``float()``) makes the host wait for a GPU; updates run once per env
    step, so they hand back tensors and the iteration's row reads the last update's."""
    env = pixel_bandit(4, frames=1 if algo == "dreamerv3" else 3)
    agent = get_learner(algo)(env, get_learner(algo).Config(**SMALL_LEARNERS[algo]))
    while not agent.ready():
        agent.train_iteration()

    def refusing(read):
        def guarded(tensor):  # torch's own reads (Adam's step count lives on the CPU) stay allowed
            caller = sys._getframe(1).f_code.co_filename
            assert "algorithms" not in Path(caller).parts, f"an update read a tensor on the host in {caller}"
            return read(tensor)

        return guarded

    with monkeypatch.context() as patched:
        patched.setattr(torch.Tensor, "item", refusing(torch.Tensor.item))
        patched.setattr(torch.Tensor, "__float__", refusing(torch.Tensor.__float__))
        metrics = agent.update()
    assert metrics and all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in metrics.values())
    row = agent.train_iteration()
    assert all(isinstance(row[key], float) and math.isfinite(row[key]) for key in metrics)


# ---------------------------------------------------------------------------- augmentation
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float32])
def test_random_shift_is_an_exact_slice_of_the_replicate_padded_image(dtype):
    images = torch.randint(0, 256, (32, 9, 12, 12)).to(dtype)
    pad = 2
    shifted = random_shift(images, pad=pad, generator=torch.Generator().manual_seed(0))
    assert shifted.dtype == dtype and shifted.shape == images.shape
    padded = torch.nn.functional.pad(images.float(), (pad,) * 4, mode="replicate").to(dtype)
    offsets = set()
    for i in range(32):
        hits = [
            (dy, dx)
            for dy in range(2 * pad + 1)
            for dx in range(2 * pad + 1)
            if torch.equal(shifted[i], padded[i, :, dy : dy + 12, dx : dx + 12])
        ]
        assert hits, f"image {i} is no slice of its padded image"
        offsets.update(hits)
    assert len(offsets) > 5  # offsets vary across the batch
    assert torch.equal(random_shift(images, pad=0), images)


@pytest.mark.parametrize("pad", [1, 4])
def test_replicate_pad_is_torchs_replicate_padding_on_uint8_frames(pad):
    images = torch.randint(0, 256, (3, 9, 7, 11), dtype=torch.uint8)  # not square: rows and columns differ
    expected = torch.nn.functional.pad(images.float(), (pad,) * 4, mode="replicate").to(torch.uint8)
    assert torch.equal(replicate_pad(images, pad), expected)


def test_the_cpu_and_the_accelerator_crop_cut_the_same_windows():
    images = torch.randint(0, 256, (64, 9, 20, 20), dtype=torch.uint8)
    top, left = torch.randint(0, 9, (2, 64), generator=torch.Generator().manual_seed(0))
    by_slices, by_gather = _crop_by_slices(images, top, left, 12, 11), _crop_by_gather(images, top, left, 12, 11)
    assert by_slices.shape == (64, 9, 12, 11) and torch.equal(by_slices, by_gather)
    assert torch.equal(by_slices[5], images[5, :, top[5] : top[5] + 12, left[5] : left[5] + 11])


def test_random_crop_and_center_crop_are_exact_slices():
    images = torch.randint(0, 256, (16, 3, 10, 10), dtype=torch.uint8)
    crops = random_crop(images, 7, generator=torch.Generator().manual_seed(0))
    assert crops.shape == (16, 3, 7, 7)
    for i in range(16):
        assert any(torch.equal(crops[i], images[i, :, y : y + 7, x : x + 7]) for y in range(4) for x in range(4))
    assert torch.equal(center_crop(images, 6), images[:, :, 2:8, 2:8])
    assert torch.equal(random_crop(images, 10), images)
    with pytest.raises(ValueError, match="exceeds"):
        random_crop(images, 11)
