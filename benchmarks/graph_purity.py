"""How often scHelix's neighbour graph joins cells of the same type, built on the Anchor stream's
scaled PCs, on PCs of the Anchor genes' unscaled log expression (``scale_graph_pcs=False``, the
default) or of their cosine-normalised log expression (``cosine_graph=True``).

The graph decides what diffusion averages and which cells the contrast treats as positives, so an
edge between two types blurs them before training starts. For each dataset and partition seed this
writes the weighted share of same-type edges, over all edges and over the cross-batch ones, and
the correlation of the two cells' log depth over the edges, to
``benchmarks/results/graph_purity.csv``. No training: partition (the benchmark's), PCA, Harmony,
graph.

    python benchmarks/graph_purity.py --datasets kang_ifnb_pbmc baron_pancreas_mouse --seeds 0 1 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def same_type_shares(A, labels: np.ndarray, batches: np.ndarray) -> dict:
    """Weighted share of a graph's edges that join cells of one type: all edges, cross-batch edges."""
    import scipy.sparse as sp

    A = sp.coo_matrix(A)
    same = labels[A.row] == labels[A.col]
    cross = batches[A.row] != batches[A.col]
    return {"same_type_share": float(A.data[same].sum() / A.data.sum()),
            "same_type_share_cross_batch": float(A.data[same & cross].sum() / A.data[cross].sum())}


def depth_correlation(A, log_depth: np.ndarray) -> float:
    """Pearson correlation of the two ends' log depth over a graph's edges (1: cells neighbour
    cells of their own depth)."""
    import scipy.sparse as sp

    A = sp.coo_matrix(A)
    return float(np.corrcoef(log_depth[A.row], log_depth[A.col])[0, 1])


GRAPHS = ({"scale_graph_pcs": True, "cosine_graph": False}, {"scale_graph_pcs": False, "cosine_graph": False},
          {"scale_graph_pcs": False, "cosine_graph": True})


def run(results: Path, dataset: str, seed: int) -> list[dict]:
    import anndata as ad
    import torch

    from schelix_core import SCHelix

    pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
    roles = pd.read_parquet(results / dataset / "partition" / f"seed{seed}.parquet").set_index("gene")["role"]
    labels = np.asarray(pre.obs["cell_type"].astype(str))
    log_depth = np.log1p(np.asarray(pre.layers["counts"].sum(axis=1)).ravel())
    rows = []
    for params in GRAPHS:
        model = SCHelix(pre, batch_key="batch", layer="counts", partition=roles, **params)
        model._prepare(seed, torch.device("cpu"))
        rows.append({"dataset": dataset, "seed": seed, **params,
                     **same_type_shares(model._graph, labels, model._batch_codes),
                     "depth_correlation": depth_correlation(model._graph, log_depth)})
    return rows


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from probe_cli import probe_table

    table = probe_table(argv, __doc__.splitlines()[0], "graph_purity.csv", run)
    print(table.groupby(["dataset", "scale_graph_pcs", "cosine_graph"])[
        ["same_type_share", "same_type_share_cross_batch", "depth_correlation"]].mean().round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
