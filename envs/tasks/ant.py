"""Ant (gymnasium's ant.xml, 0.91 kg: lighter than SHAC's density-1000 ant): run along +x."""

from __future__ import annotations

from envs.tasks.base import Contact, MJCFTask, free_base_observation, up_and_heading


class Ant(MJCFTask):
    name = "ant"
    mjcf = "ant.xml"
    obs_dim = 37  # height, quat, lin vel, ang vel, 8 angles, 8 velocities x 0.1, up, heading, 8 actions
    act_dim = 8
    episode_length = 1000
    free_base = True
    substeps = 16
    contact = Contact(ke=1e4, kd=100.0, kf=100.0, mu=0.75)
    reset_q_noise = 0.1
    reset_qd_noise = 0.25

    termination_height = 0.27

    def observe(self, q, qd, actions):
        return free_base_observation(q, qd, actions)

    def reward(self, q, qd, actions):
        up, heading = up_and_heading(q[:, 3:7])
        return qd[:, 0] + 0.1 * up + heading + (q[:, 2] - self.termination_height)

    def terminated(self, q, qd):
        return q[:, 2] < self.termination_height
