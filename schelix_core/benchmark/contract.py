"""The one contract every benchmarked method follows (after Open Problems' method API).

A method script defines ``run(adata, batch_key, label_key, seed, params, threads) -> MethodResult``
and calls :func:`main`. It reads the preprocessed dataset (HVGs, ``layers["counts"]``,
log-normalised ``X``, ``obsm["X_pca"]``) and writes a minimal AnnData holding only what it
declares: an embedding (``obsm["X_emb"]``), a kNN graph (``obsp["connectivities"]`` and
``obsp["distances"]``) or corrected features (``X``, plus their PCA as ``obsm["X_emb"]``).

A Python exception is recorded at once as a failed run (retrying a deterministic error is
wasted work). A process killed from outside (out of memory, a signal) exits non-zero so the
scheduler can retry it with more resources; ``record-failure`` turns the final attempt into a
failed-run record, so one broken method never stops the tables from being made.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

OUTPUT_TYPES = ("embedding", "graph", "corrected_features")
STATUS_OK = "ok"
STATUS_FAILED = "failed"

TRACKED_PACKAGES = (
    "schelix",
    "anndata",
    "scanpy",
    "numpy",
    "scipy",
    "pandas",
    "scikit-learn",
    "torch",
    "harmonypy",
    "scanorama",
    "scvi-tools",
    "bbknn",
    "scib-metrics",
    "jax",
    "snakemake",
)


def package_versions() -> dict[str, str]:
    """Versions of the packages that shape a result; recorded in every output."""
    from importlib.metadata import PackageNotFoundError, version

    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            continue
    return versions


def cpu_model() -> str:
    """The CPU's model name: scVI's results at fixed seeds, threads and versions differ across CPU
    vendors (Intel -> AMD moved its Kang total 0.780 -> 0.753), so each output names its CPU."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@dataclass
class MethodResult:
    embedding: np.ndarray | None = None
    connectivities: object | None = None  # scipy sparse, graph methods
    distances: object | None = None
    corrected: object | None = None  # cells x genes, corrected-feature methods
    extra_uns: dict = field(default_factory=dict)


@dataclass(frozen=True)
class MethodSpec:
    name: str
    output_type: str
    uses_labels: bool = False
    is_control: bool = False

    def __post_init__(self):
        if self.output_type not in OUTPUT_TYPES:
            raise ValueError(f"output_type must be one of {OUTPUT_TYPES}, not {self.output_type!r}")


def write_h5ad_atomic(adata, path: str | os.PathLike) -> None:
    """Write to a temporary file beside the target, then rename: never a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        adata.write_h5ad(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _base_output(obs_names, spec: MethodSpec | None, method: str, seed: int, params: dict, status: str):
    import anndata as ad
    import pandas as pd

    out = ad.AnnData(obs=pd.DataFrame(index=pd.Index(obs_names, dtype=str)))
    out.uns["method"] = method
    out.uns["output_type"] = spec.output_type if spec else "none"
    out.uns["uses_labels"] = bool(spec.uses_labels) if spec else False
    out.uns["is_control"] = bool(spec.is_control) if spec else False
    out.uns["seed"] = int(seed)
    out.uns["params"] = json.dumps(params, sort_keys=True)
    out.uns["versions"] = package_versions()
    out.uns["status"] = status
    out.uns["error"] = ""
    return out


def build_output(adata_in, spec: MethodSpec, result: MethodResult, seed: int, params: dict, runtime_s: float):
    out = _base_output(adata_in.obs_names, spec, spec.name, seed, params, STATUS_OK)
    out.uns["runtime_s"] = float(runtime_s)
    n = adata_in.n_obs
    if spec.output_type == "embedding":
        emb = np.asarray(result.embedding, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] != n:
            raise ValueError(f"{spec.name}: embedding has shape {emb.shape}, expected ({n}, d)")
        if not np.isfinite(emb).all():
            raise ValueError(f"{spec.name}: embedding contains NaN or infinite values")
        out.obsm["X_emb"] = emb
    elif spec.output_type == "graph":
        out.obsp["connectivities"] = result.connectivities.tocsr()
        out.obsp["distances"] = result.distances.tocsr()
    else:
        import anndata as ad
        from sklearn.decomposition import PCA

        corrected = np.asarray(result.corrected, dtype=np.float32)
        if not np.isfinite(corrected).all():
            raise ValueError(f"{spec.name}: corrected features contain NaN or infinite values")
        out = ad.AnnData(X=corrected, obs=out.obs, uns=out.uns)
        out.var_names = adata_in.var_names
        n_comps = min(50, corrected.shape[1] - 1, n - 1)
        out.obsm["X_emb"] = PCA(n_components=n_comps, random_state=seed).fit_transform(corrected).astype(np.float32)
    for key, value in result.extra_uns.items():
        out.uns[key] = value
    return out


def failure_output(obs_names, method: str, seed: int, params: dict, error: str):
    out = _base_output(obs_names, None, method, seed, params, STATUS_FAILED)
    out.uns["error"] = error[-2000:]
    return out


def _parse_args(argv, method_name):
    p = argparse.ArgumentParser(description=f"Run the {method_name} integration method.")
    p.add_argument("--input", required=True, help="preprocessed .h5ad")
    p.add_argument("--output", required=True, help="output .h5ad")
    p.add_argument("--batch-key", default="batch")
    p.add_argument("--label-key", default="cell_type")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--params", default="{}", help="JSON object of method parameters")
    p.add_argument("--method", default=method_name, help="name recorded in the output (for named variants)")
    return p.parse_args(argv)


def set_seed(seed: int) -> None:
    import random

    random.seed(seed)
    np.random.seed(seed)
    try:
        import torch

        torch.manual_seed(seed)
    except ImportError:
        pass


def main(spec: MethodSpec, run: Callable, argv=None) -> int:
    """Command-line entry of a method script."""
    import anndata as ad

    args = _parse_args(argv, spec.name)
    if args.method != spec.name:
        spec = MethodSpec(args.method, spec.output_type, spec.uses_labels, spec.is_control)
    params = json.loads(args.params)
    if not isinstance(params, dict):
        raise SystemExit(f"--params must be a JSON object, got {args.params!r}")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    adata = ad.read_h5ad(args.input)
    set_seed(args.seed)
    start = time.perf_counter()
    try:
        result = run(adata, args.batch_key, args.label_key, args.seed, params, args.threads)
        out = build_output(adata, spec, result, args.seed, params, time.perf_counter() - start)
    except Exception as exc:  # recorded, not retried: a deterministic error fails the same way again
        traceback.print_exc()
        out = failure_output(adata.obs_names, spec.name, args.seed, params, f"{type(exc).__name__}: {exc}")
    # torch's results depend on its thread count (scHelix: not across 1 and 2 threads) and, for
    # scVI, on the CPU, so a run is reproducible only from its seed, params, versions, threads and CPU
    out.uns["threads"] = int(args.threads)
    out.uns["cpu"] = cpu_model()
    write_h5ad_atomic(out, args.output)
    print(f"{spec.name}: status={out.uns['status']} -> {args.output}")
    return 0


def _describe_exit(code: int) -> str:
    if code >= 128:
        sig = code - 128
        names = {9: "SIGKILL (often the out-of-memory killer)", 15: "SIGTERM", 6: "SIGABRT", 11: "SIGSEGV"}
        return f"killed by signal {sig}: {names.get(sig, 'signal')}"
    return f"exited with status {code}"


def record_failure(argv=None) -> int:
    """Shell fallback after a method process died: ask for a retry, or record the failure."""
    p = argparse.ArgumentParser(description="Record a method run that died.")
    p.add_argument("--input", required=True)
    p.add_argument("--output", required=True)
    p.add_argument("--method", required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--exit-code", type=int, required=True)
    p.add_argument("--attempt", type=int, default=1)
    p.add_argument("--max-attempts", type=int, default=1)
    p.add_argument("--log", default=None)
    args = p.parse_args(argv)
    reason = _describe_exit(args.exit_code)
    if args.log and Path(args.log).exists():
        tail = [line for line in Path(args.log).read_text(errors="replace").splitlines() if line.strip()]
        if tail:
            reason += f"; last log line: {tail[-1][:300]}"
    interrupted = args.exit_code in (128 + 2, 128 + 15)  # SIGINT, SIGTERM: the run was stopped, not broken
    if interrupted or args.attempt < args.max_attempts:
        print(f"{args.method}: attempt {args.attempt}/{args.max_attempts} {reason}; retrying", file=sys.stderr)
        return 1
    import anndata as ad

    obs_names = ad.read_h5ad(args.input, backed="r").obs_names
    out = failure_output(obs_names, args.method, args.seed, {}, f"attempt {args.attempt}: {reason}")
    write_h5ad_atomic(out, args.output)
    print(f"{args.method}: recorded as failed ({reason})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "record-failure":
        sys.exit(record_failure(sys.argv[2:]))
    raise SystemExit("usage: python -m schelix_core.benchmark.contract record-failure ...")
