"""Which cell types scIB's isolated-label score looks at, and where each method puts them.

scib-metrics scores the types present in the fewest batches by their cells' mean silhouette
(rescaled to [0, 1]). For each such type this writes, per method and seed, its size, its batches,
its mean silhouette and the type whose centroid is nearest in the method's embedding
(``benchmarks/results/isolated_labels.csv``). Reads the workflow's embeddings; no training.

    python benchmarks/isolated_labels.py --datasets results_benchmark/sim_disjoint_rare \
        results_heldout/heldout_six_batches
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
METHODS = ("schelix", "schelix_no_diffusion", "schelix_no_refine", "schelix_no_partition", "scvi", "scanorama",
           "harmony", "unintegrated")


def isolated_types(cell_types: np.ndarray, batches: np.ndarray) -> list[str]:
    """Types present in the fewest batches (scib-metrics' definition without a threshold)."""
    n_batches = pd.crosstab(cell_types, batches).gt(0).sum(axis=1)
    return sorted(n_batches.index[n_batches == n_batches.min()])


def describe(emb: np.ndarray, cell_types: np.ndarray, types: list[str]) -> list[dict]:
    from sklearn.metrics import silhouette_samples

    silhouette = silhouette_samples(emb, cell_types)
    centroids = {t: emb[cell_types == t].mean(axis=0) for t in np.unique(cell_types)}
    rows = []
    for t in types:
        others = {u: float(np.linalg.norm(centroids[t] - c)) for u, c in centroids.items() if u != t}
        rows.append({"cell_type": t, "silhouette": float(silhouette[cell_types == t].mean()),
                     "nearest_type": min(others, key=others.get)})
    return rows


def main(argv=None) -> int:
    import anndata as ad

    from schelix_core.benchmark.workflow_io import write_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", required=True, help="results_dir/dataset folders")
    parser.add_argument("--methods", nargs="+", default=list(METHODS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "isolated_labels.csv"))
    args = parser.parse_args(argv)
    rows = []
    for folder in map(Path, args.datasets):
        pre = ad.read_h5ad(folder / "preprocessed.h5ad")
        cell_types = np.asarray(pre.obs["cell_type"].astype(str))
        batches = np.asarray(pre.obs["batch"].astype(str))
        types = isolated_types(cell_types, batches)
        counts = pd.crosstab(cell_types, batches)
        for method in args.methods:
            for seed in args.seeds:
                emb = ad.read_h5ad(folder / "integrated" / method / f"seed{seed}.h5ad").obsm["X_emb"]
                for row in describe(np.asarray(emb), cell_types, types):
                    t = row["cell_type"]
                    rows.append({"dataset": folder.name, "method": method, "seed": seed, **row,
                                 "n_cells": int(counts.loc[t].sum()), "n_batches": int(counts.loc[t].gt(0).sum())})
    table = pd.DataFrame(rows)
    write_atomic(Path(args.out), lambda tmp: table.round(4).to_csv(tmp, index=False))
    print(table.groupby(["dataset", "cell_type", "n_cells", "n_batches", "method"])
          .agg(silhouette=("silhouette", "mean"), nearest=("nearest_type", lambda s: s.mode().iloc[0]))
          .round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
