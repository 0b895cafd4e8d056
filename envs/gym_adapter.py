"""The suite's tasks in any gymnasium training loop: registered ids, state or pixel observations, videos.

After ``import envs`` every task has an id, ``DVaBench/<Task>-v<version>`` (the task's version: results of
other versions never pool). In a fresh interpreter gymnasium imports the package itself from the id's
module prefix, ``gymnasium.make("envs:DVaBench/Hopper-v2")`` (gymnasium 1.x loads no plugins by itself)::

    env = gymnasium.make("DVaBench/Hopper-v2", obs_mode="rgb", render_mode="rgb_array")   # one env
    vec = gymnasium.make_vec("DVaBench/Hopper-v2", num_envs=64, obs_mode="rgb", torch_io=True)

``make_vec`` gives :class:`GymVectorEnv`: one batched :class:`~envs.core.DiffEnv` stepping all envs at
once, not N copies. Options (both): ``obs_mode`` ``state`` (the learners' state vector), ``rgb`` (the
frame stack a pixel learner sees: uint8, (3 x frames, H, W), oldest frame first, from the task's camera)
or ``state_rgb`` (a dict of both); ``image_size``, ``frames``, ``renderer`` (any backend; float images of
a differentiable one are rounded to uint8), ``device``, ``seed``, ``render_mode="rgb_array"`` (env 0
seen by the task's camera, ``render_size`` pixels square, for ``RecordVideo``), ``torch_io`` (tensors in and out
on the env's device, no numpy round trip). No gradients flow: for those, use ``DiffEnv`` itself.

``autoreset_mode`` (vector env):

- ``NEXT_STEP`` (default, gymnasium's own and what its wrappers expect): the step that ends an episode
  returns its true last observation; the next step returns the reset observation with reward 0 and
  both flags false, ignoring that env's action.
- ``SAME_STEP``: an env resets in the step that ends it; its true last observation is in
  ``info["final_obs"]`` where ``info["_final_obs"]`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from envs.core import MAX_ENVS, DiffEnv
from envs.pixels import PixelEnv
from envs.render import make_renderer, renderers
from envs.tasks import registry

OBS_MODES = ("state", "rgb", "state_rgb")
RENDER_MODES = (None, "rgb_array")
NAMESPACE = "DVaBench"


def env_id(task: str) -> str:
    """The registered id of ``task``, e.g. ``DVaBench/Hopper-v2``."""
    kind = registry()[task]
    return f"{NAMESPACE}/{kind.name.capitalize()}-v{kind.version}"


def register_tasks() -> list[str]:
    """Register every task (``make`` and ``make_vec``); idempotent. Returns the ids."""
    ids = []
    for task in registry():
        ids.append(env_id(task))
        if ids[-1] not in gymnasium.registry:
            gymnasium.register(ids[-1], entry_point=f"{__name__}:GymEnv", vector_entry_point=f"{__name__}:GymVectorEnv",
                               kwargs={"task": task}, disable_env_checker=True)  # fmt: skip
    return ids


@dataclass(frozen=True)
class Options:
    """The keyword options of ``make`` and ``make_vec`` (see the module)."""

    obs_mode: str = "state"
    image_size: int = 84
    frames: int = 3
    renderer: str = "newton"
    device: str | torch.device | None = None
    seed: int = 0
    render_mode: str | None = None
    render_size: int = 256
    torch_io: bool = False

    def check(self) -> None:
        """One line naming the allowed values, before anything is built."""
        if self.obs_mode not in OBS_MODES:
            raise ValueError(f"obs_mode={self.obs_mode!r}: choose one of {', '.join(OBS_MODES)}")
        if self.renderer not in renderers():
            raise ValueError(f"renderer={self.renderer!r}: choose one of {', '.join(renderers())}")
        if self.render_mode not in RENDER_MODES:
            raise ValueError(f"render_mode={self.render_mode!r}: choose rgb_array or None")
        for name in ("image_size", "render_size"):
            if not (isinstance(getattr(self, name), int) and 8 <= getattr(self, name) <= 1024):
                raise ValueError(f"{name}={getattr(self, name)!r}: give a whole number of pixels in [8, 1024]")
        if not (isinstance(self.frames, int) and 1 <= self.frames <= 16):
            raise ValueError(f"frames={self.frames!r}: give a whole number of frames in [1, 16]")
        _check_seed(self.seed)


class _Batch:
    """A non-differentiable DiffEnv, seen as the options ask: its state, its frame stack (a PixelEnv's,
    so a learner and a gymnasium loop see the same pixels) or both; spaces per env."""

    def __init__(self, task: str, num_envs: int, options: Options) -> None:
        options.check()
        self.obs_mode, self.torch_io, self.render_mode = options.obs_mode, options.torch_io, options.render_mode
        self.env = DiffEnv(task, num_envs, device=options.device, seed=options.seed, differentiable=False)
        self.device = self.env.device
        renderer, size = options.renderer, options.image_size
        self.pixels = None if options.obs_mode == "state" else PixelEnv(self.env, renderer, options.frames, size)
        self.video = None
        if options.render_mode is not None:
            size = options.render_size
            self.video = make_renderer(renderer, self.env.task, 1, size, size, self.device)
        state = spaces.Box(-np.inf, np.inf, (self.env.obs_dim,), np.float32)
        rgb = None if self.pixels is None else spaces.Box(0, 255, self.pixels.obs_shape, np.uint8)
        self.observation_space = {"state": state, "rgb": rgb}.get(options.obs_mode) or spaces.Dict(state=state, rgb=rgb)
        self.action_space = spaces.Box(-1.0, 1.0, (self.env.act_dim,), np.float32)
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": round(1 / (self.env.dt * self.env.action_repeat))}

    def observe(self, state: torch.Tensor, rgb: torch.Tensor | None) -> Any:
        """The batch's observation in the chosen mode, as tensors."""
        rgb = None if rgb is None else _uint8(rgb)
        return {"state": state, "rgb": rgb, "state_rgb": {"state": state, "rgb": rgb}}[self.obs_mode]

    def reset(self, seed: int | None) -> Any:
        if self.pixels is None:
            return self.observe(self.env.reset(seed=seed), None)
        rgb = self.pixels.reset(seed=seed)
        return self.observe(self.env.state_observation(), rgb)

    def step(self, actions: torch.Tensor) -> tuple[Any, Any, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(observation after any reset, true last observation, reward, terminated, truncated)."""
        with torch.no_grad():
            if self.pixels is None:
                obs, reward, terminated, truncated, info = self.env.step(actions)
                last = self.observe(info["obs_before_reset"], None)
                return self.observe(obs, None), last, reward, terminated, truncated
            rgb, reward, terminated, truncated, info = self.pixels.step(actions)
            now = self.observe(info["state"], rgb)
            last = self.observe(info["state_before_reset"], info["obs_before_reset"])
            return now, last, reward, terminated, truncated

    def snapshot(self) -> dict[str, Any]:
        return {"env": self.env.snapshot(), "pixels": None if self.pixels is None else self.pixels.snapshot()}

    def undo_step_where(self, rows: torch.Tensor, before: dict[str, Any]) -> None:
        """Envs in ``rows`` get back their state from ``before`` (their step is undone), the others keep theirs."""
        now = self.snapshot()
        rows_of = lambda snap: {k: v for k, v in snap.items() if k not in ("generator", "_body_q")}  # noqa: E731
        # the RNG stays where the step left it; poses follow from the restored state
        self.env.restore(_where(rows, rows_of(before["env"]), rows_of(now["env"])) | {"_body_q": None})
        if self.pixels is not None:
            self.pixels.restore(_where(rows, before["pixels"], now["pixels"]))

    def current(self) -> Any:
        rgb = None if self.pixels is None else self.pixels.frame_stack()
        return self.observe(self.env.state_observation(), rgb)

    def render(self, env: int = 0) -> np.ndarray | None:
        """(render_size, render_size, 3) uint8: env ``env`` seen by the task's camera (``rgb_array`` mode)."""
        if self.video is None:
            return None
        with torch.no_grad():
            image = _uint8(self.video.render(self.env.body_transforms()[env : env + 1]))
        return image[0].permute(1, 2, 0).cpu().numpy()

    def actions(self, actions: Any, shape: tuple[int, ...]) -> torch.Tensor:
        """Actions as a float32 tensor of exactly ``shape`` on the env's device (never reshaped: a
        transposed or flattened batch would hand env k another env's numbers); ``torch_io`` takes tensors
        only."""
        if self.torch_io and not isinstance(actions, torch.Tensor):
            raise TypeError(f"torch_io=True takes actions as torch tensors on {self.device}, got "
                            f"{type(actions).__name__}; pass torch.as_tensor(actions, device=env.device), or make "
                            "the env with torch_io=False")  # fmt: skip
        if not isinstance(actions, torch.Tensor):
            array = np.asarray(actions)
            if array.dtype.kind not in "biuf":
                raise TypeError(f"actions must be numbers of shape {shape}, got {actions!r:.60}")
            actions = torch.as_tensor(array.astype(np.float32), device=self.device)
        if tuple(actions.shape) != shape:
            raise ValueError(f"actions of shape {tuple(actions.shape)}; this env takes {shape} (envs x action dims)")
        return actions.to(self.device, torch.float32)

    def out(self, value: Any) -> Any:
        """Tensors as given (``torch_io``) or as numpy arrays; dicts alike."""
        if isinstance(value, dict):
            return {key: self.out(v) for key, v in value.items()}
        return value if self.torch_io else value.cpu().numpy()


class GymVectorEnv(VectorEnv):
    """``gymnasium.make_vec(id, num_envs=N, ...)``: N envs in one batch on one device (see the module)."""

    metadata = {"render_modes": ["rgb_array"]}  # before construction; an instance adds its frame rate

    def __init__(
        self,
        task: str,
        num_envs: int,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **options: Any,
    ) -> None:
        """``options``: the fields of :class:`Options`."""
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or not 1 <= num_envs <= MAX_ENVS:
            raise ValueError(f"num_envs={num_envs!r}: give a whole number of envs in [1, {MAX_ENVS}]")
        mode = _autoreset_mode(autoreset_mode)
        self.batch = _Batch(task, num_envs, Options(**options))
        self.env, self.device, self.num_envs = self.batch.env, self.batch.device, num_envs
        self.render_mode = self.batch.render_mode
        self.metadata = {**self.batch.metadata, "autoreset_mode": mode}
        self.single_observation_space = self.batch.observation_space
        self.single_action_space = self.batch.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self._resetting = torch.zeros(num_envs, dtype=torch.bool, device=self.device)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """``seed``: one int, or gymnasium's per-env list, which its vector envs fill as ``seed + k`` for
        env k: ``[s, s + 1, ...]`` is ``seed=s`` here (one generator draws for the whole batch)."""
        if isinstance(seed, list | tuple):
            seed = self._one_seed(list(seed))
        _check_seed(seed)
        super().reset(seed=seed)
        obs = self.batch.reset(seed)
        self._resetting.zero_()
        return self.batch.out(obs), {}

    def _one_seed(self, seeds: list) -> int | None:
        if all(s is None for s in seeds):
            return None
        first = seeds[0]
        if len(seeds) == self.num_envs and isinstance(first, int) and seeds == [first + k for k in range(len(seeds))]:
            return first
        raise ValueError(f"seed={seeds!r:.60}: this batch draws every env from one generator; give one int s or "
                         f"the list [s, s + 1, ..., s + {self.num_envs - 1}] gymnasium makes of it")  # fmt: skip

    def step(self, actions):
        action = self.batch.actions(actions, (self.num_envs, self.env.act_dim))
        if self.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP:
            return self._same_step(action)
        return self._next_step(action)

    def render(self) -> np.ndarray | None:
        return self.batch.render()

    def _same_step(self, action: torch.Tensor):
        obs, last, reward, terminated, truncated = self.batch.step(action)
        done = (terminated | truncated).cpu().numpy()
        infos: dict[str, Any] = {}
        if done.any():
            final, last = np.empty(self.num_envs, dtype=object), self.batch.out(last)
            for i in np.flatnonzero(done):
                final[i] = _row(last, i)
            infos = {"final_obs": final, "_final_obs": done}
        return self._out(obs, reward, terminated, truncated) + (infos,)

    def _next_step(self, action: torch.Tensor):
        """DiffEnv resets an env in the step that ends it; here that reset is shown one step later. The
        envs showing it now step with the others (one batch), then get their reset state back."""
        resetting = self._resetting
        before = self.batch.snapshot() if resetting.any() else None
        _, obs, reward, terminated, truncated = self.batch.step(action)
        done = terminated | truncated
        if before is not None:
            self.batch.undo_step_where(resetting, before)
            obs = _where(resetting, self.batch.current(), obs)
            reward = torch.where(resetting, torch.zeros_like(reward), reward)
            terminated, truncated, done = terminated & ~resetting, truncated & ~resetting, done & ~resetting
        self._resetting = done
        return self._out(obs, reward, terminated, truncated) + ({},)

    def _out(self, obs, reward, terminated, truncated) -> tuple:
        reward = reward if self.batch.torch_io else reward.double()
        return tuple(self.batch.out(v) for v in (obs, reward, terminated, truncated))


class GymEnv(gymnasium.Env):
    """``gymnasium.make(id, ...)``: one env (a batch of one); call ``reset`` after an episode ends."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: str, **options: Any) -> None:
        """``options``: the fields of :class:`Options`."""
        self.batch = _Batch(task, 1, Options(**options))
        self.metadata, self.render_mode = self.batch.metadata, self.batch.render_mode
        self.observation_space, self.action_space = self.batch.observation_space, self.batch.action_space

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        _check_seed(seed)
        super().reset(seed=seed)
        self._ended = False
        return _row(self.batch.out(self.batch.reset(seed)), 0), {}

    def step(self, action):
        if getattr(self, "_ended", True):
            raise gymnasium.error.ResetNeeded("call reset() first: before the first step and after an episode ends")
        action = self.batch.actions(action, (self.batch.env.act_dim,))[None]
        _, last, reward, terminated, truncated = self.batch.step(action)
        self._ended = bool(terminated[0] | truncated[0])
        obs = _row(self.batch.out(last), 0)  # the true last observation: the caller resets
        if self.batch.torch_io:
            return obs, reward[0], terminated[0], truncated[0], {}
        return obs, float(reward[0]), bool(terminated[0]), bool(truncated[0]), {}

    def render(self) -> np.ndarray | None:
        return self.batch.render()


def _check_seed(seed: Any) -> None:
    """A seed is a whole number >= 0 or None (1.5 is not truncated to 1, nor True taken for 1)."""
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0):
        raise ValueError(f"seed={seed!r}: give a whole number >= 0, or None")


def _autoreset_mode(value: AutoresetMode | str) -> AutoresetMode:
    """next_step / same_step, or gymnasium's own enum or spelling (NextStep, SameStep)."""
    named = {"next_step": AutoresetMode.NEXT_STEP, "same_step": AutoresetMode.SAME_STEP}
    for mode in named.values():
        if value in (mode, mode.value) or named.get(value) == mode:
            return mode
    raise ValueError(f"autoreset_mode {value!r}: choose next_step or same_step")


def _uint8(images: torch.Tensor) -> torch.Tensor:
    """Rendered images as uint8 (a differentiable renderer's floats in [0, 1] rounded)."""
    return images if images.dtype == torch.uint8 else (images.detach().clamp(0, 1) * 255).round().to(torch.uint8)


def _where(rows: torch.Tensor, chosen: Any, other: Any) -> Any:
    """Per env: ``chosen`` where ``rows`` is set, else ``other``; through dicts, None kept."""
    if isinstance(chosen, dict):
        return {key: _where(rows, value, other[key]) for key, value in chosen.items()}
    if chosen is None or not isinstance(chosen, torch.Tensor):
        return chosen
    return torch.where(rows.reshape(-1, *([1] * (chosen.dim() - 1))), chosen, other)


def _row(value: Any, i: int) -> Any:
    return {key: _row(v, i) for key, v in value.items()} if isinstance(value, dict) else value[i]


__all__ = ["GymEnv", "GymVectorEnv", "OBS_MODES", "Options", "env_id", "register_tasks"]
