"""Tape gradients through the Newton bridge against central finite differences (float32 physics).

Tolerances: finite differences of a float32 simulation carry noise of roughly 1e-6 x |loss| / eps, and
contact-onset, friction-cone and joint-limit kinks make a few coordinates disagree whenever a
perturbation crosses one (the perturbed runs replay the differentiated run's contact sets, so contact
detection itself is not in the comparison). So:
contact-free windows are checked on the whole gradient vector, tightly; contact windows coordinate by
coordinate: the median within 3%, four in five within 10% (measured with dflex's contact law: 88% or
more, the worst coordinate 22%), and none off by half or more, which a flipped sign (error 2) fails. A
wrong adjoint (stock Featherstone gives 37% median error, flipped signs) fails all three.
"""

import pytest
import torch

from benchmark.diagnostics.gradient_check import CASES
from envs.physics import _CapturedStep, _EagerStep


def _case(task: str, contact: bool):
    return next(c for c in CASES if c.task == task and c.contact == contact)


def test_cartpole_window_gradients_are_tight(make_env):
    for result in _case("cartpole", False).run(make_env("cartpole", 2), coords=12):
        assert result.rel_error < 2e-3, (result.wrt, result.analytic, result.numeric)


def test_contact_free_multistep_ant_catches_stock_featherstone_bugs(make_env):
    """16 steps of an ant falling through the air. Checked by hand: without the per-rebuild mass-matrix
    buffers (envs/featherstone.py) the error is 5e-2 to 2 here; with them ~1e-3. The
    ``eval_rigid_tau`` fix needs external forces to show, so the contact tests below guard it (without
    it the hopper's median error on initial velocities is 0.21)."""
    for result in _case("ant", False).run(make_env("ant", 2), coords=16):
        assert result.rel_error < 1e-2, (result.wrt, result.analytic, result.numeric)


def test_contact_free_multistep_humanoid(make_env):
    """16 steps x 48 substeps in the air, through FREE, D6 and revolute joints."""
    for result in _case("humanoid", False).run(make_env("humanoid", 2), coords=12):
        assert result.rel_error < 1e-2, (result.wrt, result.analytic, result.numeric)


@pytest.mark.parametrize("task", ["hopper", "ant", "humanoid"])
def test_contact_window_gradients(make_env, task):
    for result in _case(task, True).run(make_env(task, 2), coords=16):
        detail = (result.wrt, result.analytic, result.numeric)
        assert result.median_elementwise < 0.03, detail
        assert result.share_within(0.1) >= 0.8, detail
        assert result.share_within(0.5) == 1.0, detail


@pytest.mark.parametrize("bridge", [_CapturedStep, _EagerStep], ids=["captured", "eager"])
def test_bridge_gradcheck_single_step(make_env, bridge):
    """torch.autograd.gradcheck on the raw bridge (q, qd, joint_f) -> (q', qd', body poses), cartpole;
    both ways of stepping (gradcheck replays one node's backward many times)."""
    env = make_env("cartpole", 1)
    q = torch.tensor([[0.3, 2.0]])
    qd = torch.tensor([[0.1, -0.5]])
    f = torch.tensor([[5.0, 0.0]])

    def step(q, qd, f):
        return bridge.apply(env.sim, q, qd, f)

    inputs = tuple(t.clone().requires_grad_(True) for t in (q, qd, f))
    assert torch.autograd.gradcheck(step, inputs, eps=1e-3, atol=2e-3, rtol=1e-2, fast_mode=False)


def test_gradient_reaches_previous_state_over_a_window(make_env):
    """reward.sum() over a 6-step hopper window, differentiated through env.step, against central finite
    differences: with respect to the first action and to the initial joint coordinates."""
    env = make_env("hopper", 2)
    q_start, snapshot = env.joint_q.clone(), env.snapshot()
    actions = 0.3 * torch.randn(6, 2, env.act_dim, generator=torch.Generator().manual_seed(0))

    def window(q0: torch.Tensor, first: torch.Tensor) -> torch.Tensor:
        env.restore(snapshot)
        env.joint_q = q0
        total = env.step(first)[1].sum()
        for a in actions[1:]:
            total = total + env.step(a)[1].sum()
        return total

    q0 = q_start.clone().requires_grad_(True)
    first = actions[0].clone().requires_grad_(True)
    window(q0, first).backward()
    env.cut_graph()
    assert not env.joint_q.requires_grad and not env.joint_qd.requires_grad

    eps = 1e-3
    with torch.no_grad():
        for grad, point, index in [(first.grad, first, (0, k)) for k in range(3)] + [
            (q0.grad, q0, (0, k))
            for k in (1, 2, 4)  # torso height and pitch, a leg joint
        ]:
            plus, minus = point.detach().clone(), point.detach().clone()
            plus[index] += eps
            minus[index] -= eps
            if point is q0:
                numeric = (window(plus, first.detach()) - window(minus, first.detach())) / (2 * eps)
            else:
                numeric = (window(q0.detach(), plus) - window(q0.detach(), minus)) / (2 * eps)
            assert torch.isclose(grad[index], numeric, rtol=0.02, atol=0.01), (index, grad[index], numeric)
