"""Newton simulation of N worlds, bridged to torch autograd.

The torch-facing state is generalised coordinates: ``joint_q`` (N, nq), ``joint_qd`` (N, nqd), and the
applied generalised forces ``joint_f`` (N, nqd). One call of :meth:`Simulation.step` advances one
control step (``substeps`` physics steps). When torch needs gradients, the substeps are recorded on a
Warp tape owned by a ``torch.autograd.Function`` node, so ``loss.backward()`` replays them in reverse:
gradients reach the actions and the previous state, step after step, over a whole SHAC window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import newton
import torch
import warp as wp

from envs.featherstone_fix import GradSafeFeatherstone

wp.config.log_level = logging.WARNING  # kernel-cache messages are noise in progress bars


def warp_device(device: torch.device) -> str:
    return "cpu" if device.type == "cpu" else f"cuda:{device.index or 0}"


@dataclass
class StepOutput:
    joint_q: torch.Tensor  # (N, nq)
    joint_qd: torch.Tensor  # (N, nqd)
    body_q: torch.Tensor  # (N, bodies, 7): position, quaternion (x, y, z, w), world frame


class Simulation:
    """One Newton model holding ``num_envs`` copies of a robot, stepped with our gradient-safe solver."""

    def __init__(
        self,
        model: newton.Model,
        num_envs: int,
        substeps: int,
        dt: float,
        device: torch.device,
        *,
        with_contacts: bool,
        angular_damping: float = 0.0,
        contact_law: str = "dflex",
    ) -> None:
        self.model = model
        self.num_envs = num_envs
        self.substeps = substeps
        self.sub_dt = dt / substeps
        self.device = device
        self.nq = model.joint_coord_count // num_envs
        self.nqd = model.joint_dof_count // num_envs
        self.num_bodies = model.body_count // num_envs
        self.solver = GradSafeFeatherstone(
            model, contact_law=contact_law, angular_damping=angular_damping, update_mass_matrix_interval=substeps
        )
        self._pipeline = newton.CollisionPipeline(model) if with_contacts else None
        # no-gradient path: two states ping-pong, one contact buffer, no tape
        self._ping, self._pong = model.state(), model.state()
        self._contacts = self._pipeline.contacts() if self._pipeline else None
        self._control = model.control()
        self._recording: list | None = None
        self._replay: Iterator | None = None

    # ------------------------------------------------------------------ forward paths
    def _load(self, state: newton.State, joint_q: torch.Tensor, joint_qd: torch.Tensor) -> None:
        state.joint_q.assign(wp.from_torch(joint_q.detach().reshape(-1).contiguous()))
        state.joint_qd.assign(wp.from_torch(joint_qd.detach().reshape(-1).contiguous()))
        state.clear_forces()

    def _step_contacts(self, state: newton.State, fresh: bool) -> newton.Contacts | None:
        """Contact points for this control step: frozen over its substeps and not differentiated.
        ``fresh``: a new buffer, because a tape will read it again in the backward pass."""
        if self._pipeline is None:
            return None
        if self._replay is not None:
            return next(self._replay)
        contacts = self._pipeline.contacts() if fresh else self._contacts
        newton.eval_fk(self.model, state.joint_q, state.joint_qd, state)
        self._pipeline.collide(state, contacts)
        if self._recording is not None:
            self._recording.append(contacts)
        return contacts

    @contextmanager
    def recorded_contacts(self) -> Iterator[list]:
        """Keep the contact sets of the differentiable steps run inside (for :meth:`replayed_contacts`)."""
        self._recording = []
        try:
            yield self._recording
        finally:
            self._recording = None

    @contextmanager
    def replayed_contacts(self, contact_sets: list) -> Iterator[None]:
        """Reuse recorded contact sets instead of detecting contacts: the forward map the tape
        differentiates, which finite-difference checks must compare against."""
        self._replay = iter(contact_sets)
        try:
            yield
        finally:
            self._replay = None

    def _outputs(self, state: newton.State) -> StepOutput:
        n = self.num_envs
        return StepOutput(
            wp.to_torch(state.joint_q).view(n, self.nq),
            wp.to_torch(state.joint_qd).view(n, self.nqd),
            wp.to_torch(state.body_q).view(n, self.num_bodies, 7),
        )

    def forward_kinematics(self, joint_q: torch.Tensor, joint_qd: torch.Tensor) -> torch.Tensor:
        """Body poses (N, bodies, 7) of a joint state, without gradient (used after resets)."""
        state = self._ping
        self._load(state, joint_q, joint_qd)
        newton.eval_fk(self.model, state.joint_q, state.joint_qd, state)
        return self._outputs(state).body_q.detach().clone()

    def step_without_grad(self, joint_q, joint_qd, joint_f) -> StepOutput:
        """Cheap path for learners that need no gradient: no tape, reused buffers, copied outputs."""
        state_in, state_out = self._ping, self._pong
        self._load(state_in, joint_q, joint_qd)
        self._control.joint_f.assign(wp.from_torch(joint_f.detach().reshape(-1).contiguous()))
        contacts = self._step_contacts(state_in, fresh=False)
        for _ in range(self.substeps):
            state_in.clear_forces()
            self.solver.step(state_in, state_out, self._control, contacts, self.sub_dt)
            state_in, state_out = state_out, state_in
        out = self._outputs(state_in)
        return StepOutput(out.joint_q.clone(), out.joint_qd.clone(), out.body_q.clone())

    def record_step(self, joint_q, joint_qd, joint_f):
        """Run one control step on a fresh tape; returns (tape, states, control) for the backward."""
        model = self.model
        states = [model.state(requires_grad=True) for _ in range(self.substeps + 1)]
        self._load(states[0], joint_q, joint_qd)
        control = model.control()
        control.joint_f = wp.from_torch(joint_f.detach().reshape(-1).contiguous().clone(), requires_grad=True)
        contacts = self._step_contacts(states[0], fresh=True)
        tape = wp.Tape()
        with tape:
            for i in range(self.substeps):
                self.solver.step(states[i], states[i + 1], control, contacts, self.sub_dt)
        return tape, states, control

    def step(self, joint_q: torch.Tensor, joint_qd: torch.Tensor, joint_f: torch.Tensor) -> StepOutput:
        """Advance one control step; differentiable when torch records a graph through the inputs."""
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (joint_q, joint_qd, joint_f))
        if not needs_grad:
            return self.step_without_grad(joint_q, joint_qd, joint_f)
        q, qd, body_q = _NewtonStep.apply(self, joint_q, joint_qd, joint_f)
        return StepOutput(q, qd, body_q)


class _NewtonStep(torch.autograd.Function):
    """torch node around one recorded control step: Warp's tape does the adjoint."""

    @staticmethod
    def forward(ctx, sim: Simulation, joint_q, joint_qd, joint_f):
        tape, states, control = sim.record_step(joint_q, joint_qd, joint_f)
        # the node owns this step's buffers; they are freed with the graph (after cut_graph)
        ctx.sim, ctx.tape, ctx.states, ctx.control = sim, tape, states, control
        out = sim._outputs(states[-1])  # zero-copy views: these states belong to this node only
        return out.joint_q, out.joint_qd, out.body_q

    @staticmethod
    def backward(ctx, grad_q, grad_qd, grad_body_q):
        first, last = ctx.states[0], ctx.states[-1]
        ctx.tape.zero()  # adjoints accumulate: start clean so a retained graph can be replayed again
        seeds = {}
        for array, grad in ((last.joint_q, grad_q), (last.joint_qd, grad_qd), (last.body_q, grad_body_q)):
            if grad is not None:
                flat = grad.reshape(-1) if array.dtype is wp.float32 else grad.reshape(array.shape[0], -1)
                seeds[array] = wp.from_torch(flat.contiguous(), dtype=array.dtype)
        ctx.tape.backward(grads=seeds)
        n = ctx.sim.num_envs
        grads = (
            wp.to_torch(first.joint_q.grad).view(n, -1).clone(),
            wp.to_torch(first.joint_qd.grad).view(n, -1).clone(),
            wp.to_torch(ctx.control.joint_f.grad).view(n, -1).clone(),
        )
        return (None, *grads)
