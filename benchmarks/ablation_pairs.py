"""Does each scHelix component help, once the seed noise is paired out?

The ablation tables in docs/benchmark.md (seeds 0-2) and docs/benchmark_fresh_seeds.md (seeds 3-5)
compare means over three seeds, each scored with one k-means draw (scib-metrics, seed = the run's
seed), and the two seed sets disagree in sign for the small effects. This trains the full model and
each ablation at the same seeds (same partition, same training seed, same metric seed), so each
ablation is compared with the full model seed by seed, and scores every run as the benchmark does
and with NMI/ARI averaged over k-means seeds, which removes the k-means draw that dominates the
spread as scored (benchmarks/seed_components.py). It writes one row per (dataset, variant, seed)
and a summary per (dataset, ablation): the mean paired change (ablation minus full; negative means
the removed component helps), a 95% t interval over seeds, and how many seeds went each way.

    python benchmarks/ablation_pairs.py --datasets kang_ifnb_pbmc sim_mild --seeds 0 1 2 3 4 5

``--n-cells N`` asks whether a component's effect depends on data size: each seed draws its own N
cells of every larger dataset (the same cells for every variant at that seed) and partitions them
afresh, since the workflow's partitions are of the whole dataset.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from schelix_core.model import ABLATIONS

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DATASETS = ("kang_ifnb_pbmc", "symphony_pbmc_3chem", "baron_pancreas_mouse", "sim_mild", "sim_strong_genes",
            "sim_disjoint_rare")
# "full" is the default model; the rest are the model's own ablations
VARIANTS = ("full",) + tuple(a for a in ABLATIONS if a is not None)
# Alignment and refinement are left out by default: they change the total by -0.006 to -0.130 in
# every cell of both ablation tables, far beyond the seeds' noise.
DEFAULT_VARIANTS = ("full", "no_partition", "concat", "no_diffusion", "unbounded_gate", "no_fusion")
TOTALS = ("total", "total_kmeans_averaged")


def subsample(adata, n_cells: int, seed: int):
    """``n_cells`` cells drawn uniformly without replacement (seeded), less the genes left without
    counts; the data set itself where it has no more cells than that."""
    if adata.n_obs <= n_cells:
        return adata
    rng = np.random.default_rng(seed)
    sub = adata[np.sort(rng.choice(adata.n_obs, n_cells, replace=False))]
    counted = np.asarray(sub.layers["counts"].sum(axis=0)).ravel() > 0
    return sub[:, counted].copy()


def score_runs(results: Path, dataset: str, seeds, variants, n_kmeans_seeds: int,
               metric_rows: list | None = None, n_cells: int | None = None) -> pd.DataFrame:
    """One row per (variant, seed); each run's per-metric values (as scored) go to ``metric_rows``."""
    import anndata as ad

    from schelix_core import partition_genes
    from seed_components import score_embedding
    from sweep_defaults import benchmark_roles, trained

    whole = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
    rows = []
    for seed in seeds:
        pre = whole if n_cells is None else subsample(whole, n_cells, seed)
        if pre is whole:
            roles = benchmark_roles(results, dataset, seed)
        else:
            roles = partition_genes(pre, "batch", layer="counts", seed=seed).roles
        for variant in variants:
            ablation = None if variant == "full" else variant
            start = time.perf_counter()
            emb = trained(pre, roles, seed, {} if ablation is None else {"ablation": ablation}).get_latent_representation()
            seconds = time.perf_counter() - start
            tables = None if metric_rows is None else []
            scores = score_embedding(pre, emb, seed, n_kmeans_seeds, tables)
            if tables:
                metric_rows.append(tables[0].assign(dataset=dataset, variant=variant, seed=seed))
            rows.append({"dataset": dataset, "variant": variant, "seed": seed, **scores, "train_s": round(seconds, 1),
                         **({} if n_cells is None else {"n_cells": pre.n_obs})})
            print(f"{dataset} {variant} seed {seed}: total {scores['total']:.3f} "
                  f"(k-means averaged {scores['total_kmeans_averaged']:.3f})", flush=True)
    return pd.DataFrame(rows)


def paired_changes(runs: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, ablation and total: the change from the full model at the same seed, summarised."""
    from scipy import stats

    rows = []
    for dataset, d in runs.groupby("dataset", sort=False):
        for value in TOTALS:
            table = d.pivot(index="seed", columns="variant", values=value)
            if "full" not in table:
                raise ValueError(f"{dataset}: no run of the full model to pair the ablations with")
            for variant in [v for v in table.columns if v != "full"]:
                diff = (table[variant] - table["full"]).dropna()
                n = len(diff)
                if n < 2:
                    raise ValueError(f"{dataset} {variant}: needs at least 2 paired seeds, got {n}")
                mean, se = float(diff.mean()), float(diff.std(ddof=1) / np.sqrt(n))
                half = float(stats.t.ppf(0.975, n - 1) * se)
                rows.append({"dataset": dataset, "ablation": variant, "score": value, "n_seeds": n,
                             "full_mean": float(table.loc[diff.index, "full"].mean()),
                             "mean_change": mean, "ci95_low": mean - half, "ci95_high": mean + half,
                             "seeds_lower": int((diff < 0).sum()), "seeds_higher": int((diff > 0).sum()),
                             # the component helps beyond the seeds' noise: the whole interval is below 0
                             "helps_clearly": bool(mean + half < 0), "hurts_clearly": bool(mean - half > 0)})
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    from schelix_core.benchmark.workflow_io import write_atomic
    from seed_components import write_with_summary

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results_benchmark"),
                        help="a results_dir holding the benchmark's preprocessed data and partitions of every seed")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--variants", nargs="+", default=list(DEFAULT_VARIANTS), choices=VARIANTS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4, 5])
    parser.add_argument("--n-kmeans-seeds", type=int, default=10)
    parser.add_argument("--n-cells", type=int,
                        help="train and score on this many cells of each larger dataset, drawn per seed")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ablation_pairs.csv"))
    parser.add_argument("--metrics-out", type=Path,
                        help="also write every run's scIB metrics, one row per metric (which metrics a "
                             "component moves)")
    parser.add_argument("--summarize", nargs="+", type=Path, metavar="CSV",
                        help="only merge these run CSVs into --out and summarize (no training)")
    args = parser.parse_args(argv)

    if "full" not in args.variants:
        parser.error("--variants must include 'full': every ablation is paired with it")
    if args.n_cells is not None and args.n_cells < 100:
        parser.error("--n-cells must be at least 100")
    if args.summarize and args.metrics_out:
        parser.error("--metrics-out needs runs to score; it cannot be used with --summarize")
    out = Path(args.out)
    if args.summarize:
        runs = pd.concat([pd.read_csv(p) for p in args.summarize], ignore_index=True)
    else:
        metric_rows = [] if args.metrics_out else None
        runs = pd.concat([score_runs(Path(args.results), d, args.seeds, args.variants, args.n_kmeans_seeds,
                                     metric_rows, args.n_cells) for d in args.datasets], ignore_index=True)
        if metric_rows is not None:
            metrics = pd.concat(metric_rows, ignore_index=True)
            write_atomic(args.metrics_out, lambda tmp: metrics.to_csv(tmp, index=False))
    write_with_summary(out, runs, paired_changes(runs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
