"""``renderer=maniskill``: SAPIEN 3 (ManiSkill3's renderer) used purely as a renderer of our poses, as the
paper did. One SAPIEN scene per env; one kinematic entity per body carrying its capsules, spheres and
boxes; poses set every frame. Like ``newton``, it draws the robots and the shared analytic ground and
sky fill the rest (SAPIEN's alpha channel is 0 where nothing was hit). Detached, uint8.

Optional: ``pip install '.[maniskill]'``. Without a GPU SAPIEN needs a Vulkan driver with
``descriptorBindingPartiallyBound``: Mesa >= 24 lavapipe (``tests/vulkan/setup-lavapipe.sh``), with
``VK_ICD_FILENAMES`` set before SAPIEN is imported.
"""

from __future__ import annotations

import numpy as np
import torch

from envs.render.base import Renderer
from envs.render.scene import AMBIENT, BOX, LIGHT, SPHERE, Scene, matrix_to_quat

INSTALL_HINT = (
    "renderer 'maniskill' needs SAPIEN: pip install '.[maniskill]' (without a GPU also a Vulkan driver: "
    'eval "$(bash tests/vulkan/setup-lavapipe.sh)", see README)'
)


def _import_sapien():
    try:
        import sapien
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return sapien


def _wxyz(rot: torch.Tensor) -> list[float]:
    x, y, z, w = matrix_to_quat(rot).tolist()
    return [w, x, y, z]


# SAPIEN capsules lie along their local x axis, ours (Newton's) along z: rotate x onto z.
_X_TO_Z = torch.tensor([[0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class ManiSkillRenderer(Renderer):
    name = "maniskill"
    differentiable = False
    package = "sapien"
    install = INSTALL_HINT

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device) -> None:
        super().__init__(scene, num_envs, width, height, device)
        sapien = _import_sapien()
        self._sapien = sapien
        cpu = scene.to("cpu")
        self.bodies = sorted(set(cpu.body.tolist()))
        try:
            self.scenes, self.entities, self.cameras = [], [], []
            for _ in range(num_envs):
                world = sapien.Scene()
                world.set_ambient_light([AMBIENT] * 3)
                world.add_directional_light([-c for c in LIGHT], [1 - AMBIENT] * 3)
                entities = [self._body_entity(world, cpu, body) for body in self.bodies]
                camera = world.add_camera("camera", width=width, height=height, fovy=scene.camera.fov_y,
                                          near=0.01, far=100.0)  # fmt: skip
                self.scenes.append(world)
                self.entities.append(entities)
                self.cameras.append(camera)
        except RuntimeError as error:  # no Vulkan device
            raise RuntimeError(f"{INSTALL_HINT}; SAPIEN said: {error}") from None

    def _body_entity(self, world, scene: Scene, body: int):
        sapien = self._sapien
        builder = world.create_actor_builder()
        for s in torch.nonzero(scene.body == body).flatten().tolist():
            kind, size = int(scene.kind[s]), scene.size[s].tolist()
            rot = scene.local_rot[s] if kind == BOX else scene.local_rot[s] @ _X_TO_Z
            pose = sapien.Pose(scene.local_pos[s].tolist(), _wxyz(rot))
            material = sapien.render.RenderMaterial(base_color=[*scene.color[s].tolist(), 1.0])
            if kind == BOX:
                builder.add_box_visual(pose=pose, half_size=size, material=material)
            else:
                half = 0.0 if kind == SPHERE else size[1]
                builder.add_capsule_visual(pose=pose, radius=size[0], half_length=half, material=material)
        return builder.build_kinematic(name=f"body{body}")

    def _rgba(self, body_q: torch.Tensor) -> torch.Tensor:
        sapien = self._sapien
        body_q = body_q.detach().cpu()
        eye, rot = self.scene.camera_pose(body_q)
        # SAPIEN cameras look along their local +x with +y left and +z up; ours: -z forward, +y up
        sapien_rot = torch.stack([-rot[..., 2], -rot[..., 0], rot[..., 1]], dim=-1)
        images = []
        for env in range(self.num_envs):
            for entity, body in zip(self.entities[env], self.bodies, strict=True):
                p = body_q[env, body]
                entity.set_pose(sapien.Pose(p[:3].tolist(), [float(p[6]), *p[3:6].tolist()]))
            self.cameras[env].set_entity_pose(sapien.Pose(eye[env].tolist(), _wxyz(sapien_rot[env])))
            self.scenes[env].update_render()
            self.cameras[env].take_picture()
            images.append(np.asarray(self.cameras[env].get_picture("Color")))
        return torch.from_numpy(np.stack(images)).to(self.device)  # (N, H, W, 4) float in [0, 1]

    @torch.no_grad()
    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        rgba = self._rgba(body_q)
        return self._over_background(body_q, rgba[..., :3], rgba[..., 3] > 0.5)

    @torch.no_grad()
    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        return self._rgba(body_q)[..., 3] > 0.5
