"""Batch-balanced kNN graph (built on Harmony-corrected Anchor PCs by the model) and cached
multi-scale sparse diffusion.

``A_hat = D^-1/2 (A + I) D^-1/2`` is built once as a torch sparse tensor; per stream the
multi-scale features ``H^(k) = A_hat^k X_s`` (SIGN-style) are computed once under
``torch.no_grad`` and cached, so training itself needs no graph operations.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

EXACT_KNN_MAX_CELLS = 50_000
# Each batch's index is queried with every cell, most of them from other batches and so off the
# index's own manifold; pynndescent's defaults (15 neighbours, epsilon 0.1) found only 68% of
# those cells' true neighbours at 100k simulated cells, these settings 97% (own batch: 100%).
ANN_INDEX_NEIGHBOURS = 30
ANN_QUERY_EPSILON = 0.3


def _knn_within(Xref, Xq, k, seed=0, exclude_self_idx=None):
    """k nearest neighbours of each query row among the reference rows."""
    k = int(min(k, Xref.shape[0] - (1 if exclude_self_idx is not None else 0)))
    if k <= 0:
        return np.zeros((Xq.shape[0], 0), dtype=np.int64)
    if max(Xref.shape[0], Xq.shape[0]) <= EXACT_KNN_MAX_CELLS:
        from sklearn.neighbors import NearestNeighbors

        extra = 1 if exclude_self_idx is not None else 0
        nn = NearestNeighbors(n_neighbors=k + extra).fit(Xref)
        _, ind = nn.kneighbors(Xq)
    else:
        import pynndescent

        extra = 1 if exclude_self_idx is not None else 0
        index = pynndescent.NNDescent(Xref, n_neighbors=max(ANN_INDEX_NEIGHBOURS, k + extra), random_state=seed,
                                      n_jobs=1)
        ind, _ = index.query(Xq, k=k + extra, epsilon=ANN_QUERY_EPSILON)
    if exclude_self_idx is not None:
        # drop self matches (query i is reference exclude_self_idx[i]); keep first k others
        out = np.empty((Xq.shape[0], k), dtype=np.int64)
        for r in range(Xq.shape[0]):
            row = ind[r][ind[r] != exclude_self_idx[r]][:k]
            if len(row) < k:  # pragma: no cover
                row = np.concatenate([row, np.full(k - len(row), row[-1] if len(row) else 0)])
            out[r] = row
        return out
    return ind.astype(np.int64)


def batch_balanced_knn(emb, batch_codes, k: int = 15, seed: int = 0):
    """BBKNN-style graph: each cell gets ~k/n_batches neighbours from every batch, also where its
    type is missing from that batch (a known weakness on batch-unique types: docs/benchmark_analyses.md).

    Returns a symmetric binary CSR adjacency without self loops.
    """
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    n = emb.shape[0]
    batches = np.unique(batch_codes)
    k_per = max(1, int(round(k / len(batches))))
    rows, cols = [], []
    all_idx = np.arange(n)
    for b in batches:
        ref = np.flatnonzero(batch_codes == b)
        if len(ref) < 2:
            continue
        # self exclusion applies to queries within batch b
        self_map = np.full(n, -1, dtype=np.int64)
        self_map[ref] = np.arange(len(ref))
        kk = min(k_per, len(ref) - 1)
        if kk <= 0:
            continue
        local = _knn_within(emb[ref], emb, kk + 1, seed=seed)
        # vectorised self removal (queries in batch b): push self hits last, keep kk
        is_self = local == self_map[:, None]
        order = np.argsort(is_self, axis=1, kind="stable")
        local = np.take_along_axis(local, order, axis=1)[:, :kk]
        rows.append(np.repeat(all_idx, kk))
        cols.append(ref[local.ravel()])
    r = np.concatenate(rows)
    c = np.concatenate(cols)
    A = sp.csr_matrix((np.ones(len(r), dtype=np.float32), (r, c)), shape=(n, n))
    A = A.maximum(A.T).tocsr()
    A.setdiag(0)
    A.eliminate_zeros()
    A.data[:] = 1.0
    return A


def graph_communities(A, resolution: float = 1.0, seed: int = 0) -> np.ndarray:
    """Leiden communities of a graph. On a batch-balanced graph every cell links to every
    batch, so communities group similar cells across batches rather than by batch."""
    import igraph as ig
    import leidenalg

    upper = sp.triu(A, k=1).tocoo()
    g = ig.Graph(n=A.shape[0], edges=np.column_stack([upper.row, upper.col]).tolist(), directed=False)
    part = leidenalg.find_partition(g, leidenalg.RBConfigurationVertexPartition,
                                    resolution_parameter=float(resolution), seed=int(seed))
    return np.asarray(part.membership, dtype=np.int64)


def normalized_adjacency(A):
    """A_hat = D^-1/2 (A + I) D^-1/2 as scipy CSR (float32)."""
    n = A.shape[0]
    A1 = (A + sp.eye(n, dtype=np.float32, format="csr")).tocsr()
    deg = np.asarray(A1.sum(axis=1)).ravel()
    dinv = 1.0 / np.sqrt(deg)
    D = sp.diags(dinv.astype(np.float32))
    return (D @ A1 @ D).tocsr().astype(np.float32)


def to_torch_sparse(M):
    import torch

    M = M.tocoo()
    idx = torch.from_numpy(np.vstack([M.row, M.col]).astype(np.int64))
    val = torch.from_numpy(M.data.astype(np.float32))
    return torch.sparse_coo_tensor(idx, val, size=M.shape, check_invariants=False).coalesce()


def diffuse(A_hat_t, X, scales=(0, 1, 2, 4)):
    """Multi-scale features [A_hat^k X for k in scales], computed once without gradients.

    ``A_hat_t`` is a torch sparse tensor, ``X`` a torch dense tensor or numpy array.
    Returns a list of dense tensors (requires_grad False), in the order of ``scales``.
    """
    import torch

    scales = tuple(int(s) for s in scales)
    if any(s < 0 for s in scales):
        raise ValueError("diffusion scales must be >= 0")
    with torch.no_grad():
        H = torch.as_tensor(np.asarray(X), dtype=torch.float32) if not torch.is_tensor(X) else X.float()
        H = H.detach()
        out = {}
        cur = H
        for step in range(max(scales) + 1):
            if step in scales:
                out[step] = cur.clone()
            if step < max(scales):
                cur = torch.sparse.mm(A_hat_t, cur)
        feats = [out[s] for s in scales]
    for f in feats:
        f.requires_grad_(False)
    return feats
