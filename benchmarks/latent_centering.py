"""Does centring the output within the mixing groups finish the batch mixing that training began?

The refine phase matches each (group, batch) pair's mean and spread to the group's, at the
Anchor's reduced learning rate under the drift penalty, so part of each batch's offset within a
group survives training. This probe trains the default, then moves each batch's cells in each
mixing group by ``strength * n / (n + shrink)`` of the offset between that batch's mean and the
group's centre (the unweighted mean of its batches' means, or with ``weighted_center`` weighted
by the same shrinkage, so that a batch with few cells in the group barely moves the others), and
scores the embedding before and after as the benchmark does. A scratch probe, not part of the
model: one row per (dataset, seed, variant) goes to ``benchmarks/results/latent_centering.csv``.

    python benchmarks/latent_centering.py --seeds 0,1,2 \
        --variants '{"c1": {"strength": 1.0}, "c1w50": {"strength": 1.0, "shrink": 50, "weighted_center": true}}'
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))


def centred(z: np.ndarray, batch: np.ndarray, groups: np.ndarray, strength: float = 1.0, shrink: float = 20.0,
            weighted_center: bool = False) -> np.ndarray:
    """``z`` with each batch's mean offset within each group (partly) removed."""
    out = z.copy()
    for g in np.unique(groups):
        in_group = groups == g
        present = np.unique(batch[in_group])
        if len(present) < 2:
            continue
        means = np.array([z[in_group & (batch == b)].mean(axis=0) for b in present])
        counts = np.array([(in_group & (batch == b)).sum() for b in present], dtype=float)
        keep = counts / (counts + shrink)
        weights = keep if weighted_center else np.ones_like(keep)
        centre = (weights[:, None] * means).sum(axis=0) / weights.sum()
        for b, mean, k in zip(present, means, keep):
            out[in_group & (batch == b)] -= strength * k * (mean - centre)
    return out


def main(argv=None) -> int:
    import anndata as ad
    import pandas as pd

    from seed_components import score_embedding
    from sweep_defaults import _append_csv, add_probe_arguments, benchmark_roles, code_version, trained

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", default='{"c1": {"strength": 1.0}}',
                        help="JSON: name -> keyword arguments of centred(); the uncentred output is always scored")
    add_probe_arguments(parser, "latent_centering.csv")
    args = parser.parse_args(argv)
    results = Path(args.results)
    params = json.loads(args.params)
    variants = {"none": None, **json.loads(args.variants)}
    commit = code_version()
    rows = []
    for dataset in args.datasets.split(","):
        pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
        for seed in (int(s) for s in args.seeds.split(",")):
            model = trained(pre, benchmark_roles(results, dataset, seed), seed, params)
            z = model.get_latent_representation()
            for name, kwargs in variants.items():
                emb = z if kwargs is None else centred(z, model._batch_codes, model._mix_groups, **kwargs)
                tables = []
                score = score_embedding(pre, emb, seed, args.n_kmeans_seeds, tables)
                metrics = tables[0].set_index("metric")["value"].to_dict()
                rows.append({"dataset": dataset, "seed": seed, "variant": name,
                             "centering": json.dumps(kwargs, sort_keys=True), "params": json.dumps(params, sort_keys=True),
                             **{k: score[k] for k in ("batch_correction", "bio_conservation", "total",
                                                      "total_kmeans_averaged")},
                             **metrics, "commit": commit})
                print(f"{dataset} seed {seed} {name}: total {score['total']:.3f} "
                      f"(k-means averaged {score['total_kmeans_averaged']:.3f})", flush=True)
    _append_csv(Path(args.out), pd.DataFrame(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
