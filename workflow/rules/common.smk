# Constants, wildcard constraints and every input/param/resource function the rules use.
import json
import os
import re
from pathlib import Path

from pooch import file_hash

from schelix_core.benchmark.data import check_dataset_name
from schelix_core.benchmark.methods import METHODS, check_method_params
from schelix_core.benchmark.workflow_io import source_digest

REPO = Path(workflow.main_snakefile).parent
RESULTS = config["results_dir"]
DATASETS = [check_dataset_name(name) for name in config["datasets"]]
METHOD_NAMES = list(config["methods"])
SEEDS = [int(s) for s in config["seeds"]]
check_method_params(config.get("method_params", {}))
# Compiled-code caches shared by every job: numba (neighbour search, UMAP) and JAX (scib-metrics)
# otherwise recompile in each job's fresh process.
_CACHE = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "schelix"
os.environ.setdefault("NUMBA_CACHE_DIR", str(_CACHE / "numba"))
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", str(_CACHE / "jax"))
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# A method killed from outside (out of memory, time limit) is retried with more resources;
# the last attempt records the failure so the tables are still made.
METHOD_ATTEMPTS = 3


def _alternatives(names):
    return "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))


wildcard_constraints:
    dataset=_alternatives(DATASETS),
    method=_alternatives(METHODS),
    seed=r"\d+",


def dataset_spec(name):
    spec = dict(config["datasets"][name])
    spec.setdefault("batch_key", "batch")
    spec.setdefault("label_key", "cell_type")
    return spec


def batch_key(wildcards):
    return dataset_spec(wildcards.dataset)["batch_key"]


def label_key(wildcards):
    return dataset_spec(wildcards.dataset)["label_key"]


def dataset_spec_json(wildcards):
    return json.dumps(dataset_spec(wildcards.dataset), sort_keys=True)


def dataset_local_input(wildcards):
    """A local .h5ad, its age ignored: a re-copied or re-mounted file is not new data."""
    spec = dataset_spec(wildcards.dataset)
    return [ancient(spec["path"])] if "path" in spec else []


def dataset_content_digest(wildcards):
    """What makes a local .h5ad new data: its content, so replacing the file re-runs its jobs."""
    spec = dataset_spec(wildcards.dataset)
    if "path" not in spec or not Path(spec["path"]).is_file():
        return ""  # a missing file is reported as a missing input, naming it
    return file_hash(spec["path"], alg="sha256")


# Snakemake re-runs a job when its rule's own code changes, not when the schelix_core code its
# script calls does. Each rule therefore takes a digest of its script and of the package modules
# it runs (with everything they import) as a parameter: editing the model re-runs the scHelix jobs
# and what depends on them, and nothing else.
def _code_digest(script, modules=()):
    return source_digest(REPO, modules, [f"scripts/{script}"])


CODE_DIGEST = {
    "load_dataset": _code_digest("load_dataset.py", ["schelix_core.benchmark.data"]),
    "qc_preprocess": _code_digest("qc_preprocess.py", ["schelix_core.benchmark.preprocess", "schelix_core.checks"]),
    "partition_genes": _code_digest("partition_genes.py", ["schelix_core.partition"]),
    "metrics": _code_digest("compute_metrics.py", ["schelix_core.benchmark.metrics"]),
    "aggregate_metrics": _code_digest("aggregate_metrics.py", ["schelix_core.benchmark.aggregate"]),
    "plot_summary": _code_digest("plot_summary.py", ["schelix_core.benchmark.plots"]),
    "plot_umaps": _code_digest("plot_umaps.py", ["schelix_core.benchmark.plots"]),
}
METHOD_CODE_DIGEST = {
    name: _code_digest(f"methods/{entry.script}", entry.code_modules) for name, entry in METHODS.items()
}


def method_code_digest(wildcards):
    return METHOD_CODE_DIGEST[wildcards.method]


def method_script(wildcards):
    return str(REPO / "scripts" / "methods" / METHODS[wildcards.method].script)


def method_params(method):
    """Config parameters (scHelix ablations inherit 'schelix'), then the variant's fixed ones."""
    entry = METHODS[method]
    user = config.get("method_params", {})
    params = {}
    if method.startswith("schelix_"):
        params.update(user.get("schelix", {}))
    params.update(user.get(method, {}))
    params.update(entry.fixed_params)
    if entry.trains_on_gpu:
        params["accelerator"] = "gpu" if config.get("use_gpu", False) else "cpu"
    return params


def method_params_json(wildcards, input):
    params = method_params(wildcards.method)
    if METHODS[wildcards.method].needs_partition:
        params["partition"] = str(input.partition)
    return json.dumps(params, sort_keys=True)


def integrate_input(wildcards):
    files = {"data": f"{RESULTS}/{wildcards.dataset}/preprocessed.h5ad"}
    if METHODS[wildcards.method].needs_partition:
        files["partition"] = f"{RESULTS}/{wildcards.dataset}/partition/seed{wildcards.seed}.parquet"
    return files


def partition_params_json(wildcards):
    return json.dumps(config.get("partition", {}), sort_keys=True)


# Resources grow with the input and with each retry, so --retries recovers from an
# out-of-memory kill or a time limit. Sizes are MB of the job's input files.
def mem_mb_small(wildcards, input, attempt):
    return int((1000 + 10 * input.size_mb) * attempt)


def mem_mb_large(wildcards, input, attempt):
    return int((2000 + 25 * input.size_mb) * attempt)


def runtime_small(wildcards, input, attempt):
    return int((10 + input.size_mb / 10) * attempt)


def runtime_large(wildcards, input, attempt):
    return int((30 + input.size_mb) * attempt)


def gpu_request(wildcards):
    return int(bool(config.get("use_gpu", False)) and METHODS[wildcards.method].trains_on_gpu)


def attempt_number(wildcards, attempt):
    return attempt


def threads_for(method):
    """Training methods get two threads; the rest are light or single-threaded."""
    return 2 if METHODS[method].trains_on_gpu else 1


def method_threads(wildcards):
    return threads_for(wildcards.method)


def runs(dataset=None):
    names = [dataset] if dataset else DATASETS
    return [(d, m, s) for d in names for m in METHOD_NAMES for s in SEEDS]


def umap_inputs(wildcards):
    """UMAPs show the first seed of every method."""
    seed = min(SEEDS)
    return [f"{RESULTS}/{wildcards.dataset}/integrated/{m}/seed{seed}.h5ad" for m in METHOD_NAMES]


def run_metric_files(wildcards):
    return [f"{RESULTS}/{d}/metrics/{m}/seed{s}.parquet" for d, m, s in runs()]


def run_benchmark_files(wildcards):
    return [f"{RESULTS}/benchmarks/integrate/{d}/{m}/seed{s}.tsv" for d, m, s in runs()]


def partition_seeds():
    if any(METHODS[m].needs_partition for m in METHOD_NAMES):
        return SEEDS
    return []


def final_outputs():
    tables = [f"{RESULTS}/tables/{name}" for name in
              ("metrics.parquet", "summary.csv", "summary.parquet", "summary.md", "status.txt")]
    figures = [f"{RESULTS}/figures/{name}.{ext}" for name in ("results_table", "resources", "completeness")
               for ext in ("png", "svg")]
    per_dataset = [f"{RESULTS}/figures/umap_{d}.png" for d in DATASETS]
    qc = [f"{RESULTS}/{d}/qc/qc_table.csv" for d in DATASETS]
    partitions = [f"{RESULTS}/{d}/partition/seed{s}.png" for d in DATASETS for s in partition_seeds()]
    return tables + figures + per_dataset + qc + partitions
