"""Negative-binomial simulator of multi-batch scRNA-seq counts.

Built so that integration methods can be checked against known truth: cell types of
uneven sizes, batches whose composition differs (types missing from some batches), and
gene-specific batch effects in which a minority of genes carries most of the batch
effect. ``var["batch_affected"]`` records those genes so a gene partition can be scored.
"""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp


def simulate(
    n_cells: int = 3000,
    n_genes: int = 1000,
    n_batches: int = 3,
    n_cell_types: int = 8,
    seed: int = 0,
    frac_batch_genes: float = 0.1,
    batch_effect_strong: float = 0.7,
    batch_effect_weak: float = 0.05,
    frac_marker_genes: float = 0.06,
    marker_effect: float = 1.0,
    library_size_mean: float = 2500.0,
    library_size_batch_sd: float = 0.3,
    missing_types_per_batch: int = 1,
    rare_type_frac: float = 0.02,
    dispersion: float = 5.0,
    n_mito_genes: int = 10,
    shared_composition: bool = False,
) -> ad.AnnData:
    """Simulate raw counts with ``obs["batch"]``, ``obs["cell_type"]`` and the true batch genes.

    Cell-type sizes follow a geometric-like decay, with the last type rare
    (``rare_type_frac``). Each batch lacks ``missing_types_per_batch`` types (never the
    largest, and every type stays in at least one batch). A fraction ``frac_batch_genes``
    of genes gets a per-batch log fold change of sd ``batch_effect_strong``; all other genes
    get one of sd ``batch_effect_weak``. Libraries differ in depth between batches.
    Batches also differ in how common each type is, unless ``shared_composition``: then every
    batch draws its cells from the same proportions, as in a stimulation split of one sample.
    """
    if n_batches < 2:
        raise ValueError("simulate: n_batches must be at least 2")
    if n_cell_types < 2:
        raise ValueError("simulate: n_cell_types must be at least 2")
    if not 0 <= frac_batch_genes < 1:
        raise ValueError("simulate: frac_batch_genes must be in [0, 1)")
    rng = np.random.default_rng(seed)

    # Composition: uneven type sizes, the last type rare, some types missing per batch.
    weights = 0.7 ** np.arange(n_cell_types)
    weights[-1] = 0.0
    weights = weights / weights.sum() * (1 - rare_type_frac)
    weights[-1] = rare_type_frac
    present = np.ones((n_batches, n_cell_types), dtype=bool)
    if missing_types_per_batch > 0:
        for b in range(n_batches):
            candidates = rng.permutation(np.arange(1, n_cell_types))
            dropped = 0
            for t in candidates:
                if dropped >= missing_types_per_batch:
                    break
                if present[:, t].sum() > 1:  # keep every type in at least one batch
                    present[b, t] = False
                    dropped += 1
    batch_sizes = rng.multinomial(n_cells, np.full(n_batches, 1 / n_batches))
    batch_of_cell, type_of_cell = [], []
    for b in range(n_batches):
        p = weights * present[b]
        p = p / p.sum()
        if not shared_composition:  # batches also differ in how common each present type is
            p = rng.dirichlet(p * 50 + 1e-3) * present[b]
            p = p / p.sum()
        types = rng.choice(n_cell_types, size=batch_sizes[b], p=p)
        batch_of_cell.append(np.full(batch_sizes[b], b))
        type_of_cell.append(types)
    batch_of_cell = np.concatenate(batch_of_cell)
    type_of_cell = np.concatenate(type_of_cell)

    # Gene programmes: baseline, cell-type markers, batch effects.
    base = rng.normal(np.log(1.0 / n_genes), 1.0, size=n_genes)
    type_lfc = np.zeros((n_cell_types, n_genes))
    n_markers = max(1, int(round(frac_marker_genes * n_genes)))
    for t in range(n_cell_types):
        markers = rng.choice(n_genes, size=n_markers, replace=False)
        type_lfc[t, markers] = rng.normal(marker_effect, 0.5, size=n_markers) * rng.choice(
            [1, 1, 1, -1], size=n_markers
        )
    n_batch_genes = int(round(frac_batch_genes * n_genes))
    batch_genes = np.zeros(n_genes, dtype=bool)
    batch_genes[rng.choice(n_genes, size=n_batch_genes, replace=False)] = True
    batch_lfc = rng.normal(0.0, batch_effect_weak, size=(n_batches, n_genes))
    batch_lfc[:, batch_genes] = rng.normal(0.0, batch_effect_strong, size=(n_batches, n_batch_genes))
    batch_lfc -= batch_lfc.mean(axis=0, keepdims=True)

    log_mu = base[None, :] + type_lfc[type_of_cell] + batch_lfc[batch_of_cell]
    log_mu -= np.log(np.exp(log_mu).sum(axis=1, keepdims=True))
    depth_shift = rng.normal(0.0, library_size_batch_sd, size=n_batches)
    lib = np.exp(rng.normal(np.log(library_size_mean) + depth_shift[batch_of_cell], 0.35))
    mu = np.exp(log_mu) * lib[:, None]
    # Gamma-Poisson mixture = negative binomial with mean mu and inverse dispersion theta.
    lam = rng.gamma(shape=dispersion, scale=mu / dispersion)
    counts = rng.poisson(lam).astype(np.float32)

    gene_names = [f"Gene{g:05d}" for g in range(n_genes)]
    for i in range(min(n_mito_genes, n_genes)):
        gene_names[n_genes - 1 - i] = f"MT-Gene{i:02d}"
    obs = pd.DataFrame(
        {
            "batch": pd.Categorical([f"batch{b}" for b in batch_of_cell]),
            "cell_type": pd.Categorical([f"type{t}" for t in type_of_cell]),
        },
        index=[f"cell{i:06d}" for i in range(len(batch_of_cell))],
    )
    var = pd.DataFrame(
        {
            "batch_affected": batch_genes,
            "batch_lfc_sd": batch_lfc.std(axis=0),
            "is_marker": (np.abs(type_lfc) > 0).any(axis=0),
        },
        index=gene_names,
    )
    adata = ad.AnnData(X=sp.csr_matrix(counts), obs=obs, var=var)
    adata.uns["simulation"] = {
        "seed": int(seed),
        "n_cells": int(n_cells),
        "n_genes": int(n_genes),
        "n_batches": int(n_batches),
        "n_cell_types": int(n_cell_types),
        "frac_batch_genes": float(frac_batch_genes),
        "batch_effect_strong": float(batch_effect_strong),
        "batch_effect_weak": float(batch_effect_weak),
        "missing_types_per_batch": int(missing_types_per_batch),
        "rare_type_frac": float(rare_type_frac),
    }
    return adata
