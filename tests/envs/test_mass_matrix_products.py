"""The solver's mass-matrix products (``envs/mass_matrix.py``) against Newton's dense kernel: P = M J and
H = J^T P to the bit, and their adjoints wherever the solver reads them (M's adjoint outside its 6 x 6
body blocks is never read: ``eval_rigid_mass`` writes only the blocks)."""

import numpy as np
import warp as wp
from newton._src.solvers.featherstone.kernels import eval_dense_gemm_batched

from envs.mass_matrix import eval_mass_matrix_products

BODIES, DOFS, BATCH = 4, 7, 3
ROWS = 6 * BODIES


def products(kernel, M, J, adj_H):
    """P = M J and H = J^T P for a batch of articulations on a tape; returns (P, H, dM, dJ) after backward."""
    M, J = (wp.array(x.ravel(), dtype=float, requires_grad=True) for x in (M, J))
    P = wp.zeros(BATCH * ROWS * DOFS, dtype=float, requires_grad=True)
    H = wp.zeros(BATCH * DOFS * DOFS, dtype=float, requires_grad=True)
    ints = lambda values: wp.array(np.asarray(values, dtype=np.int32))  # noqa: E731
    batch = np.arange(BATCH)
    rows, dofs = ints([ROWS] * BATCH), ints([DOFS] * BATCH)
    m_start, j_start, h_start = ints(batch * ROWS * ROWS), ints(batch * ROWS * DOFS), ints(batch * DOFS * DOFS)
    tape = wp.Tape()
    with tape:
        wp.launch(kernel, BATCH, inputs=[rows, dofs, rows, False, False, m_start, j_start, j_start, M, J], outputs=[P])
        wp.launch(kernel, BATCH, inputs=[dofs, dofs, rows, True, False, j_start, j_start, h_start, J, P], outputs=[H])
    tape.backward(grads={H: wp.array(adj_H.ravel(), dtype=float)})
    return P.numpy(), H.numpy(), M.grad.numpy().reshape(BATCH, ROWS, ROWS), J.grad.numpy()


def test_block_diagonal_products_equal_the_dense_ones_to_the_bit():
    rng = np.random.default_rng(0)
    M = np.zeros((BATCH, ROWS, ROWS), dtype=np.float32)
    blocks = np.zeros((ROWS, ROWS), dtype=bool)
    for b in range(BODIES):
        blocks[6 * b : 6 * b + 6, 6 * b : 6 * b + 6] = True
    M[:, blocks] = rng.normal(size=(BATCH, blocks.sum()))
    J = rng.normal(size=(BATCH, ROWS, DOFS)).astype(np.float32)
    J[:, :6, 3:] = 0.0  # the root body does not move with the outer joints: structural zeros as in a tree
    adj_H = rng.normal(size=(BATCH, DOFS, DOFS)).astype(np.float32)

    dense = products(eval_dense_gemm_batched, M, J, adj_H)
    ours = products(eval_mass_matrix_products, M, J, adj_H)
    for name, d, o in zip(("P", "H", "dJ"), (dense[0], dense[1], dense[3]), (ours[0], ours[1], ours[3]), strict=True):
        assert np.array_equal(d, o), name
    assert np.array_equal(dense[2][:, blocks], ours[2][:, blocks])
    assert np.abs(dense[2][:, ~blocks]).max() > 0 and not ours[2][:, ~blocks].any()  # never read, not computed
    assert np.abs(dense[0]).max() > 1 and np.abs(dense[3]).max() > 1  # numbers that say something
