"""A detached renderer's robot pixels over the scene's analytic background, in one Warp kernel.

:meth:`Scene.background` is the reference (batched torch maths, differentiable, shared with the
differentiable renderers). For the detached backends, which hand over uint8 RGBA with alpha marking the
robot, the same floor, grid, wall and sky are computed here per pixel and written straight to uint8
(N, 3, H, W): one launch instead of some forty small torch operators per frame, which cost the
hopper's 16 x 48 x 48 render at the CPU preset as much as the ray tracing itself.
"""

from __future__ import annotations

import torch
import warp as wp

from envs.physics import warp_device
from envs.render.scene import FLOOR, GRID_LINE, GRID_LINE_WIDTH, GRID_SPACING, SKY, WALL, Scene


@wp.func
def _grid_coverage(offset: float, half_footprint: float, half_width: float) -> float:
    """Share of a pixel's footprint on the floor covered by the grid line nearest to it (box filter)."""
    overlap = wp.min(offset + half_footprint, half_width) - wp.max(offset - half_footprint, -half_width)
    return wp.min(wp.max(overlap, 0.0) / (2.0 * half_footprint), 1.0)


@wp.func
def _to_nearest_line(x: float, spacing: float) -> float:
    """Signed distance to the nearest grid line (torch.remainder's floored modulus)."""
    shifted = x + spacing * 0.5
    return shifted - spacing * wp.floor(shifted / spacing) - spacing * 0.5


@wp.func
def _byte(x: float) -> wp.uint8:
    """[0, 1] to 0..255, ties to even as torch.round."""
    return wp.uint8(wp.int32(wp.rint(wp.clamp(x, 0.0, 1.0) * 255.0)))


@wp.kernel
def _composite(
    rgba: wp.array4d(dtype=wp.uint8),  # (N, H, W, 4): alpha > 0 where the robot was hit
    eye: wp.array(dtype=wp.vec3),  # (N,)
    rot: wp.array(dtype=wp.mat33),  # (N,) camera to world
    rays: wp.array2d(dtype=wp.vec3),  # (H, W) unit directions in camera space
    pixel_angle: float,
    has_wall: int,
    wall_y: float,
    tones: wp.array(dtype=wp.vec3),  # sky, wall, floor, grid line
    spacing: float,
    line_width: float,
    out: wp.array4d(dtype=wp.uint8),  # (N, 3, H, W)
):
    n, i, j = wp.tid()
    if rgba[n, i, j, 3] > wp.uint8(0):
        for c in range(3):
            out[n, c, i, j] = rgba[n, i, j, c]
        return
    d = rot[n] @ rays[i, j]
    e = eye[n]
    far = 1.0e30
    t_floor = far
    if d[2] < -1.0e-6:
        t_floor = -e[2] / d[2]
    t_wall = far
    if has_wall != 0 and d[1] > 1.0e-6:
        t_wall = (wall_y - e[1]) / d[1]
        if t_wall <= 0.0:
            t_wall = far
    colour = tones[0]
    if t_wall < far:
        colour = tones[1]
    if t_floor > 0.0 and t_floor < t_wall:
        t = wp.min(t_floor, 1.0e6)
        half_footprint = 0.5 * t * pixel_angle / wp.max(wp.abs(d[2]), 0.05)
        half_width = 0.5 * line_width
        cover_x = _grid_coverage(_to_nearest_line(e[0] + t * d[0], spacing), half_footprint, half_width)
        cover_y = _grid_coverage(_to_nearest_line(e[1] + t * d[1], spacing), half_footprint, half_width)
        line = 1.0 - (1.0 - cover_x) * (1.0 - cover_y)
        colour = tones[2] + line * (tones[3] - tones[2])
    for c in range(3):
        out[n, c, i, j] = _byte(colour[c])


class Compositor:
    """Puts a detached backend's uint8 RGBA over the scene's background for one image size."""

    def __init__(self, scene: Scene, width: int, height: int, device: torch.device) -> None:
        self.scene, self.width, self.height, self.device = scene, width, height, device
        self.rays = wp.from_torch(scene.camera_rays(width, height, device).float().contiguous(), dtype=wp.vec3)
        tones = torch.tensor([SKY, WALL, FLOOR, GRID_LINE], dtype=torch.float32, device=device)
        self.tones = wp.from_torch(tones, dtype=wp.vec3)
        self.wall = scene.camera.backdrop_y

    def __call__(self, eye: torch.Tensor, rot: torch.Tensor, rgba: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W): ``rgba`` (N, H, W, 4, uint8) where its alpha is set, the background seen
        from the cameras ``eye`` (N, 3) and ``rot`` (N, 3, 3, camera to world) elsewhere."""
        n = rgba.shape[0]
        out = torch.empty(n, 3, self.height, self.width, dtype=torch.uint8, device=self.device)
        eye, rot = eye.detach().float().contiguous(), rot.detach().float().contiguous()
        wp.launch(
            _composite,
            dim=(n, self.height, self.width),
            inputs=[
                wp.from_torch(rgba.contiguous()),
                wp.from_torch(eye, dtype=wp.vec3),
                wp.from_torch(rot, dtype=wp.mat33),
                self.rays,
                self.scene.pixel_angle(self.height),
                int(self.wall is not None),
                float(self.wall or 0.0),
                self.tones,
                GRID_SPACING,
                GRID_LINE_WIDTH,
            ],
            outputs=[wp.from_torch(out)],
            device=warp_device(self.device),
        )
        return out
