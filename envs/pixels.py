"""Image observations: a :class:`DiffEnv` seen through a renderer, as a stack of the last frames.

Frame stacking lives here, once: observations are (N, 3 * frames, H, W), newest frame last; an env that
starts an episode shows its first frame repeated, so nothing leaks from the episode before. The state
observation (for critics) stays in ``info["state"]``; ``info["obs_before_reset"]`` is the stack of the
step that ended an episode (rendered from the pre-reset poses), for bootstrapping.
"""

from __future__ import annotations

import time
from typing import Any

import torch

from envs.core import DiffEnv, branch_needed
from envs.render import Renderer, make_renderer


class PixelEnv:
    """Steps a :class:`DiffEnv` and renders it; detached renderers give uint8, differentiable ones
    float images whose gradients reach the body poses and, through them, the simulated state."""

    def __init__(self, env: DiffEnv, renderer: Renderer | str = "newton", frames: int = 3, size: int = 84) -> None:
        self.env = env
        self.task = env.task
        if isinstance(renderer, str):
            renderer = make_renderer(renderer, env.task, env.num_envs, size, size, env.device)
        self.renderer = renderer
        self.frames = frames
        self.num_envs, self.act_dim, self.device = env.num_envs, env.act_dim, env.device
        self.action_repeat = env.action_repeat
        self.episode_length = env.episode_length
        self.state_dim = env.obs_dim
        self.obs_shape = (3 * frames, renderer.height, renderer.width)
        self._stack: torch.Tensor | None = None  # (N, frames, 3, H, W)
        self.render_seconds = 0.0  # wall-clock spent rendering, for learners' time breakdowns

    def _render(self, body_q: torch.Tensor) -> torch.Tensor:
        if not self.renderer.differentiable:
            body_q = body_q.detach()
        if body_q.is_cuda:  # the clock starts when the poses are ready, not when their kernels were queued
            torch.cuda.synchronize(body_q.device)
        start = time.perf_counter()
        images = self.renderer.render(body_q)
        if images.is_cuda:
            torch.cuda.synchronize(images.device)
        self.render_seconds += time.perf_counter() - start
        return images

    def _flat(self, stack: torch.Tensor) -> torch.Tensor:
        return stack.reshape(self.num_envs, *self.obs_shape)

    def reset(self, seed: int | None = None) -> torch.Tensor:
        self.env.reset(seed=seed)
        frame = self._render(self.env.body_transforms())
        self._stack = frame[:, None].expand(-1, self.frames, -1, -1, -1)
        return self._flat(self._stack)

    def step(self, actions: torch.Tensor):
        if self._stack is None:
            self.reset()
        state, reward, terminated, truncated, info = self.env.step(actions)
        done = terminated | truncated
        frame = self._render(self.env.body_transforms())
        before = self._stack
        rolled = torch.cat([before[:, 1:], frame[:, None]], dim=1)
        obs_before_reset, self._stack = rolled, rolled
        if branch_needed(done):  # the finished episodes' last stack shows their pre-reset poses
            last = self._render(info["body_q_before_reset"])
            finished = torch.cat([before[:, 1:], last[:, None]], dim=1)
            obs_before_reset = torch.where(done[:, None, None, None, None], finished, rolled)
            fresh = frame[:, None].expand(-1, self.frames, -1, -1, -1)
            self._stack = torch.where(done[:, None, None, None, None], fresh, rolled)
        out: dict[str, Any] = {**info, "state": state, "obs_before_reset": self._flat(obs_before_reset)}
        out["state_before_reset"] = info["obs_before_reset"]
        return self._flat(self._stack), reward, terminated, truncated, out

    def state_observation(self) -> torch.Tensor:
        return self.env.state_observation()

    def frame_stack(self) -> torch.Tensor:
        """The current observation (N, 3 * frames, H, W) without stepping."""
        if self._stack is None:
            self.reset()
        return self._flat(self._stack)

    def snapshot(self) -> dict[str, Any]:
        """The frame stack (the env's own state is :meth:`DiffEnv.snapshot`'s)."""
        return {"stack": None if self._stack is None else self._stack.detach().clone()}

    def restore(self, snapshot: dict[str, Any]) -> None:
        self._stack = snapshot["stack"]

    def cut_graph(self) -> None:
        self.env.cut_graph()
        if self._stack is not None:
            self._stack = self._stack.detach()
