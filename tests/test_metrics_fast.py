"""The metrics job's fast path: scib-metrics without umap/pynndescent at import, and a numpy
``fuzzy_simplicial_set`` that must give umap's connectivities."""

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.neighbors import NearestNeighbors

from schelix_core.benchmark.metrics import fuzzy_simplicial_set


def _knn(n=400, k=30, seed=0, duplicates=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 8)).astype(np.float32)
    X[: duplicates] = X[duplicates : 2 * duplicates]  # exact duplicates give zero distances
    dist, idx = NearestNeighbors(n_neighbors=k).fit(X).kneighbors(X)
    return X, idx, dist.astype(np.float32)


@pytest.mark.parametrize("k,duplicates,local_connectivity", [(15, 0, 1.0), (50, 10, 1.0), (30, 5, 1.5)])
def test_fuzzy_simplicial_set_matches_umap(k, duplicates, local_connectivity):
    from umap.umap_ import fuzzy_simplicial_set as umap_fss

    X, idx, dist = _knn(k=k, seed=k, duplicates=duplicates)
    empty = sp.coo_matrix(([], ([], [])), shape=(X.shape[0], 1))
    kwargs = dict(knn_indices=idx, knn_dists=dist, set_op_mix_ratio=1.0, local_connectivity=local_connectivity)
    ours, sig, rho = fuzzy_simplicial_set(empty, k, None, None, **kwargs)
    theirs, sig_u, rho_u = umap_fss(empty, k, None, None, **kwargs)[:3]
    np.testing.assert_allclose(rho, rho_u, rtol=1e-6)
    np.testing.assert_allclose(sig, sig_u, rtol=1e-4)
    a, b = sp.csr_matrix(ours), sp.csr_matrix(theirs)
    assert (a != 0).toarray().sum() == (b != 0).toarray().sum()
    np.testing.assert_allclose(a.toarray(), b.toarray(), atol=1e-5)


def test_metrics_job_imports_neither_umap_nor_pynndescent():
    code = (
        "import sys, numpy as np\n"
        "from schelix_core.benchmark.metrics import _scib_metrics_embedding\n"
        "rng = np.random.default_rng(0)\n"
        "emb = rng.normal(size=(300, 10)).astype(np.float32)\n"
        "b = np.repeat(['a', 'b'], 150); l = np.tile(['x', 'y', 'z'], 100)\n"
        "v = _scib_metrics_embedding(emb, emb, b, l, 0)\n"
        "assert all(np.isfinite(list(v.values()))), v\n"
        "print(sorted(m for m in ('umap', 'pynndescent') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "[]"


def test_exact_knn_puts_each_cell_at_distance_zero_from_itself():
    """A self distance of ~1e-7 (sklearn's rounding) would become umap's local scale for that cell."""
    from schelix_core.benchmark.metrics import nearest_neighbors

    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 32)).astype(np.float32) * 3
    raw, _ = NearestNeighbors(n_neighbors=20).fit(X).kneighbors(X)
    assert (raw[:, 0] > 0).any()  # the rounding this guards against occurs on such data
    nn = nearest_neighbors(X, 20)
    assert (nn.indices[:, 0] == np.arange(500)).all()
    assert (nn.distances[:, 0] == 0).all()
    exact = np.linalg.norm(X.astype(np.float64)[nn.indices] - X.astype(np.float64)[:, None], axis=2)
    np.testing.assert_allclose(nn.distances, exact, rtol=1e-6)
    assert (np.diff(nn.distances, axis=1) >= 0).all()
