"""Could scHelix choose its output latent (Anchor, Variant or fused) from the data, without labels?

The stream probe (``stream_probe.py --scib``) found that the best single latent differs by dataset.
This trains the default as the probe does and computes, for each latent, label-free criteria the
model could compute itself:

- ``within_batch_preservation``: the share of a cell's 15 nearest neighbours among its own batch's
  cells that are also its neighbours in that batch's own PCA (30 PCs of the log expression of the
  highly variable genes). A batch effect cannot act within one batch, so this is structure the
  integration should keep: the label-free counterpart of bio conservation.
- ``ilisi``: scIB's iLISI (90 neighbours), and ``batch_acc``: the accuracy of a 15-nearest-neighbour
  classifier of the batch (5-fold; lower is better mixed), label-free counterparts of batch correction.

It then joins the probe's scIB scores of the same latents (the probe must have been run on the same
data, seeds and code: the kNN batch accuracy both compute is checked to agree) and writes, for
each selection rule, which latent it picks per run and what that changes in the total against the
fused output; ``best_by_labels`` picks by the k-means-averaged total itself (it reads the labels),
the most any rule could gain on that total. Rows go to ``benchmarks/results/stream_selection.csv``, the rule summary beside it.

    python benchmarks/stream_selection.py                          # the six benchmark datasets
    python benchmarks/stream_selection.py --results results_heldout --datasets heldout_six_batches \\
        heldout_two_batches_weak_markers heldout_many_types_subtle \\
        --scores benchmarks/results/stream_probe_scib_heldout.csv --out benchmarks/results/stream_selection_heldout.csv
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
N_NEIGHBORS = 15
REFERENCE_PCS = 30
LATENTS = ("anchor", "variant", "fused")
# each rule: a score per latent, higher is chosen; fixed before the held-out data were scored
RULES = {
    "structure_and_mixing": lambda c: 0.6 * c["within_batch_preservation"] + 0.4 * c["ilisi"],
    "ilisi": lambda c: c["ilisi"],
    "batch_knn": lambda c: -c["batch_acc"],
}
SCORES = ("total", "total_kmeans_averaged")
BEST_BY_LABELS = "best_by_labels"
PROBE_AGREEMENT = 1e-3


def _neighbours(X: np.ndarray) -> np.ndarray:
    from sklearn.neighbors import NearestNeighbors

    k = min(N_NEIGHBORS, X.shape[0] - 1)
    return NearestNeighbors(n_neighbors=k + 1).fit(X).kneighbors(X, return_distance=False)[:, 1:]


def batch_references(pre, batches: np.ndarray) -> dict:
    """Each batch's own neighbours, in a PCA of that batch alone."""
    import scanpy as sc

    refs = {}
    for batch in np.unique(batches):
        sub = pre[batches == batch].copy()
        sc.pp.pca(sub, n_comps=min(REFERENCE_PCS, sub.n_obs - 2), random_state=0)
        refs[batch] = _neighbours(sub.obsm["X_pca"])
    return refs


def within_batch_preservation(z: np.ndarray, batches: np.ndarray, refs: dict) -> float:
    shares, sizes = [], []
    for batch, ref in refs.items():
        own = _neighbours(z[batches == batch])
        shares.append(np.mean([len(np.intersect1d(a, b)) / len(b) for a, b in zip(own, ref)]))
        sizes.append(len(ref))
    return float(np.average(shares, weights=sizes))


def criteria(z: np.ndarray, batches: np.ndarray, refs: dict, seed: int) -> dict:
    import scib_metrics
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    from schelix_core.benchmark.metrics import nearest_neighbors

    batch_acc = cross_val_score(KNeighborsClassifier(N_NEIGHBORS), z, batches,
                                cv=StratifiedKFold(5, shuffle=True, random_state=seed)).mean()
    return {"within_batch_preservation": within_batch_preservation(z, batches, refs),
            "ilisi": float(scib_metrics.ilisi_knn(nearest_neighbors(z, 90, seed), batches)),
            "batch_acc": float(batch_acc)}


def run(results: Path, dataset: str, seed: int) -> list[dict]:
    import anndata as ad

    from sweep_defaults import benchmark_roles, trained

    pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
    batches = np.asarray(pre.obs["batch"].astype(str))
    refs = batch_references(pre, batches)
    model = trained(pre, benchmark_roles(results, dataset, seed), seed, {})
    rows = []
    for latent in LATENTS:
        rows.append({"dataset": dataset, "seed": seed, "latent": latent,
                     **criteria(model.get_latent_representation(latent), batches, refs, seed)})
        print(rows[-1], flush=True)
    return rows


def join_scores(table: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    keys = ["dataset", "seed", "latent"]
    joined = table.merge(scores[keys + ["batch_acc", *SCORES]], on=keys, how="left", suffixes=("", "_probe"))
    if joined[list(SCORES)].isna().any().any():
        missing = joined.loc[joined["total"].isna(), keys].drop_duplicates()
        raise SystemExit(f"the probe's scores lack these runs; run stream_probe.py --scib on them:\n{missing}")
    off = (joined["batch_acc"] - joined["batch_acc_probe"]).abs().max()
    if off > PROBE_AGREEMENT:
        raise SystemExit(f"the latents differ from the probe's (kNN batch accuracy off by {off:.4f}): "
                         "rerun stream_probe.py --scib at this commit")
    return joined.drop(columns="batch_acc_probe")


def _pick(rule: str, dataset: str, seed: int, run_rows: pd.DataFrame, pick: str) -> dict:
    return {"rule": rule, "dataset": dataset, "seed": seed, "pick": pick,
            **{f"{s}_change": run_rows.loc[pick, s] - run_rows.loc["fused", s] for s in SCORES}}


def selections(joined: pd.DataFrame) -> pd.DataFrame:
    """Per rule and run: the latent picked and its totals minus the fused output's."""
    rows = []
    for (dataset, seed), run_rows in joined.groupby(["dataset", "seed"], sort=False):
        run_rows = run_rows.set_index("latent")
        for rule, score in RULES.items():
            rows.append(_pick(rule, dataset, seed, run_rows, score(run_rows).idxmax()))
        # the ceiling of any rule: the latent with the best total (reads the labels, so not a rule)
        rows.append(_pick(BEST_BY_LABELS, dataset, seed, run_rows, run_rows["total_kmeans_averaged"].idxmax()))
    return pd.DataFrame(rows)


def summarize(picks: pd.DataFrame) -> pd.DataFrame:
    return (picks.groupby(["rule", "dataset"], sort=False)
            .agg(picks=("pick", lambda p: ",".join(p)),
                 **{f"{s}_change": (f"{s}_change", "mean") for s in SCORES})
            .reset_index())


def main(argv=None) -> int:
    from schelix_core.benchmark.workflow_io import write_atomic
    from stream_probe import DATASETS

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results_benchmark"), help="the benchmark's results_dir")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--scores", default=str(REPO / "benchmarks" / "results" / "stream_probe_scib.csv"),
                        help="the stream probe's --scib rows for the same runs")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "stream_selection.csv"))
    args = parser.parse_args(argv)
    scores = pd.read_csv(args.scores)
    table = pd.DataFrame([row for dataset in args.datasets for seed in args.seeds
                          for row in run(Path(args.results), dataset, seed)])
    joined = join_scores(table, scores)
    summary = summarize(selections(joined))
    out = Path(args.out)
    write_atomic(out, lambda tmp: joined.round(4).to_csv(tmp, index=False))
    write_atomic(out.with_name(out.stem + "_summary.csv"), lambda tmp: summary.round(4).to_csv(tmp, index=False))
    print(joined.groupby(["dataset", "latent"], sort=False).mean(numeric_only=True).drop(columns="seed")
          .round(3).to_string())
    print(summary.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
