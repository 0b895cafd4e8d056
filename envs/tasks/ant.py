"""Ant, as SHAC's dflex ant (the paper's): run along +x. Geometry from gymnasium's ant.xml (the same
sphere and capsules as SHAC's); physics as docs/envs.md lists them (from SHAC's ``envs/ant.py``):
density 1000 (gymnasium's file says 5, a 0.91 kg ant), 200 N m per unit action, the paper's ranges."""

from __future__ import annotations

import math

import newton

from envs.tasks.base import (
    Contact,
    Joints,
    MJCFTask,
    free_base_observation,
    root_origin_velocity,
    scale_density,
    set_range_deg,
    up_and_heading,
)

# dof order of the import: hip_1, ankle_1, hip_2, ankle_2, hip_3, ankle_3, hip_4, ankle_4 (after 6 root dofs)
HIPS, ANKLES = (6, 8, 10, 12), (7, 9, 11, 13)
ANKLE_SIGN = {7: 1.0, 9: -1.0, 11: -1.0, 13: 1.0}  # ankles 2 and 3 bend the other way


class Ant(MJCFTask):
    name = "ant"
    mjcf = "ant.xml"
    obs_dim = 37  # height, quat, lin vel, ang vel, 8 angles, 8 velocities x 0.1, up, heading, 8 actions
    act_dim = 8
    episode_length = 1000
    free_base = True
    horizontal_coords = (0, 1)
    substeps = 16
    contact = Contact(ke=4e4, kd=1e4, kf=3e3, mu=0.75)
    torque_per_action = 200.0
    mjcf_density = 5.0  # gymnasium's ant.xml default geom density
    density = 1000.0  # dflex's parse_mjcf(density=1000)
    # dflex: damping 1 + limit_kd 10 always on, limit_ke 1e3, armature 0.05 on every dof
    joints = Joints(armature=0.05, damping=1.0, limit_kd=10.0)
    root_armature = Joints(armature=0.05, damping=0.0, limit_kd=0.0, limit_ke=0.0)  # free joint: no damping
    hip_range_deg = (-40.0, 40.0)
    ankle_range_deg = (30.0, 100.0)  # times ANKLE_SIGN
    start_height = 0.75
    start_joints = (0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0)
    reset_root_position_noise = 0.1
    reset_root_rotation_noise = math.pi / 24
    reset_q_noise = 0.2  # joints
    reset_qd_noise = 0.25

    termination_height = 0.27

    def adjust(self, builder: newton.ModelBuilder) -> None:
        scale_density(builder, self.density / self.mjcf_density)
        self.root_armature.apply(builder, range(6))
        self.joints.apply(builder, HIPS + ANKLES)
        for dof in HIPS:
            set_range_deg(builder, dof, *self.hip_range_deg)
        for dof in ANKLES:
            lower, upper = (ANKLE_SIGN[dof] * a for a in self.ankle_range_deg)
            set_range_deg(builder, dof, min(lower, upper), max(lower, upper))
        builder.joint_q[2] = self.start_height
        builder.joint_q[7:15] = list(self.start_joints)

    def observe(self, q, qd, actions):
        return free_base_observation(q, qd, actions, self.root_com)

    def reward(self, q, qd, actions):
        up, heading = up_and_heading(q[:, 3:7])
        forward = root_origin_velocity(q, qd, self.root_com)[:, 0]
        return forward + 0.1 * up + heading + (q[:, 2] - self.termination_height)

    def terminated(self, q, qd):
        return q[:, 2] < self.termination_height
