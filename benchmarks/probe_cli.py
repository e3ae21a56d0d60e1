"""Command line shared by the no-training probes (graph_purity.py, diffusion_features.py): one
table of rows per (dataset, partition seed) of the benchmark's results_dir, written atomically."""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
DATASETS = ("kang_ifnb_pbmc", "symphony_pbmc_3chem", "baron_pancreas_mouse", "sim_mild", "sim_strong_genes",
            "sim_disjoint_rare")


def probe_table(argv, description: str, default_out: str, run) -> pd.DataFrame:
    """Parse the probe's arguments, call ``run(results, dataset, seed)`` for each dataset and seed,
    write the rows to ``--out`` and return them."""
    from schelix_core.benchmark.workflow_io import write_atomic

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--results", default=str(REPO / "results_benchmark"),
                        help="a results_dir holding the benchmark's preprocessed data and partitions")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / default_out))
    args = parser.parse_args(argv)
    table = pd.DataFrame([row for d in args.datasets for s in args.seeds for row in run(Path(args.results), d, s)])
    write_atomic(Path(args.out), lambda tmp: table.round(4).to_csv(tmp, index=False))
    return table
