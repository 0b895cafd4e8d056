"""What a task declares: its model, physics settings, sizes, reset noise, observation, reward, termination.

Nothing outside ``envs/tasks/`` knows task details. All per-env maths is batched torch on (N, ...) tensors,
so rewards and observations are differentiable functions of the simulated state.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import gymnasium
import newton
import numpy as np
import torch
import warp as wp

MJCF_DIR = Path(gymnasium.__file__).parent / "envs" / "mujoco" / "assets"


def dm_control_suite_dir() -> Path:
    """DeepMind control's suite models (MJCF data shipped in the PyPI package ``dm-control``), located
    without importing the package (importing it loads MuJoCo and its renderers)."""
    spec = find_spec("dm_control")
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError("the humanoid's model ships with dm-control: pip install dm-control")
    return Path(spec.origin).parent / "suite"


@dataclass(frozen=True)
class Contact:
    """Penalty-contact material of every shape of the task and of the ground (dflex's ke, kd, kf, mu).

    Written after the MJCF import: MJCF ``solref`` / ``friction`` attributes would otherwise override it."""

    ke: float
    kd: float
    kf: float
    mu: float

    def apply_to(self, cfg: newton.ModelBuilder.ShapeConfig) -> None:
        cfg.ke, cfg.kd, cfg.kf, cfg.mu = self.ke, self.kd, self.kf, self.mu

    def apply_to_shapes(self, builder: newton.ModelBuilder, shapes: range) -> None:
        for s in shapes:
            builder.shape_material_ke[s], builder.shape_material_kd[s] = self.ke, self.kd
            builder.shape_material_kf[s], builder.shape_material_mu[s] = self.kf, self.mu


@dataclass(frozen=True)
class Joints:
    """dflex's joint model for a set of dofs, written into Newton's builder.

    dflex (SHAC's ``jcalc_tau``) applies ``limit_kd`` to every joint velocity, not only past a limit, so
    in Newton's terms the always-on damping is ``damping + limit_kd`` and Newton's own limit damping
    (active only past a limit) is 0. ``stiffness`` pulls toward q = 0; ``limit_ke`` acts past a range.
    """

    armature: float
    damping: float
    limit_kd: float
    limit_ke: float = 1e3
    stiffness: float = 0.0

    def apply(self, builder: newton.ModelBuilder, dofs) -> None:
        for d in dofs:
            builder.joint_armature[d] = self.armature
            builder.joint_damping[d] = self.damping + self.limit_kd
            builder.joint_stiffness[d] = self.stiffness
            builder.joint_limit_ke[d] = self.limit_ke
            builder.joint_limit_kd[d] = 0.0
            builder.joint_target_ke[d] = builder.joint_target_kd[d] = 0.0


def set_range_deg(builder: newton.ModelBuilder, dof: int, lower: float, upper: float) -> None:
    builder.joint_limit_lower[dof], builder.joint_limit_upper[dof] = math.radians(lower), math.radians(upper)


def scale_density(builder: newton.ModelBuilder, factor: float) -> None:
    """Every body's mass and inertia times ``factor`` (all shapes of the model share one density)."""
    for b in range(builder.body_count):
        builder.body_mass[b] *= factor
        builder.body_inertia[b] = builder.body_inertia[b] * factor
        builder.body_inv_mass[b] /= factor
        builder.body_inv_inertia[b] = builder.body_inv_inertia[b] / factor


def pivot_root_at_body(builder: newton.ModelBuilder) -> None:
    """Move the root joint's pivot to the root body's frame (same rest pose).

    Newton's MJCF importer merges a planar root (slide x, slide z, hinge) into one joint placed at the
    first joint's position; for gymnasium's hopper that is the floor, 1.25 m below the torso, so the
    hinge swung the torso on a circle of radius 1.25. dflex's root joints sit at the torso."""
    parent, child = builder.joint_X_p[0], builder.joint_X_c[0]
    builder.joint_X_p[0] = wp.transform_multiply(parent, wp.transform_inverse(child))
    builder.joint_X_c[0] = wp.transform_identity()


@dataclass(frozen=True)
class Camera:
    """Where the renderers look: tracked body (None: fixed to the world) and eye offset from it."""

    body: int | None = 0
    eye_offset: tuple[float, float, float] = (0.0, -2.8, 0.8)
    target: tuple[float, float, float] = (0.0, 0.0, 0.0)  # look-at point when the camera is fixed
    fov_y: float = math.pi / 4
    backdrop_y: float | None = None  # a grey wall at world y = backdrop_y behind the robot (D.Va's scenes)


class Task:
    """Base class. Subclasses set the class attributes and implement the four batched functions."""

    name: str
    version: int = 2  # bumped when the task's physics or meaning changes; results of other versions never pool
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
    # joint_q indices of the root's world x (and y) position. The ground is an infinite plane, so the
    # physics steps with them at 0 and adds them back: the dynamics stay the same however far a robot runs
    horizontal_coords: tuple[int, ...] = ()

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
        return q + uniform(q, self.reset_q_noise, generator), qd + uniform(qd, self.reset_qd_noise, generator)

    # -- per step (batched torch) --------------------------------------------------------------------
    def observe(self, q: torch.Tensor, qd: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def reward(self, q: torch.Tensor, qd: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def terminated(self, q: torch.Tensor, qd: torch.Tensor) -> torch.Tensor:
        """Early termination (bool, N). Time limits are the env's business."""
        return torch.zeros(q.shape[0], dtype=torch.bool, device=q.device)


def uniform(like: torch.Tensor, half_width: float, generator: torch.Generator) -> torch.Tensor:
    """Uniform noise in [-half_width, half_width] shaped like ``like``."""
    return half_width * (2 * torch.rand(like.shape, generator=generator, device=like.device) - 1)


class MJCFTask(Task):
    """A robot loaded from an MJCF file (model data from a PyPI package), then given the paper's physics.

    ``adjust`` writes the dflex values over the import; actuators are the MJCF's motors, in dof order
    (as dflex applies actions to consecutive dofs), with ``torque_per_action`` (one value for all) or
    ``gear_scale`` x the MJCF gear as torque per unit action.
    """

    mjcf: str
    free_base: bool = False  # root is a FREE joint: q[:, 0:7] = position, quaternion (x, y, z, w)
    root_com: tuple[float, float, float] = (0.0, 0.0, 0.0)  # free base: torso's centre of mass in its frame
    torque_per_action: float | None = None
    gear_scale: float = 1.0
    reset_root_position_noise: float = 0.0  # free base: half-width on the root position
    reset_root_rotation_noise: float = 0.0  # free base: half-width (rad) of a rotation about a random axis

    def mjcf_path(self) -> Path:
        return MJCF_DIR / self.mjcf

    def build(self, builder: newton.ModelBuilder) -> None:
        first = builder.shape_count
        builder.add_mjcf(str(self.mjcf_path()), parse_mujoco_options=False, enable_self_collisions=False)
        for s in range(first, builder.shape_count):  # the MJCF's floor: the env adds one shared ground
            if builder.shape_body[s] < 0:
                builder.shape_flags[s] = 0  # neither drawn nor colliding
        self.contact.apply_to_shapes(builder, range(first, builder.shape_count))
        self.adjust(builder)
        if self.free_base and not np.allclose(builder.body_com[0], self.root_com, atol=1e-5):
            raise RuntimeError(f"{self.name}: the torso's centre of mass imports at {builder.body_com[0]}, "
                               f"the task declares {self.root_com}")  # fmt: skip

    def adjust(self, builder: newton.ModelBuilder) -> None:
        """The paper's physics over the import: joints, ranges, density, start pose."""

    def actuators(self, model: newton.Model) -> tuple[np.ndarray, np.ndarray]:
        act = self.act_dim
        dofs = model.mujoco.actuator_trnid.numpy()[:act, 0]
        gear = model.mujoco.actuator_gear.numpy()[:act, 0]
        order = np.argsort(dofs)
        dofs, gear = dofs[order], gear[order]
        per_unit = np.full_like(gear, self.torque_per_action) if self.torque_per_action else gear * self.gear_scale
        return dofs.astype(np.int64), per_unit.astype(np.float32)

    def perturb(self, q, qd, generator):
        """Free base (dflex's ant and humanoid): the root position, its rotation (about a random axis) and
        the joints each get their own noise; otherwise every coordinate gets ``reset_q_noise``."""
        if not self.free_base:
            return super().perturb(q, qd, generator)
        position = q[:, :3] + uniform(q[:, :3], self.reset_root_position_noise, generator)
        angle = uniform(q[:, 0], self.reset_root_rotation_noise, generator)
        axis = torch.nn.functional.normalize(uniform(q[:, :3], 1.0, generator), dim=-1)
        turn = torch.cat([axis * torch.sin(angle / 2)[:, None], torch.cos(angle / 2)[:, None]], dim=-1)
        joints = q[:, 7:] + uniform(q[:, 7:], self.reset_q_noise, generator)
        q = torch.cat([position, quat_multiply(q[:, 3:7], turn), joints], dim=-1)
        return q, qd + uniform(qd, self.reset_qd_noise, generator)


# -- shared batched maths ---------------------------------------------------------------------------
def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product of quaternions stored (x, y, z, w)."""
    av, aw, bv, bw = a[..., :3], a[..., 3:], b[..., :3], b[..., 3:]
    vector = aw * bv + bw * av + torch.cross(av, bv, dim=-1)
    return torch.cat([vector, aw * bw - (av * bv).sum(-1, keepdim=True)], dim=-1)


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


def root_origin_velocity(q: torch.Tensor, qd: torch.Tensor, root_com: tuple[float, float, float]) -> torch.Tensor:
    """Linear velocity of the root body's origin, as dflex observes and rewards it. Newton's free-joint
    velocity is the centre of mass's (``root_com`` in the body frame): v_origin = v_com + w x (origin - com)."""
    com = torch.tensor(root_com, dtype=q.dtype, device=q.device).expand(q.shape[0], 3)
    return qd[:, 0:3] - torch.cross(qd[:, 3:6], quat_rotate(q[:, 3:7], com), dim=-1)


def free_base_observation(
    q: torch.Tensor, qd: torch.Tensor, actions: torch.Tensor, root_com: tuple[float, float, float]
) -> torch.Tensor:
    """SHAC's ant/humanoid observation: height, quat, linear velocity (of the torso's origin) and angular
    velocity, joint angles, 0.1 x joint velocities, up and heading projections, previous actions."""
    up, heading = up_and_heading(q[:, 3:7])
    velocity = root_origin_velocity(q, qd, root_com)
    parts = [q[:, 2:3], q[:, 3:7], velocity, qd[:, 3:6], q[:, 7:], 0.1 * qd[:, 6:], up[:, None], heading[:, None]]
    return torch.cat([*parts, actions], dim=-1)


def height_reward(d: torch.Tensor, above_gain: float) -> torch.Tensor:
    """SHAC's height shaping: -200 d^2 below the target, ``above_gain * d`` above it."""
    return torch.where(d < 0, -200.0 * d * d, above_gain * d)
