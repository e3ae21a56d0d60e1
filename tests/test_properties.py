"""Property tests: any AnnData either passes the loaders, QC and checks, or fails with a documented error.

Documented errors: DatasetError (loading), SCHelixInputError (checks), ValueError with a
message (QC, preprocessing). Anything else (IndexError, KeyError, AttributeError deep in
scanpy or numpy) is a bug.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schelix_core.benchmark.data import DatasetError, load_dataset
from schelix_core.benchmark.preprocess import preprocess, qc_filter
from schelix_core.checks import SCHelixInputError, validate_counts

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [np.int32, np.int64, np.float32, np.float64]
SPOILERS = ["none", "none", "nan", "inf", "negative", "fraction", "zero_row", "zero_col"]


@st.composite
def anndatas(draw, max_cells=40, max_genes=25, spoil=True):
    n = draw(st.integers(0, max_cells))
    g = draw(st.integers(0, max_genes))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    X = rng.poisson(draw(st.sampled_from([0.05, 1.0, 5.0])), size=(n, g)).astype(np.float64)
    kind = draw(st.sampled_from(SPOILERS)) if spoil else "none"
    if n and g:
        i, j = rng.integers(n), rng.integers(g)
        if kind == "nan":
            X[i, j] = np.nan
        elif kind == "inf":
            X[i, j] = np.inf
        elif kind == "negative":
            X[i, j] = -1
        elif kind == "fraction":
            X = X / 3.0
        elif kind == "zero_row":
            X[i] = 0
        elif kind == "zero_col":
            X[:, j] = 0
    if np.issubdtype(dtype, np.integer):
        X = np.nan_to_num(X, nan=0, posinf=0).astype(dtype)
    else:
        X = X.astype(dtype)
    fmt = draw(st.sampled_from(["dense", "csr", "csc"]))
    if fmt != "dense":
        X = sp.csr_matrix(X) if fmt == "csr" else sp.csc_matrix(X)
    n_batches = draw(st.integers(1, 3))
    obs = pd.DataFrame(index=[f"c{k}" for k in range(n)])
    if draw(st.booleans()) or not spoil:
        obs["batch"] = pd.Categorical([f"b{k % n_batches}" for k in range(n)])
    if draw(st.booleans()):
        obs["cell_type"] = [f"t{k % draw(st.integers(1, 3))}" for k in range(n)]
    var = pd.DataFrame(index=[f"MT-{k}" if k < 2 and draw(st.booleans()) else f"G{k}" for k in range(g)])
    if spoil and n > 1 and draw(st.integers(0, 9)) == 0:
        obs.index = ["dup"] * 2 + list(obs.index[2:])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ad.AnnData(X=X, obs=obs, var=var)


def _clear(exc: BaseException) -> None:
    assert str(exc).strip(), f"{type(exc).__name__} without a message"


@SETTINGS
@given(adata=anndatas(), labels=st.booleans(), min_cells=st.integers(1, 60))
def test_validate_counts_raises_only_input_errors(adata, labels, min_cells):
    try:
        validate_counts(adata, "batch", labels_key="cell_type" if labels else None, min_cells=min_cells)
    except SCHelixInputError as exc:
        _clear(exc)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adata=anndatas())
def test_load_dataset_from_a_file_raises_only_dataset_errors(adata):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "d.h5ad"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            adata.write_h5ad(path)
        try:
            out = load_dataset({"path": str(path), "batch_key": "batch", "label_key": "cell_type"}, tmp)
        except DatasetError as exc:
            _clear(exc)
            return
    assert out.X.dtype == np.float32 and out.n_obs == adata.n_obs and out.n_vars == adata.n_vars
    assert out.obs["batch"].nunique() >= 2


@SETTINGS
@given(adata=anndatas(), min_genes=st.integers(0, 5), min_counts=st.integers(0, 10),
       max_pct_mito=st.floats(0, 100), min_cells_per_gene=st.integers(0, 3))
def test_qc_filter_raises_only_value_errors(adata, min_genes, min_counts, max_pct_mito, min_cells_per_gene):
    try:
        filtered, table = qc_filter(adata, "batch", min_genes=min_genes, min_counts=min_counts,
                                    max_pct_mito=max_pct_mito, min_cells_per_gene=min_cells_per_gene)
    except ValueError as exc:
        _clear(exc)
        return
    assert table["n_cells_in"].sum() == adata.n_obs and table["n_cells_out"].sum() == filtered.n_obs
    assert filtered.obs["batch"].nunique() >= 2


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(adata=anndatas(max_cells=40, max_genes=30, spoil=False), n_top_genes=st.integers(1, 40),
       n_pcs=st.integers(1, 10))
def test_preprocess_after_qc_raises_only_value_errors(adata, n_top_genes, n_pcs):
    try:
        filtered, _ = qc_filter(adata, "batch", min_genes=0, min_counts=1, max_pct_mito=100, min_cells_per_gene=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = preprocess(filtered, "batch", n_top_genes=n_top_genes, n_pcs=n_pcs, target_sum=1e4)
    except ValueError as exc:
        _clear(exc)
        return
    assert "counts" in out.layers and out.obsm["X_pca"].shape[0] == out.n_obs
    assert np.isfinite(out.obsm["X_pca"]).all()


@pytest.mark.parametrize("missing", ["batch", "cell_type"])
def test_qc_filter_names_a_missing_batch_key(missing):
    adata = ad.AnnData(X=np.ones((4, 3)), obs=pd.DataFrame({"cell_type": list("abab")}, index=list("wxyz")))
    if missing == "cell_type":
        adata.obs["btch"] = list("aabb")
    with pytest.raises(ValueError, match="'batch'"):
        qc_filter(adata, "batch", min_genes=0, min_counts=0, max_pct_mito=100, min_cells_per_gene=0)
