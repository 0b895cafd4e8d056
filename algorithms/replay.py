"""One replay buffer for the pixel learners (DrQ-v2, CURL, DreamerV3): frames stored once, on the device.
(What those learners share around it, ``ReplayLearner``, is ``algorithms/replay_learner.py``.)

Each env writes its own stream of slots, one frame per slot (the newest frame of the stack the agent saw):

    o_0 a_0 r_0 | o_1 a_1 r_1 | ... | o_T (last: the episode's true final frame, no action) | o'_0 (first) ...

A slot holds the frame, the action taken from it, the reward that action earned, whether it ended the
episode by termination, and whether the slot is an episode's first or last observation. Frame stacks are
gathered by index and never reach before their episode's first frame (which they repeat, as
:class:`~envs.pixels.PixelEnv` does), so a stack in the buffer equals the env's bit for bit. An
episode that ends writes two slots in that step: its final frame and the next episode's first, so a
truncated episode is bootstrapped from its true last frame and nothing ever crosses a reset.

Two ways to sample transitions: :meth:`ReplayBuffer.sample`, uniformly over slots with n-step returns cut
at episode ends (CURL's: its upstream samples transitions uniformly, 1-step), and
:meth:`ReplayBuffer.sample_by_episode`, an episode uniformly among the finished ones and then a step in
it, with full n-step returns (DrQ-v2's upstream). For the latter each env keeps a ring of its finished
episodes (first and last absolute slot), written by :meth:`ReplayBuffer.add` when they end and dropped
when their first slot is overwritten, so a sample costs O(envs x episodes held), not O(capacity).

Memory: ``capacity`` frames of 3 x H x W bytes (the paper's 1e6 frames at 84 x 84 are ~21 GB; keep them
on the CPU with ``device="cpu"`` when the GPU is small), plus ~28 bytes per slot for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass
class Transitions:
    """An n-step batch: ``next_obs`` is ``n`` steps later (fewer where the episode ended, with
    :meth:`ReplayBuffer.sample`), ``discount`` is gamma^steps, 0 after a termination."""

    obs: torch.Tensor  # (B, 3 * frames, H, W) uint8
    action: torch.Tensor  # (B, A)
    reward: torch.Tensor  # (B,) discounted sum over the steps taken
    discount: torch.Tensor  # (B,)
    next_obs: torch.Tensor  # (B, 3 * frames, H, W) uint8


@dataclass
class Sequences:
    """Consecutive slots of one env stream (they may cross episodes: ``is_first`` marks the starts)."""

    frames: torch.Tensor  # (B, L, 3, H, W) uint8, one frame per slot
    action: torch.Tensor  # (B, L, A): the action taken from each slot (zero at last slots)
    reward: torch.Tensor  # (B, L): the reward it earned
    terminal: torch.Tensor  # (B, L) bool: it ended the episode by termination
    is_first: torch.Tensor  # (B, L) bool
    is_last: torch.Tensor  # (B, L) bool


class ReplayBuffer:
    def __init__(
        self,
        num_envs: int,
        capacity: int,
        frame_shape: tuple[int, int, int],
        act_dim: int,
        frames: int = 3,
        device: torch.device | str = "cpu",
        generator: torch.Generator | None = None,
    ) -> None:
        if capacity < num_envs * (frames + 8):
            raise ValueError(f"replay capacity {capacity} is too small for {num_envs} envs: give at least "
                             f"{num_envs * (frames + 8)} frames")  # fmt: skip
        self.num_envs, self.frames, self.device = num_envs, frames, torch.device(device)
        self.slots = capacity // num_envs  # per env stream
        n, c = num_envs, self.slots
        self.frame = torch.zeros(n, c, *frame_shape, dtype=torch.uint8, device=self.device)
        self.action = torch.zeros(n, c, act_dim, device=self.device)
        self.reward = torch.zeros(n, c, device=self.device)
        self.terminal = torch.zeros(n, c, dtype=torch.bool, device=self.device)
        self.is_first = torch.zeros(n, c, dtype=torch.bool, device=self.device)
        self.is_last = torch.zeros(n, c, dtype=torch.bool, device=self.device)
        self.episode_start = torch.zeros(n, c, dtype=torch.long, device=self.device)  # absolute slot index
        self.written = torch.zeros(n, dtype=torch.long, device=self.device)  # slots written per env, ever
        self._start = torch.zeros(n, dtype=torch.long, device=self.device)  # current episode's first slot
        self._envs = torch.arange(n, device=self.device)
        # finished episodes, a ring of records per env: an episode spans >= 2 slots, so at most slots // 2 of
        # them still have their first slot in the ring; episode j of env e is record j % episode_slots
        self.episode_slots = c // 2
        self.episode_first = torch.zeros(n, self.episode_slots, dtype=torch.long, device=self.device)
        self.episode_last = torch.zeros(n, self.episode_slots, dtype=torch.long, device=self.device)
        self.episodes_finished = torch.zeros(n, dtype=torch.long, device=self.device)  # per env, ever
        # per env, its episodes (oldest first) whose first slot was overwritten: those from here to
        # episodes_finished are the ones held, so sampling looks at their records only
        self.episodes_evicted = torch.zeros(n, dtype=torch.long, device=self.device)
        self.generator = generator

    @property
    def nbytes(self) -> int:
        tensors = (self.frame, self.action, self.reward, self.terminal, self.is_first, self.is_last, self.episode_start,
                   self.episode_first, self.episode_last)  # fmt: skip
        return sum(t.numel() * t.element_size() for t in tensors)

    @staticmethod
    def bytes_for(capacity: int, num_envs: int, frame_shape: tuple[int, int, int], act_dim: int) -> int:
        """What a buffer of ``capacity`` frames would hold in memory, without allocating it."""
        c, h, w = frame_shape
        per_slot = c * h * w + 4 * act_dim + 4 + 3 + 8  # frame, action, reward, 3 flags, episode start
        slots = capacity // num_envs
        return num_envs * (slots * per_slot + (slots // 2) * 16)  # and the finished episodes' first and last slots

    def __len__(self) -> int:
        """Slots held (all envs)."""
        return int(self.written.clamp(max=self.slots).sum())

    # ------------------------------------------------------------------ writing
    def _write(self, envs: torch.Tensor, newest: torch.Tensor, first: bool, last: torch.Tensor) -> None:
        index = self.written[envs]
        slot = index % self.slots
        if first:
            self._start[envs] = index
        self.frame[envs, slot] = newest.to(self.device)
        self.action[envs, slot] = 0.0
        self.reward[envs, slot] = 0.0
        self.terminal[envs, slot] = False
        self.is_first[envs, slot] = first
        self.is_last[envs, slot] = last
        self.episode_start[envs, slot] = self._start[envs]
        self.written[envs] += 1

    def start(self, obs: torch.Tensor) -> None:
        """The first observations (N, 3 * frames, H, W) of every env's episode."""
        self._write(self._envs, obs[:, -3:], first=True, last=torch.zeros_like(self._envs, dtype=torch.bool))

    def add(
        self,
        action: torch.Tensor,
        reward: torch.Tensor,
        terminated: torch.Tensor,
        truncated: torch.Tensor,
        next_obs: torch.Tensor,
        final_obs: torch.Tensor,
    ) -> None:
        """One vector step: the actions taken from the latest slots, their rewards and ends, the next
        observations, and (``info["obs_before_reset"]``) the true final observations where episodes ended."""
        done = (terminated | truncated).to(self.device)
        slot = (self.written - 1) % self.slots
        self.action[self._envs, slot] = action.detach().to(self.device, torch.float32)
        self.reward[self._envs, slot] = reward.detach().to(self.device, torch.float32)
        self.terminal[self._envs, slot] = terminated.to(self.device)
        final, following = final_obs[:, -3:].to(self.device), next_obs[:, -3:].to(self.device)
        self._write(self._envs, torch.where(done[:, None, None, None], final, following), first=False, last=done)
        if done.any():  # index the finished episodes, then write the next episodes' first frames
            envs = self._envs[done]
            record = self.episodes_finished[envs] % self.episode_slots
            self.episode_first[envs, record] = self._start[envs]
            self.episode_last[envs, record] = self.written[envs] - 1
            self.episodes_finished[envs] += 1
            self._write(envs, following[done], first=True, last=torch.zeros_like(envs, dtype=torch.bool))
        # drop the oldest record once its first slot is overwritten: one a step keeps up, as a step overwrites
        # at most one first slot per env (first slots are never adjacent); sampling checks the slots anyway.
        # Records overwritten by newer ones were evicted (at most episode_slots are held)
        self.episodes_evicted = torch.maximum(self.episodes_evicted, self.episodes_finished - self.episode_slots)
        oldest = self.episode_first[self._envs, self.episodes_evicted % self.episode_slots]
        gone = (self.episodes_evicted < self.episodes_finished) & (oldest < self.written - self.slots)
        self.episodes_evicted += gone.long()

    # ------------------------------------------------------------------ reading
    def stack(self, envs: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """(B, 3 * frames, H, W): the frame stack the agent saw at absolute slots ``index`` of ``envs``."""
        back = torch.arange(self.frames - 1, -1, -1, device=self.device)
        slots = torch.maximum(index[:, None] - back, self.episode_start[envs, index % self.slots][:, None])
        stacked = self.frame[envs[:, None], slots % self.slots]  # (B, frames, 3, H, W), oldest first
        return stacked.flatten(1, 2)

    def can_sample(self, lookahead: int) -> bool:
        """Whether some env stream holds a start with its whole frame stack and ``lookahead`` slots after it."""
        low = (self.written - self.slots).clamp(min=0) + self.frames - 1
        return bool((self.written - 1 - lookahead >= low).any())

    def _randint(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        """Uniform integers in [low, high] elementwise."""
        u = torch.rand(low.shape, generator=self.generator, device=self.device)
        return low + (u * (high - low + 1).float()).long().clamp(max=(high - low).clamp(min=0))

    def _sample_starts(
        self, batch: int, lookahead: int, lookback: int, actions: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(envs, absolute slots) of ``batch`` starts with ``lookahead`` slots written after them and
        ``lookback`` before them still in the ring; with ``actions``, never a last slot (it has none)."""
        low = (self.written - self.slots).clamp(min=0) + lookback
        high = self.written - 1 - lookahead
        if not (high >= low).any():
            raise ValueError(f"the replay buffer holds too little to sample from ({len(self)} slots)")
        chosen_envs, chosen = [], []
        need = batch
        while need > 0:
            envs = torch.randint(0, self.num_envs, (2 * need,), generator=self.generator, device=self.device)
            ok = high[envs] >= low[envs]
            envs = envs[ok]
            index = self._randint(low[envs], high[envs])
            keep = ~self.is_last[envs, index % self.slots] if actions else torch.ones_like(envs, dtype=torch.bool)
            chosen_envs.append(envs[keep][:need])
            chosen.append(index[keep][:need])
            need -= len(chosen[-1])
        return torch.cat(chosen_envs), torch.cat(chosen)

    def sample(self, batch: int, n_step: int = 1, gamma: float = 0.99) -> Transitions:
        """``batch`` n-step transitions, uniformly over the slots that have an action."""
        envs, start = self._sample_starts(batch, lookahead=n_step, lookback=self.frames - 1)
        reward = torch.zeros(batch, device=self.device)
        discount = torch.ones(batch, device=self.device)
        alive = torch.ones(batch, dtype=torch.bool, device=self.device)
        steps = torch.zeros(batch, dtype=torch.long, device=self.device)
        terminal = torch.zeros(batch, dtype=torch.bool, device=self.device)
        for k in range(n_step):
            slot = (start + k) % self.slots
            reward += torch.where(alive, discount * self.reward[envs, slot], torch.zeros_like(reward))
            terminal |= alive & self.terminal[envs, slot]
            discount = torch.where(alive, discount * gamma, discount)
            steps += alive.long()
            alive &= ~self.is_last[envs, (start + k + 1) % self.slots]  # the episode ended with this step
        return Transitions(
            obs=self.stack(envs, start),
            action=self.action[envs, start % self.slots],
            reward=reward,
            discount=torch.where(terminal, torch.zeros_like(discount), discount),
            next_obs=self.stack(envs, start + steps),
        )

    def _episodes(self, n_step: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(valid, first, last), each (N, W): the records of each env's finished episodes not seen evicted
        (W: the most any env has), valid where the episode's first slot is still in the ring and it has at
        least ``n_step`` actions."""
        if n_step < 1:
            raise ValueError(f"n_step={n_step}: must be at least 1")
        window = int((self.episodes_finished - self.episodes_evicted).max())  # the one host read
        number = self.episodes_evicted[:, None] + torch.arange(window, device=self.device)
        record = number % self.episode_slots
        first, last = self.episode_first.gather(1, record), self.episode_last.gather(1, record)
        held = (number < self.episodes_finished[:, None]) & (first >= (self.written - self.slots)[:, None])
        return held & (last - first >= n_step), first, last

    def can_sample_episodes(self, n_step: int) -> bool:
        """Whether some finished episode still in the ring has at least ``n_step`` actions."""
        return bool(self._episodes(n_step)[0].any())

    def sample_by_episode(self, batch: int, n_step: int = 1, gamma: float = 0.99) -> Transitions:
        """``batch`` full n-step transitions as upstream DrQ-v2 samples them: an episode uniformly among the
        finished ones still in the ring (shorter ones than ``n_step`` left out; one being collected never
        counts), then a start uniformly among its steps with all ``n_step`` inside it. Short episodes are
        thus oversampled against :meth:`sample`'s uniform slots. The reward is sum_k gamma^k r_k; the
        discount gamma^n, 0 where the episode terminated (only its last action can) within the n steps.
        A method of its own, not a flag of :meth:`sample`: it draws from other transitions (finished
        episodes, no truncated returns) with other weights."""
        valid, first, last = self._episodes(n_step)
        if not valid.any():
            raise ValueError(f"the replay buffer holds no finished episode of at least {n_step} steps to sample")
        chosen = torch.multinomial(valid.flatten().float(), batch, replacement=True, generator=self.generator)
        envs, first, last = chosen // valid.shape[1], first.flatten()[chosen], last.flatten()[chosen]
        start = self._randint(first, last - n_step)  # the last slot holds the final frame, no action
        slots = (start[:, None] + torch.arange(n_step, device=self.device)) % self.slots
        powers = gamma ** torch.arange(n_step, device=self.device, dtype=torch.float32)
        terminal = self.terminal[envs[:, None], slots].any(dim=1)
        return Transitions(
            obs=self.stack(envs, start),
            action=self.action[envs, start % self.slots],
            reward=(self.reward[envs[:, None], slots] * powers).sum(dim=1),
            discount=torch.where(terminal, 0.0, gamma**n_step).to(torch.float32),
            next_obs=self.stack(envs, start + n_step),
        )

    def sample_sequences(self, batch: int, length: int) -> Sequences:
        """``batch`` windows of ``length`` consecutive slots of one env stream each (a world model's data)."""
        envs, start = self._sample_starts(batch, lookahead=length - 1, lookback=0, actions=False)
        slots = (start[:, None] + torch.arange(length, device=self.device)) % self.slots
        rows = envs[:, None]
        return Sequences(
            frames=self.frame[rows, slots],
            action=self.action[rows, slots],
            reward=self.reward[rows, slots],
            terminal=self.terminal[rows, slots],
            is_first=self.is_first[rows, slots],
            is_last=self.is_last[rows, slots],
        )
