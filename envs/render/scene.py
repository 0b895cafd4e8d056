"""What every renderer draws: the task's shapes (per body, in body frames, with colours), the ground and
backdrop of D.Va's ManiSkill scenes (a grey floor with a light 1 m grid, a grey wall where the task
places one, sky elsewhere), and the camera (tracking a body or fixed), all as batched torch maths so
backends agree.

Camera convention (OpenGL/USD, as Newton's camera): the camera looks along its local -Z axis, +Y up,
+X right. Pixel (row i, column j) looks through the point ((j + 0.5 - W/2) / f, -(i + 0.5 - H/2) / f, -1)
of camera space, with focal length f = (H / 2) / tan(fov_y / 2) in pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import newton
import numpy as np
import torch

from envs.tasks.base import Camera, Task

SPHERE, CAPSULE, BOX = 0, 1, 2
LIGHT = (1.0, -1.0, 1.0)  # towards the light (Newton's default light travels along (-1, 1, -1))
AMBIENT = 0.35
SKY = (0.62, 0.74, 0.86)
# ManiSkill's grid floor texture: grey cells, lighter lines every metre; the wall's flat grey
FLOOR = (119 / 255, 123 / 255, 132 / 255)
GRID_LINE = (175 / 255, 180 / 255, 192 / 255)
GRID_SPACING = 1.0  # m
GRID_LINE_WIDTH = 0.04  # m
WALL = (0.3, 0.3, 0.3)
_KINDS = {int(newton.GeoType.SPHERE): SPHERE, int(newton.GeoType.CAPSULE): CAPSULE, int(newton.GeoType.BOX): BOX}


def quat_to_matrix(q: torch.Tensor) -> torch.Tensor:
    """(..., 4) unit quaternions (x, y, z, w) -> (..., 3, 3) rotation matrices."""
    x, y, z, w = q.unbind(-1)
    rows = [
        1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w),
        2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w),
        2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y),
    ]  # fmt: skip
    return torch.stack(rows, -1).reshape(q.shape[:-1] + (3, 3))


def matrix_to_quat(m: torch.Tensor) -> torch.Tensor:
    """(..., 3, 3) rotation matrices -> (..., 4) unit quaternions (x, y, z, w) (Shepperd's method)."""
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    candidates = torch.stack(
        [
            torch.stack(
                [
                    1 + m00 - m11 - m22,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 2, 1] - m[..., 1, 2],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 0, 1] + m[..., 1, 0],
                    1 - m00 + m11 - m22,
                    m[..., 1, 2] + m[..., 2, 1],
                    m[..., 0, 2] - m[..., 2, 0],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 - m00 - m11 + m22,
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
            torch.stack(
                [
                    m[..., 2, 1] - m[..., 1, 2],
                    m[..., 0, 2] - m[..., 2, 0],
                    m[..., 1, 0] - m[..., 0, 1],
                    1 + m00 + m11 + m22,
                ],
                -1,
            ),
        ],
        -2,
    )  # row k is 4 q_k q (up to scale); take the best-conditioned row
    best = torch.stack([m00 - m11 - m22, -m00 + m11 - m22, -m00 - m11 + m22, m00 + m11 + m22], -1).argmax(-1)
    q = candidates.gather(-2, best[..., None, None].expand(*best.shape, 1, 4)).squeeze(-2)
    return torch.nn.functional.normalize(q, dim=-1)


@dataclass
class Scene:
    """Shapes of one world (S of them) and the camera; ``body`` indexes the env's body transforms."""

    body: torch.Tensor  # (S,) long
    kind: torch.Tensor  # (S,) long: SPHERE, CAPSULE (axis local z) or BOX
    local_pos: torch.Tensor  # (S, 3) shape origin in its body frame
    local_rot: torch.Tensor  # (S, 3, 3)
    size: torch.Tensor  # (S, 3): sphere (r, -, -), capsule (r, half length, -), box (hx, hy, hz)
    color: torch.Tensor  # (S, 3) in [0, 1]
    camera: Camera

    @classmethod
    def from_task(cls, task: Task, device: torch.device | str = "cpu") -> Scene:
        builder = newton.ModelBuilder()
        task.build(builder)
        keep = [
            s
            for s, kind in enumerate(builder.shape_type)
            if int(kind) in _KINDS and builder.shape_body[s] >= 0 and builder.shape_flags[s] & newton.ShapeFlags.VISIBLE
        ]
        xforms = np.array([list(builder.shape_transform[s]) for s in keep], np.float32).reshape(-1, 7)
        as_tensor = lambda a, dtype=torch.float32: torch.as_tensor(np.asarray(a), dtype=dtype, device=device)  # noqa: E731
        return cls(
            body=as_tensor([builder.shape_body[s] for s in keep], torch.long),
            kind=as_tensor([_KINDS[int(builder.shape_type[s])] for s in keep], torch.long),
            local_pos=as_tensor(xforms[:, :3]),
            local_rot=quat_to_matrix(as_tensor(xforms[:, 3:])),
            size=as_tensor([list(builder.shape_scale[s]) for s in keep]),
            color=as_tensor([list(builder.shape_color[s]) for s in keep]).clamp(0, 1),
            camera=task.camera,
        )

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Scene:
        """A copy with float tensors on ``device`` / in ``dtype`` (e.g. float64 for gradient checks)."""
        move = lambda t: t.to(device=device, dtype=dtype if t.is_floating_point() else None)  # noqa: E731
        fields = ("body", "kind", "local_pos", "local_rot", "size", "color")
        return replace(self, **{name: move(getattr(self, name)) for name in fields})

    @property
    def num_shapes(self) -> int:
        return int(self.body.shape[0])

    def shape_poses(self, body_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """World positions (N, S, 3) and rotations (N, S, 3, 3) of the shapes from body poses (N, B, 7)."""
        q = body_q[:, self.body]
        rot = quat_to_matrix(q[..., 3:])
        pos = q[..., :3] + (rot @ self.local_pos[..., None]).squeeze(-1)
        return pos, rot @ self.local_rot

    def camera_pose(self, body_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Eye (N, 3) and camera-to-world rotation (N, 3, 3): columns right, up, back (looks along -Z).

        The camera follows the tracked body's position (not its rotation); cartpole's is fixed."""
        eye = self.camera_eye(body_q)
        return eye, self.camera_rotation(body_q.dtype, body_q.device).expand(len(eye), 3, 3)

    def camera_rotation(self, dtype: torch.dtype = torch.float32, device: torch.device | str = "cpu") -> torch.Tensor:
        """(3, 3) camera to world, columns right, up, back: it looks along minus the eye's offset from its
        target, so it is the same in every env and at every step."""
        forward = torch.nn.functional.normalize(
            -torch.tensor(self.camera.eye_offset, dtype=dtype, device=device), dim=0
        )
        world_up = torch.tensor([0.0, 0.0, 1.0], dtype=dtype, device=device)
        right = torch.nn.functional.normalize(torch.linalg.cross(forward, world_up), dim=0)
        up = torch.linalg.cross(right, forward)
        return torch.stack([right, up, -forward], dim=-1)

    def camera_eye(self, body_q: torch.Tensor) -> torch.Tensor:
        """(N, 3): the tracked body's position (or the fixed target) plus the camera's offset. The
        rotation of :meth:`camera_pose` depends on the offset alone: a constant of the scene."""
        cam = self.camera
        offset = torch.tensor(cam.eye_offset, dtype=body_q.dtype, device=body_q.device)
        if cam.body is None:
            return torch.tensor(cam.target, dtype=body_q.dtype, device=body_q.device) + offset.expand(
                body_q.shape[0], 3
            )
        return body_q[:, cam.body, :3] + offset

    def focal_px(self, height: int) -> float:
        return (height / 2) / math.tan(self.camera.fov_y / 2)

    def camera_rays(self, width: int, height: int, device: torch.device | str) -> torch.Tensor:
        """Unit ray directions in camera space, (H, W, 3), through pixel centres."""
        f = self.focal_px(height)
        cols = (torch.arange(width, device=device) + 0.5 - width / 2) / f
        rows = -(torch.arange(height, device=device) + 0.5 - height / 2) / f
        y, x = torch.meshgrid(rows, cols, indexing="ij")
        return torch.nn.functional.normalize(torch.stack([x, y, -torch.ones_like(x)], -1), dim=-1)

    def project(self, points: torch.Tensor, body_q: torch.Tensor, width: int, height: int) -> torch.Tensor:
        """Pinhole projection of world points (N, K, 3) to (column, row) pixel coordinates (N, K, 2)."""
        eye, rot = self.camera_pose(body_q)
        local = (points - eye[:, None]) @ rot  # world -> camera (rot is orthonormal)
        f = self.focal_px(height)
        depth = -local[..., 2]
        return torch.stack([width / 2 + f * local[..., 0] / depth, height / 2 - f * local[..., 1] / depth], -1)

    def world_rays(self, body_q: torch.Tensor, width: int, height: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Eye (N, 3) and unit world-space ray directions (N, H * W, 3)."""
        eye, rot = self.camera_pose(body_q)
        rays = self.camera_rays(width, height, body_q.device).to(body_q.dtype).reshape(-1, 3)
        return eye, rays @ rot.transpose(1, 2)

    def pixel_angle(self, height: int) -> float:
        """Angle subtended by one pixel [rad] (the ground's anti-aliasing footprint)."""
        return 2 * math.tan(self.camera.fov_y / 2) / height

    def background(self, eye: torch.Tensor, dirs: torch.Tensor, pixel_angle: float) -> torch.Tensor:
        """(N, P, 3) colours in [0, 1] where rays miss the robot: the floor z = 0 with its grid, the wall
        y = ``camera.backdrop_y`` if the task has one, sky elsewhere. Grid lines are box-filtered over each
        pixel's footprint on the floor, so they neither vanish nor shimmer at small image sizes. Shared
        by the backends, so their backgrounds are identical."""
        far = torch.full_like(dirs[..., 0], math.inf)
        down = dirs[..., 2] < -1e-6
        t_floor = torch.where(down, -eye[:, None, 2] / dirs[..., 2].clamp(max=-1e-6), far)
        wall_y = self.camera.backdrop_y
        toward_wall = dirs[..., 1] > 1e-6 if wall_y is not None else torch.zeros_like(down)
        t_wall = torch.where(toward_wall, ((wall_y or 0.0) - eye[:, None, 1]) / dirs[..., 1].clamp(min=1e-6), far)
        t_wall = torch.where(t_wall > 0, t_wall, far)
        floor = (t_floor > 0) & (t_floor < t_wall)

        hit = eye[:, None, :2] + t_floor.clamp(max=1e6)[..., None] * dirs[..., :2]
        footprint = (t_floor.clamp(max=1e6) * pixel_angle / dirs[..., 2].abs().clamp(min=0.05))[..., None]
        offset = torch.remainder(hit + GRID_SPACING / 2, GRID_SPACING) - GRID_SPACING / 2  # to the nearest line
        half_w, half_f = GRID_LINE_WIDTH / 2, footprint / 2
        overlap = (torch.minimum(offset + half_f, torch.full_like(offset, half_w))
                   - torch.maximum(offset - half_f, torch.full_like(offset, -half_w))).clamp(min=0)  # fmt: skip
        coverage = (overlap / footprint).clamp(max=1)
        line = 1 - (1 - coverage[..., 0]) * (1 - coverage[..., 1])
        tone = lambda c: torch.tensor(c, dtype=dirs.dtype, device=dirs.device)  # noqa: E731
        floor_rgb = tone(FLOOR) + line[..., None] * (tone(GRID_LINE) - tone(FLOOR))
        behind = torch.where(torch.isfinite(t_wall)[..., None], tone(WALL), tone(SKY))
        return torch.where(floor[..., None], floor_rgb, behind)
