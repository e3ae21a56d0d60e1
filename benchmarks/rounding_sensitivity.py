"""How far a method's embedding and scores move when only the CPU's floating-point rounding changes.

scVI's benchmark runs are reproducible on one machine but not across CPUs (stop 44: its totals moved
by up to 0.012 between an AMD and an Intel machine, scHelix's by at most 0.001). This trains each
method with the workflow's own script, seed and thread count under several instruction-set settings
of torch's CPU kernels and MKL, which change only the order and width of the floating-point
arithmetic, and scores every embedding as the benchmark does (and with NMI/ARI averaged over 10
k-means seeds). One row per (dataset, method, seed, setting) is appended to
``benchmarks/results/rounding_sensitivity.csv``, with the largest |difference| from the embedding
trained under the machine's default setting, relative to that embedding's largest |value|.

    python benchmarks/rounding_sensitivity.py --results results_fresh_seeds --seeds 3 \
        --datasets kang_ifnb_pbmc baron_pancreas_mouse sim_mild
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

# Environment settings that change which vectorised kernels torch (ATen) and MKL run.
SETTINGS = {
    "default": {},
    "aten_avx2": {"ATEN_CPU_CAPABILITY": "avx2"},
    "all_avx2": {"ATEN_CPU_CAPABILITY": "avx2", "MKL_CBWR": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}
SCRIPTS = {"schelix": "schelix_embed.py", "scvi": "scvi_latent.py"}


def _method_params(method: str, results: Path, dataset: str, seed: int, configfile: Path) -> dict:
    """The workflow's parameters for the method (its config entry; scHelix's partition of this seed)."""
    import yaml

    params = dict(yaml.safe_load(configfile.read_text()).get("method_params", {}).get(method, {}))
    if method == "schelix":
        params["partition"] = str(results / dataset / "partition" / f"seed{seed}.parquet")
    return params


def _train(method: str, pre_path: Path, params: dict, seed: int, threads: int, env_extra: dict, out: Path) -> None:
    cmd = [sys.executable, str(REPO / "scripts" / "methods" / SCRIPTS[method]), "--input", str(pre_path),
           "--output", str(out), "--method", method, "--seed", str(seed), "--threads", str(threads),
           "--batch-key", "batch", "--label-key", "cell_type", "--params", json.dumps(params)]
    done = subprocess.run(cmd, env={**os.environ, **env_extra}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{method} failed under {env_extra}:\n{done.stderr[-2000:]}")


def main(argv=None) -> int:
    import anndata as ad
    import numpy as np
    import pandas as pd

    from seed_components import score_embedding
    from sweep_defaults import _append_csv, code_version

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(REPO / "results_benchmark"), help="the benchmark's results_dir")
    parser.add_argument("--configfile", default=str(REPO / "config" / "benchmark.yaml"),
                        help="the config whose method_params the workflow used")
    parser.add_argument("--datasets", nargs="+", default=["kang_ifnb_pbmc", "baron_pancreas_mouse", "sim_mild"])
    parser.add_argument("--methods", nargs="+", default=list(SCRIPTS), choices=list(SCRIPTS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--threads", type=int, default=2, help="torch threads (the workflow gives each method 2)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "rounding_sensitivity.csv"))
    args = parser.parse_args(argv)
    logging.disable(logging.INFO)  # scib-metrics logs every skipped label
    results, commit, rows = Path(args.results), code_version(), []
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets:
            pre_path = results / dataset / "preprocessed.h5ad"
            pre = ad.read_h5ad(pre_path)
            for method in args.methods:
                for seed in args.seeds:
                    params = _method_params(method, results, dataset, seed, Path(args.configfile))
                    reference = None
                    for setting, env_extra in SETTINGS.items():
                        out = Path(tmp) / f"{dataset}_{method}_{seed}_{setting}.h5ad"
                        _train(method, pre_path, params, seed, args.threads, env_extra, out)
                        emb = ad.read_h5ad(out).obsm["X_emb"]
                        reference = emb if reference is None else reference
                        tables = []
                        score = score_embedding(pre, emb, seed, 10, tables)
                        scored = tables[0].set_index("metric")["value"]
                        rows.append({"dataset": dataset, "method": method, "seed": seed, "setting": setting,
                                     "env": json.dumps(env_extra, sort_keys=True),
                                     "max_abs_diff_rel": float(np.abs(emb - reference).max() / np.abs(reference).max()),
                                     "batch_correction": score["batch_correction"],
                                     "bio_conservation": score["bio_conservation"], "total": score["total"],
                                     "total_kmeans_averaged": score["total_kmeans_averaged"],
                                     "nmi_kmeans": scored["nmi_kmeans"], "ari_kmeans": scored["ari_kmeans"],
                                     "threads": args.threads, "commit": commit})
                        print(f"{dataset} {method} seed {seed} {setting}: total {score['total']:.3f} "
                              f"(k-means averaged {score['total_kmeans_averaged']:.3f}), "
                              f"max|diff| {rows[-1]['max_abs_diff_rel']:.2g}", flush=True)
    table = pd.DataFrame(rows)
    _append_csv(Path(args.out), table.round(6))
    spread = table.groupby(["dataset", "method", "seed"])[["total", "total_kmeans_averaged"]].agg(lambda s: s.max() - s.min())
    print("range over settings:\n" + spread.round(4).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
