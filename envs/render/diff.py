"""Differentiable renderer in PyTorch: exact ray casting of the scene's analytic shapes, soft
silhouette edges, Lambert shading, the shared floor and backdrop. Images are differentiable with respect to body
poses (and through them the simulated state), batched over envs, on any torch device.

Spheres are capsules of zero length, so there are two primitives: capsules (exact ray-cylinder and
ray-sphere intersection, closest line-segment distance for the silhouette) and boxes (slabs).
Each shape covers a pixel with ``sigmoid(-d / s)``, where ``d`` is the signed distance from the pixel's
ray to the shape and ``s`` one pixel's footprint at that depth (times ``softness``); layers are
composited front to back, so edges move smoothly as bodies move (as in soft rasterisers).
"""

from __future__ import annotations

import torch
from torch.nn.functional import normalize

from envs.render.base import Renderer
from envs.render.scene import AMBIENT, BOX, CAPSULE, LIGHT, SPHERE, Scene


def _capsules(eye, dirs, centre, axis, radius, half):
    """Ray (eye (N,1,1,3) + t dirs (N,P,1,3)) against capsules (N,1,K,...). Returns hit depth (inf where
    missed), closest-approach depth, signed ray-to-surface distance and surface normal at the hit."""
    w0 = eye - centre
    b = (dirs * axis).sum(-1)
    d = (dirs * w0).sum(-1)
    e = (axis * w0).sum(-1)
    denom = (1 - b * b).clamp_min(1e-9)
    s = ((e - b * d) / denom).clamp(-half, half)  # closest point on the segment (line-segment distance)
    t_close = s * b - d
    gap = w0 + t_close[..., None] * dirs - s[..., None] * axis
    signed = gap.norm(dim=-1) - radius

    # exact hit: infinite cylinder clipped to the segment, and the two end spheres
    d_perp = dirs - b[..., None] * axis
    w_perp = w0 - e[..., None] * axis
    qa = (d_perp * d_perp).sum(-1).clamp_min(1e-9)
    qb = (w_perp * d_perp).sum(-1)
    qc = (w_perp * w_perp).sum(-1) - radius**2
    disc = qb * qb - qa * qc
    t_cyl = (-qb - disc.clamp_min(1e-12).sqrt()) / qa  # > 0 under the sqrt: finite gradients
    inf = torch.full_like(t_cyl, float("inf"))
    on_segment = (e + t_cyl * b).abs() <= half
    hits = [torch.where((disc >= 0) & on_segment & (t_cyl > 0), t_cyl, inf)]
    for end in (-1.0, 1.0):
        tc = -((w0 - end * half[..., None] * axis) * dirs).sum(-1)
        h2 = ((w0 - end * half[..., None] * axis + tc[..., None] * dirs) ** 2).sum(-1)
        t_sph = tc - (radius**2 - h2).clamp_min(1e-12).sqrt()
        hits.append(torch.where((h2 <= radius**2) & (t_sph > 0), t_sph, inf))
    t_hit = torch.stack(hits).amin(0)

    t_shade = torch.where(torch.isfinite(t_hit), t_hit, t_close)
    point = w0 + t_shade[..., None] * dirs  # relative to the centre
    along = (point * axis).sum(-1).clamp(-half, half)
    normal = normalize(point - along[..., None] * axis, dim=-1)
    return t_hit, t_close, signed, normal


def _boxes(eye, dirs, centre, rot, half_extents):
    """Ray against boxes by slabs, in each box's frame. Same outputs as :func:`_capsules`."""
    o = ((eye - centre)[..., None, :] @ rot).squeeze(-2)  # world -> box frame: R^T v
    v = (dirs[..., None, :] @ rot).squeeze(-2)
    v = torch.where(v.abs() < 1e-9, torch.full_like(v, 1e-9), v)
    t1, t2 = (-half_extents - o) / v, (half_extents - o) / v
    near, far = torch.minimum(t1, t2), torch.maximum(t1, t2)
    t_in, face = near.max(-1)
    t_out = far.min(-1).values
    signed = 0.5 * (t_in - t_out)  # < 0 inside the silhouette; ~distance to the edge outside it
    t_hit = torch.where((signed < 0) & (t_in > 0), t_in, torch.full_like(t_in, float("inf")))
    t_close = 0.5 * (t_in + t_out)
    local_normal = -torch.sign(v) * torch.nn.functional.one_hot(face, 3).to(v.dtype)
    normal = (rot @ local_normal[..., None]).squeeze(-1)
    return t_hit, t_close, signed, normal


class DiffRenderer(Renderer):
    """Soft, differentiable ray casting in PyTorch (``renderer=diff``)."""

    name = "diff"
    differentiable = True

    def __init__(self, scene: Scene, num_envs: int, width: int, height: int, device, softness: float = 0.5):
        super().__init__(scene, num_envs, width, height, device)
        self.softness = softness
        self.light = normalize(torch.tensor(LIGHT, device=self.device), dim=0)
        self._capsule_ids = torch.nonzero(scene.kind != BOX).squeeze(-1)
        self._box_ids = torch.nonzero(scene.kind == BOX).squeeze(-1)
        size = scene.size
        self._radius = size[self._capsule_ids, 0]
        self._half = torch.where(scene.kind[self._capsule_ids] == SPHERE, 0.0, size[self._capsule_ids, 1])
        assert set(scene.kind.tolist()) <= {SPHERE, CAPSULE, BOX}

    def render(self, body_q: torch.Tensor) -> torch.Tensor:
        """(N, 3, H, W) float images in [0, 1], differentiable with respect to ``body_q`` (N, B, 7)."""
        return self.render_with_coverage(body_q)[0]

    def foreground(self, body_q: torch.Tensor) -> torch.Tensor:
        return self.render_with_coverage(body_q)[1] > 0.5

    def _ray_hits(self, body_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        """Each pixel's ray (eye (N, 3), directions (N, P, 3)) against every shape: per primitive group, its
        shape ids and what :func:`_capsules` / :func:`_boxes` return, each (N, P, K)."""
        eye, dirs = self.scene.world_rays(body_q, self.width, self.height)
        rays, eye4 = dirs[:, :, None, :], eye[:, None, None, :]  # one ray per pixel against K shapes
        pos, rot = self.scene.shape_poses(body_q)  # (N, S, 3), (N, S, 3, 3)
        groups = []
        if len(self._capsule_ids):
            ids = self._capsule_ids
            groups.append((ids, _capsules(eye4, rays, pos[:, None, ids], rot[:, None, ids, :, 2], self._radius,
                                          self._half)))  # fmt: skip
        if len(self._box_ids):
            ids = self._box_ids
            groups.append((ids, _boxes(eye4, rays, pos[:, None, ids], rot[:, None, ids], self.scene.size[ids])))
        return eye, dirs, groups

    def shape_depths(self, body_q: torch.Tensor) -> torch.Tensor:
        """(N, H, W, S): how far along each pixel's ray each of the scene's S shapes is hit (inf where the
        ray misses it), hard edges: what the camera would see of every shape were the others not there."""
        _, dirs, groups = self._ray_hits(body_q)
        depth = dirs.new_full((*dirs.shape[:2], self.scene.num_shapes), float("inf"))
        for ids, hits in groups:
            depth[..., ids] = hits[0]
        return depth.reshape(len(body_q), self.height, self.width, -1)

    def render_with_coverage(self, body_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (N, 3, H, W) and the soft foreground coverage (N, H, W) of all shapes together."""
        n = body_q.shape[0]
        eye, dirs, groups = self._ray_hits(body_q)
        layers = [self._layer(ids, *hits) for ids, hits in groups]  # (depth, coverage, colour), each (N, P, K[, 3])
        depth, alpha, colour = (torch.cat(parts, dim=2) for parts in zip(*layers, strict=True))

        order = depth.argsort(dim=-1)  # front to back (the order itself is not differentiated)
        alpha = alpha.gather(-1, order)
        colour = colour.gather(-2, order[..., None].expand_as(colour))
        transmit = torch.cumprod(torch.cat([torch.ones_like(alpha[..., :1]), 1 - alpha], -1), -1)
        image = (alpha[..., None] * transmit[..., :-1, None] * colour).sum(-2)
        background = self.scene.background(eye, dirs, self.scene.pixel_angle(self.height))
        image = image + transmit[..., -1:] * background
        image = image.reshape(n, self.height, self.width, 3).permute(0, 3, 1, 2).clamp(0, 1)
        return image, (1 - transmit[..., -1]).reshape(n, self.height, self.width)

    def _layer(self, ids, t_hit, t_close, signed, normal):
        hit = torch.isfinite(t_hit)
        depth = torch.where(hit, t_hit, t_close.clamp_min(1e-3))
        footprint = t_close.clamp_min(1e-3) / self.scene.focal_px(self.height)  # smooth across the edge
        alpha = torch.sigmoid(-signed / (self.softness * footprint))
        alpha = torch.where(t_close > 0, alpha, torch.zeros_like(alpha))  # behind the camera
        lambert = AMBIENT + (1 - AMBIENT) * (normal @ self.light.to(normal.dtype)).clamp_min(0)
        return depth, alpha, self.scene.color[ids] * lambert[..., None]
