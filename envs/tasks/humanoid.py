"""Humanoid, as SHAC's dflex humanoid (the paper's): run along +x with 21 hinge dofs.

Geometry from DeepMind control's ``suite/humanoid.xml`` (PyPI ``dm-control``, loaded as data): the
topology and capsules of SHAC's file, which differs only in per-joint values, written here from
docs/envs.md (the tasks; from SHAC's ``envs/humanoid.py`` and its MJCF). Newton merges the hinges of
one body into one joint (abdomen z/y, hips, ankles, shoulders), placed at the first hinge's anchor:
both ankle hinges sit 8 cm above the foot, as in SHAC's file (DeepMind's puts ankle x at 4 cm).
"""

from __future__ import annotations

import math
from pathlib import Path

import newton

from envs.tasks.base import (
    Contact,
    Joints,
    MJCFTask,
    dm_control_suite_dir,
    free_base_observation,
    height_reward,
    root_origin_velocity,
    set_range_deg,
    up_and_heading,
)

ALWAYS_ON_DAMPING = 10.0  # dflex's limit_kd, applied at every velocity
BIG = dict(armature=0.01, damping=5.0)
SMALL = dict(armature=0.006, damping=1.0, stiffness=2.0)  # ankles and elbows
KNEE = dict(armature=0.007, damping=0.1, stiffness=5.0)  # no values in SHAC's file: its loader's defaults

# dof -> (name, joint model, range in degrees), in the import's dof order (SHAC's: actions map to it)
JOINTS = {
    6: ("abdomen_z", Joints(**{**BIG, "armature": 0.02}, stiffness=20.0, limit_kd=ALWAYS_ON_DAMPING), (-45, 45)),
    7: ("abdomen_y", Joints(**BIG, stiffness=20.0, limit_kd=ALWAYS_ON_DAMPING), (-75, 30)),
    8: ("abdomen_x", Joints(**BIG, stiffness=10.0, limit_kd=ALWAYS_ON_DAMPING), (-35, 35)),
}
for side, first in (("right", 9), ("left", 15)):
    JOINTS |= {
        first: (f"{side}_hip_x", Joints(**BIG, stiffness=10.0, limit_kd=ALWAYS_ON_DAMPING), (-25, 5)),
        first + 1: (f"{side}_hip_z", Joints(**BIG, stiffness=10.0, limit_kd=ALWAYS_ON_DAMPING), (-60, 35)),
        first + 2: (f"{side}_hip_y", Joints(**BIG, stiffness=20.0, limit_kd=ALWAYS_ON_DAMPING), (-80, 20)),
        first + 3: (f"{side}_knee", Joints(**KNEE, limit_kd=ALWAYS_ON_DAMPING), (-160, 2)),
        first + 4: (f"{side}_ankle_y", Joints(**SMALL, limit_kd=ALWAYS_ON_DAMPING), (-50, 50)),
        first + 5: (f"{side}_ankle_x", Joints(**SMALL, limit_kd=ALWAYS_ON_DAMPING), (-50, 50)),
    }
for side, first in (("right", 21), ("left", 24)):
    JOINTS |= {
        first: (f"{side}_shoulder1", Joints(**BIG, stiffness=10.0, limit_kd=ALWAYS_ON_DAMPING), (-60, 60)),
        first + 1: (f"{side}_shoulder2", Joints(**BIG, stiffness=10.0, limit_kd=ALWAYS_ON_DAMPING), (-60, 60)),
        first + 2: (f"{side}_elbow", Joints(**SMALL, limit_kd=ALWAYS_ON_DAMPING), (-90, 50)),
    }


def dof_owners(builder: newton.ModelBuilder) -> list[str]:
    """The label of the joint that owns each dof (merged joints list their hinges: 'hip_x_hip_z_hip_y')."""
    starts = [*builder.joint_qd_start, builder.joint_dof_count]
    return [builder.joint_label[j] for j in range(builder.joint_count) for _ in range(starts[j + 1] - starts[j])]


class Humanoid(MJCFTask):
    name = "humanoid"
    mjcf = "humanoid.xml"
    obs_dim = 76  # height, quat, lin vel, ang vel, 21 angles, 21 velocities x 0.1, up, heading, 21 actions
    act_dim = 21
    episode_length = 1000
    free_base = True
    horizontal_coords = (0, 1)
    substeps = 48
    contact = Contact(ke=2e4, kd=5e3, kf=1e3, mu=0.75)
    # torque per unit action: 0.35 x SHAC's per-joint strengths, which are 5 x DeepMind's gears
    # (200 where the file says 40, 600 for 120, ...)
    gear_scale = 0.35 * 5.0
    root_com = (-0.003864, 0.0, -0.046369)  # torso and upper-waist capsules: dflex's velocities are the origin's
    start_height = 1.35
    reset_root_position_noise = 0.1
    reset_root_rotation_noise = math.pi / 24
    reset_q_noise = 0.2  # joints
    reset_qd_noise = 0.25

    termination_height = 0.74
    target_height = 0.84

    def mjcf_path(self) -> Path:
        return dm_control_suite_dir() / self.mjcf

    def adjust(self, builder: newton.ModelBuilder) -> None:
        owner = dof_owners(builder)
        for dof, (name, joints, (lower, upper)) in JOINTS.items():
            if name not in owner[dof]:  # a different dm-control release could reorder the file
                raise RuntimeError(f"humanoid: dof {dof} imports as '{owner[dof]}', expected '{name}'")
            joints.apply(builder, [dof])
            set_range_deg(builder, dof, lower, upper)
        builder.joint_q[2] = self.start_height

    def observe(self, q, qd, actions):
        return free_base_observation(q, qd, actions, self.root_com)

    def reward(self, q, qd, actions):
        up, heading = up_and_heading(q[:, 3:7])
        d = (q[:, 2] - self.target_height).clamp(-1.0, 0.1)
        forward = root_origin_velocity(q, qd, self.root_com)[:, 0]
        return forward + 0.1 * up + heading + height_reward(d, above_gain=10.0) - 0.002 * (actions**2).sum(-1)

    def terminated(self, q, qd):
        return q[:, 2] < self.termination_height
