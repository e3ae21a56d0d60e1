"""Which cell types an unlucky k-means draw confuses, and along what axis.

scib-metrics scores NMI/ARI from one k-means run (n_init=1, k = the number of labels), and on Kang
scHelix's total as scored swings between about 0.80 and 0.84 with that draw
(``kmeans_seed_sensitivity.py``). This clusters each embedding the workflow wrote at k-means seeds
0..n-1 and writes one row per (dataset, method, run seed, k-means seed): ARI, NMI, the k-means
inertia (how close the draws' optima are), the cell types it splits (the majority type of two or
more clusters) and those it absorbs (the majority of none), and, for the largest split type, how
its two largest parts differ in sequencing depth (ratio of their median counts over the kept genes)
and in batch (the largest difference in one batch's share), the genes most raised in each part, and
whether the unintegrated expression splits those cells the same way once each batch is centred. A
split along depth or batch is a technical axis the embedding kept; one along neither is structure
within the labelled type, which the genes name and the ARI places (the type's main axis of
expression, or one the embedding brought forward). Each row also carries how much of the dataset's
depth variance its cell types explain.

    python benchmarks/kmeans_confusions.py --datasets kang_ifnb_pbmc --methods schelix scanorama scvi
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]


def confusions(cell_types: np.ndarray, clusters: np.ndarray) -> tuple[list[str], list[str]]:
    """Types that are the majority of two or more clusters (split) and of none (absorbed)."""
    table = pd.crosstab(clusters, cell_types)
    majority = table.idxmax(axis=1).value_counts()
    split = sorted(majority.index[majority >= 2])
    absorbed = sorted(set(table.columns) - set(majority.index))
    return split, absorbed


def split_profile(cell_types, clusters, depth, batches, split: list[str], log_expression=None, genes=None,
                  pcs=None, n_genes: int = 6) -> dict:
    """Depth and batch difference between the two largest parts of the largest split type.

    With ``log_expression`` and ``genes``: the genes most raised in each part, each with its
    difference in mean log expression, which name the axis when it is neither depth nor batch.
    With ``pcs`` (the unintegrated PCs): the ARI between the parts and two k-means clusters of
    those cells' PCs, each batch centred: whether the split is the type's main axis of expression
    once batch is set aside.
    """
    if not split:
        return {"split_type": "", "split_parts": "", "split_depth_ratio": np.nan, "split_batch_share_diff": np.nan,
                "split_genes_first": "", "split_genes_second": "", "split_expression_ari": np.nan}
    sizes = {t: int((cell_types == t).sum()) for t in split}
    cell_type = max(split, key=sizes.get)
    in_type = cell_types == cell_type
    parts = pd.Series(clusters[in_type]).value_counts().index[:2]
    a, b = (in_type & (clusters == p) for p in parts)
    med_a, med_b = np.median(depth[a]), np.median(depth[b])
    share = pd.crosstab(clusters[a | b], batches[a | b], normalize="index")
    profile = {"split_type": cell_type, "split_parts": f"{a.sum()}/{b.sum()}",
               "split_depth_ratio": float(max(med_a, med_b) / max(min(med_a, med_b), 1e-12)),
               "split_batch_share_diff": float((share.iloc[0] - share.iloc[1]).abs().max()),
               "split_genes_first": "", "split_genes_second": "", "split_expression_ari": np.nan}
    if log_expression is not None:
        diff = np.asarray(log_expression[a].mean(axis=0)).ravel() - np.asarray(log_expression[b].mean(axis=0)).ravel()
        order = np.argsort(diff)
        named = [f"{gene}:{d:+.2f}" for gene, d in zip(np.asarray(genes)[order], diff[order])]
        profile["split_genes_first"] = ";".join(named[::-1][:n_genes])
        profile["split_genes_second"] = ";".join(named[:n_genes])
    if pcs is not None:
        from sklearn.cluster import KMeans
        from sklearn.metrics import adjusted_rand_score

        both = a | b
        x = pd.DataFrame(pcs[both]).groupby(batches[both]).transform(lambda col: col - col.mean()).to_numpy()
        own = KMeans(2, n_init=10, random_state=0).fit_predict(x)
        profile["split_expression_ari"] = float(adjusted_rand_score(a[both], own))
    return profile


def depth_explained_by_type(depth: np.ndarray, cell_types: np.ndarray) -> float:
    """Share of the variance of log depth that the cell types explain (R^2 of a one-way fit).

    Where it is high, depth is biology as much as a technical axis, and removing it removes types.
    """
    logd = np.log1p(depth)
    if np.ptp(logd) == 0:
        return float("nan")  # every cell at one depth: nothing to explain
    total = ((logd - logd.mean()) ** 2).sum()
    type_means = pd.Series(logd).groupby(cell_types).transform("mean").to_numpy()
    return float(1.0 - ((logd - type_means) ** 2).sum() / total)


def draws(emb: np.ndarray, cell_types: np.ndarray, depth: np.ndarray, batches: np.ndarray,
          n_kmeans_seeds: int, log_expression=None, genes=None, pcs=None) -> list[dict]:
    """One row per k-means seed, clustering as the metric stage does (scib-metrics' KMeans)."""
    import jax
    from scib_metrics.utils import KMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    n_clusters = len(np.unique(cell_types))
    jax.clear_caches()  # see kmeans_seed_sensitivity._kmeans_runs
    rows = []
    for km_seed in range(n_kmeans_seeds):
        fit = KMeans(n_clusters, seed=km_seed).fit(emb)
        clusters = np.asarray(fit.labels_)
        split, absorbed = confusions(cell_types, clusters)
        rows.append({"kmeans_seed": km_seed, "ari": adjusted_rand_score(cell_types, clusters),
                     "nmi": normalized_mutual_info_score(cell_types, clusters),
                     "inertia": float(fit.inertia_), "split": ";".join(split), "absorbed": ";".join(absorbed),
                     **split_profile(cell_types, clusters, depth, batches, split, log_expression, genes, pcs)})
    return rows


def main(argv=None) -> int:
    import anndata as ad

    from schelix_core.benchmark.workflow_io import write_atomic

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results_benchmark")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-kmeans-seeds", type=int, default=10)
    parser.add_argument("--out", default="benchmarks/results/kmeans_confusions.csv")
    args = parser.parse_args(argv)

    rows = []
    for dataset in args.datasets:
        results = REPO / args.results_dir / dataset
        pre = ad.read_h5ad(results / "preprocessed.h5ad")
        cell_types = np.asarray(pre.obs["cell_type"].astype(str))
        batches = np.asarray(pre.obs["batch"].astype(str))
        depth = np.asarray(pre.layers["counts"].sum(axis=1)).ravel()
        depth_by_type = depth_explained_by_type(depth, cell_types)
        for method in args.methods:
            for seed in args.seeds:
                path = results / "integrated" / method / f"seed{seed}.h5ad"
                if not path.exists():
                    raise SystemExit(f"{path} is missing: run the workflow for it first")
                obsm = ad.read_h5ad(path).obsm
                if "X_emb" not in obsm:
                    raise SystemExit(f"{path} holds no embedding (obsm['X_emb']): k-means needs one, "
                                     f"and {method} outputs a graph only")
                emb = obsm["X_emb"]
                for row in draws(emb, cell_types, depth, batches, args.n_kmeans_seeds,
                                 pre.X, pre.var_names, pre.obsm["X_pca"]):
                    rows.append({"dataset": dataset, "depth_explained_by_type": depth_by_type, "method": method,
                                 "seed": seed, **row})
                print(f"{dataset} {method} seed {seed} done", flush=True)
    table = pd.DataFrame(rows)
    out = REPO / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, lambda tmp: table.round(4).to_csv(tmp, index=False))
    summary = table.groupby(["dataset", "method"]).agg(
        ari_mean=("ari", "mean"), ari_min=("ari", "min"), ari_max=("ari", "max"),
        draws_with_split=("split", lambda s: int((s != "").sum())), draws=("split", "size"),
        most_split=("split_type", lambda s: s[s != ""].mode().iat[0] if (s != "").any() else ""),
        median_depth_ratio=("split_depth_ratio", "median"), median_batch_share_diff=("split_batch_share_diff", "median"),
        median_expression_ari=("split_expression_ari", "median"))
    print(summary.round(3).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
