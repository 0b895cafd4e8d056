"""The contact laws a task's physics can use (``contact_law``): dflex's, SHAC's simulator and the paper's
tasks, and Newton's own penalty law.

They differ where the tasks feel it most, the damping: dflex damps with ``kd * depth * min(vn, 0)``,
zero at first touch and growing with the penetration; Newton damps with ``kd * min(vn, 0)``, its full
value the moment a point touches the ground, a jump in the force (and in its gradient) that dflex's law
does not have. dflex's law in full is on its kernel below. The solver (``envs/featherstone.py``)
launches the chosen kernel in place of Newton's.
"""

from __future__ import annotations

import warp as wp
from newton._src.solvers.semi_implicit.kernels_contact import eval_body_contact as newton_body_contact

CONTACT_LAWS = ("dflex", "newton")
KERNELS = {"newton": newton_body_contact}  # dflex's is added below, once defined


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


KERNELS["dflex"] = dflex_body_contact
