"""The original scib package as a second metrics engine: it runs, and agrees with scib-metrics where the two should."""

import importlib.util
import os

import numpy as np
import pytest

from schelix_core.benchmark.contract import MethodResult, MethodSpec, build_output
from schelix_core.benchmark.metrics import compute_metrics


@pytest.fixture(scope="module")
def scib_installed():
    if importlib.util.find_spec("scib") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("scib is not installed; CI installs the [scib] extra")
        pytest.skip("scib is not installed (pip install -e '.[scib]')")
    from schelix_core.benchmark.metrics import check_scib_lisi_binary

    check_scib_lisi_binary()


def test_scib_engine_on_an_embedding_agrees_on_asw(scib_installed, small_preprocessed):
    pre = small_preprocessed
    out = build_output(pre, MethodSpec("m", "embedding"), MethodResult(embedding=pre.obsm["X_pca"]), 0, {}, 0.0)
    scib_table = compute_metrics(pre, out, "batch", "cell_type", engine="scib").set_index("metric")["value"]
    ref = compute_metrics(pre, out, "batch", "cell_type").set_index("metric")["value"]
    assert {"nmi_leiden", "ari_leiden", "ilisi_knn", "clisi_knn", "graph_connectivity", "silhouette_label"} <= set(scib_table.index)
    assert ((scib_table >= 0) & (scib_table <= 1)).all()
    assert scib_table["silhouette_label"] == pytest.approx(ref["silhouette_label"], abs=0.02)
    assert scib_table["pcr_comparison"] == pytest.approx(0.0, abs=1e-6)  # the PCA compared with itself


def test_scib_engine_on_a_graph_uses_graph_metrics_only(scib_installed, small_preprocessed):
    from sklearn.neighbors import kneighbors_graph

    pre = small_preprocessed
    dist = kneighbors_graph(pre.obsm["X_pca"], 15, mode="distance")
    dist = dist.maximum(dist.T).tocsr()  # symmetric, as BBKNN's graph is
    conn = dist.copy()
    conn.data = np.exp(-conn.data / conn.data.mean())
    out = build_output(pre, MethodSpec("g", "graph"), MethodResult(connectivities=conn, distances=dist), 0, {}, 0.0)
    table = compute_metrics(pre, out, "batch", "cell_type", engine="scib")
    assert set(table["metric"]) == {"nmi_leiden", "ari_leiden", "graph_connectivity", "ilisi_knn", "clisi_knn"}
