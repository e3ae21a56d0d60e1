"""What each scHelix latent knows about cell type and batch: the Anchor, the Variant, the fused
output and the two streams side by side.

The fusion gate can only add what the Variant latent knows beyond the Anchor latent. This trains
the default on the benchmark's preprocessed data and partitions and, for each latent, writes the
accuracy of a 15-nearest-neighbour classifier of the labels (5-fold cross-validation), of the
labels across batches (fit on one batch, predict the others: biology that transfers), and of the
batch (lower is better mixed), and scIB's graph connectivity of each cell type, to
``benchmarks/results/stream_probe.csv``. ``--scib`` also scores each latent as the benchmark does
(does what a probe finds count in the benchmark's total?).

    python benchmarks/stream_probe.py --datasets kang_ifnb_pbmc symphony_pbmc_3chem --seeds 0 1 2
    python benchmarks/stream_probe.py --params '{"ablation": "no_diffusion"}' --out /tmp/no_diffusion.csv
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DATASETS = ("kang_ifnb_pbmc", "symphony_pbmc_3chem", "baron_pancreas_mouse", "sim_mild", "sim_strong_genes",
            "sim_disjoint_rare")
N_NEIGHBORS = 15
N_KMEANS_SEEDS = 10
SCIB_COLUMNS = ("batch_correction", "bio_conservation", "total", "total_kmeans_averaged")


def _unit(z: np.ndarray) -> np.ndarray:
    return z / (np.linalg.norm(z, axis=1, keepdims=True) + 1e-8)


def probe(z: np.ndarray, labels: np.ndarray, batches: np.ndarray, seed: int) -> dict:
    """kNN accuracies of one latent: labels (cross-validated), labels across batches, batch; and
    scIB's graph connectivity (is each cell type one piece of the 15-nearest-neighbour graph, or
    broken into clumps)."""
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from schelix_core.benchmark.metrics import import_scib_metrics, nearest_neighbors

    def cv(target):
        return float(cross_val_score(KNeighborsClassifier(N_NEIGHBORS), z, target,
                                     cv=StratifiedKFold(5, shuffle=True, random_state=seed)).mean())

    across = []
    for batch in np.unique(batches):
        train = batches == batch
        if len(np.unique(labels[train])) >= 2:
            knn = KNeighborsClassifier(N_NEIGHBORS).fit(z[train], labels[train])
            across.append(knn.score(z[~train], labels[~train]))
    connectivity = import_scib_metrics().graph_connectivity(nearest_neighbors(z, N_NEIGHBORS, seed), labels)
    return {"label_acc": cv(labels), "cross_batch_label_acc": float(np.mean(across)), "batch_acc": cv(batches),
            "graph_connectivity": float(connectivity)}


def run(results: Path, dataset: str, seed: int, scib: bool = False, params: dict | None = None) -> list[dict]:
    import anndata as ad

    from sweep_defaults import benchmark_roles, trained

    pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
    labels = np.asarray(pre.obs["cell_type"].astype(str))
    batches = np.asarray(pre.obs["batch"].astype(str))
    params = params or {}
    model = trained(pre, benchmark_roles(results, dataset, seed), seed, params)
    z_a, z_v, fused = (model.get_latent_representation(which) for which in ("anchor", "variant", "fused"))
    # the streams side by side, each at unit norm so neither dominates the distances
    latents = {"anchor": z_a, "variant": z_v, "fused": fused, "anchor+variant": np.hstack([_unit(z_a), _unit(z_v)])}
    moved = float(np.median(np.linalg.norm(fused - z_a, axis=1) / np.linalg.norm(z_a, axis=1)))
    rows = []
    for name, z in latents.items():
        rows.append({"dataset": dataset, "seed": seed, "params": json.dumps(params, sort_keys=True), "latent": name,
                     **probe(z, labels, batches, seed),
                     "fused_shift_median": moved})
        if scib:
            from seed_components import score_embedding

            scores = score_embedding(pre, z, seed, N_KMEANS_SEEDS)
            rows[-1].update({key: scores[key] for key in SCIB_COLUMNS})
        print(f"{dataset} seed {seed} {name}: {rows[-1]['cross_batch_label_acc']:.3f}", flush=True)
    return rows


def main(argv=None) -> int:
    from schelix_core.benchmark.workflow_io import write_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results_benchmark"), help="the benchmark's results_dir")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream_probe.csv"))
    parser.add_argument("--params", type=json.loads, default={},
                        help="JSON of scHelix hyperparameters that differ from the default (an ablation, say)")
    parser.add_argument("--scib", action="store_true",
                        help="also score each latent with the benchmark's scIB metrics (as scored and with "
                             f"NMI/ARI averaged over {N_KMEANS_SEEDS} k-means seeds)")
    args = parser.parse_args(argv)
    table = pd.DataFrame([row for dataset in args.datasets for seed in args.seeds
                          for row in run(Path(args.results), dataset, seed, args.scib, args.params)])
    write_atomic(Path(args.out), lambda tmp: table.round(4).to_csv(tmp, index=False))
    columns = ["label_acc", "cross_batch_label_acc", "batch_acc", "graph_connectivity"]
    means = table.groupby(["dataset", "latent"], sort=False)[columns + (list(SCIB_COLUMNS) if args.scib else [])].mean()
    print(means.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
