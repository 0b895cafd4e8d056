"""The renderer seam: ``render(body_transforms (N, B, 7)) -> images (N, 3, H, W)`` on the env's device.

Backends share the :class:`~envs.render.scene.Scene` (shapes, colours, camera) so their images agree.
"""

from __future__ import annotations

import torch

from envs.render.scene import Scene


class Renderer:
    name: str
    differentiable: bool = False  # images carry gradients with respect to the body poses

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device: torch.device | str) -> None:
        self.scene, self.num_envs, self.width, self.height = scene, num_envs, width, height
        self.device = torch.device(device)

    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        """uint8 (N, 3, H, W) for detached backends; float in [0, 1] for differentiable ones."""
        raise NotImplementedError

    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        """(N, H, W) bool: pixels covered by the robot (not ground or sky), to compare backends."""
        raise NotImplementedError
