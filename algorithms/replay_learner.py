"""What the replay learners (DrQ-v2, CURL, DreamerV3) share around their updates: the replay buffer
(``algorithms/replay.py``), one step of every env per iteration, random actions for the seed frames, and
when updates may begin."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from algorithms.base import Learner, LearnerConfig, Policy, bounded
from algorithms.common import EpisodeStats, PhaseTimer
from algorithms.replay import ReplayBuffer

Metrics = dict[str, torch.Tensor]
"""An update's metrics as detached 0-d tensors: read once per iteration (:meth:`ReplayLearner.iteration_metrics`),
since reading one (``.item()``) makes the host wait for the device, and updates run once per env step."""


@dataclass
class ReplayConfig(LearnerConfig):
    """Fields every replay learner has (DrQ-v2, CURL, DreamerV3); each sets its paper's defaults."""

    iterations: int = 1_000_000  # vector steps; a budget usually stops the run first
    buffer_size: int = bounded(100_000, low=1)  # frames, all envs together: 3 x H x W bytes each
    # auto: the run's device; cpu keeps the frames in host memory (small GPUs)
    replay_device: str = bounded("auto", choices=("auto", "cpu"))
    seed_frames: int = bounded(4000, low=0)  # uniformly random actions first, no updates
    updates_per_step: int = bounded(0, low=0)  # updates per vector step; 0: the learner's paper's ratio


class ReplayLearner(Learner):
    """What DrQ-v2, CURL and DreamerV3 share around their updates: the replay buffer, one step of every
    env per iteration (uniformly random actions for the first ``seed_frames``), and when updates may
    begin. Subclasses build their networks, set ``lookahead`` (the slots an update's sample needs after
    its start) or override :meth:`replay_can_sample`, implement ``act`` (or ``new_policy``) and make the
    updates in ``train_iteration``."""

    lookahead: int = 1

    def __init__(self, env, config: ReplayConfig) -> None:
        super().__init__(env, config)
        if len(env.obs_shape) != 3:
            raise ValueError(f"{self.name} learns from pixels: give the run a renderer (renderer=newton)")
        replay_device = env.device if config.replay_device == "auto" else torch.device("cpu")
        self.replay = ReplayBuffer(env.num_envs, config.buffer_size, (3, *env.obs_shape[1:]), env.act_dim,
                                   env.obs_shape[0] // 3, replay_device)  # fmt: skip
        self.frames = 0  # env frames (control steps) seen so far
        self.timer = PhaseTimer(env.device)
        self.episodes = EpisodeStats()
        self.obs = env.reset()
        self.replay.start(self.obs)
        self.behaviour: Policy | None = None  # the acting policy, from the end of the seed frames on
        self.is_first = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)

    def collect(self) -> int:
        """One step of every env into the replay; returns the env frames it took."""
        env = self.env
        with self.timer.apart_from_rendering("forward", env):
            if self.frames < self.config.seed_frames:
                action = torch.rand(env.num_envs, env.act_dim, device=env.device) * 2 - 1
            else:
                if self.behaviour is None:  # it starts afresh, as after a resume: every env "begins"
                    self.behaviour = self.new_policy(env.num_envs, deterministic=False)
                    self.is_first[:] = True
                action = self.behaviour(self.obs, self.is_first)
            obs, reward, terminated, truncated, info = env.step(action)
            self.replay.add(action, reward, terminated, truncated, obs, info["obs_before_reset"])
            self.episodes.record(info)
            self.obs, self.is_first = obs, terminated | truncated
        steps = env.num_envs * env.action_repeat
        self.frames += steps
        return steps

    def ready(self) -> bool:
        """Past the seed frames, with the replay refilled that far (also after a resume: it is not
        checkpointed) and holding what an update samples (:meth:`replay_can_sample`)."""
        refilled = len(self.replay) * self.env.action_repeat >= self.config.seed_frames
        return self.frames >= self.config.seed_frames and refilled and self.replay_can_sample()

    def replay_can_sample(self) -> bool:
        """Whether the replay holds a sample for an update: by default a stack with ``lookahead`` steps
        after it (uniform slots); a learner that samples otherwise overrides this."""
        return self.replay.can_sample(self.lookahead)

    def iteration_metrics(self, steps: int, metrics: dict[str, float | torch.Tensor]) -> dict[str, float]:
        """The row the runner writes: env steps, the learner's metrics (the last update's, read here), episodes
        and phase times."""
        times = {"time_update": 0.0, **self.timer.pop()}
        read = {key: float(value) for key, value in metrics.items()}
        return {"env_steps": steps, **read, **self.episodes.pop(), **times}
