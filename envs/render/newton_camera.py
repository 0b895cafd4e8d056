"""Detached images from Newton's batched, ray-traced ``SensorCamera`` (``renderer=newton``, the default).

Newton ray-traces the robots (its own visual model: the task's robot in N worlds); the floor, wall
and sky are filled in from the scene's analytic background where no robot was hit (the cleared
alpha channel marks those pixels). That keeps the ground visible for every task, cartpole included,
and costs less than a textured ground plane in the ray tracer (docs/notes/2026-12-06-env-layer-measurements.md,
render speed). The compositing is one Warp kernel (``envs/render/composite.py``).
Runs on CPU and GPU; not differentiable.
"""

from __future__ import annotations

import newton
import torch
import warp as wp
from newton.sensors import SensorCamera

from envs.physics import warp_device
from envs.render.base import Renderer
from envs.render.composite import Compositor
from envs.render.scene import Scene, matrix_to_quat
from envs.tasks.base import Task


class NewtonRenderer(Renderer):
    name = "newton"
    differentiable = False

    @classmethod
    def for_task(cls, task: Task, num_envs: int, width: int, height: int, device) -> NewtonRenderer:
        return cls(Scene.from_task(task, device), num_envs, width, height, device, task)  # it ray-traces task's model

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device, task: Task) -> None:
        super().__init__(scene, num_envs, width, height, device)
        robot = newton.ModelBuilder()
        task.build(robot)
        world = newton.ModelBuilder()
        world.replicate(robot, num_envs)
        self.model = world.finalize(device=warp_device(self.device))
        self.state = self.model.state()
        self.camera = SensorCamera(self.model, default_clear_data=SensorCamera.ClearData(clear_color=0))
        self.camera.create_default_light(enable_shadows=False)
        self.rays = SensorCamera.compute_camera_rays_pinhole(
            width, height, camera_fov=scene.camera.fov_y, device=self.model.device
        )
        self.color = self.camera.allocate_image_color(num_envs, width, height)
        self.compositor = Compositor(scene, width, height, self.device)
        self.camera_rot = scene.camera_rotation(device=self.device)
        self.camera_quat = matrix_to_quat(self.camera_rot)

    def _rgba(self, body_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(N, H, W, 4) uint8 render of the robots (alpha 0 where no robot was hit), and the cameras'
        eyes (N, 3) and rotations (N, 3, 3)."""
        body_q = body_q.detach()
        self.state.body_q.assign(wp.from_torch(body_q.reshape(-1, 7).contiguous(), dtype=wp.transform))
        self.model.bvh_refit_shapes(self.state)
        eye = self.scene.camera_eye(body_q)
        poses = torch.cat([eye, self.camera_quat.expand(len(eye), 4)], -1).contiguous()
        self.camera.update(self.state, wp.from_torch(poses, dtype=wp.transformf), self.rays, color_image=self.color)
        rgba = wp.to_torch(self.color).view(torch.uint8).reshape(self.num_envs, self.height, self.width, 4)
        return rgba, eye, self.camera_rot.expand(len(eye), 3, 3)

    @torch.no_grad()
    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) images of the poses ``body_q`` (N, B, 7)."""
        rgba, eye, rot = self._rgba(body_q)
        return self.compositor(eye, rot, rgba)

    @torch.no_grad()
    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        return self._rgba(body_q)[0][..., 3] > 0
