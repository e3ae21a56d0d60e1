"""QC and preprocessing shared by every method, so that methods differ only in integration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

QC_REASONS = ("min_counts", "min_genes", "max_pct_mito")


def mito_mask(var_names) -> np.ndarray:
    """Mitochondrial genes by the usual human (MT-) and mouse (mt-) prefixes."""
    names = pd.Index(var_names).astype(str)
    return np.asarray(names.str.startswith("MT-") | names.str.startswith("mt-"))


def qc_filter(adata, batch_key: str, min_genes: int, min_counts: int, max_pct_mito: float, min_cells_per_gene: int):
    """Filter cells, then genes; return the filtered copy and a per-batch table of what was removed.

    A cell failing several filters is counted once, under the first failed filter in
    ``QC_REASONS`` order. The mitochondrial filter applies only where gene names allow it.
    """
    if batch_key not in adata.obs.columns:
        import difflib

        close = difflib.get_close_matches(str(batch_key), [str(c) for c in adata.obs.columns], n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"batch_key {batch_key!r} is not a column of obs{hint}")
    X = adata.X
    counts = np.asarray(X.sum(axis=1)).ravel()
    genes = np.asarray((X > 0).sum(axis=1)).ravel()
    mito = mito_mask(adata.var_names)
    if mito.any():
        pct_mito = 100 * np.asarray(X[:, mito].sum(axis=1)).ravel() / np.maximum(counts, 1)
    else:
        pct_mito = np.zeros(adata.n_obs)
    failed = {
        "min_counts": counts < min_counts,
        "min_genes": genes < min_genes,
        "max_pct_mito": pct_mito > max_pct_mito,
    }
    reason = np.full(adata.n_obs, "", dtype=object)
    for name in reversed(QC_REASONS):
        reason[failed[name]] = name
    keep = reason == ""

    batches = adata.obs[batch_key].astype(str).to_numpy()
    rows = []
    for b in sorted(set(batches)):
        in_b = batches == b
        row = {"batch": b, "n_cells_in": int(in_b.sum())}
        for name in QC_REASONS:
            row[f"removed_{name}"] = int((in_b & (reason == name)).sum())
        row["n_cells_out"] = int((in_b & keep).sum())
        rows.append(row)
    table = pd.DataFrame(rows)

    filtered = adata[keep].copy()
    if filtered.n_obs == 0:
        raise ValueError(f"QC removed every cell (min_genes={min_genes}, min_counts={min_counts}); loosen the filters")
    kept_batches = filtered.obs[batch_key].astype(str).nunique()
    if kept_batches < 2:
        raise ValueError(f"after QC only {kept_batches} batch is left: nothing to integrate; loosen the filters")
    gene_cells = np.asarray((filtered.X > 0).sum(axis=0)).ravel()
    filtered = filtered[:, gene_cells >= min_cells_per_gene].copy()
    filtered.obs[batch_key] = filtered.obs[batch_key].astype(str).astype("category")
    table.attrs["n_genes_in"] = int(adata.n_vars)
    table.attrs["n_genes_out"] = int(filtered.n_vars)
    return filtered, table


#: The seurat_v3 loess (skmisc) crashes the process (segfault) with fewer non-constant genes per batch.
MIN_VARIABLE_GENES_PER_BATCH = 10


def _check_hvg_fit(adata, batch_key: str) -> None:
    """Refuse, with the batch named, data on which the seurat_v3 loess would crash the process."""
    X = sp.csr_matrix(adata.layers["counts"])
    batches = adata.obs[batch_key].astype(str).to_numpy()
    for b in sorted(set(batches)):
        sub = X[batches == b]
        mean = np.asarray(sub.mean(axis=0)).ravel()
        sq = np.asarray(sub.multiply(sub).mean(axis=0)).ravel()
        n_var = int((sq - mean**2 > 1e-12).sum()) if sub.shape[0] > 1 else 0
        if n_var < MIN_VARIABLE_GENES_PER_BATCH:
            raise ValueError(
                f"batch {b!r} has {sub.shape[0]} cells and {n_var} genes that vary across them; HVG selection "
                f"needs at least {MIN_VARIABLE_GENES_PER_BATCH} varying genes in every batch (drop or merge the batch)"
            )


def preprocess(adata, batch_key: str, n_top_genes: int, n_pcs: int, target_sum: float, seed: int = 0):
    """Normalise, log1p, select batch-aware HVGs, PCA. Raw counts stay in ``layers["counts"]``.

    Returns the HVG subset: every method integrates the same genes. When the dataset has no
    more genes than asked for, all genes are kept without the seurat_v3 fit (which fails
    near-singularly in that case on real data).
    """
    import scanpy as sc

    adata = adata.copy()
    if not sp.issparse(adata.X):
        adata.X = sp.csr_matrix(adata.X)
    adata.layers["counts"] = adata.X.copy()
    if adata.n_obs < 3 or adata.n_vars < 2:
        raise ValueError(f"too small to preprocess: {adata.n_obs} cells x {adata.n_vars} genes (PCA needs more)")
    if adata.n_vars > n_top_genes:
        _check_hvg_fit(adata, batch_key)
        try:
            sc.pp.highly_variable_genes(
                adata, n_top_genes=n_top_genes, flavor="seurat_v3", batch_key=batch_key, layer="counts", subset=False
            )
        except ValueError as exc:  # skmisc's loess: "svddc failed in l2fit", "near singularities", ...
            raise ValueError(
                f"seurat_v3 HVG selection failed (its per-batch loess fit of variance on mean is singular: "
                f"too few cells or too uniform genes in a batch): {exc}"
            ) from exc
    else:
        adata.var["highly_variable"] = True
    sc.pp.normalize_total(adata, target_sum=target_sum)
    sc.pp.log1p(adata)
    adata = adata[:, adata.var["highly_variable"].to_numpy()].copy()
    n_comps = int(min(n_pcs, adata.n_vars - 1, adata.n_obs - 1))
    sc.pp.pca(adata, n_comps=n_comps, random_state=seed)
    adata.uns["preprocess"] = {
        "n_top_genes": int(n_top_genes),
        "n_hvg": int(adata.n_vars),
        "n_pcs": n_comps,
        "target_sum": float(target_sum),
        "seed": int(seed),
    }
    return adata
