"""The renderer seam: ``render(body_transforms (N, B, 7)) -> images (N, 3, H, W)`` on the env's device.

Backends share the :class:`~envs.render.scene.Scene` (shapes, colours, camera) so their images agree.
"""

from __future__ import annotations

import importlib.util
from typing import ClassVar

import torch

from envs.render.scene import Scene
from envs.tasks.base import Task


class Renderer:
    """Base class: a subclass with a ``name`` in a module of ``envs/render/`` is a backend (``renderer=<name>``)."""

    name: ClassVar[str]
    differentiable: ClassVar[bool] = False  # images carry gradients with respect to the body poses
    package: ClassVar[str | None] = None  # an optional package the backend imports lazily (None: always there)
    install: ClassVar[str] = ""  # what to run when ``package`` is missing, said in one line

    @classmethod
    def missing(cls) -> str | None:
        """The install line when this backend's optional package cannot be imported here, else None."""
        return cls.install if cls.package and importlib.util.find_spec(cls.package) is None else None

    @classmethod
    def for_task(cls, task: Task, num_envs: int, width: int, height: int, device: torch.device | str,
                 **options) -> Renderer:  # fmt: skip
        """A renderer for ``num_envs`` copies of ``task``'s scene (``options``: the backend's own)."""
        return cls(Scene.from_task(task, device), num_envs, width, height, device, **options)

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device: torch.device | str) -> None:
        self.scene, self.num_envs, self.width, self.height = scene, num_envs, width, height
        self.device = torch.device(device)

    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) for detached backends; float in [0, 1] for differentiable ones."""
        raise NotImplementedError

    def _over_background(self, body_q: torch.Tensor, rgb: torch.Tensor, hit: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W): a detached backend's robot pixels ``rgb`` (N, H, W, 3, float in [0, 1])
        where ``hit`` (N, H, W), the scene's shared analytic background elsewhere."""
        eye, dirs = self.scene.world_rays(body_q.detach(), self.width, self.height)
        background = self.scene.background(eye, dirs, self.scene.pixel_angle(self.height)).reshape(rgb.shape)
        image = torch.where(hit[..., None], rgb, background)
        return (image * 255).round().to(torch.uint8).permute(0, 3, 1, 2).contiguous()

    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        """(N, H, W) bool: pixels covered by the robot (not ground or sky), to compare backends."""
        raise NotImplementedError
