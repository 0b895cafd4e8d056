"""Cartpole swing-up (D.Va's variant): the pole starts hanging down; +10 health per step; the episode
ends when the cart leaves the camera view (|x| > 2.5), so an episode is worth at most 2400.

Physics of SHAC's dflex cartpole (docs/envs.md, the tasks; its URDF loader's defaults): a 1 kg
cart and a 10 kg pole (inertia 1, centre of mass 0.5 m above the hinge), and on both joints a spring
of stiffness 100 toward q = 0 (cart centred, pole upright) with damping 10 + 1, so the swing-up has a
spring helping the pole up. The camera stands back far enough to see the whole rail (|x| <= 2.75 at
fovy pi/4), and the cart and pole are drawn thicker than dflex's boxes so they stay a few pixels wide
at 48x48; masses and inertias are set explicitly, so the drawn sizes do not change the dynamics."""

from __future__ import annotations

import math

import newton
import numpy as np
import torch
import warp as wp

from envs.tasks.base import Camera, Task


class Cartpole(Task):
    name = "cartpole"
    obs_dim = 5  # x, x_dot, sin(theta), cos(theta), theta_dot
    act_dim = 1
    episode_length = 240
    substeps = 4
    camera = Camera(body=None, target=(0.0, 0.0, 1.0), eye_offset=(0.0, -6.7, 0.0), backdrop_y=10.0)
    reset_q_noise = math.pi / 12  # dflex adds it to both coordinates, cart and pole
    reset_qd_noise = 0.05

    action_scale = 1000.0  # N per unit action
    health = 10.0
    x_limit = 2.5
    cart_mass, pole_mass, pole_inertia, pole_com = 1.0, 10.0, 1.0, 0.5
    pole_length = 1.0  # drawn
    spring_stiffness = 100.0  # on both joints, toward q = 0
    damping = 10.0 + 1.0  # the loader's damping 10 plus limit_kd 1, always on in dflex
    rail_limit, rail_limit_ke = 4.0, 100.0
    rail_height = 1.0

    def build(self, builder: newton.ModelBuilder) -> None:
        cfg = newton.ModelBuilder.ShapeConfig(density=0.0, has_shape_collision=False)
        cart = builder.add_link(mass=self.cart_mass, label="cart")
        builder.add_shape_box(cart, hx=0.25, hy=0.15, hz=0.15, cfg=cfg, color=(0.15, 0.15, 0.6))
        pole = builder.add_link(mass=self.pole_mass, label="pole")
        half = 0.5 * self.pole_length
        builder.add_shape_capsule(
            pole,
            xform=wp.transform((0.0, 0.0, half), wp.quat_identity()),
            radius=0.1,
            half_height=half - 0.1,
            cfg=cfg,
            color=(0.9, 0.45, 0.1),
        )
        builder.body_com[pole] = wp.vec3(0.0, 0.0, self.pole_com)
        builder.body_inertia[pole] = wp.mat33(np.eye(3, dtype=np.float32) * self.pole_inertia)
        builder.body_inertia[cart] = wp.mat33(np.eye(3, dtype=np.float32) * 1e-2)
        rail = wp.transform((0.0, 0.0, self.rail_height), wp.quat_identity())
        dflex = dict(stiffness=self.spring_stiffness, damping=self.damping, target_ke=0.0, target_kd=0.0, armature=0.0)
        slide = builder.add_joint_prismatic(
            -1, cart, axis=(1.0, 0.0, 0.0), parent_xform=rail, limit_lower=-self.rail_limit,
            limit_upper=self.rail_limit, limit_ke=self.rail_limit_ke, limit_kd=0.0, **dflex,
        )  # fmt: skip
        hinge = builder.add_joint_revolute(cart, pole, axis=(0.0, 1.0, 0.0), limit_ke=0.0, limit_kd=0.0, **dflex)
        builder.add_articulation([slide, hinge])
        builder.joint_q[-1] = math.pi  # hanging down

    def actuators(self, model: newton.Model) -> tuple[np.ndarray, np.ndarray]:
        return np.array([0]), np.array([self.action_scale], np.float32)

    @staticmethod
    def pole_angle(q: torch.Tensor) -> torch.Tensor:
        """Pole angle from upright, wrapped to [-pi, pi)."""
        return torch.remainder(q[:, 1] + math.pi, 2 * math.pi) - math.pi

    def observe(self, q, qd, actions):
        theta = q[:, 1]
        return torch.stack([q[:, 0], qd[:, 0], torch.sin(theta), torch.cos(theta), qd[:, 1]], dim=-1)

    def reward(self, q, qd, actions):
        theta = self.pole_angle(q)
        cost = theta**2 + 0.1 * qd[:, 1] ** 2 + 0.05 * q[:, 0] ** 2 + 0.1 * qd[:, 0] ** 2
        return self.health - cost

    def terminated(self, q, qd):
        return q[:, 0].abs() > self.x_limit
