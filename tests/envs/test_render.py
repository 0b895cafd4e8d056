"""Renderers: geometry against the pinhole model, backends agreeing, differentiable images against
finite differences, frame stacking."""

import math

import pytest
import torch

from envs import DiffEnv
from envs.pixels import PixelEnv
from envs.render import install_hint, make_renderer, renderers
from envs.render.base import Renderer
from envs.render.diff import DiffRenderer
from envs.render.maniskill import INSTALL_HINT
from envs.render.scene import FLOOR, GRID_LINE, GRID_LINE_WIDTH, GRID_SPACING, SKY, SPHERE, WALL, Scene
from envs.tasks import registry as task_registry
from envs.tasks.base import Camera

TASKS = list(task_registry())  # every registered task


PYTORCH3D_MISSING = install_hint("pytorch3d")  # None when PyTorch3D imports here, else its install command
needs_pytorch3d = pytest.mark.skipif(PYTORCH3D_MISSING is not None, reason=str(PYTORCH3D_MISSING))


def _pytorch3d_renderer(*args):
    from envs.render.pytorch3d_mesh import PyTorch3DRenderer

    return PyTorch3DRenderer(*args)


SOFT = {"diff": DiffRenderer, "pytorch3d": _pytorch3d_renderer}  # the differentiable backends


def ball_scene(radius=0.3, dtype=torch.float32) -> Scene:
    """One sphere on body 0 and a fixed camera looking at (0, 0, 1) from (0, -2.8, 1.8)."""
    f = dict(dtype=dtype)
    return Scene(
        body=torch.tensor([0]),
        kind=torch.tensor([SPHERE]),
        local_pos=torch.zeros(1, 3, **f),
        local_rot=torch.eye(3, **f)[None],
        size=torch.tensor([[radius, 0.0, 0.0]], **f),
        color=torch.tensor([[0.9, 0.2, 0.2]], **f),
        camera=Camera(body=None, target=(0.0, 0.0, 1.0)),
    )


def ball_pose(x=0.0, y=0.0, z=1.0, dtype=torch.float32):
    return torch.tensor([[[x, y, z, 0.0, 0.0, 0.0, 1.0]]], dtype=dtype)


def test_background_floor_grid_wall_and_sky():
    """D.Va's backdrop by ray geometry: straight down onto a grid line or a cell, towards the wall behind
    the robot, away from it; the wall only where the task places one."""
    scene = ball_scene()
    walled = Scene(**{**vars(scene), "camera": Camera(body=None, backdrop_y=2.0)})
    eye = torch.tensor([[0.0, 0.5, 1.0], [0.5, 0.5, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    dirs = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0], [0.0, -1.0, 0.0]])[:, None]
    expected = torch.tensor([GRID_LINE, FLOOR, WALL, SKY])
    torch.testing.assert_close(walled.background(eye, dirs, 1e-5)[:, 0], expected)
    torch.testing.assert_close(scene.background(eye, dirs, 1e-5)[2, 0], torch.tensor(SKY))  # no wall


@pytest.mark.parametrize("footprint", [0.001, 0.02, 0.1, 0.3])
def test_grid_lines_are_box_filtered(footprint):
    """Averaged over where a pixel lands, a grid line darkens or lightens the floor by its area share,
    whatever the pixel's footprint: thin lines neither vanish nor flicker at small image sizes."""
    x = (torch.arange(4000) + 0.5) / 4000 * GRID_SPACING  # across one cell, on y = a cell's middle
    eye = torch.stack([x, torch.full_like(x, 0.5), torch.ones_like(x)], -1)
    dirs = torch.tensor([0.0, 0.0, -1.0]).expand(len(x), 1, 3)
    colour = ball_scene().background(eye, dirs, footprint)[:, 0]  # from 1 m up: footprint = pixel angle
    share = GRID_LINE_WIDTH / GRID_SPACING
    expected = torch.tensor(FLOOR) + share * (torch.tensor(GRID_LINE) - torch.tensor(FLOOR))
    torch.testing.assert_close(colour.mean(0), expected, atol=2e-4, rtol=0)
    assert colour[:, 0].max() <= GRID_LINE[0] + 1e-6


def centroid(mask):
    rows, cols = torch.nonzero(mask, as_tuple=True)
    return cols.float().mean() + 0.5, rows.float().mean() + 0.5  # pixel centres, in pixel units


@pytest.mark.parametrize("backend", ["diff", pytest.param("pytorch3d", marks=needs_pytorch3d)])
def test_sphere_silhouette_lands_where_the_pinhole_model_says(backend):
    size, radius = 84, 0.3
    renderer = SOFT[backend](ball_scene(radius), 1, size, size, "cpu")
    f = (size / 2) / math.tan(math.pi / 8)  # focal length in pixels for a vertical fov of pi/4
    distance = math.hypot(2.8, 0.8)
    mask = renderer.foreground(ball_pose())[0]
    cx, cy = centroid(mask)
    assert abs(cx - size / 2) < 0.5 and abs(cy - size / 2) < 0.5  # the target is the image centre
    # a sphere seen from distance d has angular radius asin(r/d): disc of radius f * tan(asin(r / d))
    expected_area = math.pi * (f * math.tan(math.asin(radius / distance))) ** 2
    assert abs(mask.sum().item() - expected_area) / expected_area < 0.05

    # moving the body 0.2 m along +x (camera right) moves the silhouette right by f * 0.2 / depth
    moved = renderer.foreground(ball_pose(x=0.2))[0]
    shift = centroid(moved)[0] - cx
    assert abs(shift - f * 0.2 / distance) < 0.5
    # and up (+z) moves it up in the image (smaller row index)
    assert centroid(renderer.foreground(ball_pose(z=1.2))[0])[1] < cy - 3

    projected = renderer.scene.project(torch.tensor([[[0.2, 0.0, 1.0]]]), ball_pose(), size, size)[0, 0]
    assert abs(projected[0] - centroid(moved)[0]) < 0.5


def _maniskill_available() -> str | None:
    """None when SAPIEN can render here, else the reason to skip."""
    try:
        make_renderer("maniskill", DiffEnv("cartpole", 1, device="cpu").task, 1, 8, 8)
    except (ImportError, RuntimeError) as error:
        return str(error)
    return None


MANISKILL_MISSING = _maniskill_available()


@pytest.mark.parametrize("reference", ["newton", "diff"])
@pytest.mark.parametrize("task", TASKS)
@needs_pytorch3d
def test_pytorch3d_meshes_agree_on_silhouettes(make_env, task, reference):
    """PyTorch3D's hard-rasterised coverage (a pixel counts when its centre lies in a face) against the
    ray-cast backends, with the thresholds of the test below: the meshes are tessellated (12 sides per
    ring, enlarged to the circle's area), posed from the same body transforms, seen by the same camera."""
    env = make_env(task, 4)
    poses = env.body_transforms()
    a = make_renderer("pytorch3d", env.task, 4).foreground(poses)
    b = make_renderer(reference, env.task, 4).foreground(poses)
    iou = (a & b).sum((1, 2)).float() / (a | b).sum((1, 2)).float()
    assert (iou > (0.95 if task in ("cartpole", "ant") else 0.8)).all(), iou


@needs_pytorch3d
def test_finer_pytorch3d_meshes_have_the_counted_vertices_and_the_same_silhouettes(make_env):
    """Fig. 10's vertices per mesh: at mesh detail k every sphere and capsule has 2 + 2 x 3k x 12k
    vertices (the ant: a sphere and eight capsules, no box), and the silhouettes stay the ray caster's."""
    from envs.render.pytorch3d_mesh import vertices_per_mesh

    env = make_env("ant", 2)
    poses = env.body_transforms()
    shapes = make_renderer("diff", env.task, 2).scene.num_shapes
    reference = make_renderer("diff", env.task, 2).foreground(poses)
    for detail in (1, 3):
        mesh = make_renderer("pytorch3d", env.task, 2, mesh_detail=detail)
        assert mesh.num_vertices == shapes * vertices_per_mesh(detail) == shapes * (2 + 72 * detail**2)
        seen = mesh.foreground(poses)
        assert ((seen & reference).sum() / (seen | reference).sum()) > 0.95
    with pytest.raises(ValueError, match="mesh_detail=0: give 1 to 8"):
        make_renderer("pytorch3d", env.task, 2, mesh_detail=0)


@pytest.mark.parametrize("detached", ["newton", "maniskill"])
@pytest.mark.parametrize("task", TASKS)
def test_backends_agree_on_silhouettes(make_env, task, detached):
    """Foreground masks of a detached backend (``newton``, ``maniskill``) and ``diff`` on the same poses.
    They draw the same shapes through the same camera and differ only on boundary pixels (a pixel counts
    when its centre ray hits, or its rasterised coverage, for the detached ones; when soft coverage
    exceeds one half for ``diff``). Limbs are 2-4 px wide at 84 x 84 (humanoid), so
    a disagreement of one boundary pixel per row costs ~10% there: IoU above 0.8 per env, and above 0.95
    for the chunkier cartpole and ant, would fail for any shift or scale error of a pixel or more."""
    if detached == "maniskill" and MANISKILL_MISSING:
        pytest.skip(MANISKILL_MISSING)
    env = make_env(task, 4)
    poses = env.body_transforms()
    a = make_renderer(detached, env.task, 4).foreground(poses)
    b = make_renderer("diff", env.task, 4).foreground(poses)
    iou = (a & b).sum((1, 2)).float() / (a | b).sum((1, 2)).float()
    assert (iou > (0.95 if task in ("cartpole", "ant") else 0.8)).all(), iou


@pytest.mark.parametrize("task", TASKS)
def test_newton_images_composite_exactly_as_the_torch_background(make_env, task):
    """The Newton renderer puts its robot pixels over the background in one Warp kernel; the torch
    maths of ``Scene.background`` (which the differentiable renderers use) is the reference. Poses are
    moved metres away and up and down, so the floor's grid, the wall and the sky all fall in view: the
    images must agree to the byte (the kernel rounds ties to even, as torch does)."""
    env = make_env(task, 4)
    renderer = make_renderer("newton", env.task, 4, width=40, height=32)
    poses = env.body_transforms().clone()
    poses[..., :3] += torch.tensor([[0.0, 0.0, 0.0], [3.3, 0.7, 0.4], [-5.1, -0.6, -0.2], [0.45, 0.45, 1.5]])[:, None]
    rgba, _, _ = renderer._rgba(poses)
    reference = Renderer._over_background(renderer, poses, rgba[..., :3] / 255.0, rgba[..., 3] > 0)
    images = renderer.render(poses)
    assert images.shape == (4, 3, 32, 40) and images.dtype == torch.uint8
    background = ~(rgba[..., 3] > 0)
    assert background.float().mean() > 0.3  # most of each image is floor, wall or sky
    assert torch.equal(images, reference)


@pytest.mark.parametrize("backend", ["newton", "diff"])
def test_tracking_camera_keeps_the_torso_centred(make_env, backend):
    env = make_env("ant", 2)
    renderer = make_renderer(backend, env.task, 2)
    poses = env.body_transforms()
    walked = poses.clone()
    walked[..., 0] += 3.0  # the ant walked 3 m along x
    walked[..., 1] -= 1.0
    here, there = renderer.foreground(poses), renderer.foreground(walked)
    assert (here == there).float().mean() > 0.995
    assert here[:, 42, 42].all()  # the torso is at the image centre


@needs_pytorch3d
def test_pytorch3d_image_gradients_match_finite_differences():
    """The same two losses through PyTorch3D's soft rasteriser (float32), against central differences:
    interior pixels with 1e-3 m steps (0.013 px at 32 x 32) within 5%; the soft silhouette area with
    1e-2 m within 10% (faces entering the blur radius and rim faces turning away, culled, make the
    coverage piecewise smooth)."""
    from envs.render.pytorch3d_mesh import PyTorch3DRenderer

    renderer = PyTorch3DRenderer(ball_scene(), 1, 32, 32, "cpu")
    pose = ball_pose(0.05, 0.1, 1.02).requires_grad_(True)
    image, coverage = renderer.render_with_coverage(pose)
    # covered pixels 2 px or more inside the silhouette: the rim's own pixels are opaque too, and leave
    interior = -torch.nn.functional.max_pool2d(-(coverage > 0.999).float()[None], 5, 1, 2)[0, 0] > 0.5
    weights = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0))
    losses = {
        "interior pixels": (lambda img, cov: (img[0] * weights * interior).sum(), 1e-3, 0.02),
        "silhouette area": (lambda img, cov: cov.sum(), 1e-2, 0.1),
    }
    for name, (loss_fn, step, tolerance) in losses.items():
        (grad,) = torch.autograd.grad(loss_fn(image, coverage), pose, retain_graph=True)
        for axis in range(3):
            bumped = [pose.detach().clone() for _ in range(2)]
            bumped[0][0, 0, axis] += step
            bumped[1][0, 0, axis] -= step
            values = [loss_fn(*renderer.render_with_coverage(p)).item() for p in bumped]
            numeric = (values[0] - values[1]) / (2 * step)
            assert abs(grad[0, 0, axis].item() - numeric) <= tolerance * max(1.0, abs(numeric)), (name, axis, numeric)
        assert grad[0, 0, :3].abs().sum() > 0


def test_image_gradients_match_finite_differences_in_float64():
    """d(pixels)/d(body position), float64, on interior pixels (shading changes as the surface moves)
    and on the soft silhouette area."""
    renderer = DiffRenderer(ball_scene(dtype=torch.float64), 1, 32, 32, "cpu")
    pose = ball_pose(0.05, 0.1, 1.02, dtype=torch.float64).requires_grad_(True)
    image, coverage = renderer.render_with_coverage(pose)
    interior = coverage[0] > 0.999
    weights = torch.rand(3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    losses = {
        "interior pixels": lambda img, cov: (img[0] * weights * interior).sum(),
        "silhouette area": lambda img, cov: cov.sum(),
    }
    for name, loss_fn in losses.items():
        (grad,) = torch.autograd.grad(loss_fn(image, coverage), pose, retain_graph=True)
        for axis in range(3):
            bumped = [pose.detach().clone() for _ in range(2)]
            bumped[0][0, 0, axis] += 1e-6
            bumped[1][0, 0, axis] -= 1e-6
            values = [loss_fn(*renderer.render_with_coverage(p)).item() for p in bumped]
            numeric = (values[0] - values[1]) / 2e-6
            assert abs(grad[0, 0, axis].item() - numeric) <= 1e-4 * max(1.0, abs(numeric)), (name, axis)
        assert grad[0, 0, :3].abs().sum() > 0


@pytest.mark.parametrize("backend", ["diff", pytest.param("pytorch3d", marks=needs_pytorch3d)])
def test_gradient_reaches_actions_through_render(make_env, backend):
    env = PixelEnv(DiffEnv("hopper", 2, device="cpu"), backend, size=24)
    env.reset(seed=0)
    actions = torch.zeros(2, 3, requires_grad=True)
    obs, *_ = env.step(actions)
    obs.float().mean().backward()
    assert torch.isfinite(actions.grad).all() and actions.grad.abs().sum() > 0
    env.cut_graph()


@pytest.mark.parametrize("task", TASKS)
def test_image_gradients_are_finite_at_the_task_cameras(make_env, task):
    """Rays that graze or miss a shape must not turn into NaN through the square roots (0 * inf)."""
    env = make_env(task, 4)
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        env.step(torch.rand(4, env.act_dim, generator=generator) * 2 - 1)
    poses = env.body_transforms().detach().clone().requires_grad_()
    image = DiffRenderer(Scene.from_task(env.task), 4, 48, 48, "cpu").render(poses)
    (image * torch.randn(image.shape, generator=generator)).sum().backward()
    assert torch.isfinite(poses.grad).all() and poses.grad.abs().sum() > 0


@pytest.mark.parametrize("backend", ["newton", "diff"])
def test_frame_stack(backend):
    env = PixelEnv(DiffEnv("cartpole", 3, device="cpu"), backend, size=32)
    obs = env.reset(seed=0)
    assert obs.shape == (3, 9, 32, 32)
    assert torch.equal(obs[:, 0:3], obs[:, 3:6]) and torch.equal(obs[:, 3:6], obs[:, 6:9])  # first frame x3
    push = torch.tensor([[1.0], [0.0], [0.0]])
    with torch.no_grad():
        previous = obs
        for _ in range(100):
            obs, _, terminated, truncated, info = env.step(push)
            done = terminated | truncated
            if done[0]:
                break
            assert torch.equal(obs[:, 0:6], previous[:, 3:9])  # frames shift by one
            previous = obs
    assert done[0] and not done[1:].any()
    assert torch.equal(obs[0, 0:3], obs[0, 6:9]) and torch.equal(obs[0, 3:6], obs[0, 6:9])  # no leak
    assert torch.equal(info["obs_before_reset"][0, 0:6], previous[0, 3:9])  # last stack of the episode
    assert not torch.equal(info["obs_before_reset"][0, 6:9], obs[0, 6:9])
    assert torch.equal(obs[1:, 0:6], previous[1:, 3:9])


def test_unknown_renderer_lists_the_backends():
    with pytest.raises(KeyError, match=f"unknown renderer 'vulkan'; choose one of: {', '.join(renderers())}"):
        make_renderer("vulkan", DiffEnv("cartpole", 1, device="cpu").task, 1)


def without_package(monkeypatch, package: str) -> None:
    """Imports of ``package`` (and its submodules) fail from here on, as where it is not installed."""
    import builtins

    real_import = builtins.__import__

    def refused(name, *args, **kwargs):
        if name == package or name.startswith(f"{package}."):
            raise ImportError(f"No module named '{package}'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", refused)


def test_missing_optional_backend_names_the_install_command(monkeypatch):
    without_package(monkeypatch, "sapien")
    with pytest.raises(ImportError) as error:
        make_renderer("maniskill", DiffEnv("cartpole", 1, device="cpu").task, 1)
    assert str(error.value) == INSTALL_HINT and "pip install '.[maniskill]'" in INSTALL_HINT
    assert "\n" not in str(error.value)


def test_missing_pytorch3d_names_the_install_command(monkeypatch):
    without_package(monkeypatch, "pytorch3d")
    with pytest.raises(ImportError) as error:
        make_renderer("pytorch3d", DiffEnv("cartpole", 1, device="cpu").task, 1)
    assert "make pytorch3d" in str(error.value) and "\n" not in str(error.value)
