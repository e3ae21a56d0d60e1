"""Every baseline follows one contract: same inputs, a declared output type, recorded metadata."""

import importlib.util
import json
import subprocess
import sys

import anndata as ad
import numpy as np
import pytest

from schelix_core.benchmark.contract import OUTPUT_TYPES, build_output, cpu_model, write_h5ad_atomic
from schelix_core.benchmark.methods import METHODS
from tests.conftest import REPO

METHODS_DIR = REPO / "scripts" / "methods"
FAST_PARAMS = {"scvi": {"max_epochs": 2}, "scanvi": {"max_epochs": 2, "scanvi_max_epochs": 1}}
BASELINES = [m for m in METHODS if not m.startswith("schelix")]


def load_script(method):
    path = METHODS_DIR / METHODS[method].script
    sys.path.insert(0, str(METHODS_DIR))
    try:
        spec = importlib.util.spec_from_file_location(f"method_{method}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(METHODS_DIR))
    return module


def test_every_registered_method_has_a_script_that_declares_its_output():
    for method, entry in METHODS.items():
        module = load_script(method)
        assert module.SPEC.output_type in OUTPUT_TYPES
        assert module.SPEC.uses_labels == entry.uses_labels, method


@pytest.mark.parametrize("method", BASELINES)
def test_baseline_returns_its_declared_output(method, small_preprocessed):
    module = load_script(method)
    result = module.run(small_preprocessed.copy(), "batch", "cell_type", 0, FAST_PARAMS.get(method, {}), 1)
    out = build_output(small_preprocessed, module.SPEC, result, seed=0, params={}, runtime_s=1.0)
    assert out.uns["status"] == "ok" and out.uns["seed"] == 0
    assert "anndata" in out.uns["versions"] and "numpy" in out.uns["versions"]
    assert list(out.obs_names) == list(small_preprocessed.obs_names)
    if module.SPEC.output_type == "graph":
        assert out.obsp["distances"].shape == (out.n_obs, out.n_obs)
        assert out.obsp["distances"].nnz > 0
    else:
        emb = out.obsm["X_emb"]
        assert emb.shape[0] == out.n_obs and np.isfinite(emb).all()


def test_floor_keeps_batches_and_destroys_labels(small_preprocessed):
    module = load_script("control_floor")
    emb = module.run(small_preprocessed, "batch", "cell_type", 0, {}, 1).embedding
    pca = small_preprocessed.obsm["X_pca"]
    batches = small_preprocessed.obs["batch"].to_numpy()
    for b in np.unique(batches):
        idx = batches == b
        assert np.allclose(np.sort(emb[idx], axis=0), np.sort(pca[idx], axis=0)), "only shuffled within batch"
    assert not np.allclose(emb, pca)


def run_cli(method, tmp_path, input_path, params, threads=1):
    out = tmp_path / f"{method}.h5ad"
    cmd = [sys.executable, str(METHODS_DIR / METHODS[method].script), "--input", str(input_path), "--output", str(out),
           "--seed", "3", "--params", json.dumps(params), "--method", method, "--threads", str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    return proc, out


def test_cli_writes_output_with_seed_and_params(small_preprocessed, tmp_path):
    path = tmp_path / "in.h5ad"
    write_h5ad_atomic(small_preprocessed, path)
    proc, out = run_cli("harmony", tmp_path, path, {"max_iter_harmony": 5}, threads=2)
    assert proc.returncode == 0, proc.stderr
    result = ad.read_h5ad(out)
    assert result.uns["seed"] == 3 and json.loads(result.uns["params"]) == {"max_iter_harmony": 5}
    assert result.uns["threads"] == 2
    assert result.uns["cpu"] == cpu_model() and result.uns["cpu"]
    assert result.uns["method"] == "harmony" and result.uns["status"] == "ok"


def test_python_error_is_recorded_as_failed_run(small_preprocessed, tmp_path):
    path = tmp_path / "in.h5ad"
    write_h5ad_atomic(small_preprocessed, path)
    proc, out = run_cli("harmony", tmp_path, path, {"max_iter_harmony": "not-a-number"})
    assert proc.returncode == 0
    result = ad.read_h5ad(out)
    assert result.uns["status"] == "failed" and "ValueError" in result.uns["error"]


def record_failure(preprocessed, tmp_path, exit_code, attempt):
    """Run the integrate rule's shell fallback as a dead method process would trigger it."""
    path = tmp_path / "in.h5ad"
    if not path.exists():
        write_h5ad_atomic(preprocessed, path)
    out = tmp_path / "dead.h5ad"
    cmd = [sys.executable, "-m", "schelix_core.benchmark.contract", "record-failure", "--input", str(path),
           "--output", str(out), "--method", "scvi", "--seed", "0", "--exit-code", str(exit_code),
           "--attempt", str(attempt), "--max-attempts", "3"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=REPO), out


def test_killed_process_is_retried_then_recorded(small_preprocessed, tmp_path):
    early, out = record_failure(small_preprocessed, tmp_path, 137, attempt=1)
    assert early.returncode == 1 and not out.exists(), "an early attempt asks the scheduler for a retry"
    last, out = record_failure(small_preprocessed, tmp_path, 137, attempt=3)
    assert last.returncode == 0
    result = ad.read_h5ad(out)
    assert result.uns["status"] == "failed" and "SIGKILL" in result.uns["error"]


def test_interrupted_process_is_never_recorded_as_failed(small_preprocessed, tmp_path):
    """A Ctrl-C or scheduler SIGTERM on the last attempt must leave the run to be redone on resume."""
    proc, out = record_failure(small_preprocessed, tmp_path, 143, attempt=3)
    assert proc.returncode == 1
    assert not out.exists()


def test_unknown_method_parameter_is_refused_with_a_suggestion():
    from schelix_core.benchmark.methods import check_method_params

    check_method_params({"scvi": {"max_epochs": 3}, "schelix": {"n_latent": 16, "max_epochs": 2}})
    with pytest.raises(ValueError, match="did you mean 'max_epochs'"):
        check_method_params({"scvi": {"max_epoch": 3}})
