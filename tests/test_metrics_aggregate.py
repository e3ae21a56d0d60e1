import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from schelix_core.benchmark.aggregate import run_scores, summarise, summary_markdown
from schelix_core.benchmark.contract import MethodResult, MethodSpec, build_output
from schelix_core.benchmark.metrics import BATCH, BIO, SCIB_METRICS_DEFAULTS, compute_metrics, graph_to_neighbors


def embedding_output(pre, emb, name="m"):
    return build_output(pre, MethodSpec(name, "embedding"), MethodResult(embedding=emb), 0, {}, 0.0)


def test_controls_bracket_bio_conservation(small_preprocessed):
    pre = small_preprocessed
    rng = np.random.default_rng(0)
    labels = pd.get_dummies(pre.obs["cell_type"]).to_numpy(float)
    ceiling = compute_metrics(pre, embedding_output(pre, labels + rng.normal(0, 0.1, labels.shape)), "batch", "cell_type")
    floor = compute_metrics(pre, embedding_output(pre, rng.normal(size=(pre.n_obs, 10))), "batch", "cell_type")
    bio = lambda t: t.loc[t["metric_type"] == BIO, "value"].mean()  # noqa: E731
    assert bio(ceiling) > bio(floor) + 0.3
    assert set(ceiling["metric"]) == {m for m, (_, graph_only) in SCIB_METRICS_DEFAULTS.items() if m not in ("nmi_leiden", "ari_leiden")}
    assert ceiling["higher_is_better"].all()


def test_graph_methods_get_only_graph_metrics(small_preprocessed):
    from sklearn.neighbors import kneighbors_graph

    pre = small_preprocessed
    dist = kneighbors_graph(pre.obsm["X_pca"], 10, mode="distance")
    out = build_output(pre, MethodSpec("g", "graph"), MethodResult(connectivities=dist, distances=dist), 0, {}, 0.0)
    table = compute_metrics(pre, out, "batch", "cell_type")
    graph_metrics = {m for m, (_, on_graph) in SCIB_METRICS_DEFAULTS.items() if on_graph}
    assert set(table["metric"]) == graph_metrics


def test_graph_to_neighbors_keeps_the_graph():
    D = sp.csr_matrix(np.array([[0, 1.0, 2.0], [1.0, 0, 0], [3.0, 0.5, 0]]))
    nn = graph_to_neighbors(D)
    assert nn.indices[0].tolist() == [0, 1, 2]
    assert nn.distances[0].tolist() == [0.0, 1.0, 2.0]
    assert nn.indices[1, 0] == 1 and nn.indices[1, 1] == 0
    assert nn.indices[2].tolist() == [2, 1, 0]


def long_table():
    rows = []
    values = {("a", 0): (0.2, 0.6), ("a", 1): (0.4, 0.8), ("b", 0): (0.8, 0.5), ("b", 1): (0.6, 0.7)}
    for (method, seed), (batch, bio) in values.items():
        for metric, mtype, v in (("ilisi_knn", BATCH, batch), ("silhouette_label", BIO, bio)):
            rows.append(dict(dataset="d", method=method, seed=seed, metric=metric, metric_type=mtype, value=v,
                             higher_is_better=True, status="ok", error=""))
    rows.append(dict(dataset="d", method="c", seed=0, metric="", metric_type="", value=np.nan,
                     higher_is_better=True, status="failed", error="ValueError: boom"))
    return pd.DataFrame(rows)


def test_run_scores_weights_batch_04_bio_06_and_scales_within_dataset():
    scores = run_scores(long_table()).set_index(["method", "seed"])
    assert scores.loc[("a", 0), "total"] == pytest.approx(0.4 * 0.2 + 0.6 * 0.6)
    assert scores.loc[("a", 0), f"{BATCH}_scaled"] == pytest.approx(0.0)
    assert scores.loc[("b", 0), f"{BATCH}_scaled"] == pytest.approx(1.0)
    assert scores.loc[("a", 1), f"{BIO}_scaled"] == pytest.approx(1.0)


def test_summary_has_mean_sd_and_keeps_failed_runs():
    metrics = long_table()
    runs = metrics.drop_duplicates(["dataset", "method", "seed"])[["dataset", "method", "seed", "status", "error"]].copy()
    runs = runs.assign(runtime_s=1.0, peak_mem_mb=100.0, output_type="embedding", uses_labels=False, is_control=False,
                       engine="scib-metrics 0.5.10")
    summary = summarise(metrics, runs).set_index("method")
    assert summary.loc["a", "total_mean"] == pytest.approx(np.mean([0.4 * 0.2 + 0.6 * 0.6, 0.4 * 0.4 + 0.6 * 0.8]))
    assert summary.loc["a", "total_sd"] == pytest.approx(np.std([0.44, 0.64], ddof=1))
    assert summary.loc["c", "status"].startswith("failed 1/1: ValueError")
    assert np.isnan(summary.loc["c", "total_mean"])
    text = summary_markdown(summary.reset_index())
    assert "| c |" in text and "failed" in text and "0.540 ± 0.141" in text
