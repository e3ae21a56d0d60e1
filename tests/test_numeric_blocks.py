"""The row-blocked numeric helpers (issue #6, memory) give what whole-matrix arithmetic gives."""

import numpy as np
import pytest
import scipy.sparse as sp

from schelix_core.preprocess import ROW_BLOCK, cosine_normalize, gene_mean_var, grouped_sums, log_normalize, pca

N_CELLS = 2 * ROW_BLOCK + 123  # three row blocks, the last one partial


@pytest.fixture(scope="module")
def counts():
    rng = np.random.default_rng(0)
    dense = rng.poisson(rng.gamma(0.5, 2.0, size=(1, 60)), size=(N_CELLS, 60)).astype(np.float32)
    dense[5] = 0  # an empty cell
    return sp.csr_matrix(dense)


def test_log_normalize_scales_every_block(counts):
    dense = counts.toarray().astype(np.float64)
    totals = dense.sum(axis=1, keepdims=True)
    expected = np.log1p(dense / np.where(totals == 0, 1, totals) * 1e4)
    np.testing.assert_allclose(log_normalize(counts).toarray(), expected, rtol=1e-5, atol=1e-5)


def test_cosine_normalize_gives_every_cell_the_median_norm(counts):
    X = log_normalize(counts)
    dense = X.toarray().astype(np.float64)
    norms = np.linalg.norm(dense, axis=1)
    expected = dense * (np.median(np.where(norms == 0, 1, norms)) / np.where(norms == 0, 1, norms))[:, None]
    out = cosine_normalize(X)
    assert sp.issparse(out) and out.nnz == X.nnz
    np.testing.assert_allclose(out.toarray(), expected, rtol=1e-5, atol=1e-6)
    kept = np.linalg.norm(out.toarray(), axis=1)
    assert kept[5] == 0 and np.ptp(np.delete(kept, 5)) < 1e-3 * kept.max()  # the empty cell stays empty
    np.testing.assert_array_equal(X.toarray(), log_normalize(counts).toarray())  # the input is not modified


@pytest.mark.parametrize("layout", ["csr", "dense"])
def test_gene_mean_var_matches_numpy(counts, layout):
    X = log_normalize(counts)
    X = X if layout == "csr" else X.toarray()
    dense = np.asarray(X.toarray() if sp.issparse(X) else X, dtype=np.float64)
    mean, var = gene_mean_var(X)
    # float32 sums within a block, float64 across blocks; E[x^2] - mean^2 loses a few more digits
    np.testing.assert_allclose(mean, dense.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(var, dense.var(axis=0), rtol=1e-3)


def test_grouped_sums_match_dense_products(counts):
    X = log_normalize(counts)
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 7, N_CELLS)
    kept = rng.random(N_CELLS) < 0.8  # cells outside every group contribute nothing
    M = sp.csr_matrix((np.ones(kept.sum()), (groups[kept], np.flatnonzero(kept))), shape=(7, N_CELLS))
    S, Q = grouped_sums(M, X)
    dense = X.toarray().astype(np.float64)
    np.testing.assert_allclose(S, M.toarray() @ dense, rtol=1e-6)
    np.testing.assert_allclose(Q, M.toarray() @ dense**2, rtol=1e-6)


def test_pca_of_columns_in_place_equals_pca_of_their_copy(counts):
    X = log_normalize(counts)
    columns = np.flatnonzero(np.arange(X.shape[1]) % 4 != 0)
    copied_scores, copied = pca(X[:, columns], n_comps=10, seed=3)
    scores, fit = pca(X, n_comps=10, seed=3, columns=columns)
    np.testing.assert_array_equal(scores, copied_scores)
    np.testing.assert_array_equal(fit.components, copied.components)
    np.testing.assert_array_equal(fit.transform(X, columns), copied.transform(X[:, columns]))


def test_blocked_projection_equals_one_float64_product(counts):
    X = log_normalize(counts)
    scores, fit = pca(X, n_comps=5, seed=0)
    M = (fit.components * fit.scale[None, :]).T
    direct = (X.astype(np.float64) @ M) - ((fit.mean * fit.scale) @ fit.components.T)[None, :]
    np.testing.assert_array_equal(scores, direct.astype(np.float32))
