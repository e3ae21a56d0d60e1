"""Is the depth that k-means splits cell types along carried by the length of scHelix's output?

The streams' contrastive losses read only the direction of a latent (InfoNCE on unit vectors);
reconstruction reads its length too. If a cell's sequencing depth within its type is stored in
the output's length, k-means, which measures Euclidean distance, splits large types along it
(Kang's CD14 monocytes, `kmeans_confusions.py`), and projecting the output onto the unit sphere
would remove it. This probe trains the default, measures how much of log depth within type the
output's length carries (the pooled within-type Pearson correlation), and scores the output as the
benchmark does before and after each projection: ``unit`` divides each cell's vector by its
length; ``centred_unit`` first subtracts the mean over cells. A scratch probe, not part of the
model: one row per (dataset, seed, projection) goes to ``benchmarks/results/output_geometry.csv``.

    python benchmarks/output_geometry.py --datasets kang_ifnb_pbmc,baron_pancreas_mouse,sim_mild,symphony_pbmc_3chem \
        --seeds 0,1,2
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

PROJECTIONS = ("none", "unit", "centred_unit")


def projected(z: np.ndarray, projection: str) -> np.ndarray:
    if projection == "none":
        return z
    if projection == "centred_unit":
        z = z - z.mean(axis=0)
    elif projection != "unit":
        raise ValueError(f"unknown projection {projection!r}; choose from {PROJECTIONS}")
    return z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)


def within_type_correlation(x: np.ndarray, y: np.ndarray, labels: np.ndarray) -> float:
    """Pearson correlation of ``x`` and ``y`` after removing each label's mean from both."""
    xr, yr = x.astype(float).copy(), y.astype(float).copy()
    for label in np.unique(labels):
        mask = labels == label
        xr[mask] -= xr[mask].mean()
        yr[mask] -= yr[mask].mean()
    denominator = np.sqrt((xr ** 2).sum() * (yr ** 2).sum())
    return float((xr * yr).sum() / denominator) if denominator > 0 else float("nan")


def main(argv=None) -> int:
    import anndata as ad
    import pandas as pd

    from seed_components import score_embedding
    from sweep_defaults import _append_csv, add_probe_arguments, benchmark_roles, code_version, trained

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--projections", default=",".join(PROJECTIONS))
    add_probe_arguments(parser, "output_geometry.csv")
    args = parser.parse_args(argv)
    results = Path(args.results)
    params = json.loads(args.params)
    commit = code_version()
    rows = []
    for dataset in args.datasets.split(","):
        pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
        labels = np.asarray(pre.obs["cell_type"].astype(str))
        log_depth = np.log1p(np.asarray(pre.layers["counts"].sum(axis=1)).ravel())
        for seed in (int(s) for s in args.seeds.split(",")):
            model = trained(pre, benchmark_roles(results, dataset, seed), seed, params)
            z = model.get_latent_representation()
            depth_in_length = within_type_correlation(np.linalg.norm(z, axis=1), log_depth, labels)
            depth_in_centred_length = within_type_correlation(
                np.linalg.norm(z - z.mean(axis=0), axis=1), log_depth, labels)
            for name in args.projections.split(","):
                tables = []
                score = score_embedding(pre, projected(z, name), seed, args.n_kmeans_seeds, tables)
                metrics = tables[0].set_index("metric")["value"].to_dict()
                rows.append({"dataset": dataset, "seed": seed, "projection": name,
                             "params": json.dumps(params, sort_keys=True),
                             "depth_length_corr": depth_in_length,
                             "depth_centred_length_corr": depth_in_centred_length,
                             **{k: score[k] for k in ("batch_correction", "bio_conservation", "total",
                                                      "total_kmeans_averaged")},
                             **metrics, "commit": commit})
                print(f"{dataset} seed {seed} {name}: total {score['total']:.3f} "
                      f"(k-means averaged {score['total_kmeans_averaged']:.3f}); depth-length r "
                      f"{depth_in_length:.3f} (centred {depth_in_centred_length:.3f})", flush=True)
    _append_csv(Path(args.out), pd.DataFrame(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
