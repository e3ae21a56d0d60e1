"""How much of an embedding's batch variance is cell-type composition.

scib-metrics' PCR comparison scores the share of an embedding's variance that batch explains,
over all cells. Where batches hold cell types in different proportions, an embedding that keeps
the types apart has batch means that differ by composition alone, and PCR counts that as batch
effect left over. This splits it: per run, the share of variance explained by batch over all
cells (what PCR sees, as a between-group sum of squares) and within cell types (batch's share of
the variance left after each type's mean is removed, pooled over the types that two or more
batches hold), next to the share explained by cell type.

    python benchmarks/batch_variance.py --datasets sim_mild kang_ifnb_pbmc --methods schelix scvi unintegrated
"""

from __future__ import annotations

import argparse
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd

from schelix_core.benchmark.workflow_io import write_atomic

REPO = Path(__file__).resolve().parents[1]


def _between_ss(X: np.ndarray, groups: np.ndarray) -> float:
    """Sum of squares of the group means about the overall mean, weighted by group size."""
    mean = X.mean(axis=0)
    total = 0.0
    for g in np.unique(groups):
        rows = groups == g
        total += rows.sum() * float(((X[rows].mean(axis=0) - mean) ** 2).sum())
    return total


def batch_variance_shares(emb: np.ndarray, batch: np.ndarray, labels: np.ndarray, min_cells: int = 5) -> dict:
    """Shares of an embedding's variance explained by batch (over all cells and within types) and by type.

    A type counts for the within-type share when at least two batches hold ``min_cells`` of it.
    """
    X = np.asarray(emb, dtype=np.float64)
    batch, labels = np.asarray(batch).astype(str), np.asarray(labels).astype(str)
    total_ss = float(((X - X.mean(axis=0)) ** 2).sum())
    within_batch_ss = within_total_ss = 0.0
    for label in np.unique(labels):
        rows = labels == label
        counts = pd.Series(batch[rows]).value_counts()
        if (counts >= min_cells).sum() < 2:
            continue
        Xt = X[rows]
        within_batch_ss += _between_ss(Xt, batch[rows])
        within_total_ss += float(((Xt - Xt.mean(axis=0)) ** 2).sum())
    return {
        "batch_share_all_cells": _between_ss(X, batch) / total_ss,
        "batch_share_within_types": within_batch_ss / within_total_ss if within_total_ss > 0 else float("nan"),
        "type_share": _between_ss(X, labels) / total_ss,
    }


def _scored_pcr(metrics_file: Path) -> float:
    """The run's PCR comparison as the workflow scored it (NaN where it has not been scored)."""
    if not metrics_file.exists():
        return float("nan")
    metrics = pd.read_parquet(metrics_file)
    pcr = metrics.loc[metrics.metric == "pcr_comparison", "value"]
    return float(pcr.iloc[0]) if len(pcr) else float("nan")


def _runs(results: Path, dataset: str, methods, seeds, batch_key: str, label_key: str) -> list[dict]:
    obs = ad.read_h5ad(results / dataset / "preprocessed.h5ad", backed="r").obs
    rows = []
    for method in methods:
        for seed in seeds:
            path = results / dataset / "integrated" / method / f"seed{seed}.h5ad"
            out = ad.read_h5ad(path)
            if "X_emb" not in out.obsm:
                continue  # a graph-only method (BBKNN) has no embedding to split
            shares = batch_variance_shares(out.obsm["X_emb"], obs[batch_key].values, obs[label_key].values)
            rows.append({"dataset": dataset, "method": method, "seed": seed, **shares,
                         "pcr_comparison": _scored_pcr(results / dataset / "metrics" / method / f"seed{seed}.parquet")})
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="results_benchmark")
    parser.add_argument("--datasets", nargs="+", required=True)
    parser.add_argument("--methods", nargs="+", required=True)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--batch-key", default="batch")
    parser.add_argument("--label-key", default="cell_type")
    parser.add_argument("--out", default="benchmarks/results/batch_variance.csv")
    args = parser.parse_args(argv)
    results = REPO / args.results_dir
    runs = pd.DataFrame([row for dataset in args.datasets
                         for row in _runs(results, dataset, args.methods, args.seeds, args.batch_key, args.label_key)])
    table = runs.drop(columns="seed").groupby(["dataset", "method"]).agg(["mean", "std"])
    table.columns = [f"{col}_{stat.replace('std', 'sd')}" for col, stat in table.columns]
    table = table.reset_index()
    write_atomic(REPO / args.out, lambda tmp: table.round(4).to_csv(tmp, index=False))
    print(table.round(3).to_string(index=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
