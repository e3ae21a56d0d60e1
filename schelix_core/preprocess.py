"""Shared numeric helpers: log-normalisation and a sparse-friendly PCA."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


#: Rows per block where a whole-matrix temporary (such as X squared) would double the memory.
ROW_BLOCK = 4096


def row_blocks(n: int, size: int = ROW_BLOCK):
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def log_normalize(X, target_sum: float = 1e4):
    """log1p(normalize_total(X, target_sum)) as float32 CSR (sparse in, sparse out)."""
    if not sp.issparse(X):
        X = sp.csr_matrix(np.asarray(X))
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    tot = np.asarray(X.sum(axis=1)).ravel()
    tot[tot == 0] = 1.0
    scale = (target_sum / tot).astype(np.float32)
    for rows in row_blocks(X.shape[0]):  # in place: a per-value scale vector would be as big as X
        start, end = X.indptr[rows.start], X.indptr[rows.stop]
        X.data[start:end] *= np.repeat(scale[rows], np.diff(X.indptr[rows.start : rows.stop + 1]))
    np.log1p(X.data, out=X.data)
    return X


def cosine_normalize(X):
    """Rows of a CSR matrix rescaled to the median row norm (fastMNN's cosine normalisation):
    neighbours are then picked by a profile's direction, not by its length, which grows with
    the genes a cell's depth lets it detect. All-zero rows stay zero."""
    X = sp.csr_matrix(X, dtype=np.float32, copy=True)
    norms = np.empty(X.shape[0], dtype=np.float32)
    for rows in row_blocks(X.shape[0]):  # block by block: X squared would double the memory
        block = X[rows]
        norms[rows] = np.sqrt(np.asarray(block.multiply(block).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    scale = (np.median(norms) / norms).astype(np.float32)
    X.data *= np.repeat(scale, np.diff(X.indptr))
    return X


def gene_mean_var(X):
    """Per-gene mean and (population) variance of a sparse or dense matrix, one row block at a
    time so that squaring never copies the whole matrix."""
    n, p = X.shape
    total, total_sq = np.zeros(p), np.zeros(p)
    for rows in row_blocks(n):
        block = X[rows]
        if sp.issparse(block):
            total += np.asarray(block.sum(axis=0, dtype=np.float64)).ravel()
            total_sq += np.asarray(block.multiply(block).sum(axis=0, dtype=np.float64)).ravel()
        else:
            block = np.asarray(block, dtype=np.float64)
            total += block.sum(axis=0)
            total_sq += (block**2).sum(axis=0)
    mean = total / n
    return mean, np.maximum(total_sq / n - mean**2, 0.0)


def grouped_sums(M, X):
    """``M @ X`` and ``M @ X**2`` as dense float64 (M: groups x cells), one row block of X at
    a time, so neither X squared nor a row subset of X is ever held whole."""
    M = sp.csc_matrix(M)
    S = np.zeros((M.shape[0], X.shape[1]))
    Q = np.zeros_like(S)
    for rows in row_blocks(X.shape[0]):
        Mb, block = M[:, rows], X[rows]
        if sp.issparse(block):
            S += (Mb @ block).toarray()
            Q += (Mb @ block.multiply(block)).toarray()
        else:
            block = np.asarray(block, dtype=np.float64)
            S += Mb @ block
            Q += Mb @ block**2
    return S, Q


def _widen(M, columns, n_columns):
    """Rows of ``M`` placed at ``columns`` of an all-zero (n_columns x m) matrix."""
    if len(columns) == n_columns and np.array_equal(columns, np.arange(n_columns)):
        return M
    full = np.zeros((n_columns, M.shape[1]), dtype=M.dtype)
    full[columns] = M
    return full


@dataclass
class PCAFit:
    components: np.ndarray  # (k, genes)
    mean: np.ndarray  # (genes,)
    scale: np.ndarray  # (genes,) multiplier applied after centring

    def transform(self, X, columns=None):
        """Scores of ``X`` (or of ``X[:, columns]``, uncopied) in float64 arithmetic, one row block
        at a time: a float32 sparse X times a float64 matrix makes scipy copy X to float64 first."""
        M = (self.components * self.scale[None, :]).T  # genes x k (float64)
        if columns is not None:
            M = _widen(M, np.asarray(columns), X.shape[1])
        offset = ((self.mean * self.scale) @ self.components.T)[None, :]
        out = np.empty((X.shape[0], M.shape[1]), dtype=np.float32)
        for rows in row_blocks(X.shape[0]):
            out[rows] = np.asarray(X[rows] @ M, dtype=np.float64) - offset
        return out


def pca(X, n_comps: int = 50, scale: bool = True, seed: int = 0, n_iter: int = 4, max_scale: float = 10.0,
        columns=None):
    """Randomised PCA of ``X`` with implicit centring (never densifies a sparse ``X``).

    Genes are optionally scaled to unit variance (genes of zero variance get weight 0).
    ``columns`` gives the PCA of ``X[:, columns]`` without copying those columns out of X
    (worth it when they are most of X; each product then spans all of X's columns).
    Returns ``(scores, PCAFit)``; signs are fixed for determinism.
    """
    cols = np.arange(X.shape[1]) if columns is None else np.asarray(columns)
    n, p = X.shape[0], len(cols)
    k = int(max(1, min(n_comps, n - 1, p - 1)))
    mean, var = (stat[cols] for stat in gene_mean_var(X))
    if scale:
        sd = np.sqrt(var)
        d = np.where(sd > 0, 1.0 / np.maximum(sd, 1e-12), 0.0)
        d = np.minimum(d, max_scale)  # avoid blowing up near-constant genes
    else:
        d = np.ones(p)
    rng = np.random.default_rng(seed)
    ell = min(p, k + 10)

    def right(M):  # Y @ M with Y = (X[:, cols] - 1 mean^T) diag(d); M is p x l
        DM = d[:, None] * M
        return np.asarray(X @ _widen(DM, cols, X.shape[1]).astype(np.float32), dtype=np.float64) - (mean @ DM)[None, :]

    def left(Q):  # Y^T @ Q, Q is n x l -> p x l
        XtQ = np.asarray(X.T @ Q.astype(np.float32), dtype=np.float64)[cols]
        return d[:, None] * (XtQ - np.outer(mean, Q.sum(axis=0)))

    Q, _ = np.linalg.qr(right(rng.standard_normal((p, ell))))
    for _ in range(n_iter):
        Z, _ = np.linalg.qr(left(Q))
        Q, _ = np.linalg.qr(right(Z))
    B = left(Q).T  # ell x p
    Ub, S, Vt = np.linalg.svd(B, full_matrices=False)
    V = Vt[:k]
    signs = np.sign(V[np.arange(k), np.abs(V).argmax(axis=1)])
    signs[signs == 0] = 1
    V = V * signs[:, None]
    fit = PCAFit(components=V, mean=mean, scale=d)
    # exact projection (identical code path to transform(), so refits and reloads agree)
    return fit.transform(X, columns), fit
