"""Where scHelix's seed-to-seed spread comes from: the gene partition's seed or the training seed.

The benchmark runs seed s with the partition of seed s and k-means seed 0 in the metric stage
(scib-metrics), so its three runs are three points on the diagonal of a partition-seed x
training-seed grid. This trains the default scHelix on the whole grid (the benchmark's own
preprocessed data and partitions), scores every cell as the benchmark does, and also with NMI/ARI
averaged over k-means seeds. It writes one row per (dataset, partition seed, training seed) and a
per-dataset summary: the diagonal's mean (what the benchmark reports) against the mean off it
(partition and training seeds that no default screen has seen together) and the grid's, and the
grid's spread split into a partition part, a training part and their interaction (two-way
analysis of variance without replication).

    python benchmarks/seed_components.py --datasets kang_ifnb_pbmc symphony_pbmc_3chem
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DATASETS = ("kang_ifnb_pbmc", "symphony_pbmc_3chem", "baron_pancreas_mouse", "sim_mild", "sim_strong_genes",
            "sim_disjoint_rare")
TOTALS = ("total", "total_kmeans_averaged")


def score_embedding(pre, emb: np.ndarray, seed: int, n_kmeans_seeds: int, metric_tables: list | None = None) -> dict:
    """Batch, bio and total as the benchmark scores them (k-means at the run's seed), and the
    total with NMI/ARI averaged over ``n_kmeans_seeds`` k-means seeds. The per-metric table as
    scored is appended to ``metric_tables`` when given."""
    import anndata as ad

    from kmeans_seed_sensitivity import _kmeans_runs
    from schelix_core.benchmark.aggregate import run_scores
    from schelix_core.benchmark.metrics import compute_metrics

    out = ad.AnnData(obs=pd.DataFrame(index=pre.obs_names))
    out.obsm["X_emb"], out.uns["output_type"] = emb, "embedding"
    # the metric stage's seed is the run's seed, as in the workflow
    table = compute_metrics(pre, out, "batch", "cell_type", seed=seed)
    table["dataset"], table["method"], table["seed"], table["status"] = "d", "m", seed, "ok"
    scored = run_scores(table).iloc[0]
    if metric_tables is not None:
        metric_tables.append(table[["metric", "metric_type", "value", "higher_is_better"]].copy())
    kmeans = pd.DataFrame(_kmeans_runs(emb, np.asarray(pre.obs["cell_type"].astype(str)), n_kmeans_seeds))
    averaged = table.copy()
    averaged.loc[averaged.metric == "nmi_kmeans", "value"] = kmeans["nmi"].mean()
    averaged.loc[averaged.metric == "ari_kmeans", "value"] = kmeans["ari"].mean()
    return {"batch_correction": scored["batch_correction"], "bio_conservation": scored["bio_conservation"],
            "total": scored["total"], "total_kmeans_averaged": run_scores(averaged).iloc[0]["total"],
            "n_kmeans_seeds": n_kmeans_seeds}


def score_grid(results: Path, dataset: str, seeds, n_kmeans_seeds: int) -> pd.DataFrame:
    import anndata as ad

    from sweep_defaults import benchmark_roles, trained

    pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
    rows = []
    for partition_seed in seeds:
        roles = benchmark_roles(results, dataset, partition_seed)
        for train_seed in seeds:
            start = time.perf_counter()
            emb = trained(pre, roles, train_seed, {}).get_latent_representation()
            seconds = time.perf_counter() - start
            scores = score_embedding(pre, emb, train_seed, n_kmeans_seeds)
            rows.append({"dataset": dataset, "partition_seed": partition_seed, "train_seed": train_seed,
                         "n_variant_genes": int((roles == "variant").sum()), **scores, "train_s": round(seconds, 1)})
            print(f"{dataset} partition {partition_seed} train {train_seed}: total {scores['total']:.3f}", flush=True)
    return pd.DataFrame(rows)


def components(grid: pd.DataFrame, value: str) -> dict:
    """Two-way ANOVA without replication of one square grid (rows: partition seed, columns: training seed).

    Returns the mean of the diagonal (the benchmark's runs), of the cells off it (seed pairs no
    default was chosen on) and of the whole grid, and the standard deviations of the partition
    effect, the training effect and the residual (interaction), each as the sd one run would
    show from that source alone: sqrt of the mean square's variance component, floored at 0.
    """
    table = grid.pivot(index="partition_seed", columns="train_seed", values=value)
    if table.shape[0] != table.shape[1] or table.isna().any().any() or table.shape[0] < 2:
        raise ValueError(f"{value}: needs a complete square grid of at least 2 x 2 seeds, got {table.shape}")
    x = table.to_numpy()
    k = x.shape[0]
    grand = x.mean()
    rows, cols = x.mean(axis=1), x.mean(axis=0)
    resid = x - rows[:, None] - cols[None, :] + grand
    ms_rows = k * ((rows - grand) ** 2).sum() / (k - 1)
    ms_cols = k * ((cols - grand) ** 2).sum() / (k - 1)
    ms_resid = (resid ** 2).sum() / ((k - 1) ** 2)
    off_diagonal = x[~np.eye(k, dtype=bool)]
    return {"diagonal_mean": float(np.diag(x).mean()), "diagonal_sd": float(np.diag(x).std(ddof=1)),
            "off_diagonal_mean": float(off_diagonal.mean()), "grid_mean": float(grand), "grid_sd": float(x.std(ddof=1)),
            "sd_partition": float(np.sqrt(max(0.0, (ms_rows - ms_resid) / k))),
            "sd_training": float(np.sqrt(max(0.0, (ms_cols - ms_resid) / k))),
            "sd_interaction": float(np.sqrt(ms_resid))}


def summarize(grid: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for dataset, g in grid.groupby("dataset", sort=False):
        for value in TOTALS:
            rows.append({"dataset": dataset, "score": value, **components(g, value)})
    return pd.DataFrame(rows)


def write_with_summary(out: Path, runs: pd.DataFrame, summary: pd.DataFrame) -> None:
    """Write the runs to ``out`` and the summary beside it (``<stem>_summary.csv``), each atomically."""
    from schelix_core.benchmark.workflow_io import write_atomic

    write_atomic(out, lambda tmp: runs.round(4).to_csv(tmp, index=False))
    write_atomic(out.with_name(out.stem + "_summary.csv"), lambda tmp: summary.round(4).to_csv(tmp, index=False))
    print(summary.round(3).to_string(index=False))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results_benchmark"), help="the benchmark's results_dir")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--n-kmeans-seeds", type=int, default=20)
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "seed_components.csv"))
    parser.add_argument("--summarize", nargs="+", type=Path, metavar="CSV",
                        help="only merge these grid CSVs into --out and summarize (no training)")
    args = parser.parse_args(argv)

    out = Path(args.out)
    if args.summarize:
        grid = pd.concat([pd.read_csv(p) for p in args.summarize], ignore_index=True)
    else:
        grid = pd.concat([score_grid(Path(args.results), d, args.seeds, args.n_kmeans_seeds) for d in args.datasets],
                         ignore_index=True)
    write_with_summary(out, grid, summarize(grid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
