"""What a task declares: its model, physics settings, sizes, reset noise, observation, reward, termination.

Nothing outside ``envs/tasks/`` knows task details. All per-env maths is batched torch on (N, ...) tensors,
so rewards and observations are differentiable functions of the simulated state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import gymnasium
import newton
import numpy as np
import torch

MJCF_DIR = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"


@dataclass(frozen=True)
class Contact:
    """Penalty-contact material used for every shape of the task (ground included)."""

    ke: float
    kd: float
    kf: float
    mu: float


@dataclass(frozen=True)
class Camera:
    """Where the renderers look: tracked body (None: fixed to the world) and eye offset from it."""

    body: int | None = 0
    eye_offset: tuple[float, float, float] = (0.0, -2.8, 0.8)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)  # look-at point when the camera is fixed
    fov_y: float = math.pi / 4


class Task:
    """Base class. Subclasses set the class attributes and implement the four batched functions."""

    name: str
    obs_dim: int
    act_dim: int
    episode_length: int
    substeps: int
    dt: float = 1.0 / 60.0
    contact: Contact | None = None  # None: no collision detection (e.g. cartpole)
    camera: Camera = Camera()
    reset_q_noise: float = 0.0  # half-width of the uniform noise on generalised positions
    reset_qd_noise: float = 0.0  # ... and on generalised velocities
    angular_damping: float = 0.0  # Featherstone's per-step angular damping

    # -- model ---------------------------------------------------------------------------------------
    def build(self, builder: newton.ModelBuilder) -> None:
        """Add one robot (one world) to ``builder``."""
        raise NotImplementedError

    def actuators(self, model: newton.Model) -> tuple[np.ndarray, np.ndarray]:
        """(dof index within one world, torque per unit action) for each action dimension."""
        raise NotImplementedError

    def start_state(self, builder: newton.ModelBuilder) -> tuple[np.ndarray, np.ndarray]:
        """Noise-free start (joint_q, joint_qd) of one world, read from the single-robot builder."""
        return np.asarray(builder.joint_q, np.float32), np.asarray(builder.joint_qd, np.float32)

    def perturb(
        self, q: torch.Tensor, qd: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Noisy reset around the start state (uniform, half-widths from the class attributes)."""
        noise = lambda x, w: x + w * (2 * torch.rand(x.shape, generator=generator, device=x.device) - 1)  # noqa: E731
        return noise(q, self.reset_q_noise), noise(qd, self.reset_qd_noise)

    # -- per step (batched torch) --------------------------------------------------------------------
    def observe(self, q: torch.Tensor, qd: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reward(self, q: torch.Tensor, qd: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def terminated(self, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        """Early termination (bool, N). Time limits are the env's business."""
        return torch.zeros(q.shape[0], dtype=torch.bool, device=q.device)


class MJCFTask(Task):
    """A robot loaded from one of gymnasium's MJCF files, actuated through its <motor> gear and ctrlrange."""

    mjcf: str
    free_base: bool = False  # root is a FREE joint: q[:, 0:7] = position, quaternion (x, y, z, w)
    action_scale: float | None = None  # torque = gear * action_scale * a; None: actions span ctrlrange

    def build(self, builder: newton.ModelBuilder) -> None:
        c = self.contact
        builder.default_shape_cfg.ke, builder.default_shape_cfg.kd = c.ke, c.kd
        builder.default_shape_cfg.kf, builder.default_shape_cfg.mu = c.kf, c.mu
        first = builder.shape_count
        builder.add_mjcf(str(MJCF_DIR / self.mjcf), parse_mujoco_options=False, enable_self_collisions=False)
        for s in range(first, builder.shape_count):  # gymnasium's floor: the env adds one shared ground
            if builder.shape_body[s] < 0:
                builder.shape_flags[s] = 0  # neither drawn nor colliding
        self.adjust(builder)

    def adjust(self, builder: newton.ModelBuilder) -> None:
        """Per-task physical overrides after loading (where ours must differ from the MJCF)."""

    def actuators(self, model: newton.Model) -> tuple[np.ndarray, np.ndarray]:
        act = self.act_dim
        dofs = model.mujoco.actuator_trnid.numpy()[:act, 0]
        gear = model.mujoco.actuator_gear.numpy()[:act, 0]
        ctrl_max = np.abs(model.mujoco.actuator_ctrlrange.numpy()[:act]).max(axis=1)
        scale = ctrl_max if self.action_scale is None else np.full_like(ctrl_max, self.action_scale)
        if np.any(scale > ctrl_max + 1e-6):
            raise ValueError(
                f"{self.name}: action_scale {self.action_scale} exceeds the MJCF ctrlrange {ctrl_max.max()}"
            )
        per_unit = gear * scale
        return dofs.astype(np.int64), per_unit.astype(np.float32)

    def perturb(self, q, qd, generator):
        q, qd = super().perturb(q, qd, generator)
        if self.free_base:  # keep the root quaternion a unit quaternion
            q = torch.cat([q[:, :3], torch.nn.functional.normalize(q[:, 3:7], dim=-1), q[:, 7:]], dim=-1)
        return q, qd

    def start_state(self, builder: newton.ModelBuilder) -> tuple[np.ndarray, np.ndarray]:
        """MJCF's qpos=0 lies outside some joint ranges (ant ankles, humanoid knees): project it inside,
        with a margin, so a start pose never sits on a limit's kink."""
        q, qd = super().start_state(builder)
        free = {int(newton.JointType.FREE), int(newton.JointType.DISTANCE)}
        q_start, qd_start = builder.joint_q_start, builder.joint_qd_start
        for j, jtype in enumerate(builder.joint_type):
            if int(jtype) in free:
                continue
            ndof = (qd_start[j + 1] if j + 1 < len(qd_start) else len(qd)) - qd_start[j]
            for k in range(ndof):
                lo, hi = builder.joint_limit_lower[qd_start[j] + k], builder.joint_limit_upper[qd_start[j] + k]
                margin = min(0.1, 0.1 * (hi - lo))
                q[q_start[j] + k] = np.clip(q[q_start[j] + k], lo + margin, hi - margin)
        return q, qd


# -- shared batched maths ---------------------------------------------------------------------------
def quat_rotate(quat_xyzw: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Rotate vectors ``v`` (..., 3) by unit quaternions (..., 4) stored (x, y, z, w)."""
    u, w = quat_xyzw[..., :3], quat_xyzw[..., 3:]
    t = 2.0 * torch.cross(u, v, dim=-1)
    return v + w * t + torch.cross(u, t, dim=-1)


def up_and_heading(quat_xyzw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Projections of the body's up axis on world up and of its forward (+x) axis on world forward."""
    ex = torch.tensor([1.0, 0.0, 0.0], device=quat_xyzw.device).expand(quat_xyzw.shape[:-1] + (3,))
    ez = torch.tensor([0.0, 0.0, 1.0], device=quat_xyzw.device).expand(quat_xyzw.shape[:-1] + (3,))
    return quat_rotate(quat_xyzw, ez)[..., 2], quat_rotate(quat_xyzw, ex)[..., 0]


def free_base_observation(q: torch.Tensor, qd: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """SHAC's ant/humanoid observation: height, quat, lin/ang velocity, joint angles, 0.1 x joint
    velocities, up and heading projections, previous actions."""
    up, heading = up_and_heading(q[:, 3:7])
    parts = [q[:, 2:3], q[:, 3:7], qd[:, 0:6], q[:, 7:], 0.1 * qd[:, 6:], up[:, None], heading[:, None], actions]
    return torch.cat(parts, dim=-1)


def height_reward(d: torch.Tensor, above_gain: float) -> torch.Tensor:
    """SHAC's height shaping: -200 d^2 below the target, ``above_gain * d`` above it."""
    return torch.where(d < 0, -200.0 * d * d, above_gain * d)
