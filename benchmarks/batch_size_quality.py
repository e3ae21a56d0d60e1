"""Does a GPU's larger mini-batch change what scHelix learns? Checked on a CPU.

On a GPU scHelix takes up to 1,024 cells a step (``training.batch_size_for``) where a CPU takes
256, with the same step budget. Step time differs by device, but the result does not depend on
it, so larger sizes are trained here on a CPU (slowly) and scored with the workflow's metric
stage, plus NMI/ARI averaged over k-means seeds (one k-means draw moves ARI by up to 0.3 on
these data). Inputs are the scaling benchmark's simulated files; results go to
``benchmarks/results/batch_size_quality.csv``, read by ``report_performance.py``.

    python benchmarks/batch_size_quality.py --data-dir /tmp/scal/data --sizes 10000 100000 --batch-sizes 256 1024 4096
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shlex
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def measure(path: Path, batch_size: int, seed: int, threads: int, n_kmeans_seeds: int) -> list[dict]:
    """Metric rows of one CPU training run at ``batch_size``: k-means seed 0 as scored, and averaged."""
    import anndata as ad
    import numpy as np
    import pandas as pd

    from schelix_core import SCHelix
    from schelix_core.benchmark.metrics import compute_metrics

    kmeans_runs = _load("kmeans_seed_sensitivity")._kmeans_runs
    pre = ad.read_h5ad(path)
    start = time.perf_counter()
    model = SCHelix(pre, batch_key="batch", layer="counts")
    model.train(accelerator="cpu", seed=seed, batch_size=batch_size, num_threads=threads, progress_bar=False)
    embedding = model.get_latent_representation()
    seconds = time.perf_counter() - start
    out = ad.AnnData(obs=pre.obs[[]])
    out.obsm["X_emb"] = embedding
    out.uns["output_type"] = "embedding"
    table = compute_metrics(pre, out, "batch", "cell_type", seed=seed)
    runs = pd.DataFrame(kmeans_runs(embedding, np.asarray(pre.obs["cell_type"].astype(str)), n_kmeans_seeds))
    averaged = {"nmi_kmeans": runs["nmi"].mean(), "ari_kmeans": runs["ari"].mean()}
    rows = []
    for rec in table.to_dict("records"):
        rows.append({**rec, "kmeans": "seed0"})
        rows.append({**rec, "kmeans": "averaged", "value": averaged.get(rec["metric"], rec["value"])})
    return [{"n_cells": pre.n_obs, "batch_size": batch_size, "seed": seed, "train_s": seconds,
             "n_kmeans_seeds": n_kmeans_seeds, **r} for r in rows]


def main(argv=None) -> int:
    import pandas as pd

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", type=Path, required=True, help="folder of scaling.py's sim_<cells>.h5ad files")
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000])
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 1024, 4096])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--n-kmeans-seeds", type=int, default=20)
    p.add_argument("--out", type=Path, default=RESULTS / "batch_size_quality.csv")
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    command = shlex.join(["python", "benchmarks/batch_size_quality.py", *(sys.argv[1:] if argv is None else argv)])
    for n in args.sizes:
        path = args.data_dir / f"sim_{n}.h5ad"
        if not path.exists():
            args.data_dir.mkdir(parents=True, exist_ok=True)
            _load("scaling").prepare(n, args.seed, args.data_dir)
        for batch_size in args.batch_sizes:
            new = measure(path, batch_size, args.seed, args.threads, args.n_kmeans_seeds)
            # read just before writing, so runs of other sizes finished meanwhile are kept;
            # a re-run replaces its own earlier rows
            rows = pd.read_csv(args.out).to_dict("records") if args.out.exists() else []
            rows = [r for r in rows if (r["n_cells"], r["batch_size"], r["seed"]) != (n, batch_size, args.seed)]
            rows += [{**r, "machine": platform.node(), "threads": args.threads, "command": command} for r in new]
            args.out.parent.mkdir(parents=True, exist_ok=True)
            tmp = args.out.with_suffix(".csv.tmp")
            pd.DataFrame(rows).to_csv(tmp, index=False)
            tmp.replace(args.out)
            print(f"{n:,} cells, batch {batch_size}: {new[0]['train_s']:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
