"""Batched renderers behind one seam (``envs.render.base.Renderer``), chosen by name.

- ``newton`` (default, detached): Newton's ray-traced ``SensorCamera``; uint8 images.
- ``diff`` (differentiable): our PyTorch ray caster over the same analytic shapes; float images.
- ``maniskill`` (detached, optional): SAPIEN 3, ManiSkill3's renderer, drawing our poses; uint8 images.
- ``pytorch3d`` (differentiable, optional): PyTorch3D's soft mesh rasteriser, as the paper's SHAC
  baseline used; float images.
"""

from __future__ import annotations

import sys
from functools import cache

import torch

from envs.plugins import choose, discover
from envs.render.base import Renderer
from envs.render.scene import Scene
from envs.tasks.base import Task


@cache
def registry() -> dict[str, type[Renderer]]:
    """Every backend: a ``Renderer`` subclass with a ``name`` in a module here (a new one is one file)."""
    return discover(sys.modules[__name__], Renderer)


def renderers() -> list[str]:
    return list(registry())


def install_hint(name: str) -> str | None:
    """What to install for backend ``name``, or None when it can be used here."""
    return choose("renderer", name, registry()).missing()


def make_renderer(
    name: str,
    task: Task,
    num_envs: int,
    width: int = 84,
    height: int = 84,
    device: torch.device | str = "cpu",
    **options,
) -> Renderer:
    """A ``name`` renderer for ``num_envs`` copies of ``task``; an unknown name is a ``KeyError`` whose one
    line lists the backends. ``options`` go to the backend (e.g. PyTorch3D's ``mesh_detail``)."""
    return choose("renderer", name, registry()).for_task(task, num_envs, width, height, device, **options)


__all__ = ["Renderer", "Scene", "install_hint", "make_renderer", "registry", "renderers"]
