"""Hopper (gymnasium's hopper.xml): planar, rewarded for forward speed, height and an upright torso."""

from __future__ import annotations

import math

import torch

from envs.tasks.base import Contact, MJCFTask, height_reward


class Hopper(MJCFTask):
    name = "hopper"
    mjcf = "hopper.xml"
    obs_dim = 11  # root z, pitch, 3 joint angles (5) + 6 velocities
    act_dim = 3
    episode_length = 1000
    substeps = 16
    contact = Contact(ke=2e4, kd=1e3, kf=1e3, mu=0.9)
    reset_q_noise = 0.05
    reset_qd_noise = 0.05

    termination_height = -0.45  # root z relative to the start pose
    height_margin = 0.15
    max_pitch = math.pi / 6

    def observe(self, q, qd, actions):
        return torch.cat([q[:, 1:], qd], dim=-1)

    def reward(self, q, qd, actions):
        d = (q[:, 1] - (self.termination_height + self.height_margin)).clamp(-1.0, 0.3)
        upright = 1.0 - (q[:, 2] / self.max_pitch) ** 2
        return qd[:, 0] + height_reward(d, above_gain=1.0) + upright - 0.1 * (actions**2).sum(-1)

    def terminated(self, q, qd):
        return q[:, 1] < self.termination_height
