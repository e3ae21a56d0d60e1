"""scIB metrics for one integration result, as a long table (metric, metric_type, value).

The default engine is scib-metrics (pure Python, JAX), with its default batch-correction and
bio-conservation metrics. Graph-output methods are scored only by the metrics defined on a
kNN graph, on their own graph: a graph is never recomputed from something else. The original
``scib`` package is a second engine for comparison with published numbers; the two disagree
on iLISI and graph connectivity, so a table always records its engine and never mixes them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

BATCH = "batch_correction"
BIO = "bio_conservation"

# name -> (type, applies to graphs). Every scIB metric is scaled so that higher is better.
SCIB_METRICS_DEFAULTS = {
    "isolated_labels": (BIO, False),
    "nmi_kmeans": (BIO, False),
    "ari_kmeans": (BIO, False),
    "silhouette_label": (BIO, False),
    "clisi_knn": (BIO, True),
    "nmi_leiden": (BIO, True),
    "ari_leiden": (BIO, True),
    "bras": (BATCH, False),
    "ilisi_knn": (BATCH, True),
    "kbet_per_label": (BATCH, True),
    "graph_connectivity": (BATCH, True),
    "pcr_comparison": (BATCH, False),
}
HIGHER_IS_BETTER = {name: True for name in SCIB_METRICS_DEFAULTS}
NEIGHBOR_SIZES = (15, 50, 90)
EXACT_KNN_MAX_CELLS = 50_000


def nearest_neighbors(X: np.ndarray, n_neighbors: int, seed: int = 0):
    """kNN including self. Exact (sklearn) for small data: no numba compilation per job."""
    from scib_metrics.nearest_neighbors import NeighborsResults

    n_neighbors = min(n_neighbors, X.shape[0])
    if X.shape[0] <= EXACT_KNN_MAX_CELLS:
        from sklearn.neighbors import NearestNeighbors

        dist, idx = NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(X)
        return NeighborsResults(indices=idx, distances=dist.astype(np.float32))
    from scib_metrics.nearest_neighbors import pynndescent

    return pynndescent(X, n_neighbors=n_neighbors, random_state=seed)


def graph_to_neighbors(distances: sp.spmatrix):
    """A method's own kNN distance graph as NeighborsResults (self first, padded with self)."""
    from scib_metrics.nearest_neighbors import NeighborsResults

    D = sp.csr_matrix(distances)
    n = D.shape[0]
    row_nnz = np.diff(D.indptr)
    k = int(row_nnz.max()) + 1
    indices = np.repeat(np.arange(n)[:, None], k, axis=1)
    dists = np.zeros((n, k), dtype=np.float32)
    for i in range(n):
        start, end = D.indptr[i], D.indptr[i + 1]
        cols, vals = D.indices[start:end], D.data[start:end]
        order = np.argsort(vals, kind="stable")
        indices[i, 1 : 1 + len(order)] = cols[order]
        dists[i, 1 : 1 + len(order)] = vals[order]
        if len(order) < k - 1:  # pad with the farthest neighbour so distances stay sorted
            dists[i, 1 + len(order) :] = vals[order[-1]] if len(order) else 0.0
            indices[i, 1 + len(order) :] = cols[order[-1]] if len(order) else i
    return NeighborsResults(indices=indices, distances=dists)


def _scib_metrics_embedding(emb, pre, batches, labels, seed):
    import scib_metrics

    nn = nearest_neighbors(emb, max(NEIGHBOR_SIZES), seed)
    sub = {k: nn.subset_neighbors(min(k, nn.n_neighbors)) for k in NEIGHBOR_SIZES}
    values = {
        "isolated_labels": scib_metrics.isolated_labels(emb, labels, batches),
        "silhouette_label": scib_metrics.silhouette_label(emb, labels),
        "clisi_knn": scib_metrics.clisi_knn(sub[90], labels),
        "bras": scib_metrics.bras(emb, labels, batches),
        "ilisi_knn": scib_metrics.ilisi_knn(sub[90], batches),
        "kbet_per_label": scib_metrics.kbet_per_label(sub[50], batches, labels),
        "graph_connectivity": scib_metrics.graph_connectivity(sub[15], labels),
        "pcr_comparison": scib_metrics.pcr_comparison(pre, emb, batches, categorical=True),
    }
    nmi_ari = scib_metrics.nmi_ari_cluster_labels_kmeans(emb, labels)
    values["nmi_kmeans"], values["ari_kmeans"] = nmi_ari["nmi"], nmi_ari["ari"]
    return values


def _scib_metrics_graph(distances, batches, labels, seed):
    import scib_metrics

    nn = graph_to_neighbors(distances)
    values = {
        "clisi_knn": scib_metrics.clisi_knn(nn, labels),
        "ilisi_knn": scib_metrics.ilisi_knn(nn, batches),
        "kbet_per_label": scib_metrics.kbet_per_label(nn, batches, labels),
        "graph_connectivity": scib_metrics.graph_connectivity(nn, labels),
    }
    nmi_ari = scib_metrics.nmi_ari_cluster_labels_leiden(nn, labels, seed=seed)
    values["nmi_leiden"], values["ari_leiden"] = nmi_ari["nmi"], nmi_ari["ari"]
    return values


def _scib_engine(pre_adata, out_adata, batch_key, label_key, seed):
    """The original scib package (Luecken et al. 2022), for comparison with published tables."""
    try:
        import scib
    except ImportError as exc:
        raise RuntimeError(
            "metrics engine 'scib' needs the scib package (pip install scib==1.1.7; see README for its "
            "knn_graph recompilation on Debian 12)"
        ) from exc
    import anndata as ad

    adata = ad.AnnData(obs=pre_adata.obs[[batch_key, label_key]].copy())
    adata.obsm["X_pca"] = pre_adata.obsm["X_pca"]
    graph = out_adata.uns["output_type"] == "graph"
    if graph:
        adata.obsp["connectivities"] = out_adata.obsp["connectivities"]
        adata.obsp["distances"] = out_adata.obsp["distances"]
        adata.uns["neighbors"] = {"connectivities_key": "connectivities", "distances_key": "distances"}
    else:
        adata.obsm["X_emb"] = out_adata.obsm["X_emb"]
        scib.preprocessing.reduce_data(adata, n_top_genes=None, pca=False, neighbors=True, use_rep="X_emb")
    scib.metrics.cluster_optimal_resolution(adata, label_key=label_key, cluster_key="cluster")
    values = {
        "nmi_leiden": scib.metrics.nmi(adata, "cluster", label_key),
        "ari_leiden": scib.metrics.ari(adata, "cluster", label_key),
        "graph_connectivity": scib.metrics.graph_connectivity(adata, label_key=label_key),
        "ilisi_knn": scib.metrics.ilisi_graph(adata, batch_key=batch_key, type_="knn"),
        "clisi_knn": scib.metrics.clisi_graph(adata, label_key=label_key, type_="knn"),
    }
    if not graph:
        values["silhouette_label"] = scib.metrics.silhouette(adata, label_key=label_key, embed="X_emb")
        values["bras"] = scib.metrics.silhouette_batch(adata, batch_key, label_key, embed="X_emb")
        values["isolated_labels"] = scib.metrics.isolated_labels_asw(adata, label_key, batch_key, embed="X_emb")
        values["pcr_comparison"] = scib.metrics.pcr_comparison(adata, adata, covariate=batch_key, embed="X_emb")
    return values


def compute_metrics(pre_adata, out_adata, batch_key: str, label_key: str, engine: str = "scib-metrics", seed: int = 0):
    """Long table of metrics for one result; ``pre_adata`` gives X_pca, batches and labels."""
    batches = pre_adata.obs[batch_key].astype(str).to_numpy()
    labels = pre_adata.obs[label_key].astype(str).to_numpy()
    if not np.array_equal(np.asarray(out_adata.obs_names), np.asarray(pre_adata.obs_names)):
        raise ValueError("the integrated output's cells do not match the preprocessed dataset's cells")
    if engine == "scib":
        values = _scib_engine(pre_adata, out_adata, batch_key, label_key, seed)
    elif out_adata.uns["output_type"] == "graph":
        values = _scib_metrics_graph(out_adata.obsp["distances"], batches, labels, seed)
    else:
        emb = np.asarray(out_adata.obsm["X_emb"], dtype=np.float32)
        pre = np.asarray(pre_adata.obsm["X_pca"], dtype=np.float32)
        values = _scib_metrics_embedding(emb, pre, batches, labels, seed)
    rows = [
        {
            "metric": name,
            "metric_type": SCIB_METRICS_DEFAULTS[name][0],
            "value": float(value),
            "higher_is_better": HIGHER_IS_BETTER[name],
        }
        for name, value in values.items()
    ]
    return pd.DataFrame(rows)


def engine_version(engine: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("scib" if engine == "scib" else "scib-metrics")
    except PackageNotFoundError:
        return "not installed"
