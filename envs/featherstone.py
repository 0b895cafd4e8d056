"""Correct multi-step gradients for Newton 1.8's Featherstone solver.

Stock ``SolverFeatherstone`` (newton 1.8.0) returns wrong gradients over more than one step, for two
reasons (docs/envs.md, "Newton's Featherstone gradients, fixed"):

1. The solver owns one set of mass-matrix work buffers (M, J, P, H, L) and rebuilds them in place, so
   when ``wp.Tape.backward`` replays the steps, every step sees the *last* step's matrices.
2. Kernel ``eval_rigid_tau`` reads ``body_f_ext[child]`` and writes the frame-shifted wrench back into
   the same array; the backward replay then reads the overwritten value.

``GradSafeFeatherstone`` fixes both: a fresh buffer set for every mass-matrix rebuild recorded on a
tape (the tape keeps it alive until backward), and an ``eval_rigid_tau`` that leaves its input alone.
Both fixes are needed; ``tests/envs/test_gradients.py`` fails if either is removed.

Through the same kind of kernel swap the solver launches the chosen contact law's kernel
(``envs/contact.py``) and the mass-matrix products that skip M's zero blocks (``envs/mass_matrix.py``).
These reach into Newton's internals, so ``pyproject.toml`` pins newton exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import warp as wp
from newton._src.solvers.featherstone import solver_featherstone as _stock_module
from newton._src.solvers.featherstone.kernels import jcalc_tau
from newton.solvers import SolverFeatherstone

from envs.contact import CONTACT_LAWS, KERNELS
from envs.mass_matrix import eval_mass_matrix_products

_MASS_MATRIX_BUFFERS = ("M", "J", "P", "H", "L")


@wp.kernel
def eval_rigid_tau_out_of_place(
    articulation_mask: wp.array[bool],
    articulation_start: wp.array[int],
    articulation_end: wp.array[int],
    joint_type: wp.array[int],
    joint_parent: wp.array[int],
    joint_child: wp.array[int],
    joint_q_start: wp.array[int],
    joint_qd_start: wp.array[int],
    joint_target_q_start: wp.array[int],
    joint_dof_dim: wp.array2d[int],
    joint_target_q: wp.array[float],
    joint_target_qd: wp.array[float],
    joint_q: wp.array[float],
    joint_qd: wp.array[float],
    joint_f: wp.array[float],
    joint_target_ke: wp.array[float],
    joint_target_kd: wp.array[float],
    joint_limit_lower: wp.array[float],
    joint_limit_upper: wp.array[float],
    joint_limit_ke: wp.array[float],
    joint_limit_kd: wp.array[float],
    joint_damping: wp.array[float],
    joint_stiffness: wp.array[float],
    joint_rest_q: wp.array[float],
    joint_S_s: wp.array[wp.spatial_vector],
    body_q_com: wp.array[wp.transform],
    body_solve_origin: wp.array[wp.vec3],
    body_fb_s: wp.array[wp.spatial_vector],
    body_f_ext: wp.array[wp.spatial_vector],
    body_ft_s: wp.array[wp.spatial_vector],
    tau: wp.array[float],
):
    """Same signature and joint torques as Newton's ``eval_rigid_tau``; ``body_f_ext`` is read only."""
    index = wp.tid()
    if articulation_mask:
        if not articulation_mask[index]:
            return
    start = articulation_start[index]
    end = articulation_end[index]
    for offset in range(end - start):
        i = end - offset - 1  # leaves to root
        parent = joint_parent[i]
        child = joint_child[i]
        wrench_com = body_f_ext[child]
        force = wp.spatial_top(wrench_com)
        x_com_s = wp.transform_get_translation(body_q_com[child]) - body_solve_origin[child]
        # external wrench moved from the COM to the solve origin (local value, never written back)
        f_ext_s = -wp.spatial_vector(force, wp.spatial_bottom(wrench_com) + wp.cross(x_com_s, force))
        f_s = body_fb_s[child] + body_ft_s[child] + f_ext_s
        jcalc_tau(
            joint_type[i],
            joint_target_ke,
            joint_target_kd,
            joint_limit_ke,
            joint_limit_kd,
            joint_damping,
            joint_stiffness,
            joint_rest_q,
            joint_S_s,
            joint_q,
            joint_qd,
            joint_f,
            joint_target_q,
            joint_target_qd,
            joint_limit_lower,
            joint_limit_upper,
            joint_q_start[i],
            joint_qd_start[i],
            joint_target_q_start[i],
            joint_dof_dim[i, 0],
            joint_dof_dim[i, 1],
            f_s,
            tau,
        )
        if parent >= 0:
            body_ft_s[parent] = body_ft_s[parent] + f_s


@contextlib.contextmanager
def _swapped_kernels(contact_law: str) -> Iterator[None]:
    """Route the stock solver's ``eval_rigid_tau`` launch to the corrected kernel, and its contact launch
    to the chosen law's kernel, for one step."""
    stock = _stock_module.eval_rigid_tau, _stock_module.eval_body_contact, _stock_module.eval_dense_gemm_batched
    _stock_module.eval_rigid_tau = eval_rigid_tau_out_of_place
    _stock_module.eval_body_contact = KERNELS[contact_law]
    _stock_module.eval_dense_gemm_batched = eval_mass_matrix_products
    try:
        yield
    finally:
        _stock_module.eval_rigid_tau, _stock_module.eval_body_contact, _stock_module.eval_dense_gemm_batched = stock


class GradSafeFeatherstone(SolverFeatherstone):
    """``SolverFeatherstone`` whose tape gradients are exact over many steps (see module docstring), with
    a choice of contact law (``"dflex"`` or ``"newton"``).

    The body-parent-wrench observable is not offered: it reads the frame-shifted ``body_f_ext`` that the
    corrected kernel no longer writes.
    """

    SUPPORTED_OBSERVABLES = frozenset()

    def __init__(self, model, *, contact_law: str = "dflex", **kwargs) -> None:
        if kwargs.get("use_tile_gemm"):
            raise ValueError("GradSafeFeatherstone supports use_tile_gemm=False only (per-step buffer views).")
        if contact_law not in CONTACT_LAWS:
            raise ValueError(f"contact_law '{contact_law}' unknown; choose one of: {', '.join(CONTACT_LAWS)}")
        self.contact_law = contact_law
        self._pinned: dict[str, wp.array] | None = None  # see :meth:`pinned`
        super().__init__(model, **kwargs)

    def _rebuilds_mass_matrix(self) -> bool:
        return self._mass_matrix_dirty or self._step % self.update_mass_matrix_interval == 0

    def mass_matrix_buffers(self) -> dict[str, wp.array]:
        """A buffer set for one mass-matrix rebuild (see :meth:`pinned`)."""
        names = _MASS_MATRIX_BUFFERS + (("H_mimic",) if self.H_mimic is not None else ())
        return {name: wp.zeros_like(getattr(self, name)) for name in names}

    def augment(self, state) -> None:
        """Allocate the solver's per-state work arrays of a taped step's output state now (the first step
        into it would), so that a graph capture of the step allocates nothing."""
        if not getattr(state, "_featherstone_augmented", False):
            self._allocate_state_aux_vars(self.model, state, requires_grad=True)

    @contextlib.contextmanager
    def pinned(self, buffers: dict[str, wp.array]) -> Iterator[None]:
        """The next taped rebuild inside uses ``buffers`` (a step slot's own, allocated once, reused
        window after window) instead of a fresh set; a second rebuild would get a fresh set again."""
        self._pinned = buffers
        try:
            yield
        finally:
            self._pinned = None

    def step(self, state_in, state_out, control, contacts, dt, *, observables=None) -> None:
        if state_in.requires_grad and self.model.joint_count and self._rebuilds_mass_matrix():
            # a buffer set per rebuild: earlier steps on the tape keep theirs for the backward replay
            buffers, self._pinned = self._pinned or self.mass_matrix_buffers(), None
            for name, array in buffers.items():
                setattr(self, name, array)
        with _swapped_kernels(self.contact_law):
            super().step(state_in, state_out, control, contacts, dt, observables=observables)
