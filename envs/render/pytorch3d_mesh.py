"""``renderer=pytorch3d``: the scene's capsules, spheres and boxes as triangle meshes, soft-rasterised
by PyTorch3D, as the paper's SHAC + differentiable rendering baseline drew them. Differentiable with
respect to body poses (and through them the simulated state); float images in [0, 1].

- Meshes are built once per scene in the shapes' own frames (a capsule is a latitude-longitude mesh
  whose two caps are pulled apart by its half length; a sphere is one with half length 0; a box has
  four vertices per face so its normals stay flat) and posed per env from the body transforms: one
  ``Meshes`` batch of N copies of the same topology.
- The camera is the scene's (eye, looking direction, fov_y) as ``FoVPerspectiveCameras``.
- Soft rasterisation: each of the ``faces_per_pixel`` nearest faces turned to the camera covers a
  pixel fully when the pixel's centre lies inside it, else with ``2 sigmoid(-d^2 / sigma)`` (d: the
  centre's distance to the face in NDC), sigma = ``softness`` x one pixel squared: edges fade over
  about a pixel outward, which is where the gradients with respect to the poses come from. Faces are
  composited front to back with Lambert shading (the scene's light and ambient term), over the shared
  analytic floor, wall and sky.

Optional: ``make pytorch3d`` installs it (docs/envs.md, "The four backends").
"""

from __future__ import annotations

import math

import torch
from torch.nn.functional import normalize

from envs.render.base import Renderer
from envs.render.scene import AMBIENT, BOX, LIGHT, Scene

INSTALL_HINT = "renderer 'pytorch3d' needs PyTorch3D 0.7.9: make pytorch3d (see docs/envs.md, 'The four backends')"
# the soft edge of every face within ~2 px reaches a pixel: the face it lies in must stay among them
FACES_PER_PIXEL = 16
MAX_MESH_DETAIL = 8  # 12 x 8 longitudes, 24 rings per cap: ~4600 vertices per capsule
EDGE_CUTOFF = 1e-3  # coverage below which a face is not rasterised at all (sets the blur radius)
ZNEAR, ZFAR = 0.01, 100.0


def mesh_resolution(mesh_detail: int) -> tuple[int, int]:
    """Longitudes and rings per cap of every sphere and capsule mesh at ``mesh_detail`` k: 12 k and 3 k."""
    return 12 * mesh_detail, 3 * mesh_detail


def vertices_per_mesh(mesh_detail: int) -> int:
    """Vertices of one sphere or capsule mesh at ``mesh_detail``: two poles and 2 x (rings per cap) rings
    of (longitudes) each (a box keeps its 24)."""
    longitudes, latitudes = mesh_resolution(mesh_detail)
    return 2 + 2 * latitudes * longitudes


def _import_pytorch3d():
    try:
        from pytorch3d import renderer, structures
        from pytorch3d.ops import interpolate_face_attributes
    except ImportError as error:
        raise ImportError(INSTALL_HINT) from error
    return renderer, structures, interpolate_face_attributes


def capsule_mesh(radius: float, half: float, longitudes: int = 12, latitudes: int = 3):
    """Vertices, unit normals (V, 3) and faces (F, 3) of a capsule along local z (a sphere when
    ``half`` is 0): ``latitudes`` rings per cap between the pole and the equator. The rings' radius is
    enlarged so that a ring, a polygon, has the circle's area: silhouettes keep their size."""
    radius *= math.sqrt(2 * math.pi / (longitudes * math.sin(2 * math.pi / longitudes)))
    ring_angles = [(-math.pi / 2 + math.pi / 2 * k / latitudes, -1.0) for k in range(1, latitudes + 1)]
    ring_angles += [(math.pi / 2 * k / latitudes, 1.0) for k in range(0, latitudes)]
    theta = torch.arange(longitudes) * 2 * math.pi / longitudes
    normals = [torch.tensor([[0.0, 0.0, -1.0]])]
    offsets = [torch.tensor([[0.0, 0.0, -half]])]
    for phi, side in ring_angles:
        ring = [math.cos(phi) * theta.cos(), math.cos(phi) * theta.sin(), torch.full_like(theta, math.sin(phi))]
        normals.append(torch.stack(ring, -1))
        offsets.append(torch.tensor([[0.0, 0.0, side * half]]).expand(longitudes, 3))
    normals.append(torch.tensor([[0.0, 0.0, 1.0]]))
    offsets.append(torch.tensor([[0.0, 0.0, half]]))
    normal = torch.cat(normals)
    verts = radius * normal + torch.cat(offsets)
    rings, top = len(ring_angles), 1 + len(ring_angles) * longitudes
    j = torch.arange(longitudes)
    j1 = (j + 1) % longitudes
    faces = [torch.stack([torch.zeros_like(j), 1 + j1, 1 + j], -1)]  # bottom fan (outward, counter-clockwise)
    for r in range(rings - 1):
        a, b = 1 + r * longitudes, 1 + (r + 1) * longitudes
        faces += [torch.stack([a + j, a + j1, b + j1], -1), torch.stack([a + j, b + j1, b + j], -1)]
    last = 1 + (rings - 1) * longitudes
    faces.append(torch.stack([last + j, last + j1, torch.full_like(j, top)], -1))
    return verts, normal, torch.cat(faces)


def box_mesh(half_extents: torch.Tensor):
    """A box's 24 vertices (four per face, so each face keeps its own normal), normals and 12 faces."""
    verts, normals, faces = [], [], []
    for axis in range(3):
        for sign in (-1.0, 1.0):
            u, v = (axis + 1) % 3, (axis + 2) % 3
            n = torch.zeros(3)
            n[axis] = sign
            corners = []
            for cu, cv in ((-1, -1), (1, -1), (1, 1), (-1, 1)):
                c = torch.zeros(3)
                c[axis], c[u], c[v] = sign, cu, cv
                corners.append(c * half_extents)
            base = 4 * len(normals)
            quad = [[0, 1, 2], [0, 2, 3]] if sign > 0 else [[0, 2, 1], [0, 3, 2]]
            faces += [[base + i for i in tri] for tri in quad]
            verts += corners
            normals.append(n)
    return torch.stack(verts), torch.stack(normals).repeat_interleave(4, 0), torch.tensor(faces)


class PyTorch3DRenderer(Renderer):
    """Soft mesh rasterisation with PyTorch3D (``renderer=pytorch3d``)."""

    name = "pytorch3d"
    differentiable = True
    package = "pytorch3d"
    install = INSTALL_HINT

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device, softness: float = 0.5,
                 mesh_detail: int = 1):  # fmt: skip
        """``mesh_detail`` k: spheres and capsules of 12 k longitudes and 3 k rings per cap (Fig. 10's
        vertices per mesh); the images change little, the rasteriser's cost and memory grow."""
        super().__init__(scene, num_envs, width, height, device)
        if not 1 <= mesh_detail <= MAX_MESH_DETAIL:
            raise ValueError(f"mesh_detail={mesh_detail}: give 1 to {MAX_MESH_DETAIL}")
        self._p3d, structures, self._interpolate = _import_pytorch3d()
        self._meshes = structures.Meshes
        parts, start = [], 0
        for s in range(scene.num_shapes):
            size = scene.size[s].cpu()
            if scene.kind[s] == BOX:
                verts, normals, faces = box_mesh(size)
            else:
                radius, half = float(size[0]), 0.0 if scene.kind[s] == 0 else float(size[1])
                verts, normals, faces = capsule_mesh(radius, half, *mesh_resolution(mesh_detail))
            parts.append((verts, normals, faces + start, torch.full((len(verts),), s)))
            start += len(verts)
        verts, normals, faces, shape = (torch.cat(p).to(self.device) for p in zip(*parts, strict=True))
        self._verts, self._normals, self._faces, self._shape = verts.float(), normals.float(), faces, shape
        self._colors = scene.color[shape].float()
        self.light = normalize(torch.tensor(LIGHT, device=self.device), dim=0)
        self.sigma = softness * (2.0 / min(width, height)) ** 2  # NDC units squared: ~one pixel
        self.gamma = 1e-4  # depth softness of the blend, in units of the near-far range
        self.settings = self._p3d.RasterizationSettings(
            image_size=(height, width),
            blur_radius=math.log(1 / EDGE_CUTOFF - 1) * self.sigma,
            faces_per_pixel=FACES_PER_PIXEL,
            bin_size=0,  # naive rasterisation: exact, no bin overflow on crowded frames
            perspective_correct=False,
            cull_backfaces=True,  # closed meshes: the faces turned away are hidden and would crowd out the rest
        )
        self.hard_settings = self._p3d.RasterizationSettings(image_size=(height, width), blur_radius=0.0,
                                                             faces_per_pixel=1, bin_size=0)  # fmt: skip

    @property
    def num_faces(self) -> int:
        return int(self._faces.shape[0])

    @property
    def num_vertices(self) -> int:
        return int(self._verts.shape[0])

    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        return self.render_with_coverage(body_q)[0]

    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        """Pixels whose centre lies inside a face (the soft coverage reaches past the edges: a pixel
        just outside collects a little from every face near it, front and back)."""
        fragments = self._rasterize(body_q.float(), self.hard_settings)[1]
        return fragments.pix_to_face[..., 0] >= 0

    def _camera(self, body_q: torch.Tensor):
        """PyTorch3D's view frame is x left, y up, z forward, with row vectors: view = world @ R + T."""
        eye, rot = self.scene.camera_pose(body_q)  # columns: right, up, back
        right, up, back = rot.unbind(-1)
        r = torch.stack([-right, up, -back], -1)
        t = -(eye[:, None] @ r).squeeze(1)
        return self._p3d.FoVPerspectiveCameras(R=r, T=t, fov=math.degrees(self.scene.camera.fov_y), znear=ZNEAR,
                                               zfar=ZFAR, device=body_q.device)  # fmt: skip

    def _rasterize(self, body_q: torch.Tensor, settings=None):
        """((posed meshes, world vertex normals (N, V, 3)), PyTorch3D's fragments)."""
        pos, rot = self.scene.shape_poses(body_q)
        rot_v = rot[:, self._shape]
        verts = pos[:, self._shape] + (rot_v @ self._verts[..., None]).squeeze(-1)
        normals = (rot_v @ self._normals[..., None]).squeeze(-1)
        meshes = self._meshes(verts=verts, faces=self._faces.expand(body_q.shape[0], -1, -1))
        rasterizer = self._p3d.MeshRasterizer(cameras=self._camera(body_q), raster_settings=settings or self.settings)
        return (meshes, normals), rasterizer(meshes)

    def render_with_coverage(self, body_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, 3, H, W) and the soft foreground coverage (N, H, W)."""
        n = body_q.shape[0]
        (meshes, normals), fragments = self._rasterize(body_q.float())
        covered = fragments.pix_to_face >= 0  # (N, H, W, K), nearest first
        # opaque inside every face, fading over ~a pixel outside its edges (with sigmoid(-d^2 / sigma) inside
        # as well, a surface of faces smaller than a pixel would let the background through near their edges)
        prob = 2 * torch.sigmoid(-fragments.dists.clamp_min(0) / self.sigma) * covered
        coverage = 1 - torch.prod(1 - prob, -1)

        faces = meshes.faces_packed()
        attributes = torch.cat([normals.reshape(-1, 3), self._colors.repeat(n, 1)], -1)[faces]  # (F, 3, 6)
        shaded = self._interpolate(fragments.pix_to_face, fragments.bary_coords, attributes)  # (N, H, W, K, 6)
        lambert = AMBIENT + (1 - AMBIENT) * (normalize(shaded[..., :3], dim=-1) @ self.light).clamp_min(0)
        colour = shaded[..., 3:] * lambert[..., None]
        # PyTorch3D's softmax blend: nearer faces weigh exponentially more, smoothly in depth (gamma)
        near = (ZFAR - fragments.zbuf) / (ZFAR - ZNEAR) * covered
        weight = prob * torch.exp((near - near.amax(-1, keepdim=True)) / self.gamma)
        robot = (weight[..., None] * colour).sum(-2) / weight.sum(-1, keepdim=True).clamp_min(1e-12)

        eye, dirs = self.scene.world_rays(body_q.float(), self.width, self.height)
        background = self.scene.background(eye, dirs, self.scene.pixel_angle(self.height))
        image = torch.lerp(background.reshape(n, self.height, self.width, 3), robot, coverage[..., None])
        return image.permute(0, 3, 1, 2).clamp(0, 1), coverage
