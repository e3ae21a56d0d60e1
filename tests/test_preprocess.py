import numpy as np
import pytest
import scipy.sparse as sp

from schelix_core.benchmark.preprocess import mito_mask, preprocess, qc_filter
from schelix_core.simulate import simulate


def test_qc_table_accounts_for_every_cell(small_counts):
    filtered, table = qc_filter(small_counts, "batch", min_genes=150, min_counts=300, max_pct_mito=5, min_cells_per_gene=3)
    removed = table[[c for c in table.columns if c.startswith("removed_")]].sum(axis=1)
    assert (table["n_cells_in"] == removed + table["n_cells_out"]).all()
    assert table["n_cells_out"].sum() == filtered.n_obs
    assert table["n_cells_in"].sum() == small_counts.n_obs


def test_qc_removes_low_quality_cells_and_rare_genes():
    adata = simulate(n_cells=300, n_genes=200, seed=0)
    X = adata.X.tolil()
    X[0, :] = 0
    X[1, :] = 0
    X[1, 0] = 1  # one count: fails min_counts
    X[:, 5] = 0  # a gene seen nowhere
    adata.X = X.tocsr()
    filtered, table = qc_filter(adata, "batch", min_genes=10, min_counts=50, max_pct_mito=100, min_cells_per_gene=1)
    assert adata.obs_names[0] not in filtered.obs_names and adata.obs_names[1] not in filtered.obs_names
    assert adata.var_names[5] not in filtered.var_names
    assert table["removed_min_counts"].sum() == 2


def test_mito_filter_uses_gene_names():
    adata = simulate(n_cells=200, n_genes=100, n_mito_genes=5, seed=0)
    assert mito_mask(adata.var_names).sum() == 5
    X = adata.X.toarray()
    X[:10, -5:] = X[:10].sum(axis=1, keepdims=True)  # mitochondrial share far above the rest
    adata.X = sp.csr_matrix(X)
    _, table = qc_filter(adata, "batch", min_genes=0, min_counts=0, max_pct_mito=30, min_cells_per_gene=0)
    assert table["removed_max_pct_mito"].sum() >= 10


def test_qc_that_leaves_one_batch_is_an_error(small_counts):
    with pytest.raises(ValueError, match="removed every cell"):
        qc_filter(small_counts, "batch", min_genes=10**6, min_counts=0, max_pct_mito=100, min_cells_per_gene=0)


def test_preprocess_keeps_counts_and_selects_hvgs(small_counts):
    out = preprocess(small_counts, "batch", n_top_genes=150, n_pcs=20, target_sum=1e4)
    assert out.n_vars == 150 and out.obsm["X_pca"].shape == (small_counts.n_obs, 20)
    counts = out.layers["counts"]
    original = small_counts[:, out.var_names].X
    assert (counts != original).nnz == 0, "raw counts are kept untouched"
    assert np.allclose(np.expm1(out.X[:3].toarray()).sum(axis=1), 1e4 * out.layers["counts"][:3].sum(axis=1).A1 / small_counts.X[:3].sum(axis=1).A1, rtol=1e-3)


def test_preprocess_keeps_all_genes_when_fewer_than_requested(small_counts):
    out = preprocess(small_counts, "batch", n_top_genes=10_000, n_pcs=10, target_sum=1e4)
    assert out.n_vars == small_counts.n_vars
