"""Fig. 8, measured (``benchmark/diagnostics/postures.py``): the share of the image the robot covers and
of its own area it hides, against hand counts and the geometry of two spheres in line with the camera."""

import math
from dataclasses import replace

import numpy as np
import pytest
import torch

from benchmark.config import load_config
from benchmark.diagnostics import postures
from benchmark.run import run
from envs.render.diff import DiffRenderer
from envs.render.scene import SPHERE, Scene
from envs.tasks import registry

INF = math.inf


def test_the_measures_count_pixels_as_by_hand():
    """Four pixels, two shapes: shape 0 covers pixels a, b (near), shape 1 b, c, d (far). Robot pixels
    a-d: coverage 1; areas alone 2 + 3, so 1 of 5 is hidden; shape 1 is nearest in 2 of its 3: not
    mostly hidden. Then shape 1 moves behind shape 0 entirely (a, b): hidden 2 of 4, shape 1 fully hidden."""
    depths = torch.tensor([[[[1.0, INF], [1.0, 2.0]], [[INF, 2.0], [INF, 2.0]]]])  # (1, 2, 2, 2): N, H, W, S
    measured = postures.occlusion(depths)
    assert measured["coverage"].item() == 1.0 and measured["hidden"].item() == pytest.approx(0.2)
    assert measured["parts hidden"].item() == 0.0
    behind = torch.tensor([[[[1.0, 2.0], [1.0, 2.0]], [[INF, INF], [INF, INF]]]])
    measured = postures.occlusion(behind)
    assert measured["coverage"].item() == 0.5 and measured["hidden"].item() == pytest.approx(0.5)
    assert measured["parts hidden"].item() == 0.5
    assert postures.occlusion(torch.full((1, 2, 2, 2), INF))["hidden"].item() == 0.0  # nothing in view


def two_spheres(near: float, far: float, offset: float, size: int = 128):
    """The cartpole's fixed camera looking at two spheres straight ahead of radius 0.3 at distances ``near``
    and ``far``, the far one shifted ``offset`` to the camera's right."""
    scene = Scene.from_task(registry()["cartpole"]())
    body_q = torch.zeros(1, 2, 7)
    body_q[..., 6] = 1.0  # identity rotations: shapes sit at their local positions
    eye, rotation = scene.camera_pose(body_q)
    right, forward = rotation[0, :, 0], -rotation[0, :, 2]
    centres = torch.stack([eye[0] + near * forward, eye[0] + far * forward + offset * right])
    spheres = replace(scene, body=torch.zeros(2, dtype=torch.long), kind=torch.full((2,), SPHERE),
                      local_pos=centres, local_rot=torch.eye(3).expand(2, 3, 3),
                      size=torch.tensor([[0.3, 0.0, 0.0]] * 2), color=torch.ones(2, 3))  # fmt: skip
    return DiffRenderer(spheres, 1, size, size, "cpu").shape_depths(body_q)


def test_a_sphere_behind_another_is_hidden_by_the_ratio_of_their_apparent_areas():
    """Apparent area goes as 1 / distance^2: the far sphere (twice as far) is a quarter of the near one's,
    all of it behind the near one, so 1/5 of the robot's area is hidden and one of two parts is."""
    depths = two_spheres(near=3.0, far=6.0, offset=0.0)
    areas = torch.isfinite(depths).flatten(1, 2).sum(1)[0].float()
    assert areas[1] / areas[0] == pytest.approx(0.25, rel=0.1)
    measured = postures.occlusion(depths)
    assert measured["hidden"].item() == pytest.approx(0.2, rel=0.1) and measured["parts hidden"].item() == 0.5
    beside = postures.occlusion(two_spheres(near=3.0, far=6.0, offset=1.5))  # out from behind: nothing hidden
    assert beside["hidden"].item() == 0.0 and beside["parts hidden"].item() == 0.0
    assert beside["coverage"].item() == pytest.approx(measured["coverage"].item() * 1.25, rel=0.1)


def test_the_hard_hits_agree_with_the_rendered_silhouette_of_the_ant():
    task = registry()["ant"]()
    renderer = DiffRenderer(Scene.from_task(task), 1, 64, 64, "cpu")
    from envs import DiffEnv

    env = DiffEnv("ant", 1, device="cpu", differentiable=False)
    env.reset(seed=0)
    _, _, _, _, info = env.step(torch.zeros(1, env.act_dim))
    body_q = info["body_q_before_reset"]
    union = torch.isfinite(renderer.shape_depths(body_q)).any(-1)
    assert union.sum() > 100 and (union == renderer.foreground(body_q)).float().mean() > 0.98


def test_a_final_policy_is_filmed_and_measured_over_its_episode(tmp_path):
    out = run(load_config("shac", "cartpole", ["num_envs=4", "horizon=8", "device=cpu", "eval_envs=2",
                                               "eval_max_steps=10", "iterations=3", f"results_dir={tmp_path}"]),
              progress=False)  # fmt: skip
    rows, frames = postures.film(out, num_envs=2, every=5, strip=3, max_steps=10)  # both envs stay on the rail
    assert sorted(rows["step"].unique()) == [1, 6, 10] and set(rows["env"]) == {0, 1}
    assert len(frames) == 3 and frames[0].shape == (128, 128, 3) and frames[0].dtype == np.uint8
    assert ((rows[list(postures.MEASURES)] >= 0) & (rows[list(postures.MEASURES)] <= 1)).all().all()
    assert (rows["coverage"] > 0).all()  # the cartpole is in its camera's view
