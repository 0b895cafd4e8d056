"""Humanoid (gymnasium's humanoid.xml: 17 actuators where SHAC's had 21): run along +x."""

from __future__ import annotations

from envs.tasks.base import Contact, MJCFTask, free_base_observation, height_reward, up_and_heading


class Humanoid(MJCFTask):
    name = "humanoid"
    mjcf = "humanoid.xml"
    obs_dim = 64  # height, quat, lin vel, ang vel, 17 angles, 17 velocities x 0.1, up, heading, 17 actions
    act_dim = 17
    episode_length = 1000
    free_base = True
    substeps = 48
    contact = Contact(ke=2e4, kd=1e3, kf=1e3, mu=0.75)
    action_scale = 0.35  # torque = gear x 0.35 x action (gymnasium's ctrlrange is 0.4)
    reset_q_noise = 0.05
    reset_qd_noise = 0.1

    termination_height = 0.74
    target_height = 0.84

    def observe(self, q, qd, actions):
        return free_base_observation(q, qd, actions)

    def reward(self, q, qd, actions):
        up, heading = up_and_heading(q[:, 3:7])
        d = (q[:, 2] - self.target_height).clamp(-1.0, 0.1)
        return qd[:, 0] + 0.1 * up + heading + height_reward(d, above_gain=10.0) - 0.002 * (actions**2).sum(-1)

    def terminated(self, q, qd):
        return q[:, 2] < self.termination_height
