"""The tasks mean what the paper's mean: torso poses by forward kinematics, masses by hand, the contact
values that run, dflex's contact law, the paper's cartpole (docs/envs.md, the tasks)."""

import math

import newton
import numpy as np
import pytest
import torch
import warp as wp

from envs import DiffEnv, get_task
from envs.contact import dflex_body_contact, newton_body_contact

DENSITY = 1000.0


def capsule_mass(radius: float, half_height: float) -> float:
    """Cylinder of length 2 h plus two hemispheres."""
    return DENSITY * (math.pi * radius**2 * 2 * half_height + 4 / 3 * math.pi * radius**3)


def capsule_inertia_about_its_middle(radius: float, half_height: float) -> tuple[float, float]:
    """(about the axis, about a perpendicular axis through the centre) of a solid capsule."""
    length = 2 * half_height
    cylinder = DENSITY * math.pi * radius**2 * length
    caps = DENSITY * 4 / 3 * math.pi * radius**3
    axial = cylinder * radius**2 / 2 + caps * 2 * radius**2 / 5
    perpendicular = cylinder * (length**2 / 12 + radius**2 / 4) + caps * (
        2 * radius**2 / 5 + length**2 / 4 + 3 * length * radius / 8
    )
    return axial, perpendicular


@pytest.fixture(scope="module")
def envs():
    """The paper's four tasks, each checked against its own published physics below."""
    return {task: DiffEnv(task, 2, device="cpu", seed=0) for task in ("cartpole", "hopper", "ant", "humanoid")}


# -- roots at the torso ------------------------------------------------------------------------------
@pytest.mark.parametrize("pitch", [0.0, 0.5, 1.0, math.pi / 2, -2.0])
def test_hopper_pitch_turns_the_torso_in_place(envs, pitch):
    """The planar root pivots at the torso: pitching alone leaves it at x = 0 and its start height
    (Newton's importer had put the pivot on the floor, swinging the torso on a 1.25 m circle)."""
    env = envs["hopper"]
    q = torch.tensor([[0.0, 0.0, pitch, 0.0, 0.0, 0.0]])
    torso = env.sim.forward_kinematics(q, torch.zeros(1, 6))[0, 0]
    assert torch.allclose(torso[:3], torch.tensor([0.0, 0.0, 1.25]), atol=1e-5)
    assert math.isclose(2 * math.atan2(float(torso[4]), float(torso[6])), pitch, abs_tol=1e-5)


def test_hopper_height_and_velocity_are_the_torsos_and_a_lying_hopper_terminates(envs):
    env = envs["hopper"]
    lying = torch.tensor([[0.7, -1.2, math.pi / 2, 0.0, 0.0, 0.0]])  # torso on the floor, pitched flat
    qd = torch.tensor([[2.0, -1.0, 0.0, 0.0, 0.0, 0.0]])
    torso = env.sim.forward_kinematics(lying, qd)[0, 0]
    assert torch.allclose(torso[:3], torch.tensor([0.7, 0.0, 0.05]), atol=1e-5)
    assert env.task.terminated(lying, qd).item()
    # the torso's linear velocity after one step starts from qd[0], qd[1]: step with no gravity effect
    out = env.sim.step_without_grad(lying.expand(2, -1), qd.expand(2, -1), torch.zeros(2, 6))
    assert out.body_q[0, 0, 0] > 0.7 + 0.5 * 2.0 / 60  # moved forward at about 2 m/s


@pytest.mark.parametrize("task", ["ant", "humanoid"])
def test_free_base_torso_height_is_q2(envs, task):
    env = envs[task]
    env.reset(seed=4)
    torso = env.body_transforms()[:, 0]
    assert torch.allclose(torso[:, :3], env.joint_q[:, :3], atol=1e-5)
    assert torch.equal(env.task.terminated(env.joint_q, env.joint_qd), env.joint_q[:, 2] < env.task.termination_height)


# -- masses, joints, actuators -----------------------------------------------------------------------
def test_masses_and_inertia_match_a_hand_computation_at_density_1000(envs):
    hopper, ant, humanoid = (envs[t].sim.model for t in ("hopper", "ant", "humanoid"))
    # hopper torso: capsule r 0.05, half length 0.2, along the body's z axis, centred on the body
    axial, perpendicular = capsule_inertia_about_its_middle(0.05, 0.2)
    assert math.isclose(hopper.body_mass.numpy()[0], capsule_mass(0.05, 0.2), rel_tol=1e-4)
    inertia = hopper.body_inertia.numpy()[0]
    assert np.allclose(np.diag(inertia), [perpendicular, perpendicular, axial], rtol=1e-3)
    # ant torso: a sphere of radius 0.25 (gymnasium's file says density 5: a 0.33 kg torso)
    assert math.isclose(ant.body_mass.numpy()[0], DENSITY * 4 / 3 * math.pi * 0.25**3, rel_tol=1e-4)
    # humanoid right shin: capsule r 0.049 from (0, 0, 0) to (0, 0, -0.3)
    assert math.isclose(humanoid.body_mass.numpy()[5], capsule_mass(0.049, 0.15), rel_tol=1e-4)


def test_joint_models_are_dflexs(envs):
    hopper, ant, humanoid = (envs[t].sim.model for t in ("hopper", "ant", "humanoid"))
    assert np.allclose(hopper.joint_armature.numpy(), 1.0)
    assert np.allclose(hopper.joint_damping.numpy()[:12], [10, 10, 10, 12, 12, 12] * 2)  # limit_kd 10 always on
    assert np.allclose(hopper.joint_limit_kd.numpy(), 0.0) and np.allclose(hopper.joint_limit_ke.numpy()[3:6], 1e3)
    assert np.allclose(np.degrees(hopper.joint_limit_lower.numpy()[3:6]), [-150, -150, -45], atol=1e-3)
    assert np.allclose(ant.joint_damping.numpy()[6:14], 11.0) and np.allclose(ant.joint_armature.numpy()[:14], 0.05)
    assert np.allclose(np.degrees(ant.joint_limit_upper.numpy()[6:14]), [40, 100, 40, -30, 40, -30, 40, 100], atol=1e-3)
    knee, ankle, hip_y = 12, 13, 11
    assert np.allclose(humanoid.joint_damping.numpy()[[knee, ankle, hip_y]], [10.1, 11.0, 15.0])
    assert np.allclose(humanoid.joint_stiffness.numpy()[[knee, ankle, hip_y]], [5.0, 2.0, 20.0])
    assert np.allclose(np.degrees(humanoid.joint_limit_lower.numpy()[hip_y]), -80, atol=1e-3)


def test_actuators_apply_the_papers_torques(envs):
    assert envs["hopper"]._torque_per_action.tolist() == [200.0] * 3
    assert envs["ant"]._torque_per_action.tolist() == [200.0] * 8
    shac_strengths = [200, 200, 200] + [200, 200, 600, 400, 100, 100] * 2 + [100, 100, 200] * 2  # dof order
    assert torch.allclose(envs["humanoid"]._torque_per_action, 0.35 * torch.tensor(shac_strengths, dtype=torch.float))
    assert envs["humanoid"]._actuated_dofs.tolist() == list(range(6, 27))


@pytest.mark.parametrize("task", ["hopper", "ant", "humanoid"])
def test_declared_contact_material_is_what_runs(envs, task):
    """Every shape, the ground included, carries the task's values (MJCF solref / friction overridden)."""
    model, contact = envs[task].sim.model, get_task(task).contact
    colliding = model.shape_flags.numpy() != 0
    for name, value in (("ke", contact.ke), ("kd", contact.kd), ("kf", contact.kf), ("mu", contact.mu)):
        values = getattr(model, f"shape_material_{name}").numpy()[colliding]
        assert np.allclose(values, value), (name, np.unique(values))


def test_start_poses_are_the_papers(envs):
    assert envs["ant"]._start_q[0, 2].item() == pytest.approx(0.75)
    assert envs["ant"]._start_q[0, 7:].tolist() == [0.0, 1.0, 0.0, -1.0, 0.0, -1.0, 0.0, 1.0]
    assert envs["humanoid"]._start_q[0, 2].item() == pytest.approx(1.35)
    assert torch.count_nonzero(envs["humanoid"]._start_q[0, 7:]) == 0


def test_free_base_reset_noise_rotates_by_at_most_pi_over_24(envs):
    env = envs["ant"]
    q, _ = env.task.perturb(
        env._start_q[:1].expand(512, -1), env._start_qd[:1].expand(512, -1), torch.Generator().manual_seed(0)
    )
    angle = 2 * torch.acos(q[:, 6].abs().clamp(max=1.0))  # start rotation is the identity
    assert angle.max() <= math.pi / 24 + 1e-5 and angle.max() > 0.8 * math.pi / 24
    assert torch.allclose(q[:, 3:7].norm(dim=-1), torch.ones(512), atol=1e-5)
    assert (q[:, :3] - env._start_q[0, :3]).abs().max() <= 0.1 + 1e-6
    assert (q[:, 7:] - env._start_q[0, 7:]).abs().max() <= 0.2 + 1e-6


# -- the paper's cartpole ---------------------------------------------------------------------------
def test_cartpole_has_the_papers_masses_and_springs(envs):
    model = envs["cartpole"].sim.model
    assert model.body_mass.numpy()[:2].tolist() == [1.0, 10.0]
    assert np.allclose(model.joint_stiffness.numpy()[:2], 100.0) and np.allclose(model.joint_damping.numpy()[:2], 11.0)
    # the spring pulls the pole up: from rest at 90 degrees with no action, the pole's angular
    # acceleration is (-100 * pi/2 + gravity 10 * 9.81 * 0.5) / inertia, less what the cart takes
    env = envs["cartpole"]
    q = torch.tensor([[0.0, math.pi / 2]] * 2)
    out = env.sim.step_without_grad(q, torch.zeros(2, 2), torch.zeros(2, 2))
    assert out.joint_qd[0, 1] < -0.5  # swinging back toward upright (q = 0), against gravity


# -- dflex's contact law ---------------------------------------------------------------------------
def _sphere_contact_force(kernel, depth: float, approach_speed: float, ke=2e4, kd=1e3) -> float:
    """Normal force on a sphere (r 0.1) pressed ``depth`` into the ground at ``approach_speed`` (m/s)."""
    builder = newton.ModelBuilder()
    builder.default_shape_cfg.ke, builder.default_shape_cfg.kd, builder.default_shape_cfg.kf = ke, kd, 0.0
    body = builder.add_body(xform=wp.transform((0.0, 0.0, 0.1 - depth), wp.quat_identity()))
    builder.add_shape_sphere(body, radius=0.1)
    builder.add_ground_plane()
    model = builder.finalize(device="cpu")
    state = model.state()
    state.body_qd.assign(np.array([[0.0, 0.0, -approach_speed, 0.0, 0.0, 0.0]], np.float32))
    pipeline = newton.CollisionPipeline(model)
    contacts = pipeline.contacts()
    pipeline.collide(state, contacts)
    body_f = wp.zeros(1, dtype=wp.spatial_vector, device="cpu")
    wp.launch(
        kernel,
        dim=contacts.rigid_contact_max,
        inputs=[state.body_q, state.body_qd, model.body_com, model.shape_material_ke, model.shape_material_kd,
                model.shape_material_kf, model.shape_material_ka, model.shape_material_mu, model.shape_body,
                contacts.rigid_contact_count, contacts.rigid_contact_point0, contacts.rigid_contact_point1,
                contacts.rigid_contact_surface_velocity, contacts.rigid_contact_normal, contacts.rigid_contact_shape0,
                contacts.rigid_contact_shape1, contacts.rigid_contact_margin0, contacts.rigid_contact_margin1,
                contacts.rigid_contact_stiffness, contacts.rigid_contact_damping,
                contacts.rigid_contact_friction, False],
        outputs=[body_f],
        device="cpu",
    )  # fmt: skip
    return float(body_f.numpy()[0][2])  # upward force on the sphere


@pytest.mark.parametrize("speed", [0.0, 1.0, 5.0])
def test_dflex_contact_force_vanishes_with_depth_at_any_approach_speed(speed):
    deep = _sphere_contact_force(dflex_body_contact, 1e-2, speed)
    assert deep == pytest.approx(2e4 * 1e-2 + 1e3 * 1e-2 * speed, rel=1e-3)  # ke c + kd c vn
    shallow = [_sphere_contact_force(dflex_body_contact, depth, speed) for depth in (1e-3, 1e-4)]
    for depth, force in zip((1e-3, 1e-4), shallow, strict=True):  # proportional to depth: 0 at first touch
        assert force == pytest.approx((2e4 + 1e3 * speed) * depth, rel=2e-2)
    assert _sphere_contact_force(dflex_body_contact, -1e-3, speed) == 0.0  # above the ground: nothing


def test_newtons_contact_law_jumps_at_first_touch():
    """The reason for the other law: Newton's damping is kd x vn at any depth, so a point touching at
    5 m/s feels kd x 5 = 5000 N the instant it touches."""
    assert _sphere_contact_force(newton_body_contact, 1e-4, 5.0) == pytest.approx(2e4 * 1e-4 + 1e3 * 5.0, rel=1e-2)


def test_free_base_velocity_is_the_torso_origins_as_in_dflex(envs):
    """Newton's free-joint velocity is the centre of mass's; the humanoid's torso origin sits 4.7 cm
    above it. Spinning about y in the air, the origin moves along x while the centre of mass does not:
    the observed (and rewarded) forward velocity is the origin's, read off forward kinematics."""
    env = envs["humanoid"]
    q = env._start_q[:1].clone()
    q[0, 2] = 3.0
    qd = torch.zeros(1, 27)
    qd[0, 4] = 2.0  # rad/s about y
    before = env.sim.forward_kinematics(q, qd)[0, 0, :3]
    with torch.no_grad():
        out = env.sim.step_without_grad(q, qd, torch.zeros(1, 27))
    moved = (out.body_q[0, 0, 0] - before[0]) / env.dt
    observed = env.task.observe(q, qd, torch.zeros(1, 21))[0, 5]
    assert abs(out.joint_qd[0, 0]) < 0.01 and observed == pytest.approx(2.0 * 0.046369, rel=1e-3)
    assert float(moved) == pytest.approx(float(observed), rel=0.05)
