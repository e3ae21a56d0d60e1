"""Bad input through the workflow: each fails its job with a specific message in the job's log.

One snakemake run (``--keep-going``) holds every bad dataset, each with its own log, plus one
good dataset with empty cells and genes (QC's job, not an error). Config-level errors are
checked with dry runs. Snakemake runs in its own working directory (``--directory tmp``), so
its ``.snakemake`` (locks, metadata) never touches the repository's.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
import yaml

from schelix_core.simulate import simulate
from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile")]


def _base():
    return simulate(n_cells=200, n_genes=100, seed=0)


def _with_X(X):
    a = _base()
    a.X = sp.csr_matrix(X)
    return a


def _dense():
    return _base().X.toarray()


def _set(value, where=(0, 0)):
    X = _dense()
    X[where] = value
    return _with_X(X)


def _obs(column, values):
    a = _base()
    a.obs[column] = values
    return a


def _names(axis):
    a = _base()
    names = list(a.obs_names if axis == "obs" else a.var_names)
    names[1] = names[0]
    if axis == "obs":
        a.obs_names = names
    else:
        a.var_names = names
    return a


def _lognorm():
    X = _dense()
    return _with_X(np.log1p(X / X.sum(1, keepdims=True) * 1e4))


def _norm():
    X = _dense()
    return _with_X(X / X.sum(1, keepdims=True) * 1e4)


def _label_nan():
    a = _base()
    labels = a.obs["cell_type"].astype(object).to_numpy()
    labels[:5] = np.nan
    a.obs["cell_type"] = pd.Categorical(labels)
    return a


# name: (file builder -> AnnData | bytes, spec overrides, failing rule, message regex)
BAD = {
    "not_h5ad": (lambda: b"this is a text file, not an h5ad\n" * 20, {}, "load_dataset", r"not a readable \.h5ad"),
    "truncated": ("truncated", {}, "load_dataset", r"not a readable \.h5ad"),
    "batch_misspelt": (_base, {"batch_key": "btach"}, "load_dataset", r"batch_key 'btach'.*did you mean 'batch'"),
    "label_misspelt": (_base, {"label_key": "cell_typ"}, "load_dataset", r"label_key 'cell_typ'.*did you mean 'cell_type'"),
    "label_missing_values": (_label_nan, {}, "load_dataset", r"label_key 'cell_type' has missing values in 5 cells"),
    "single_batch": (lambda: _obs("batch", "b0"), {}, "load_dataset", r"single batch"),
    "no_cells": (lambda: _base()[:0].copy(), {}, "load_dataset", r"matrix is empty \(0 cells x 100 genes\)"),
    "no_genes": (lambda: _base()[:, :0].copy(), {}, "load_dataset", r"matrix is empty \(200 cells x 0 genes\)"),
    "duplicate_cells": (lambda: _names("obs"), {}, "load_dataset", r"cell names \(obs_names\) are not unique"),
    "duplicate_genes": (lambda: _names("var"), {}, "load_dataset", r"gene names \(var_names\) are not unique"),
    "log_normalised": (_lognorm, {}, "qc_preprocess", r"does not look like raw counts.*looks log-normalised"),
    "normalised": (_norm, {}, "qc_preprocess", r"does not look like raw counts.*looks normalised"),
    "negative": (lambda: _set(-3.0), {}, "qc_preprocess", r"negative values \(min -3"),
    "nan": (lambda: _set(np.nan), {}, "qc_preprocess", r"1 NaN or infinite values"),
    "infinite": (lambda: _set(np.inf), {}, "qc_preprocess", r"1 NaN or infinite values"),
    "all_zero": (lambda: _with_X(np.zeros((200, 100), np.float32)), {}, "qc_preprocess", r"empty matrix: 0 cells x 0 genes"),
    "too_few_cells": (lambda: _base()[::6][:30].copy(), {}, "qc_preprocess", r"too few cells for the kNN graph: 30 < 50"),
    "single_label": (lambda: _obs("cell_type", "t0"), {}, "qc_preprocess", r"labels key 'cell_type' has a single label"),
}


def _with_empty_cells_and_genes():
    X = _dense()
    X[:10] = 0
    X[:, :5] = 0
    return _with_X(X)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _config(tmp_path: Path, datasets: dict) -> Path:
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config.update(results_dir=str(tmp_path / "res"), methods=["unintegrated"], datasets=datasets)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _write(builder, path: Path):
    if builder == "truncated":
        full = path.with_name("full.h5ad")
        _base().write_h5ad(full)
        path.write_bytes(full.read_bytes()[:2000])
        return
    obj = builder()
    if isinstance(obj, bytes):
        path.write_bytes(obj)
    else:
        obj.write_h5ad(path)


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bad_input")
    data = tmp / "data"
    data.mkdir()
    datasets, sums = {}, {}
    builders = {name: (b, o) for name, (b, o, _, _) in BAD.items()} | {"empty_cells_genes": (_with_empty_cells_and_genes, {})}
    for name, (builder, overrides) in builders.items():
        path = data / f"{name}.h5ad"
        _write(builder, path)
        sums[name] = _sha(path)
        datasets[name] = {"path": str(path), "batch_key": "batch", "label_key": "cell_type"} | overrides
    config = _config(tmp, datasets)
    res = tmp / "res"
    targets = [str(res / name / "preprocessed.h5ad") for name in datasets]
    proc = subprocess.run(SNAKEMAKE + ["--directory", str(tmp), "--configfile", str(config), "--cores", "2",
                                       "--keep-going", *targets], capture_output=True, text=True)
    return proc, res, data, sums


def test_workflow_fails_on_bad_input(bad_run):
    proc, *_ = bad_run
    assert proc.returncode != 0
    for name, (_, _, rule, _) in BAD.items():
        assert re.search(rf"Error in rule {rule}:(?:(?!\n\n).)*?{name}", proc.stderr, re.S), name


@pytest.mark.parametrize("name", sorted(BAD))
def test_job_log_names_the_problem(bad_run, name):
    _, res, _, _ = bad_run
    _, _, rule, message = BAD[name]
    log = res / "logs" / rule / f"{name}.log"
    assert log.exists(), f"no log at {log}"
    text = log.read_text()
    assert re.search(message, text), f"{log} lacks {message!r}:\n{text[-2000:]}"


@pytest.mark.parametrize("name", sorted(BAD))
def test_failed_job_leaves_no_output(bad_run, name):
    _, res, _, _ = bad_run
    rule = BAD[name][2]
    folder = res / name
    assert not (folder / "preprocessed.h5ad").exists()
    assert not (folder / "qc" / "qc_table.csv").exists()
    assert (folder / "raw.h5ad").exists() == (rule == "qc_preprocess")  # only a validated load is kept
    leftovers = [p for p in folder.rglob("*") if p.is_file() and p.name != "raw.h5ad"] if folder.exists() else []
    assert leftovers == []  # no temporary or half-written file


def test_inputs_are_never_modified(bad_run):
    _, _, data, sums = bad_run
    assert {name: _sha(data / f"{name}.h5ad") for name in sums} == sums


def test_empty_cells_and_genes_are_removed_by_qc_not_refused(bad_run):
    import anndata as ad

    _, res, _, _ = bad_run
    out = ad.read_h5ad(res / "empty_cells_genes" / "preprocessed.h5ad")
    assert not set(out.obs_names) & {f"cell{i:06d}" for i in range(10)}
    table = pd.read_csv(res / "empty_cells_genes" / "qc" / "qc_table.csv")
    assert table["n_cells_in"].sum() == 200 and table["n_cells_out"].sum() == out.n_obs <= 190


# ---- configuration errors: caught at start, before any job (dry runs) ----

def _dry(tmp_path, datasets=None, extra=None, targets=()):
    good = tmp_path / "good.h5ad"
    if not good.exists():
        _base().write_h5ad(good)
    datasets = datasets or {"good": {"path": str(good)}}
    path = _config(tmp_path, datasets)
    if extra:
        config = yaml.safe_load(path.read_text())
        for key, value in extra.items():
            config[key] = value
        path.write_text(yaml.safe_dump(config))
    return subprocess.run(SNAKEMAKE + ["--directory", str(tmp_path), "--configfile", str(path), "--cores", "1",
                                       "-n", *targets], capture_output=True, text=True)


def test_missing_file_fails_at_start_naming_it(tmp_path):
    missing = tmp_path / "nowhere" / "atlas.h5ad"
    proc = _dry(tmp_path, {"atlas": {"path": str(missing)}})
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "Missing input files" in out and str(missing) in out


@pytest.mark.parametrize("name", [".hidden", "a b", "x/y", "ünï"])
def test_unsafe_dataset_name_fails_at_start(tmp_path, name):
    proc = _dry(tmp_path, {name: {"path": str(tmp_path / "good.h5ad")}})
    assert proc.returncode != 0 and name in proc.stdout + proc.stderr
    assert not (tmp_path / "res").exists()


@pytest.mark.parametrize("where, key", [
    ("dataset", "batchkey"),
    ("qc", "min_gene"),
    ("method_params", "scvi"),
])
def test_misspelt_nested_config_key_fails_naming_it(tmp_path, where, key):
    if where == "dataset":
        proc = _dry(tmp_path, {"good": {"path": str(tmp_path / "x.h5ad"), key: "batch"}})
    elif where == "qc":
        proc = _dry(tmp_path, extra={"qc": {key: 10}})
    else:
        proc = _dry(tmp_path, extra={"method_params": {key: {"max_epoch": 3}}})
        key = "max_epoch"
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert key in proc.stdout + proc.stderr
