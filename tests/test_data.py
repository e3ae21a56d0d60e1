"""Dataset loading: local files, checksummed downloads from a loopback server, bad files."""

import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pytest

from schelix_core.benchmark.data import DatasetError, check_dataset_name, load_dataset
from schelix_core.simulate import simulate


@pytest.fixture()
def h5ad_file(tmp_path):
    path = tmp_path / "data.h5ad"
    simulate(n_cells=200, n_genes=100, seed=0).write_h5ad(path)
    return path


@pytest.fixture()
def http_dir(tmp_path):
    """Serve a folder on 127.0.0.1 only, for download tests without the network."""
    root = tmp_path / "served"
    root.mkdir()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_load_local_path(h5ad_file):
    adata = load_dataset({"path": str(h5ad_file), "batch_key": "batch", "label_key": "cell_type"}, "unused")
    assert adata.n_obs == 200 and adata.obs["batch"].dtype == "category"


def test_load_simulation_is_reproducible():
    spec = {"simulate": {"n_cells": 150, "n_genes": 80, "seed": 4}, "batch_key": "batch", "label_key": "cell_type"}
    a, b = load_dataset(spec, "unused"), load_dataset(spec, "unused")
    assert np.array_equal(a.X.toarray(), b.X.toarray())


def test_simulation_can_share_composition_across_batches():
    """By default each batch holds the types in its own proportions; with shared_composition they
    differ only by sampling (the cell-weighted distance of each batch's type mix from the pooled one)."""
    import pandas as pd

    def composition_distance(adata):
        counts = pd.crosstab(adata.obs["cell_type"], adata.obs["batch"])
        pooled = counts.sum(1) / counts.values.sum()
        per_batch = 0.5 * (counts / counts.sum(0)).sub(pooled, axis=0).abs().sum(0)
        return float((per_batch * counts.sum(0)).sum() / counts.values.sum())

    kw = dict(n_cells=3000, n_genes=100, n_batches=3, seed=0, missing_types_per_batch=0)
    assert composition_distance(simulate(**kw, shared_composition=True)) < 0.05 < composition_distance(simulate(**kw))


def test_download_verifies_checksum(h5ad_file, http_dir, tmp_path):
    root, url = http_dir
    (root / "d.h5ad").write_bytes(h5ad_file.read_bytes())
    digest = hashlib.sha256(h5ad_file.read_bytes()).hexdigest()
    cache = tmp_path / "cache"
    spec = {"url": f"{url}/d.h5ad", "sha256": digest, "batch_key": "batch", "label_key": "cell_type"}
    assert load_dataset(spec, cache).n_obs == 200


def test_download_with_wrong_checksum_is_refused_and_not_kept(h5ad_file, http_dir, tmp_path):
    root, url = http_dir
    (root / "d.h5ad").write_bytes(h5ad_file.read_bytes())
    cache = tmp_path / "cache"
    spec = {"url": f"{url}/d.h5ad", "sha256": "0" * 64, "batch_key": "batch", "label_key": "cell_type"}
    with pytest.raises(DatasetError, match="checksum mismatch"):
        load_dataset(spec, cache)
    assert not any(p.is_file() for p in cache.rglob("*")) if cache.exists() else True


def test_truncated_file_gets_a_clear_error(h5ad_file, tmp_path):
    broken = tmp_path / "broken.h5ad"
    broken.write_bytes(h5ad_file.read_bytes()[:2000])
    with pytest.raises(DatasetError, match="not a readable .h5ad"):
        load_dataset({"path": str(broken), "batch_key": "batch", "label_key": "cell_type"}, "unused")


def test_misspelt_batch_key_suggests_the_closest(h5ad_file):
    with pytest.raises(DatasetError, match="did you mean 'batch'"):
        load_dataset({"path": str(h5ad_file), "batch_key": "btach", "label_key": "cell_type"}, "unused")


@pytest.mark.parametrize("name", ["../escape", "a/b", "", ".hidden", "x y"])
def test_unsafe_dataset_names_are_refused(name):
    with pytest.raises(DatasetError, match="not a safe file name"):
        check_dataset_name(name)
