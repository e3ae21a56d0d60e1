import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from schelix_core.checks import SCHelixInputError, validate_counts
from tests.schelix_fixtures import small_sim


def make(n=120, g=40, seed=0, dense=False, dtype=np.float32):
    rng = np.random.default_rng(seed)
    X = rng.poisson(2.0, size=(n, g)).astype(dtype)
    X[:, 0] += 1  # no empty cells / genes
    X[0, :] += 1
    obs = pd.DataFrame({"batch": np.repeat(["a", "b"], n // 2), "cell_type": np.tile(["x", "y"], n // 2)},
                       index=[f"c{i}" for i in range(n)])
    var = pd.DataFrame(index=[f"g{j}" for j in range(g)])
    return ad.AnnData(X=X if dense else sp.csr_matrix(X), obs=obs, var=var)


@pytest.mark.parametrize("dense", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.int64])
def test_valid_inputs_pass(dense, dtype):
    validate_counts(make(dense=dense, dtype=dtype), "batch", labels_key="cell_type")


def test_simulation_passes():
    validate_counts(small_sim(), "batch")


def _raises(adata, match, **kw):
    kw.setdefault("batch_key", "batch")
    with pytest.raises(SCHelixInputError, match=match):
        validate_counts(adata, **kw)


def test_missing_batch_key_suggests_close_match():
    a = make()
    with pytest.raises(SCHelixInputError, match="not found") as e:
        validate_counts(a, "batches")
    assert "Did you mean 'batch'" in str(e.value)


def test_single_batch():
    a = make()
    a.obs["batch"] = "a"
    _raises(a, "single batch")


@pytest.mark.parametrize("dense", [False, True])
def test_lognormalised_rejected(dense):
    a = make(dense=dense)
    X = a.X.toarray() if sp.issparse(a.X) else a.X
    X = np.log1p(X / X.sum(1, keepdims=True) * 1e4)
    a.X = X if dense else sp.csr_matrix(X)
    _raises(a, "raw counts")


@pytest.mark.parametrize("dense", [False, True])
def test_negative_values(dense):
    a = make(dense=dense)
    X = a.X.toarray() if sp.issparse(a.X) else a.X.copy()
    X[3, 3] = -1
    a.X = X if dense else sp.csr_matrix(X)
    _raises(a, "negative")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize("dense", [False, True])
def test_nan_inf(bad, dense):
    a = make(dense=dense)
    X = a.X.toarray() if sp.issparse(a.X) else a.X.copy()
    X[2, 5] = bad
    a.X = X if dense else sp.csr_matrix(X)
    _raises(a, "NaN or infinite")


def test_empty_matrix():
    a = make()[:, :0].copy()
    _raises(a, "empty matrix")
    b = make()
    b.X = sp.csr_matrix(b.shape, dtype=np.float32)
    _raises(b, "empty")


def test_duplicate_names():
    a = make()
    a.obs_names = ["c0"] * a.n_obs
    _raises(a, "duplicate obs names")
    b = make()
    b.var_names = ["g0"] + list(b.var_names[1:-1]) + ["g0"]
    _raises(b, "duplicate var names")


def test_cells_without_counts():
    a = make(dense=True)
    a.X[5, :] = 0
    _raises(a, "cells have no counts")


def test_genes_without_counts():
    a = make()
    X = a.X.toarray()
    X[:, 7] = 0
    a.X = sp.csr_matrix(X)
    _raises(a, "genes have no counts")


def test_too_few_cells():
    a = make(n=20)
    _raises(a, "too few cells")


def test_single_label():
    a = make()
    a.obs["cell_type"] = "x"
    _raises(a, "single label", labels_key="cell_type")


def test_missing_labels_key_and_layer():
    a = make()
    _raises(a, "labels key 'celltype' not found", labels_key="celltype")
    _raises(a, "layer 'counts' not found", layer="counts")


def test_layer_is_used():
    a = make()
    a.layers["counts"] = a.X.copy()
    a.X = sp.csr_matrix(np.log1p(a.X.toarray()))
    _raises(a, "raw counts")
    validate_counts(a, "batch", layer="counts")


def test_sparse_not_densified(monkeypatch):
    a = make()

    def boom(*args, **kwargs):
        raise AssertionError("densified")

    monkeypatch.setattr(sp.csr_matrix, "toarray", boom)
    monkeypatch.setattr(sp.csr_matrix, "todense", boom)
    validate_counts(a, "batch")
