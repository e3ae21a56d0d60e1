"""Input validation for scHelix.

Every problem with the user's data raises :class:`SCHelixInputError` (a ``ValueError``)
whose message names the problem and, where possible, how to fix it. Checks work on
sparse and dense matrices of any numeric dtype and never densify a sparse matrix.
"""

from __future__ import annotations

import difflib

import numpy as np
import scipy.sparse as sp

#: Minimum number of cells scHelix accepts (the kNN graph needs a few dozen cells).
MIN_CELLS = 50


class SCHelixInputError(ValueError):
    """Raised when the input AnnData cannot be integrated by scHelix."""


def get_counts(adata, layer=None):
    """Return the count matrix (``adata.layers[layer]`` or ``adata.X``)."""
    if layer is None:
        X = adata.X
        where = "adata.X"
    else:
        if layer not in adata.layers:
            close = difflib.get_close_matches(str(layer), list(adata.layers.keys()), n=1)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise SCHelixInputError(
                f"layer '{layer}' not found in adata.layers (available: "
                f"{sorted(adata.layers.keys())}).{hint}"
            )
        X = adata.layers[layer]
        where = f"adata.layers['{layer}']"
    if X is None:
        raise SCHelixInputError(f"{where} is empty (None); scHelix needs raw counts")
    return X, where


def _values(X):
    """Stored values without densifying (sparse ``.data`` or the dense array)."""
    if sp.issparse(X):
        return np.asarray(X.data)
    if hasattr(X, "toarray") and not isinstance(X, np.ndarray):  # backed / other arrays
        X = X.toarray()
    return np.asarray(X)


def _sums(X, axis):
    s = X.sum(axis=axis)
    return np.asarray(s).ravel()


def _check_key(adata, key, what):
    if key is None:
        raise SCHelixInputError(f"{what} key must be given (a column of adata.obs)")
    if key not in adata.obs.columns:
        close = difflib.get_close_matches(str(key), [str(c) for c in adata.obs.columns], n=1, cutoff=0.4)
        hint = f" Did you mean '{close[0]}'?" if close else ""
        raise SCHelixInputError(
            f"{what} key '{key}' not found in adata.obs (columns: {list(adata.obs.columns)}).{hint}"
        )
    col = adata.obs[key]
    if col.isna().any():
        raise SCHelixInputError(
            f"{what} key '{key}' has {int(col.isna().sum())} missing (NaN) values; "
            "fill or drop those cells first"
        )
    return col


def validate_counts(adata, batch_key, layer=None, labels_key=None, min_cells: int = MIN_CELLS):
    """Check that ``adata`` holds raw counts scHelix can integrate.

    Raises :class:`SCHelixInputError` naming the first problem found.
    """
    if adata is None or not hasattr(adata, "obs") or not hasattr(adata, "var"):
        raise SCHelixInputError("expected an AnnData object")
    n_obs, n_vars = adata.n_obs, adata.n_vars
    if n_obs == 0 or n_vars == 0:
        raise SCHelixInputError(f"empty matrix: {n_obs} cells x {n_vars} genes")

    batches = _check_key(adata, batch_key, "batch")
    n_batches = batches.astype(str).nunique()
    if n_batches < 2:
        raise SCHelixInputError(
            f"only a single batch found in adata.obs['{batch_key}'] "
            f"({batches.astype(str).iloc[0]!r}); integration needs at least 2 batches"
        )
    if labels_key is not None:
        labels = _check_key(adata, labels_key, "labels")
        if labels.astype(str).nunique() < 2:
            raise SCHelixInputError(
                f"labels key '{labels_key}' has a single label ({labels.astype(str).iloc[0]!r}); "
                "it needs at least 2 labels to be useful (or pass labels_key=None)"
            )

    if not adata.obs_names.is_unique:
        dup = adata.obs_names[adata.obs_names.duplicated()][:3].tolist()
        raise SCHelixInputError(f"duplicate obs names (cell ids), e.g. {dup}; call adata.obs_names_make_unique()")
    if not adata.var_names.is_unique:
        dup = adata.var_names[adata.var_names.duplicated()][:3].tolist()
        raise SCHelixInputError(f"duplicate var names (gene ids), e.g. {dup}; call adata.var_names_make_unique()")

    X, where = get_counts(adata, layer)
    if X.shape != (n_obs, n_vars):
        raise SCHelixInputError(f"{where} has shape {X.shape}, expected {(n_obs, n_vars)}")
    vals = _values(X)
    if not np.issubdtype(vals.dtype, np.number) or np.issubdtype(vals.dtype, np.complexfloating):
        raise SCHelixInputError(f"{where} has non-numeric dtype {vals.dtype}")
    if vals.size == 0 or (sp.issparse(X) and X.nnz == 0):
        raise SCHelixInputError(f"{where} is empty: it has no non-zero values")
    if np.issubdtype(vals.dtype, np.floating):
        if not np.isfinite(vals).all():
            n_bad = int((~np.isfinite(vals)).sum())
            raise SCHelixInputError(f"{where} contains {n_bad} NaN or infinite values")
    if (vals < 0).any():
        raise SCHelixInputError(
            f"{where} contains negative values (min {vals.min()}); scHelix needs raw counts, "
            "not scaled or centred data"
        )
    if np.issubdtype(vals.dtype, np.floating):
        # Check integrality on a bounded sample (fast at any size).
        sample = vals if vals.size <= 2_000_000 else vals[:: max(1, vals.size // 2_000_000)]
        nonint = np.abs(sample - np.round(sample)) > 1e-3
        if nonint.any():
            vmax = float(sample.max())
            kind = "log-normalised" if vmax < 20 else "normalised"
            raise SCHelixInputError(
                f"{where} does not look like raw counts: {nonint.mean():.1%} of stored values are "
                f"non-integer (max {vmax:.3g}; looks {kind}). Pass raw counts, e.g. layer='counts'"
            )
    if float(vals.max()) == 0:
        raise SCHelixInputError(f"{where} is empty: all values are zero")

    cell_tot = _sums(X, 1)
    if (cell_tot == 0).any():
        n = int((cell_tot == 0).sum())
        raise SCHelixInputError(
            f"{n} cells have no counts (e.g. {adata.obs_names[cell_tot == 0][0]!r}); "
            "filter them first, e.g. sc.pp.filter_cells(adata, min_counts=1)"
        )
    gene_tot = _sums(X, 0)
    if (gene_tot == 0).any():
        n = int((gene_tot == 0).sum())
        raise SCHelixInputError(
            f"{n} genes have no counts (e.g. {adata.var_names[gene_tot == 0][0]!r}); "
            "filter them first, e.g. sc.pp.filter_genes(adata, min_counts=1)"
        )
    if n_obs < min_cells:
        raise SCHelixInputError(
            f"too few cells for the kNN graph: {n_obs} < {min_cells}; scHelix needs at least {min_cells}"
        )
    counts = batches.astype(str).value_counts()
    if counts.min() < 3:
        raise SCHelixInputError(
            f"batch '{counts.idxmin()}' has only {int(counts.min())} cells; every batch needs at least 3 "
            "cells for the graph (drop it or merge it)"
        )
    if n_vars < 10:
        raise SCHelixInputError(f"too few genes: {n_vars}; scHelix needs at least 10")
    return X
