"""Scaling benchmark: wall time and peak memory of scHelix's stages against scVI, Harmony, Scanorama.

Every (size, method, repeat) runs in its own process so peak resident memory is that run's
alone; inside a scHelix run a sampling thread attributes peak memory to each stage. Results
go to ``benchmarks/results/scaling.csv`` (one row per stage and run) and are summarised by
``benchmarks/report_performance.py``.

    python benchmarks/scaling.py --sizes 10000 25000 50000 100000 200000 --repeats 3 --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
METHODS = ("schelix", "scvi", "harmony", "scanorama")


class MemorySampler:
    """Samples this process's resident memory so peaks can be attributed to stages afterwards."""

    def __init__(self, interval: float = 0.05):
        import psutil

        self._proc = psutil.Process()
        self._interval = interval
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self._proc.memory_info().rss / 2**20))
            time.sleep(self._interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def peak_between(self, start: float, end: float) -> float:
        inside = [rss for t, rss in self.samples if start <= t <= end]
        return max(inside) if inside else float("nan")


def scvi_default_epochs(n_cells: int) -> int:
    """scvi-tools' own rule for max_epochs when none is given."""
    return int(min(round((20_000 / n_cells) * 400), 400))


def run_child(method: str, path: str, seed: int, threads: int) -> list[dict]:
    """One method on one dataset, in this process: rows of (stage, seconds, peak_mb)."""
    import anndata as ad

    os.environ["OMP_NUM_THREADS"] = str(threads)
    adata = ad.read_h5ad(path)
    rows = []
    with MemorySampler() as mem:
        start = time.perf_counter()
        if method == "schelix":
            from schelix_core import SCHelix

            model = SCHelix(adata, batch_key="batch", layer="counts")
            model.train(seed=seed, num_threads=threads, progress_bar=False)
            model.get_latent_representation()
            t = start
            for stage, seconds in model.timings_.items():
                rows.append({"stage": stage, "seconds": seconds, "peak_mb": mem.peak_between(t, t + seconds)})
                t += seconds
        elif method == "scvi":
            import scvi

            scvi.settings.seed = seed
            scvi.settings.num_threads = threads
            scvi.model.SCVI.setup_anndata(adata, layer="counts", batch_key="batch")
            model = scvi.model.SCVI(adata, n_latent=30)
            model.train(max_epochs=scvi_default_epochs(adata.n_obs), accelerator="cpu", enable_progress_bar=False)
            model.get_latent_representation()
        elif method == "harmony":
            import harmonypy

            harmonypy.run_harmony(adata.obsm["X_pca"], adata.obs, ["batch"], random_state=seed, verbose=False)
        elif method == "scanorama":
            import numpy as np
            import scanorama

            batches = adata.obs["batch"].astype(str).to_numpy()
            parts = [np.flatnonzero(batches == b) for b in np.unique(batches)]
            scanorama.integrate([adata.X[i] for i in parts], [list(adata.var_names)] * len(parts), seed=seed,
                                verbose=False)
        else:
            raise ValueError(f"unknown method {method}")
        end = time.perf_counter()
    rows.append({"stage": "total", "seconds": end - start, "peak_mb": max(r for _, r in mem.samples)})
    return rows


def prepare(n_cells: int, seed: int, folder: Path) -> Path:
    """Simulated counts (2,000 genes, 4 batches), preprocessed as the workflow does."""
    from schelix_core.benchmark.preprocess import preprocess
    from schelix_core.simulate import simulate

    path = folder / f"sim_{n_cells}.h5ad"
    if not path.exists():
        adata = simulate(n_cells=n_cells, n_genes=2000, n_batches=4, n_cell_types=10, seed=seed)
        preprocess(adata, "batch", n_top_genes=2000, n_pcs=50, target_sum=1e4, seed=seed).write_h5ad(path)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 25_000, 50_000, 100_000, 200_000])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--repeats", type=int, default=3, help="runs per size and method (medians are reported)")
    p.add_argument("--max-repeat-size", type=int, default=25_000, help="sizes above this run once")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "scaling.csv")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "H5AD"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child[0], args.child[1], args.seed, args.threads)))
        return 0

    import pandas as pd

    args.out.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            path = prepare(n, args.seed, Path(tmp))
            repeats = args.repeats if n <= args.max_repeat_size else 1
            for rep in range(repeats):
                for method in args.methods:
                    cmd = [sys.executable, __file__, "--child", method, str(path), "--seed", str(args.seed + rep),
                           "--threads", str(args.threads)]
                    proc = subprocess.run(cmd, capture_output=True, text=True)
                    if proc.returncode != 0:
                        print(proc.stderr[-2000:], file=sys.stderr)
                        rows.append({"n_cells": n, "method": method, "repeat": rep, "stage": "total",
                                     "seconds": float("nan"), "peak_mb": float("nan"), "status": "failed"})
                        continue
                    for row in json.loads(proc.stdout.strip().splitlines()[-1]):
                        rows.append({"n_cells": n, "method": method, "repeat": rep, **row, "status": "ok"})
                    print(f"{n} {method} rep{rep}: {rows[-1]['seconds']:.1f} s, {rows[-1]['peak_mb']:.0f} MB", flush=True)
                    table = pd.DataFrame(rows).assign(threads=args.threads, machine=platform.node(),
                                                      cpu=platform.processor() or platform.machine(),
                                                      n_cpus=os.cpu_count())
                    tmp_out = args.out.with_suffix(".tmp")
                    table.to_csv(tmp_out, index=False)
                    os.replace(tmp_out, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
