"""``gymnasium.vector.VectorEnv`` view of a :class:`~envs.core.DiffEnv` (numpy in and out, no gradients),
for tools that speak gymnasium. Envs reset in the step that ends them (``AutoresetMode.SAME_STEP``);
the true last observation is in ``info["final_obs"]`` where ``info["_final_obs"]`` is set."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.core import DiffEnv


class GymVectorEnv(VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, task: str, num_envs: int, device: str | None = None, seed: int = 0) -> None:
        self.env = DiffEnv(task, num_envs, device=device, seed=seed, differentiable=False)
        self.num_envs = num_envs
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (self.env.obs_dim,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.env.act_dim,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs = self.env.reset(seed=seed)
        return obs.cpu().numpy(), {}

    def step(self, actions: np.ndarray):
        with torch.no_grad():
            action = torch.as_tensor(np.asarray(actions, np.float32), device=self.env.device)
            obs, reward, terminated, truncated, info = self.env.step(action)
        done = (terminated | truncated).cpu().numpy()
        infos: dict[str, Any] = {}
        if done.any():
            final = np.empty(self.num_envs, dtype=object)
            last = info["obs_before_reset"].cpu().numpy()
            for i in np.flatnonzero(done):
                final[i] = last[i]
            infos = {"final_obs": final, "_final_obs": done}
        return (
            obs.cpu().numpy(),
            reward.cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
            infos,
        )
