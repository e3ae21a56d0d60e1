"""scIB metrics for one integration result, as a long table (metric, metric_type, value).

The default engine is scib-metrics (pure Python, JAX), with its default batch-correction and
bio-conservation metrics. Graph-output methods are scored only by the metrics defined on a
kNN graph, on their own graph: a graph is never recomputed from something else. The original
``scib`` package is a second engine for comparison with published numbers; the two disagree
on iLISI and graph connectivity, so a table always records its engine and never mixes them.
"""

from __future__ import annotations

import sys
import types

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


_SMOOTH_K_TOLERANCE = 1e-5
_MIN_K_DIST_SCALE = 1e-3


def _smooth_knn_dist(distances: np.ndarray, k: float, n_iter: int = 64, local_connectivity: float = 1.0):
    """umap's ``smooth_knn_dist``, vectorised over cells (float32 like umap's numba code)."""
    distances = np.ascontiguousarray(distances, dtype=np.float32)
    n = distances.shape[0]
    target = np.float32(np.log2(k))
    nonzero = distances > 0.0
    n_nonzero = nonzero.sum(axis=1)
    rank = np.cumsum(nonzero, axis=1)  # 1-based rank of each nonzero distance in its row
    index = int(np.floor(local_connectivity))
    interpolation = np.float32(local_connectivity - index)

    def nth_nonzero(m):  # the m-th (1-based) nonzero distance of each row, in the row's order
        return distances[np.arange(n), np.argmax(nonzero & (rank >= m), axis=1)]

    rho = np.zeros(n, dtype=np.float32)
    enough = n_nonzero >= local_connectivity
    if index > 0:
        rho = np.where(enough, nth_nonzero(index), rho)
        if interpolation > _SMOOTH_K_TOLERANCE:
            step = interpolation * (nth_nonzero(index + 1) - nth_nonzero(index))
            rho = np.where(enough, rho + step, rho)
    else:
        rho = np.where(enough, interpolation * nth_nonzero(1), rho)
    some = ~enough & (n_nonzero > 0)
    rho = np.where(some, np.where(nonzero, distances, -np.inf).max(axis=1), rho).astype(np.float32)

    lo = np.zeros(n, dtype=np.float32)
    hi = np.full(n, np.inf, dtype=np.float32)
    mid = np.ones(n, dtype=np.float32)
    d = distances[:, 1:] - rho[:, None]
    active = np.ones(n, dtype=bool)
    with np.errstate(over="ignore"):
        for _ in range(n_iter):
            rows = np.flatnonzero(active)
            if rows.size == 0:
                break
            dr = d[rows]
            psum = np.where(dr > 0, np.exp(-(dr / mid[rows, None])), np.float32(1.0)).sum(axis=1, dtype=np.float32)
            go = np.abs(psum - target) >= _SMOOTH_K_TOLERANCE
            active[rows[~go]] = False
            rows, psum = rows[go], psum[go]
            down = rows[psum > target]
            hi[down] = mid[down]
            mid[down] = (lo[down] + hi[down]) / 2
            up = rows[psum <= target]
            lo[up] = mid[up]
            unbounded = np.isinf(hi[up])
            mid[up] = np.where(unbounded, mid[up] * 2, (lo[up] + hi[up]) / 2)
    floor = _MIN_K_DIST_SCALE * np.where(rho > 0, distances.mean(axis=1), distances.mean())
    return np.maximum(mid, floor).astype(np.float32), rho


def fuzzy_simplicial_set(X, n_neighbors, random_state, metric, knn_indices=None, knn_dists=None,
                         set_op_mix_ratio=1.0, local_connectivity=1.0, **_):
    """umap's ``fuzzy_simplicial_set`` for a precomputed kNN (what scib-metrics calls), in numpy.

    umap's version is numba code compiled afresh in every process, and importing umap compiles
    pynndescent's distances: together about 15 s of each metrics job on two cores. Same
    arguments and result (``tests/test_metrics_fast.py`` compares the two).
    """
    knn_indices = np.asarray(knn_indices)
    knn_dists = np.asarray(knn_dists, dtype=np.float32)
    n = X.shape[0]
    sigmas, rhos = _smooth_knn_dist(knn_dists, float(n_neighbors), local_connectivity=float(local_connectivity))
    rows = np.repeat(np.arange(knn_indices.shape[0]), knn_indices.shape[1])
    shifted = knn_dists - rhos[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # masked by the where
        vals = np.where((shifted <= 0) | (sigmas[:, None] == 0), np.float32(1.0), np.exp(-(shifted / sigmas[:, None])))
    vals = np.where(knn_indices == np.arange(knn_indices.shape[0])[:, None], 0.0, vals).astype(np.float32).ravel()
    keep = knn_indices.ravel() != -1
    result = sp.coo_matrix((vals[keep], (rows[keep], knn_indices.ravel()[keep])), shape=(n, n))
    result.eliminate_zeros()
    transpose = result.transpose()
    prod = result.multiply(transpose)
    result = set_op_mix_ratio * (result + transpose - prod) + (1.0 - set_op_mix_ratio) * prod
    result.eliminate_zeros()
    return result, sigmas, rhos


def _nndescent(*args, **kwargs):
    import pynndescent

    return pynndescent.NNDescent(*args, **kwargs)


def import_scib_metrics():
    """scib-metrics, imported without umap and pynndescent unless they are loaded already.

    It needs umap only for ``fuzzy_simplicial_set`` (ours above) and pynndescent only above
    EXACT_KNN_MAX_CELLS (then loaded on first use). Stand-ins exist only during the import.
    """
    if "scib_metrics" in sys.modules:
        return sys.modules["scib_metrics"]
    stand_ins = {}
    if "umap" not in sys.modules:
        umap_ = types.ModuleType("umap.umap_")
        umap_.fuzzy_simplicial_set = fuzzy_simplicial_set
        umap = types.ModuleType("umap")
        umap.umap_ = umap_
        stand_ins.update({"umap": umap, "umap.umap_": umap_})
    if "pynndescent" not in sys.modules:
        pynndescent = types.ModuleType("pynndescent")
        pynndescent.NNDescent = _nndescent
        stand_ins["pynndescent"] = pynndescent
    sys.modules.update(stand_ins)
    try:
        import scib_metrics
    finally:
        for name, module in stand_ins.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
    return scib_metrics


def nearest_neighbors(X: np.ndarray, n_neighbors: int, seed: int = 0):
    """kNN including self. Exact (sklearn) up to EXACT_KNN_MAX_CELLS cells, pynndescent above.

    Exact search on small data is as accurate as pynndescent and skips its numba compilation,
    which otherwise costs each metrics job (a fresh process) a minute on two cores.
    """
    NeighborsResults = import_scib_metrics().nearest_neighbors.NeighborsResults

    n_neighbors = min(n_neighbors, X.shape[0])
    if X.shape[0] <= EXACT_KNN_MAX_CELLS:
        from sklearn.neighbors import NearestNeighbors

        _, idx = NearestNeighbors(n_neighbors=n_neighbors).fit(X).kneighbors(X)
        idx, dist = _exact_distances(X, idx)
        return NeighborsResults(indices=idx, distances=dist.astype(np.float32))
    return _PYNNDESCENT(X, n_neighbors=n_neighbors, random_state=seed)


def _exact_distances(X: np.ndarray, idx: np.ndarray, chunk: int = 1024):
    """``idx`` re-sorted by exact distances, and those distances.

    sklearn's brute-force search computes |x|^2 + |y|^2 - 2x.y, whose rounding leaves a cell's
    distance to itself at 0 or about 1e-7 depending on the BLAS code path taken (it changed after
    a k-means fit in the same process). umap's connectivities take a cell's first nonzero
    distance as its local scale, so that rounding alone moved kBET by up to 0.03 on one
    embedding. Taken directly, the distance to itself is exactly 0, as pynndescent returns it.
    """
    Xf = np.asarray(X, dtype=np.float64)
    dist = np.empty(idx.shape, dtype=np.float64)
    for start in range(0, Xf.shape[0], chunk):
        stop = min(start + chunk, Xf.shape[0])
        dist[start:stop] = np.sqrt(((Xf[idx[start:stop]] - Xf[start:stop, None, :]) ** 2).sum(axis=2))
    order = np.argsort(dist, axis=1, kind="stable")
    return np.take_along_axis(idx, order, axis=1), np.take_along_axis(dist, order, axis=1)


def _use_fast_neighbors_in_scib_metrics() -> None:
    """kBET's diffusion neighbours in scib-metrics call pynndescent directly: route them here."""
    global _PYNNDESCENT
    nn_module = import_scib_metrics().nearest_neighbors

    if nn_module.pynndescent is not _scib_neighbors:
        _PYNNDESCENT = nn_module.pynndescent
        nn_module.pynndescent = _scib_neighbors


def _scib_neighbors(X, n_neighbors, random_state=0, n_jobs=1):
    return nearest_neighbors(np.asarray(X), n_neighbors, seed=random_state)


_PYNNDESCENT = None


def graph_to_neighbors(distances: sp.spmatrix):
    """A method's own kNN distance graph as NeighborsResults (self first, padded with self)."""
    NeighborsResults = import_scib_metrics().nearest_neighbors.NeighborsResults

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
    scib_metrics = import_scib_metrics()

    _use_fast_neighbors_in_scib_metrics()

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
    scib_metrics = import_scib_metrics()

    _use_fast_neighbors_in_scib_metrics()

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


def check_scib_lisi_binary() -> None:
    """scib's LISI runs a prebuilt ``knn_graph.o``; scib ignores its exit code and fails later
    with a misleading FileNotFoundError. Check it runs here, and say how to rebuild it if not."""
    import subprocess
    from pathlib import Path

    import scib

    folder = Path(scib.__file__).parent / "knn_graph"
    proc = subprocess.run([str(folder / "knn_graph.o")], capture_output=True, text=True)
    if "not found" in proc.stderr or proc.returncode not in (0, 1):
        raise RuntimeError(
            f"scib's LISI binary {folder / 'knn_graph.o'} does not run on this machine ({proc.stderr.strip()[:200]}); "
            f"rebuild it: cd {folder} && g++ -std=c++11 -O3 knn_graph.cpp -o knn_graph.o"
        )


def _scib_engine(pre_adata, out_adata, batch_key, label_key, seed):
    """The original scib package (Luecken et al. 2022), for comparison with published tables."""
    try:
        import scib
    except ImportError as exc:
        raise RuntimeError("metrics engine 'scib' needs the scib package: pip install -e '.[scib]'") from exc
    import anndata as ad

    check_scib_lisi_binary()

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
    # scib's LISI binary reads the graph as Matrix Market and needs it row-major with sorted columns.
    connectivities = sp.csr_matrix(adata.obsp["connectivities"])
    connectivities.sort_indices()
    adata.obsp["connectivities"] = connectivities
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
        values["pcr_comparison"] = scib.metrics.pcr_comparison(pre_adata, adata, covariate=batch_key, embed="X_emb")
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
