"""How much sklearn's rounded self distances moved kBET, before the metrics took exact distances.

The metrics' exact kNN used to keep sklearn's distances, where a cell's distance to itself is 0
or about 1e-7 depending on the BLAS code path (it changed after a k-means fit in the same
process), and umap's connectivities, which kBET reads, take a cell's first nonzero distance as its
local scale. This trains the default on the benchmark's data and scores kBET per label on its
embedding three ways: from sklearn's distances as returned, the same after one more k-means fit in
the process (a screen scores many embeddings, and k-means, in one process), and from exact
distances (what the metrics use now). One row per (dataset, seed) goes to
``benchmarks/results/knn_self_distance.csv``.

    python benchmarks/knn_self_distance.py --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def _kbet(neighbours, batches, labels) -> float:
    from schelix_core.benchmark.metrics import import_scib_metrics

    return float(import_scib_metrics().kbet_per_label(neighbours, batches, labels))


def main(argv=None) -> int:
    import anndata as ad
    import pandas as pd
    from sklearn.neighbors import NearestNeighbors

    from schelix_core.benchmark import metrics
    from sweep_defaults import DATASETS, _append_csv, benchmark_roles, code_version, trained

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results_benchmark"), help="the benchmark's results_dir")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "knn_self_distance.csv"))
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # scib-metrics logs every skipped label
    scib_metrics = metrics.import_scib_metrics()
    metrics._use_fast_neighbors_in_scib_metrics()
    k = 50  # the neighbours kBET is scored on in the workflow
    rows = []
    for dataset in args.datasets.split(","):
        pre = ad.read_h5ad(Path(args.results) / dataset / "preprocessed.h5ad")
        batches = pre.obs["batch"].astype(str).to_numpy()
        labels = pre.obs["cell_type"].astype(str).to_numpy()
        for seed in (int(s) for s in args.seeds.split(",")):
            z = trained(pre, benchmark_roles(Path(args.results), dataset, seed), seed, {}).get_latent_representation()

            def rounded():
                dist, idx = NearestNeighbors(n_neighbors=k).fit(z).kneighbors(z)
                return scib_metrics.nearest_neighbors.NeighborsResults(indices=idx, distances=dist.astype(np.float32))

            first = rounded()
            kbet_rounded = _kbet(first, batches, labels)
            scib_metrics.nmi_ari_cluster_labels_kmeans(z, labels)
            after = rounded()
            kbet_after = _kbet(after, batches, labels)
            kbet_exact = _kbet(metrics.nearest_neighbors(z, k, seed), batches, labels)
            rows.append({"dataset": dataset, "seed": seed,
                         "cells_nonzero_self_distance": int((first.distances[:, 0] > 0).sum()),
                         "cells_nonzero_self_distance_after_kmeans": int((after.distances[:, 0] > 0).sum()),
                         "kbet_rounded": kbet_rounded, "kbet_rounded_after_kmeans": kbet_after,
                         "kbet_exact": kbet_exact, "n_cells": z.shape[0], "commit": code_version()})
            print(f"{dataset} seed {seed}: kBET {kbet_rounded:.4f} as computed, {kbet_after:.4f} after a k-means "
                  f"fit, {kbet_exact:.4f} exact", flush=True)
    _append_csv(Path(args.out), pd.DataFrame(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
