"""Batched renderers behind one seam (``envs.render.base.Renderer``), chosen by name.

- ``newton`` (default, detached): Newton's ray-traced ``SensorCamera``; uint8 images.
- ``diff`` (differentiable): our PyTorch ray caster over the same analytic shapes; float images.
- ``maniskill`` (detached, optional): SAPIEN 3, ManiSkill3's renderer, drawing our poses; uint8 images.
- ``pytorch3d`` (differentiable, optional): PyTorch3D's soft mesh rasteriser, as the paper's SHAC
  baseline used; float images.
"""

from __future__ import annotations

import importlib.util

import torch

from envs.render.base import Renderer
from envs.render.scene import Scene
from envs.tasks.base import Task

BACKENDS = ("newton", "diff", "maniskill", "pytorch3d")
OPTIONAL_PACKAGES = {"maniskill": "sapien", "pytorch3d": "pytorch3d"}  # backend -> the package it imports lazily


def install_hint(name: str) -> str | None:
    """What to install for backend ``name``, or None when it can be imported here."""
    package = OPTIONAL_PACKAGES.get(name)
    if package is None or importlib.util.find_spec(package) is not None:
        return None
    if name == "pytorch3d":
        from envs.render.pytorch3d_mesh import INSTALL_HINT
    else:
        from envs.render.maniskill import INSTALL_HINT
    return INSTALL_HINT


def make_renderer(
    name: str, task: Task, num_envs: int, width: int = 84, height: int = 84, device: torch.device | str = "cpu"
) -> Renderer:
    """A renderer for ``num_envs`` copies of ``task``; a one-line error lists the backends."""
    scene = Scene.from_task(task, device)
    if name == "newton":
        from envs.render.newton_camera import NewtonRenderer

        return NewtonRenderer(scene, num_envs, width, height, device, task)
    if name == "diff":
        from envs.render.diff import DiffRenderer

        return DiffRenderer(scene, num_envs, width, height, device)
    if name == "maniskill":
        from envs.render.maniskill import ManiSkillRenderer

        return ManiSkillRenderer(scene, num_envs, width, height, device)
    if name == "pytorch3d":
        from envs.render.pytorch3d_mesh import PyTorch3DRenderer

        return PyTorch3DRenderer(scene, num_envs, width, height, device)
    raise KeyError(f"unknown renderer '{name}'; choose one of: {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Renderer", "Scene", "install_hint", "make_renderer"]
