"""Correct multi-step gradients for Newton 1.8's Featherstone solver.

Stock ``SolverFeatherstone`` (newton 1.8.0) returns wrong gradients over more than one step, for two
reasons (docs/envs.md, "Newton's Featherstone gradients, fixed"):

1. The solver owns one set of mass-matrix work buffers (M, J, P, H, L) and rebuilds them in place, so
   when ``wp.Tape.backward`` replays the steps, every step sees the *last* step's matrices.
2. Kernel ``eval_rigid_tau`` reads ``body_f_ext[child]`` and writes the frame-shifted wrench back into
   the same array; the backward replay then reads the overwritten value.

``GradSafeFeatherstone`` fixes both: a fresh buffer set for every mass-matrix rebuild recorded on a
tape (the tape keeps it alive until backward), and an ``eval_rigid_tau`` that leaves its input alone.
Both fixes are needed; ``tests/test_gradients.py`` fails if either is removed.

It also offers dflex's contact law (SHAC's simulator, the paper's tasks) beside Newton's, through the same
kind of kernel swap: ``contact_law="dflex"`` damps a contact with ``kd * depth * min(vn, 0)``, which is
zero at first touch, where Newton's ``kd * min(vn, 0)`` jumps to its full value the moment a point
touches the ground. And it forms the mass matrix H = J^T M J with products that skip M's zero blocks
(``eval_mass_matrix_products``): the same numbers and gradients, several times cheaper. The fixes reach
into Newton's internals, so ``pyproject.toml`` pins newton exactly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import warp as wp
from newton._src.solvers.featherstone import solver_featherstone as _stock_module
from newton._src.solvers.featherstone.kernels import dense_gemm, jcalc_tau
from newton._src.solvers.semi_implicit.kernels_contact import eval_body_contact as newton_body_contact
from newton.solvers import SolverFeatherstone

_MASS_MATRIX_BUFFERS = ("M", "J", "P", "H", "L")
CONTACT_LAWS = ("dflex", "newton")


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


@wp.kernel
def dflex_body_contact(
    body_q: wp.array[wp.transform],
    body_qd: wp.array[wp.spatial_vector],
    body_com: wp.array[wp.vec3],
    shape_material_ke: wp.array[float],
    shape_material_kd: wp.array[float],
    shape_material_kf: wp.array[float],
    shape_material_ka: wp.array[float],
    shape_material_mu: wp.array[float],
    shape_body: wp.array[int],
    contact_count: wp.array[int],
    contact_point0: wp.array[wp.vec3],
    contact_point1: wp.array[wp.vec3],
    contact_surface_velocity: wp.array[wp.vec3],
    contact_normal: wp.array[wp.vec3],
    contact_shape0: wp.array[int],
    contact_shape1: wp.array[int],
    contact_margin0: wp.array[float],
    contact_margin1: wp.array[float],
    rigid_contact_stiffness: wp.array[float],
    rigid_contact_damping: wp.array[float],
    rigid_contact_friction_scale: wp.array[float],
    force_in_world_frame: bool,
    body_f: wp.array[wp.spatial_vector],
):
    """Newton's ``eval_body_contact`` signature (so the solver launches it unchanged) with dflex's law.

    Per penetrating point (depth c = -d > 0, normal velocity vn): normal force ``ke * c``, damping
    ``kd * c * min(vn, 0)`` (proportional to depth: continuous at first touch, only on approach), and
    isotropic friction ``kf * vt`` capped at ``mu * ke * c``. dflex's running code caps friction by the
    elastic force alone (its box-clamped variant is computed and unused). The viscous branch never
    normalises ``vt``, so the gradient at rest is finite. Materials: the mean over the two shapes, as
    Newton does; the tasks give every shape and the ground the same material. Featherstone launches it
    with ``force_in_world_frame=False`` (wrenches about each body's centre of mass), the one frame done here.
    """
    tid = wp.tid()
    if tid >= contact_count[0]:
        return
    shape_a = contact_shape0[tid]
    shape_b = contact_shape1[tid]
    if shape_a == shape_b:
        return
    ke = 0.0
    kd = 0.0
    kf = 0.0
    mu = 0.0
    count = 0.0
    body_a = -1
    body_b = -1
    if shape_a >= 0:
        ke += shape_material_ke[shape_a]
        kd += shape_material_kd[shape_a]
        kf += shape_material_kf[shape_a]
        mu += shape_material_mu[shape_a]
        count += 1.0
        body_a = shape_body[shape_a]
    if shape_b >= 0:
        ke += shape_material_ke[shape_b]
        kd += shape_material_kd[shape_b]
        kf += shape_material_kf[shape_b]
        mu += shape_material_mu[shape_b]
        count += 1.0
        body_b = shape_body[shape_b]
    if count > 0.0:
        ke /= count
        kd /= count
        kf /= count
        mu /= count

    n = -contact_normal[tid]  # B to A, as in Newton's kernel
    x_a = contact_point0[tid]
    x_b = contact_point1[tid]
    r_a = wp.vec3(0.0)
    r_b = wp.vec3(0.0)
    v_a = wp.vec3(0.0)
    v_b = wp.vec3(0.0)
    if body_a >= 0:
        x_a = wp.transform_point(body_q[body_a], x_a) - contact_margin0[tid] * n
        r_a = x_a - wp.transform_point(body_q[body_a], body_com[body_a])
        v_a = wp.spatial_top(body_qd[body_a]) + wp.cross(wp.spatial_bottom(body_qd[body_a]), r_a)
    if body_b >= 0:
        x_b = wp.transform_point(body_q[body_b], x_b) + contact_margin1[tid] * n
        r_b = x_b - wp.transform_point(body_q[body_b], body_com[body_b])
        v_b = wp.spatial_top(body_qd[body_b]) + wp.cross(wp.spatial_bottom(body_qd[body_b]), r_b)

    d = wp.dot(n, x_a - x_b)  # < 0: penetrating
    if d >= 0.0:
        return
    v = v_a - v_b
    vn = wp.dot(n, v)
    vt = v - n * vn

    normal = d * ke + wp.min(vn, 0.0) * kd * (-d)
    limit = -mu * ke * d
    friction = kf * vt
    speed_sq = wp.dot(vt, vt)
    if kf > 0.0 and speed_sq * kf * kf > limit * limit:
        friction = vt * (limit / wp.sqrt(speed_sq))
    f = n * normal + friction
    if body_a >= 0:
        wp.atomic_sub(body_f, body_a, wp.spatial_vector(f, wp.cross(r_a, f)))
    if body_b >= 0:
        wp.atomic_add(body_f, body_b, wp.spatial_vector(f, wp.cross(r_b, f)))


@wp.func
def six_terms(A: wp.array[float], a: int, a_stride: int, B: wp.array[float], b: int, b_stride: int, total: float):
    """``total`` plus six products A[a + r * a_stride] * B[b + r * b_stride], r = 0..5, added one by one."""
    total += A[a] * B[b]
    total += A[a + a_stride] * B[b + b_stride]
    total += A[a + 2 * a_stride] * B[b + 2 * b_stride]
    total += A[a + 3 * a_stride] * B[b + 3 * b_stride]
    total += A[a + 4 * a_stride] * B[b + 4 * b_stride]
    total += A[a + 5 * a_stride] * B[b + 5 * b_stride]
    return total


@wp.kernel
def eval_mass_matrix_products(
    m: wp.array[int],
    n: wp.array[int],
    p: wp.array[int],
    transpose_A: bool,
    transpose_B: bool,
    A_start: wp.array[int],
    B_start: wp.array[int],
    C_start: wp.array[int],
    A: wp.array[float],
    B: wp.array[float],
    C: wp.array[float],
):
    """Newton's ``eval_dense_gemm_batched`` as the solver uses it: P = M J, then H = J^T P, J having six
    rows per body. M is block diagonal (one 6 x 6 spatial inertia per body, zeros elsewhere), so a row of
    P sums its own block's six terms instead of all 6 x bodies (the skipped terms are exact zeros); H's
    sums run body by body, six terms at a time. Every sum adds the same nonzero terms in the same order
    as the dense loops, so P, H and their adjoints are the stock kernel's to the bit, at a fraction of
    the cost (the dense products and their adjoints were most of the ant's and the humanoid's step)."""
    batch = wp.tid()
    rows = m[batch]
    cols = n[batch]
    inner = p[batch]
    a0 = A_start[batch]
    b0 = B_start[batch]
    c0 = C_start[batch]
    if not transpose_A and not transpose_B:  # P = M J: row i of M is zero outside its body's block
        for i in range(rows):
            block = (i // 6) * 6
            for j in range(cols):
                C[c0 + i * cols + j] = six_terms(A, a0 + i * inner + block, 1, B, b0 + block * cols + j, cols, 0.0)
    elif transpose_A and not transpose_B:  # H = J^T P over the 6-row blocks of J and P
        for i in range(rows):
            for j in range(cols):
                total = float(0.0)  # noqa: UP018 (a Warp loop-carried variable needs its constructor)
                for block in range(0, inner, 6):
                    total = six_terms(A, a0 + block * rows + i, rows, B, b0 + block * cols + j, cols, total)
                C[c0 + i * cols + j] = total
    else:
        dense_gemm(rows, cols, inner, transpose_A, transpose_B, a0, b0, c0, A, B, C)


@contextlib.contextmanager
def _swapped_kernels(contact_law: str) -> Iterator[None]:
    """Route the stock solver's ``eval_rigid_tau`` launch to the corrected kernel, and its contact launch
    to the chosen law's kernel, for one step."""
    stock = _stock_module.eval_rigid_tau, _stock_module.eval_body_contact, _stock_module.eval_dense_gemm_batched
    _stock_module.eval_rigid_tau = eval_rigid_tau_out_of_place
    _stock_module.eval_body_contact = dflex_body_contact if contact_law == "dflex" else newton_body_contact
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
