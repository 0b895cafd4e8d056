"""The mass matrix H = J^T M J with products that skip M's zero blocks.

Newton's Featherstone solver forms P = M J, then H = J^T P, with a dense batched product. M is block
diagonal (one 6 x 6 spatial inertia per body), so most of the dense product multiplies zeros.
``eval_mass_matrix_products`` computes the same numbers and the same adjoints, six terms at a time
along the blocks, several times cheaper (``tests/envs/test_mass_matrix_products.py`` checks it to the bit).
"""

from __future__ import annotations

import warp as wp
from newton._src.solvers.featherstone.kernels import dense_gemm


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
