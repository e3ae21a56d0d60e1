"""Scaling benchmark: wall time and peak memory of scHelix's stages against scVI, Harmony, Scanorama.

Every (size, method, repeat) runs in its own process so peak resident memory is that run's
alone; inside a scHelix run a sampling thread attributes peak memory to each stage. Results
go to ``benchmarks/results/scaling.csv`` (one row per stage and run). The first repeat's
embedding of each method then goes through the workflow's metric stage, in its own process too:
its time, peak memory and metric values go to ``benchmarks/results/scaling_metrics.csv``. Both
are summarised by ``benchmarks/report_performance.py``.

    python benchmarks/scaling.py --sizes 10000 25000 50000 100000 200000 --repeats 3 --threads 2

On a GPU machine, scHelix alone at a million cells (its peak GPU memory is recorded too):

    python benchmarks/scaling.py --sizes 1000000 --methods schelix --accelerator gpu \
        --metrics-sizes --out benchmarks/results/scaling_gpu.csv
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
METHODS = ("schelix", "scvi", "harmony", "scanorama")
METHOD_SCRIPTS = {"scvi": "scvi_latent.py", "harmony": "harmony.py", "scanorama": "scanorama_embed.py"}


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


def _method_run(method: str):
    """The workflow's own method script's ``run`` (so the benchmark times exactly what it runs)."""
    path = REPO / "scripts" / "methods" / METHOD_SCRIPTS[method]
    spec = importlib.util.spec_from_file_location(f"method_{method}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run


def run_child(method: str, path: str, seed: int, threads: int, emb_out: str | None,
              accelerator: str = "cpu") -> list[dict]:
    """One method on one dataset, in this process: rows of (stage, seconds, peak_mb).

    "total" is the method's work on data already in memory (imports a method makes inside its
    run, such as scvi's, included), as the workflow's ``runtime_s`` records it. On a GPU it also
    carries the peak GPU memory torch allocated, and the mini-batch size scHelix chose.
    """
    import anndata as ad
    import numpy as np

    os.environ["OMP_NUM_THREADS"] = str(threads)
    if method == "schelix":
        from schelix_core import SCHelix
    else:
        run = _method_run(method)
    adata = ad.read_h5ad(path)
    rows, gpu = [], {}
    with MemorySampler() as mem:
        start = time.perf_counter()
        if method == "schelix":
            model = SCHelix(adata, batch_key="batch", layer="counts")
            model.train(accelerator=accelerator, seed=seed, num_threads=threads, progress_bar=False)
            embedding = model.get_latent_representation()
            t = start
            for stage, seconds in model.timings_.items():
                rows.append({"stage": stage, "seconds": seconds, "peak_mb": mem.peak_between(t, t + seconds)})
                t += seconds
            if accelerator == "gpu":
                import torch

                gpu = {"gpu_peak_mb": torch.cuda.max_memory_allocated() / 2**20,
                       "gpu": torch.cuda.get_device_name(), "batch_size": model.params["batch_size"]}
        else:
            embedding = run(adata, "batch", "cell_type", seed, {}, threads).embedding
        end = time.perf_counter()
    rows.append({"stage": "total", "seconds": end - start, "peak_mb": max(r for _, r in mem.samples), **gpu})
    if emb_out:
        np.save(emb_out, np.asarray(embedding, dtype=np.float32))
    return rows


def run_metrics_child(path: str, emb_path: str, seed: int) -> dict:
    """The workflow's metric stage on one saved embedding: seconds, peak MB and the metric rows."""
    import anndata as ad
    import numpy as np

    from schelix_core.benchmark.metrics import compute_metrics, import_scib_metrics

    import_scib_metrics()
    pre = ad.read_h5ad(path)
    out = ad.AnnData(obs=pre.obs[[]])
    out.obsm["X_emb"] = np.load(emb_path)
    out.uns["output_type"] = "embedding"
    with MemorySampler() as mem:
        start = time.perf_counter()
        table = compute_metrics(pre, out, "batch", "cell_type", seed=seed)
        end = time.perf_counter()
    return {"seconds": end - start, "peak_mb": max(r for _, r in mem.samples), "metrics": table.to_dict("records")}


def prepare(n_cells: int, seed: int, folder: Path) -> Path:
    """Simulated counts (2,000 genes, 4 batches), preprocessed as the workflow does."""
    from schelix_core.benchmark.preprocess import preprocess
    from schelix_core.simulate import simulate

    path = folder / f"sim_{n_cells}.h5ad"
    if not path.exists():
        adata = simulate(n_cells=n_cells, n_genes=2000, n_batches=4, n_cell_types=10, seed=seed)
        preprocess(adata, "batch", n_top_genes=2000, n_pcs=50, target_sum=1e4, seed=seed).write_h5ad(path)
    return path


def _write_atomic(table, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    table.to_csv(tmp, index=False)
    os.replace(tmp, path)


def _child(args, seed: int, *extra) -> subprocess.CompletedProcess:
    cmd = [sys.executable, __file__, *extra, "--seed", str(seed), "--threads", str(args.threads),
           "--accelerator", args.accelerator]
    return subprocess.run(cmd, capture_output=True, text=True)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[10_000, 25_000, 50_000, 100_000, 200_000])
    p.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    p.add_argument("--repeats", type=int, default=3, help="runs per size and method (medians are reported)")
    p.add_argument("--max-repeat-size", type=int, default=25_000, help="sizes above this run once")
    p.add_argument("--metrics-sizes", type=int, nargs="*", default=None,
                   help="sizes whose embeddings (first repeat) also go through the metric stage (default: all)")
    p.add_argument("--metrics-methods", nargs="*", default=list(METHODS), choices=METHODS,
                   help="methods whose embeddings go through the metric stage (default: all)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--accelerator", choices=("cpu", "gpu"), default="cpu",
                   help="where scHelix trains (the other methods run as the workflow runs them)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=RESULTS / "scaling.csv")
    p.add_argument("--resume", action="store_true", help="keep the runs already in --out and skip them")
    p.add_argument("--data-dir", type=Path, help="where the simulated inputs are kept (default: a temporary folder)")
    p.add_argument("--child", nargs=2, metavar=("METHOD", "H5AD"), help=argparse.SUPPRESS)
    p.add_argument("--emb-out", help=argparse.SUPPRESS)
    p.add_argument("--metrics-child", nargs=2, metavar=("H5AD", "EMBEDDING"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(args.child[0], args.child[1], args.seed, args.threads, args.emb_out,
                                   args.accelerator)))
        return 0
    if args.metrics_child:
        print(json.dumps(run_metrics_child(*args.metrics_child, args.seed)))
        return 0

    import pandas as pd

    if args.accelerator == "gpu":
        import torch

        if not torch.cuda.is_available():
            print("--accelerator gpu: torch sees no CUDA device on this machine", file=sys.stderr)
            return 2
    args.out.parent.mkdir(parents=True, exist_ok=True)
    metrics_out = args.out.with_name(args.out.stem + "_metrics.csv")
    rows, metric_rows = [], []
    if args.resume and args.out.exists():
        # round-trip parsing, so that rows kept and written back are the measured values, bit for bit
        rows = pd.read_csv(args.out, float_precision="round_trip").to_dict("records")
        if metrics_out.exists():
            metric_rows = pd.read_csv(metrics_out, float_precision="round_trip").to_dict("records")
    done = {(r["n_cells"], r["method"], r["repeat"]) for r in rows if r["stage"] == "total" and r["status"] == "ok"}
    measured = {(r["n_cells"], r["method"]) for r in metric_rows}
    metrics_sizes = set(args.sizes if args.metrics_sizes is None else args.metrics_sizes)
    machine = {"threads": args.threads, "accelerator": args.accelerator, "machine": platform.node(),
               "cpu": platform.processor() or platform.machine(), "n_cpus": os.cpu_count(),
               "command": shlex.join(["python", "benchmarks/scaling.py", *(sys.argv[1:] if argv is None else argv)])}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data_dir or Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for n in args.sizes:
            path = prepare(n, args.seed, folder)
            repeats = args.repeats if n <= args.max_repeat_size else 1
            for rep in range(repeats):
                for method in args.methods:
                    seed = args.seed + rep
                    emb = folder / f"emb_{n}_{method}_seed{seed}.npy"  # kept with the data, for --resume
                    if (n, method, rep) not in done:
                        rows = [r for r in rows if (r["n_cells"], r["method"], r["repeat"]) != (n, method, rep)]
                        if rep == 0:
                            # this run rewrites the embedding the metric stage scores: scores of the
                            # previous one (training is not bit-reproducible) would no longer apply
                            emb.unlink(missing_ok=True)
                            kept = [r for r in metric_rows if (r["n_cells"], r["method"]) != (n, method)]
                            if len(kept) < len(metric_rows):
                                metric_rows = kept
                                measured.discard((n, method))
                                if metric_rows:
                                    _write_atomic(pd.DataFrame(metric_rows), metrics_out)
                                else:
                                    metrics_out.unlink(missing_ok=True)
                        proc = _child(args, seed, "--child", method, str(path), "--emb-out", str(emb))
                        if proc.returncode != 0:
                            print(proc.stderr[-2000:], file=sys.stderr)
                            rows.append({"n_cells": n, "method": method, "repeat": rep, "stage": "total",
                                         "seconds": float("nan"), "peak_mb": float("nan"), "status": "failed",
                                         **machine})
                        else:
                            for row in json.loads(proc.stdout.strip().splitlines()[-1]):
                                rows.append({"n_cells": n, "method": method, "repeat": rep, **row, "status": "ok",
                                             **machine})
                        print(f"{n} {method} rep{rep}: {rows[-1]['seconds']:.1f} s, {rows[-1]['peak_mb']:.0f} MB",
                              flush=True)
                        _write_atomic(pd.DataFrame(rows), args.out)
                    wanted = n in metrics_sizes and method in args.metrics_methods
                    if not wanted or (n, method) in measured or not emb.exists():
                        continue
                    proc = _child(args, seed, "--metrics-child", str(path), str(emb))
                    if proc.returncode != 0:
                        print(proc.stderr[-2000:], file=sys.stderr)
                        continue
                    result = json.loads(proc.stdout.strip().splitlines()[-1])
                    measured.add((n, method))
                    for metric in result["metrics"]:
                        metric_rows.append({"n_cells": n, "method": method, "seed": seed, "seconds": result["seconds"],
                                            "peak_mb": result["peak_mb"], **metric, **machine})
                    print(f"{n} {method} metrics: {result['seconds']:.1f} s, {result['peak_mb']:.0f} MB", flush=True)
                    _write_atomic(pd.DataFrame(metric_rows), metrics_out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
