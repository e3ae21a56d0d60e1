"""Does diffusion make the streams' input features better neighbours, before any training?

On Kang diffusion lowers scHelix's total (paired over seeds 0-5, ``ablation_pairs.csv``) while it
raises it on the datasets with larger batch effects. This asks whether the cost is already in the
cached features the encoders read: for each dataset, partition seed, stream and diffusion scale,
the 15 nearest neighbours of every cell in that scale's features (plain kNN, Euclidean), scored by
how many come from another batch relative to that batch's share of the cells (1: mixed as well as
a random draw; 0: none from another batch) and by how many are of the cell's own type. No
training: partition (the benchmark's), PCA, Harmony, graph and diffusion as scHelix builds them.
Writes ``benchmarks/results/diffusion_features.csv``.

    python benchmarks/diffusion_features.py --datasets kang_ifnb_pbmc baron_pancreas_mouse --seeds 0 1 2
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd


def neighbour_scores(features: np.ndarray, batches: np.ndarray, labels: np.ndarray, k: int = 15) -> dict:
    """Batch mixing (other-batch share of a cell's k neighbours over the share a random draw would
    give, averaged over cells) and same-type share of the k nearest neighbours."""
    from sklearn.neighbors import NearestNeighbors

    nbrs = NearestNeighbors(n_neighbors=k + 1).fit(features).kneighbors(features, return_distance=False)
    # the first neighbour of a cell is itself, except among exact duplicates: drop self wherever it is
    nbrs = np.array([row[row != i][:k] for i, row in enumerate(nbrs)])
    _, codes = np.unique(batches, return_inverse=True)
    other_expected = 1.0 - np.bincount(codes)[codes] / len(codes)
    other = (codes[nbrs] != codes[:, None]).mean(axis=1)
    return {"batch_mixing": float(np.mean(other / other_expected)),
            "same_type_share": float(np.mean(labels[nbrs] == labels[:, None]))}


def run(results: Path, dataset: str, seed: int) -> list[dict]:
    import anndata as ad
    import torch

    from schelix_core import SCHelix

    pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
    roles = pd.read_parquet(results / dataset / "partition" / f"seed{seed}.parquet").set_index("gene")["role"]
    labels = np.asarray(pre.obs["cell_type"].astype(str))
    model = SCHelix(pre, batch_key="batch", layer="counts", partition=roles)
    data = model._prepare(seed, torch.device("cpu"))
    rows = []
    for stream, feats in (("anchor", data.feats_a), ("variant", data.feats_v)):
        for scale, features in zip(model._scales, feats or []):
            rows.append({"dataset": dataset, "seed": seed, "stream": stream, "scale": scale,
                         **neighbour_scores(features.numpy(), model._batch_codes, labels)})
    return rows


def main(argv=None) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from probe_cli import probe_table

    table = probe_table(argv, __doc__.splitlines()[0], "diffusion_features.csv", run)
    print(table.groupby(["dataset", "stream", "scale"])[["batch_mixing", "same_type_share"]].mean().round(3)
          .unstack("scale").to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
