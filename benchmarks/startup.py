"""Per-job start-up overhead: the seconds a fresh job process spends importing what it needs
before its real work, with the workflow's compiled-code caches warm (issue #6).

Each case runs in its own fresh interpreter, as a Snakemake job does; the first run of each
case warms numba's and JAX's on-disk caches and is not counted. Results go to
``benchmarks/results/startup.csv`` (every run) and are printed as medians.

    python benchmarks/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"

# What each kind of job imports before touching its data (see scripts/ and scripts/methods/).
CASES = {
    "metrics (scib-metrics, umap and pynndescent imported)": "import umap, scib_metrics",
    "metrics (as the workflow imports it)": (
        "from schelix_core.benchmark.metrics import import_scib_metrics; import_scib_metrics()"
    ),
    "integrate: harmony": "import anndata, scanpy, harmonypy",
    "integrate: scHelix": "import anndata, torch, schelix_core, schelix_core.module, schelix_core.training",
    "integrate: scVI": "import anndata, scvi",
    "qc_preprocess": "import anndata, scanpy, schelix_core.benchmark.preprocess",
}


def workflow_env() -> dict:
    """The cache locations workflow/rules/common.smk gives every job."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "schelix"
    env = dict(os.environ)
    env.setdefault("NUMBA_CACHE_DIR", str(cache / "numba"))
    env.setdefault("JAX_COMPILATION_CACHE_DIR", str(cache / "jax"))
    return env


def time_import(statement: str, env: dict) -> float:
    code = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    env = workflow_env()
    rows = []
    for case, statement in CASES.items():
        time_import(statement, env)  # warm the on-disk caches
        for repeat in range(args.repeats):
            rows.append({"case": case, "repeat": repeat, "seconds": time_import(statement, env)})
    table = pd.DataFrame(rows)
    table["machine"] = f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}"
    table["when"] = time.strftime("%Y-%m-%d %H:%M:%S")
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / "startup.csv.tmp"
    table.to_csv(tmp, index=False)
    tmp.replace(RESULTS / "startup.csv")
    print(table.groupby("case", sort=False)["seconds"].median().round(2).to_string())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
