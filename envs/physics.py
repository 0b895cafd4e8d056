"""Newton simulation of N worlds, bridged to torch autograd.

The torch-facing state is generalised coordinates: ``joint_q`` (N, nq), ``joint_qd`` (N, nqd), and the
applied generalised forces ``joint_f`` (N, nqd). One call of :meth:`Simulation.step` advances one
control step (``substeps`` physics steps). When torch needs gradients, the substeps are recorded on a
Warp tape owned by a ``torch.autograd.Function`` node, so ``loss.backward()`` replays them in reverse:
gradients reach the actions and the previous state, step after step, over a whole SHAC window.

**Captured graphs** (``capture_graphs=True``, the default). A control step is ~190 kernel launches, and
packing a launch's arguments in Python costs more than the kernel at the batch sizes learners use. So
each control step runs as a captured Warp graph, replayed in C++ (a CUDA graph on a GPU, Warp's APIC
replay on the CPU): the no-gradient step has one graph; a taped step takes a *step slot* (its states,
control, contacts and tape, allocated once) with a forward graph and a backward graph captured the
first time the slot is used. A slot returns to the pool when torch frees the graph node that used it,
so a window of SHAC reuses the previous window's slots and nothing is reallocated or re-recorded. The
kernels, their order and their buffers' contents are the eager path's: results and gradients are
bit-identical (``tests/envs/test_physics_graphs.py``). ``capture_graphs=False`` launches kernel by kernel
with fresh buffers per taped step (the reference; also used where contacts are recorded or replayed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import newton
import torch
import warp as wp

from envs.featherstone import GradSafeFeatherstone
from envs.one_off import graph_capture

wp.config.log_level = logging.WARNING  # kernel-cache messages are noise in progress bars
log = logging.getLogger(__name__)


def warp_device(device: torch.device) -> str:
    """Warp's name for a torch device; a bare ``cuda`` is torch's current GPU, as torch reads it (not
    always GPU 0: Warp and torch must land on the same one)."""
    if device.type == "cpu":
        return "cpu"
    return f"cuda:{device.index if device.index is not None else torch.cuda.current_device()}"


def same_stream_as_warp(device: torch.device) -> None:
    """Torch's tensors and Warp's kernels share buffers with no event between them: that is ordered only
    while torch runs on the device's legacy default stream, which Warp's stream waits for. A torch stream
    of its own would race; refuse it in one line (and do not move Warp onto a torch stream: the legacy
    stream cannot be captured)."""
    if torch.cuda.current_stream(device) != torch.cuda.default_stream(device):
        raise RuntimeError("envs: torch runs on a non-default CUDA stream; step the env outside `torch.cuda."
                           "stream(...)` blocks (Warp's kernels are ordered after torch's default stream)")  # fmt: skip


@dataclass
class StepOutput:
    joint_q: torch.Tensor  # (N, nq)
    joint_qd: torch.Tensor  # (N, nqd)
    body_q: torch.Tensor  # (N, bodies, 7): position, quaternion (x, y, z, w), world frame


def env_view(array: wp.array, num_envs: int) -> torch.Tensor:
    """Zero-copy torch view (N, ...) of a Warp array holding N envs' values; poses as (N, bodies, 7)."""
    tensor = wp.to_torch(array, requires_grad=False)
    return tensor.view(num_envs, -1, 7) if array.dtype is wp.transform else tensor.view(num_envs, -1)


def warp_view(tensor: torch.Tensor, like: wp.array) -> wp.array:
    """Zero-copy Warp view of a torch tensor shaped as ``like`` (flat floats, or one row per transform)."""
    flat = tensor.reshape(-1) if like.dtype is wp.float32 else tensor.reshape(like.shape[0], -1)
    return wp.from_torch(flat.contiguous(), dtype=like.dtype)


class GraphCaptureError(RuntimeError):
    """Warp could not capture a control step as a graph (e.g. a device or driver without support)."""


class _StepSlot:
    """The Warp buffers of one taped control step, with its tape and its two graphs; reused by the next
    window once torch has freed the step that last used it."""

    def __init__(self, sim: Simulation) -> None:
        model = sim.model
        self.states = [model.state(requires_grad=True) for _ in range(sim.substeps + 1)]
        self.control = model.control()
        self.control.joint_f = wp.zeros_like(model.joint_f, requires_grad=True)
        self.contacts = sim._pipeline.contacts() if sim._pipeline else None
        # everything the solver would allocate on first use, allocated here: a capture allocates nothing
        for state in self.states[1:]:
            sim.solver.augment(state)
        self.mass_matrix = sim.solver.mass_matrix_buffers()
        first, last, n = self.states[0], self.states[-1], sim.num_envs
        # torch views of the inputs, their gradients and the outputs; the seeds are the outputs' gradients
        inputs = (first.joint_q, first.joint_qd, self.control.joint_f)
        self.inputs = tuple(env_view(array, n) for array in inputs)
        self.input_grads = tuple(env_view(array.grad, n) for array in inputs)
        self.seed_arrays = (last.joint_q, last.joint_qd, last.body_q)
        self.outputs = tuple(env_view(array, n) for array in self.seed_arrays)
        self.seeds = tuple(torch.zeros_like(t) for t in self.outputs)
        self.tape = wp.Tape()
        self.forward_graph: wp.Graph | None = None
        self.backward_graph: wp.Graph | None = None


class _SlotLease:
    """Held by the autograd node of a taped step: when torch frees the node, the slot is free again."""

    def __init__(self, pool: list[_StepSlot], slot: _StepSlot) -> None:
        self.pool, self.slot = pool, slot

    def __del__(self) -> None:
        self.pool.append(self.slot)


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
        capture_graphs: bool = True,
        horizontal_coords: tuple[int, ...] = (),
    ) -> None:
        self.model = model
        self.num_envs = num_envs
        self.substeps = substeps
        self.sub_dt = dt / substeps
        self.device = device
        self.nq = model.joint_coord_count // num_envs
        self.nqd = model.joint_dof_count // num_envs
        self.num_bodies = model.body_count // num_envs
        if len(horizontal_coords) > 2 or any(not 0 <= i < self.nq for i in horizontal_coords):
            raise ValueError(f"horizontal_coords={horizontal_coords}: at most two joint_q indices (world x, y)")
        self._horizontal = torch.zeros(self.nq, device=device)
        self._horizontal[list(horizontal_coords)] = 1.0
        self._horizontal_coords = horizontal_coords
        self.solver = GradSafeFeatherstone(
            model, contact_law=contact_law, angular_damping=angular_damping, update_mass_matrix_interval=substeps
        )
        self._pipeline = newton.CollisionPipeline(model) if with_contacts else None
        # no-gradient path: two states ping-pong, one contact buffer, no tape
        self._ping, self._pong = model.state(), model.state()
        # allocated now what their first step would: its work arrays, and a mass-matrix buffer set of
        # their own (no tape keeps it): the no-grad graph's capture then allocates nothing
        for state in (self._ping, self._pong):
            self.solver.augment(state)
        self._no_grad_mass_matrix = self.solver.mass_matrix_buffers()
        self._contacts = self._pipeline.contacts() if self._pipeline else None
        self._control = model.control()
        self._recording: list | None = None
        self._replay: Iterator | None = None
        if capture_graphs and device.type == "cuda" and wp.config.verify_cuda:
            log.warning("envs: wp.config.verify_cuda=True cannot be captured: stepping kernel by kernel")
            capture_graphs = False
        self.capture_graphs = capture_graphs
        self._no_grad_graph: wp.Graph | None = None
        self._ping_pong = [(self._ping, self._pong)[i % 2] for i in range(substeps + 1)]  # state i -> i + 1
        last = self._ping_pong[-1]
        inputs = (self._ping.joint_q, self._ping.joint_qd, self._control.joint_f)
        self._no_grad_inputs = tuple(env_view(array, num_envs) for array in inputs)
        self._no_grad_outputs = tuple(env_view(array, num_envs) for array in (last.joint_q, last.joint_qd, last.body_q))
        self._free_slots: list[_StepSlot] = []

    # ------------------------------------------------------------------ forward paths
    def _load(self, state: newton.State, joint_q: torch.Tensor, joint_qd: torch.Tensor) -> None:
        state.joint_q.assign(wp.from_torch(joint_q.detach().reshape(-1).contiguous()))
        state.joint_qd.assign(wp.from_torch(joint_qd.detach().reshape(-1).contiguous()))
        state.clear_forces()

    def _detect_contacts(self, state: newton.State, contacts: newton.Contacts | None) -> None:
        """Contact points for this control step, from ``state``'s pose: frozen over its substeps and
        not differentiated."""
        if contacts is not None:
            newton.eval_fk(self.model, state.joint_q, state.joint_qd, state)
            self._pipeline.collide(state, contacts)

    def _step_contacts(self, state: newton.State, fresh: bool) -> newton.Contacts | None:
        """The eager path's contacts. ``fresh``: a new buffer, because a tape will read it again in the
        backward pass."""
        if self._pipeline is None:
            return None
        if self._replay is not None:
            return next(self._replay)
        contacts = self._pipeline.contacts() if fresh else self._contacts
        self._detect_contacts(state, contacts)
        if self._recording is not None:
            self._recording.append(contacts)
        return contacts

    def _capture(self, body: Callable[[], object]) -> tuple[wp.Graph, object]:
        """Capture ``body``'s Warp work as a graph (not run: launch it); returns (graph, body's result).
        A failure leaves the solver's step count as it was and raises :class:`GraphCaptureError`."""
        solver_step = self.solver._step  # the mass-matrix schedule counts substeps
        with graph_capture():
            try:
                wp.capture_begin(device=self.model.device)
                try:
                    result = body()
                finally:
                    graph = wp.capture_end(device=self.model.device)
            except Exception as error:
                self.solver._step = solver_step
                raise GraphCaptureError(f"{type(error).__name__}: {error}") from error
        return graph, result

    def _give_up_graphs(self, error: GraphCaptureError) -> None:
        log.warning("envs: graph capture failed (%s); stepping kernel by kernel (capture_graphs=false)", error)
        self.capture_graphs = False

    @property
    def _graphs_allowed(self) -> bool:
        """Recorded or replayed contacts (finite-difference checks) need their own buffers: eager then."""
        return self.capture_graphs and self._recording is None and self._replay is None

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
        return StepOutput(*(env_view(a, self.num_envs) for a in (state.joint_q, state.joint_qd, state.body_q)))

    def forward_kinematics(self, joint_q: torch.Tensor, joint_qd: torch.Tensor) -> torch.Tensor:
        """Body poses (N, bodies, 7) of a joint state, without gradient (used after resets)."""
        joint_q = joint_q.detach()
        offset = self._horizontal_offset(joint_q)
        state = self._ping
        self._load(state, joint_q - offset, joint_qd)
        newton.eval_fk(self.model, state.joint_q, state.joint_qd, state)
        return self._moved_back(self._outputs(state), offset).body_q.detach().clone()

    # ------------------------------------------------------------------ recentring
    # Newton's Featherstone takes a free root's motion subspace at the world origin, so the root's position
    # is a lever arm in the mass matrix: tens of metres out it is ill-conditioned in float32 (the humanoid's
    # blow-ups at 70-95 m), and a root armature acts as a position-dependent inertia (docs/envs.md, "Far
    # from the origin"). The ground is an infinite plane, so sliding a robot over it changes nothing: each
    # step runs with the root's horizontal position at exactly 0 and adds it back after.
    def _horizontal_offset(self, joint_q: torch.Tensor) -> torch.Tensor:
        """(N, nq): the root's horizontal coordinates, zeros elsewhere (carries their gradient)."""
        return joint_q * self._horizontal

    def _moved_back(self, out: StepOutput, offset: torch.Tensor) -> StepOutput:
        if not self._horizontal_coords:
            return out
        shift = torch.zeros(offset.shape[0], 1, 7, dtype=offset.dtype, device=offset.device)
        shift[:, 0, : len(self._horizontal_coords)] = offset[:, list(self._horizontal_coords)]
        return StepOutput(out.joint_q + offset, out.joint_qd, out.body_q + shift)

    def _substeps(self, states: list[newton.State], control: newton.Control, contacts) -> None:
        """The control step's physics steps from ``states[0]``; state i + 1 is written from state i."""
        for state_in, state_out in zip(states[:-1], states[1:], strict=True):
            state_in.clear_forces()
            self.solver.step(state_in, state_out, control, contacts, self.sub_dt)

    def step_without_grad(self, joint_q, joint_qd, joint_f) -> StepOutput:
        """Cheap path for learners that need no gradient: no tape, reused buffers, copied outputs."""
        for buffer, value in zip(self._no_grad_inputs, (joint_q, joint_qd, joint_f), strict=True):
            buffer.copy_(value.detach())
        if self._graphs_allowed and self._no_grad_graph is None:
            try:
                self._no_grad_graph, _ = self._capture(self._no_grad_control_step)
            except GraphCaptureError as error:
                self._give_up_graphs(error)
        if self._graphs_allowed:
            wp.capture_launch(self._no_grad_graph)
        else:
            self._no_grad_substeps(self._step_contacts(self._ping, fresh=False))
        return StepOutput(*(out.clone() for out in self._no_grad_outputs))

    def _no_grad_control_step(self) -> None:
        self._detect_contacts(self._ping, self._contacts)
        self._no_grad_substeps(self._contacts)

    def _no_grad_substeps(self, contacts) -> None:
        """The ping-pong states come from a differentiable model, so the solver would give each mass-matrix
        rebuild a fresh buffer set (for a tape): here it reuses one, and nothing allocates per step or
        inside the no-grad graph's capture (a CUDA graph without memory pools cannot hold one)."""
        with self.solver.pinned(self._no_grad_mass_matrix):
            self._substeps(self._ping_pong, self._control, contacts)

    def record_step(self, joint_q, joint_qd, joint_f):
        """Eager taped step: fresh buffers and a fresh tape; returns (tape, states, control)."""
        states = [self.model.state(requires_grad=True) for _ in range(self.substeps + 1)]
        self._load(states[0], joint_q, joint_qd)
        control = self.model.control()
        control.joint_f = wp.from_torch(joint_f.detach().reshape(-1).contiguous().clone(), requires_grad=True)
        contacts = self._step_contacts(states[0], fresh=True)
        tape = wp.Tape()
        with tape:
            self._substeps(states, control, contacts)
        return tape, states, control

    def run_slot(self, joint_q, joint_qd, joint_f) -> _StepSlot:
        """Captured taped step: a free slot (or a new one) runs its forward graph on these inputs."""
        slot = self._free_slots.pop() if self._free_slots else _StepSlot(self)
        for buffer, value in zip(slot.inputs, (joint_q, joint_qd, joint_f), strict=True):
            buffer.copy_(value.detach())
        if slot.forward_graph is None:

            def control_step() -> None:
                slot.states[0].clear_forces()
                self._detect_contacts(slot.states[0], slot.contacts)
                with slot.tape, self.solver.pinned(slot.mass_matrix):
                    self._substeps(slot.states, slot.control, slot.contacts)

            slot.forward_graph, _ = self._capture(control_step)
        wp.capture_launch(slot.forward_graph)
        return slot

    def backward_slot(self, slot: _StepSlot, grads) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Replay the slot's adjoint from the output gradients; returns the inputs' gradients."""
        for seed, grad in zip(slot.seeds, grads, strict=True):
            if grad is None:
                seed.zero_()
            else:
                seed.copy_(grad)
        if slot.backward_graph is None and self.capture_graphs:  # not after graphs were given up
            try:
                slot.backward_graph, _ = self._capture(lambda: self._adjoint(slot))
            except GraphCaptureError as error:
                self._give_up_graphs(error)
        if slot.backward_graph is None:
            self._adjoint(slot)  # the same work, kernel by kernel
        else:
            wp.capture_launch(slot.backward_graph)
        return tuple(grad.clone() for grad in slot.input_grads)

    @staticmethod
    def _adjoint(slot: _StepSlot) -> None:
        """The slot's backward pass from its seeds: every gradient the adjoint touches zeroed first."""
        tape = slot.tape
        for launch in tape.launches:
            for array in (*launch[3], *launch[4]) if isinstance(launch, list) else ():
                if isinstance(array, wp.array) and array.grad is not None:
                    tape.gradients[array] = array.grad
        tape.zero()
        for array, seed in zip(slot.seed_arrays, slot.seeds, strict=True):
            wp.copy(array.grad, warp_view(seed, array))
        tape.backward()

    def step(self, joint_q: torch.Tensor, joint_qd: torch.Tensor, joint_f: torch.Tensor) -> StepOutput:
        """Advance one control step; differentiable when torch records a graph through the inputs. The
        physics runs with the root's horizontal position at the origin (see ``_horizontal_offset``)."""
        if not self._horizontal_coords:
            return self._step_at(joint_q, joint_qd, joint_f)
        offset = self._horizontal_offset(joint_q)
        return self._moved_back(self._step_at(joint_q - offset, joint_qd, joint_f), offset)

    def _step_at(self, joint_q: torch.Tensor, joint_qd: torch.Tensor, joint_f: torch.Tensor) -> StepOutput:
        if self.device.type == "cuda":
            same_stream_as_warp(self.device)
        needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (joint_q, joint_qd, joint_f))
        if not needs_grad:
            return self.step_without_grad(joint_q, joint_qd, joint_f)
        if self._graphs_allowed:
            try:
                return StepOutput(*_CapturedStep.apply(self, joint_q, joint_qd, joint_f))
            except GraphCaptureError as error:
                self._give_up_graphs(error)
        return StepOutput(*_EagerStep.apply(self, joint_q, joint_qd, joint_f))


BLOWN_UP = 1e6  # |q| or |qd| beyond this (or not finite): the env's step blew up (SHAC's threshold)


def blown_up(joint_q: torch.Tensor, joint_qd: torch.Tensor) -> torch.Tensor:
    """(N,) bool: envs whose state is not finite or beyond :data:`BLOWN_UP`."""
    state = torch.cat([joint_q, joint_qd], dim=-1).detach()
    return ~torch.isfinite(state).all(-1) | (state.abs() > BLOWN_UP).any(-1)


def _confined(blown: torch.Tensor, grads: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
    """A blown-up env passes back zero gradient. Its adjoint multiplies non-finite intermediates, even by
    a zero output gradient, and its NaN would reach the actor's shared parameters and void the whole
    batch's update; the env itself earns nothing and ends (:meth:`envs.core.DiffEnv.invalid_state`)."""
    return tuple(torch.where(blown[:, None], torch.zeros_like(grad), grad) for grad in grads)


class _CapturedStep(torch.autograd.Function):
    """torch node around one taped control step in a slot: its graphs do the forward and the adjoint."""

    @staticmethod
    def forward(ctx, sim: Simulation, joint_q, joint_qd, joint_f):
        slot = sim.run_slot(joint_q, joint_qd, joint_f)
        ctx.sim, ctx.lease = sim, _SlotLease(sim._free_slots, slot)
        outputs = tuple(out.clone() for out in slot.outputs)  # the slot's buffers serve the next window
        ctx.blown = blown_up(*outputs[:2])
        return outputs

    @staticmethod
    def backward(ctx, grad_q, grad_qd, grad_body_q):
        return (None, *_confined(ctx.blown, ctx.sim.backward_slot(ctx.lease.slot, (grad_q, grad_qd, grad_body_q))))


class _EagerStep(torch.autograd.Function):
    """torch node around one recorded control step: Warp's tape does the adjoint."""

    @staticmethod
    def forward(ctx, sim: Simulation, joint_q, joint_qd, joint_f):
        tape, states, control = sim.record_step(joint_q, joint_qd, joint_f)
        # the node owns this step's buffers; they are freed with the graph (after cut_graph)
        ctx.sim, ctx.tape, ctx.states, ctx.control = sim, tape, states, control
        out = sim._outputs(states[-1])  # zero-copy views: these states belong to this node only
        ctx.blown = blown_up(out.joint_q, out.joint_qd)
        return out.joint_q, out.joint_qd, out.body_q

    @staticmethod
    def backward(ctx, grad_q, grad_qd, grad_body_q):
        first, last = ctx.states[0], ctx.states[-1]
        ctx.tape.zero()  # adjoints accumulate: start clean so a retained graph can be replayed again
        seeds = {}
        for array, grad in ((last.joint_q, grad_q), (last.joint_qd, grad_qd), (last.body_q, grad_body_q)):
            if grad is not None:
                seeds[array] = warp_view(grad, array)
        ctx.tape.backward(grads=seeds)
        n = ctx.sim.num_envs
        grads = (
            wp.to_torch(first.joint_q.grad).view(n, -1).clone(),
            wp.to_torch(first.joint_qd.grad).view(n, -1).clone(),
            wp.to_torch(ctx.control.joint_f.grad).view(n, -1).clone(),
        )
        return (None, *_confined(ctx.blown, grads))
