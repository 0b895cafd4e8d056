"""Detached images from Newton's batched, ray-traced ``SensorCamera`` (``renderer=newton``, the default).

It renders its own visual model (the task's robot in N worlds plus a checkered ground), so it works for
tasks without a ground in their physics (cartpole). Runs on CPU and GPU; not differentiable.
"""

from __future__ import annotations

import newton
import torch
import warp as wp
from newton.sensors import SensorCamera

from envs.physics import warp_device
from envs.render.base import Renderer
from envs.render.diff import SKY
from envs.render.scene import Scene, matrix_to_quat
from envs.tasks.base import Task


def _pack_rgba(rgb: tuple[float, float, float]) -> int:
    r, g, b = (int(round(255 * c)) for c in rgb)
    return r | g << 8 | b << 16 | 255 << 24


class NewtonRenderer(Renderer):
    name = "newton"
    differentiable = False

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device, task: Task) -> None:
        super().__init__(scene, num_envs, width, height, device)
        robot = newton.ModelBuilder()
        task.build(robot)
        world = newton.ModelBuilder()
        world.replicate(robot, num_envs)
        ground = world.add_ground_plane()
        world.shape_color[ground] = (0.9, 0.9, 0.9)  # the checker texture modulates it
        self.model = world.finalize(device=warp_device(self.device))
        self.state = self.model.state()
        self.camera = SensorCamera(
            self.model,
            default_clear_data=SensorCamera.ClearData(clear_color=_pack_rgba(SKY)),
            default_render_config=SensorCamera.RenderConfig(enable_textures=True),
        )
        self.camera.create_default_light(enable_shadows=False)
        self.camera.assign_checkerboard_material(shape_indices=[ground], resolution=64, checker_size=32)
        self.rays = SensorCamera.compute_camera_rays_pinhole(
            width, height, camera_fov=scene.camera.fov_y, device=self.model.device
        )
        self.color = self.camera.allocate_image_color(num_envs, width, height)
        self.shape_index = self.camera.allocate_image_shape_index(num_envs, width, height)
        self._ground = ground

    def _update(self, body_q: torch.Tensor, **images) -> None:
        body_q = body_q.detach()
        self.state.body_q.assign(wp.from_torch(body_q.reshape(-1, 7).contiguous(), dtype=wp.transform))
        self.model.bvh_refit_shapes(self.state)
        eye, rot = self.scene.camera_pose(body_q)
        poses = torch.cat([eye, matrix_to_quat(rot)], -1).contiguous()
        self.camera.update(self.state, wp.from_torch(poses, dtype=wp.transformf), self.rays, **images)

    @torch.no_grad()
    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) images of the poses ``body_q`` (N, B, 7)."""
        self._update(body_q, color_image=self.color)
        rgba = wp.to_torch(self.color).view(torch.uint8).reshape(self.num_envs, self.height, self.width, 4)
        return rgba[..., :3].permute(0, 3, 1, 2).contiguous()

    @torch.no_grad()
    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        self._update(body_q, shape_index_image=self.shape_index)
        index = wp.to_torch(self.shape_index).view(torch.int32)
        return (index != -1) & (index != self._ground)
