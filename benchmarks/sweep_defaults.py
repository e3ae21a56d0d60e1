"""Screen a scHelix default on every benchmark dataset at once (one seed, no workflow).

A default must serve every dataset, so a candidate is judged by its scIB totals on all of
them together, never by one. This reuses the benchmark workflow's preprocessed data and gene
partitions (run ``benchmarks/run_benchmark.py`` first; a candidate with ``partition_kwargs``
partitions the genes itself) and the workflow's metric code, and appends one row per
(candidate, dataset, seed) to ``benchmarks/results/sweep_defaults.csv``: the total as the
benchmark scores it (one k-means draw for NMI/ARI) and with NMI/ARI averaged over k-means seeds,
which removes most of the seed spread the single draw adds on these small datasets
(``benchmarks/seed_components.py``).
A screen only suggests; the benchmark's three seeds decide.

    python benchmarks/sweep_defaults.py --name contrast0.1 --params '{"contrast_weight": 0.1}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
DATASETS = ("kang_ifnb_pbmc", "symphony_pbmc_3chem", "baron_pancreas_mouse", "sim_mild", "sim_strong_genes",
            "sim_disjoint_rare")


def code_version() -> str:
    """The commit a screen ran at ("-dirty" with uncommitted changes), so rows stay comparable."""
    import subprocess

    out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=REPO, capture_output=True, text=True)
    return out.stdout.strip() or "unknown"


def add_probe_arguments(parser: argparse.ArgumentParser, default_out: str) -> None:
    """The arguments every training screen and probe takes: where the benchmark's data and
    partitions are, which datasets, seeds and hyperparameters, and where the rows go."""
    parser.add_argument("--params", default="{}", help="JSON of scHelix hyperparameters that differ from DEFAULTS")
    parser.add_argument("--results", default=str(REPO / "results_benchmark"), help="the benchmark's results_dir")
    parser.add_argument("--datasets", default=",".join(DATASETS))
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--n-kmeans-seeds", type=int, default=10,
                        help="k-means seeds the total_kmeans_averaged column averages NMI/ARI over")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / default_out))


def benchmark_roles(results: Path, dataset: str, seed: int) -> "pd.Series":
    """The workflow's gene partition of ``dataset`` for ``seed`` (gene -> anchor/variant)."""
    import pandas as pd

    return pd.read_parquet(results / dataset / "partition" / f"seed{seed}.parquet").set_index("gene")["role"]


def trained(pre, roles, seed: int, params: dict):
    """scHelix trained as the screens train it: on the partition ``roles`` (unless the candidate
    partitions the genes itself), one torch thread."""
    from schelix_core import SCHelix

    own_partition = params.get("ablation") == "no_partition" or "partition_kwargs" in params
    model = SCHelix(pre, batch_key="batch", layer="counts", partition=None if own_partition else roles, **params)
    model.train(seed=seed, num_threads=1, progress_bar=False)
    return model


def screen(name: str, params: dict, results: Path, datasets, seeds, n_kmeans_seeds: int = 10,
           metric_tables: list | None = None) -> "pd.DataFrame":
    import anndata as ad
    import pandas as pd

    from seed_components import score_embedding

    rows = []
    commit = code_version()
    for dataset in datasets:
        pre = ad.read_h5ad(results / dataset / "preprocessed.h5ad")
        for seed in seeds:
            start = time.perf_counter()
            emb = trained(pre, benchmark_roles(results, dataset, seed), seed, params).get_latent_representation()
            seconds = time.perf_counter() - start
            tables = []
            score = score_embedding(pre, emb, seed, n_kmeans_seeds, tables)
            if metric_tables is not None:
                metric_tables.append(tables[0].assign(candidate=name, params=json.dumps(params, sort_keys=True),
                                                      dataset=dataset, seed=seed, commit=commit))
            rows.append({"candidate": name, "params": json.dumps(params, sort_keys=True), "dataset": dataset,
                         "seed": seed, "batch_correction": score["batch_correction"],
                         "bio_conservation": score["bio_conservation"], "total": score["total"],
                         "total_kmeans_averaged": score["total_kmeans_averaged"],
                         "train_s": round(seconds, 1), "commit": commit})
            print(f"{name} {dataset} seed {seed}: total {score['total']:.3f} "
                  f"(k-means averaged {score['total_kmeans_averaged']:.3f})", flush=True)
    return pd.DataFrame(rows)


def _append_csv(path: Path, new: "pd.DataFrame") -> None:
    import pandas as pd

    from schelix_core.benchmark.workflow_io import write_atomic

    if path.exists():  # earlier rows read as text go back verbatim (a parsed all-digit commit loses its zeros)
        new = pd.concat([pd.read_csv(path, dtype=str, keep_default_na=False), new], ignore_index=True)
    write_atomic(path, lambda tmp: new.to_csv(tmp, index=False))


def main(argv=None) -> int:
    import pandas as pd

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="label of the candidate in the table")
    add_probe_arguments(parser, "sweep_defaults.csv")
    parser.add_argument("--metrics-out", help="also append every run's scIB metrics, as scored, to this CSV")
    args = parser.parse_args(argv)
    results = Path(args.results)
    missing = [d for d in args.datasets.split(",") if not (results / d / "preprocessed.h5ad").exists()]
    if missing:
        raise SystemExit(f"no preprocessed data for {missing} under {results}; run benchmarks/run_benchmark.py first")
    metric_tables = [] if args.metrics_out else None
    table = screen(args.name, json.loads(args.params), results, args.datasets.split(","),
                   [int(s) for s in args.seeds.split(",")], args.n_kmeans_seeds, metric_tables)
    _append_csv(Path(args.out), table)
    if args.metrics_out:
        _append_csv(Path(args.metrics_out), pd.concat(metric_tables, ignore_index=True))
    means = table.groupby("candidate")[["total", "total_kmeans_averaged"]].mean()
    print(means.sort_values("total", ascending=False).round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
