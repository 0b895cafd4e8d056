"""``gymnasium.vector.VectorEnv`` view of a :class:`~envs.core.DiffEnv` (numpy in and out, no gradients),
for tools that speak gymnasium.

``autoreset_mode``:

- ``NEXT_STEP`` (default, gymnasium's own and what its wrappers expect): the step that ends an episode
  returns its true last observation; the next step returns the reset observation with reward 0 and
  both flags false, ignoring that env's action.
- ``SAME_STEP``: an env resets in the step that ends it; its true last observation is in
  ``info["final_obs"]`` where ``info["_final_obs"]`` is set.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.core import DiffEnv

# the DiffEnv fields an env's row of the batch is made of (see DiffEnv.snapshot)
_ROW_FIELDS = ("joint_q", "joint_qd", "actions", "progress", "episode_return")


class GymVectorEnv(VectorEnv):
    def __init__(
        self,
        task: str,
        num_envs: int,
        device: str | None = None,
        seed: int = 0,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        modes = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
        mode = modes.get(autoreset_mode, autoreset_mode) if isinstance(autoreset_mode, str) else autoreset_mode
        if mode not in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP):  # also gymnasium's own spellings
            mode = next((m for m in modes.values() if m.value == autoreset_mode), None)
        if mode is None:
            raise ValueError(f"autoreset_mode {autoreset_mode!r}: choose next_step or same_step")
        self.metadata = {"autoreset_mode": mode}
        self.env = DiffEnv(task, num_envs, device=device, seed=seed, differentiable=False)
        self.num_envs = num_envs
        self.single_observation_space = spaces.Box(-np.inf, np.inf, (self.env.obs_dim,), np.float32)
        self.single_action_space = spaces.Box(-1.0, 1.0, (self.env.act_dim,), np.float32)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._resetting = torch.zeros(num_envs, dtype=torch.bool, device=self.env.device)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        obs = self.env.reset(seed=seed)
        self._resetting.zero_()
        return obs.cpu().numpy(), {}

    def step(self, actions: np.ndarray):
        with torch.no_grad():
            action = torch.as_tensor(np.asarray(actions, np.float32), device=self.env.device)
            if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
                return self._same_step(action)
            return self._next_step(action)

    def _same_step(self, action: torch.Tensor):
        obs, reward, terminated, truncated, info = self.env.step(action)
        done = (terminated | truncated).cpu().numpy()
        infos: dict[str, Any] = {}
        if done.any():
            final = np.empty(self.num_envs, dtype=object)
            last = info["obs_before_reset"].cpu().numpy()
            for i in np.flatnonzero(done):
                final[i] = last[i]
            infos = {"final_obs": final, "_final_obs": done}
        return self._numpy(obs, reward, terminated, truncated) + (infos,)

    def _next_step(self, action: torch.Tensor):
        """DiffEnv resets an env in the step that ends it; here that reset is shown one step later. The
        envs showing it now step with the others (one batch), then get their reset state back."""
        resetting = self._resetting
        before = {k: getattr(self.env, k).clone() for k in _ROW_FIELDS} if resetting.any() else None
        _, reward, terminated, truncated, info = self.env.step(action)
        obs = info["obs_before_reset"]
        done = terminated | truncated
        if before is not None:
            rows = {k: torch.where(_rows(resetting, v), before[k], getattr(self.env, k)) for k, v in before.items()}
            self.env.restore({**rows, "_body_q": None})  # poses are recomputed from the restored state
            obs = torch.where(resetting[:, None], self.env.state_observation(), obs)
            reward = torch.where(resetting, torch.zeros_like(reward), reward)
            terminated, truncated, done = terminated & ~resetting, truncated & ~resetting, done & ~resetting
        self._resetting = done
        return self._numpy(obs, reward, terminated, truncated) + ({},)

    @staticmethod
    def _numpy(obs, reward, terminated, truncated) -> tuple:
        return (
            obs.cpu().numpy(),
            reward.cpu().numpy().astype(np.float64),
            terminated.cpu().numpy(),
            truncated.cpu().numpy(),
        )


def _rows(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``mask`` (N,) shaped to broadcast over ``like`` (N, ...)."""
    return mask.reshape(-1, *([1] * (like.dim() - 1)))
