"""Hopper, as SHAC's dflex hopper (the paper's): planar, rewarded for forward speed, height and an upright
torso. Geometry from gymnasium's hopper.xml (the same capsules as SHAC's); physics from
docs/envs.md, the tasks (from SHAC's ``envs/hopper.py``)."""

from __future__ import annotations

import math

import newton
import torch

from envs.tasks.base import Camera, Contact, Joints, MJCFTask, height_reward, pivot_root_at_body, set_range_deg

ROOT_DOFS = (0, 1, 2)  # slide x, slide z, hinge pitch: one planar joint, pivot at the torso
THIGH, LEG, FOOT = 3, 4, 5


class Hopper(MJCFTask):
    name = "hopper"
    mjcf = "hopper.xml"  # capsules of density 1000, as dflex's parse_mjcf(density=1000)
    obs_dim = 11  # torso height (relative to start), pitch, 3 joint angles + 6 velocities
    act_dim = 3
    episode_length = 1000
    substeps = 16
    horizontal_coords = (0,)  # the root's slide x
    contact = Contact(ke=2e4, kd=1e3, kf=1e3, mu=0.9)  # the MJCF's solref / foot friction 2.0 are replaced
    torque_per_action = 200.0
    camera = Camera(backdrop_y=2.0)  # D.Va's hopper scene: a grey wall 2 m behind the plane of motion
    reset_q_noise = 0.05  # x, z, pitch and joints
    reset_qd_noise = 0.05

    # dflex: damping 2 (0 on the root, whose MJCF joints say damping="0"), limit_kd 10 always on,
    # limit_ke 1e3, armature 1 on every dof
    root_joints = Joints(armature=1.0, damping=0.0, limit_kd=10.0)
    leg_joints = Joints(armature=1.0, damping=2.0, limit_kd=10.0)
    ranges_deg = {THIGH: (-150.0, 0.0), LEG: (-150.0, 0.0), FOOT: (-45.0, 45.0)}

    termination_height = -0.45  # torso height relative to its start (torso z < 0.8 m)
    height_margin = 0.15
    max_pitch = math.pi / 6

    def adjust(self, builder: newton.ModelBuilder) -> None:
        pivot_root_at_body(builder)
        self.root_joints.apply(builder, ROOT_DOFS)
        self.leg_joints.apply(builder, self.ranges_deg)
        for dof, (lower, upper) in self.ranges_deg.items():
            set_range_deg(builder, dof, lower, upper)

    def observe(self, q, qd, actions):
        return torch.cat([q[:, 1:], qd], dim=-1)

    def reward(self, q, qd, actions):
        d = (q[:, 1] - (self.termination_height + self.height_margin)).clamp(-1.0, 0.3)
        upright = 1.0 - (q[:, 2] / self.max_pitch) ** 2
        return qd[:, 0] + height_reward(d, above_gain=1.0) + upright - 0.1 * (actions**2).sum(-1)

    def terminated(self, q, qd):
        return q[:, 1] < self.termination_height
