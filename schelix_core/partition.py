"""Gene partition into batch-robust Anchors and batch-sensitive Variants.

Each gene's batch sensitivity is scored *within groups of similar cells* (after the
"group technical effect" of Zhou et al. 2025) but as a **relative** quantity: the share
of the gene's within-group variance explained by batch (eta^2 = between-batch SS / total
SS in the group), averaged over groups that contain at least two batches, minus the same
statistic with batch labels permuted within groups (a seeded permutation null that
removes the small-sample bias of eta^2). Groups come from given labels or from Leiden
communities of a batch-balanced kNN graph, which link every cell to every batch so that
groups are not batch-pure even under a strong batch effect.

Everything is vectorised as (group x batch) x genes sparse products, so scoring costs a
few sparse matrix products regardless of the number of groups.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .checks import SCHelixInputError, get_counts
from .preprocess import gene_mean_var, grouped_sums, log_normalize, pca


@dataclass
class PartitionResult:
    """Outcome of :func:`partition_genes`."""

    scores: pd.Series  # batch-sensitivity score per gene (index var_names)
    roles: pd.Series  # "anchor" / "variant" per gene
    threshold: float  # genes with score >= threshold (and selected) are variants
    anchor_variance_share: float  # share of total log-expression variance kept by anchors
    n_groups: int  # number of qualifying groups used for scoring
    details: dict = field(default_factory=dict)

    @property
    def anchors(self) -> pd.Index:
        return self.roles.index[self.roles == "anchor"]

    @property
    def variants(self) -> pd.Index:
        return self.roles.index[self.roles == "variant"]

    def to_frame(self) -> pd.DataFrame:
        df = pd.DataFrame({"score": self.scores, "role": self.roles})
        df.index.name = "gene"
        return df

    @classmethod
    def from_roles(cls, roles: pd.Series, var_names=None) -> "PartitionResult":
        """Build a result from a Series of roles (e.g. read from a TSV)."""
        roles = pd.Series(roles).astype(str)
        if var_names is not None:
            var_names = pd.Index(var_names)
            missing = var_names.difference(roles.index)
            if len(missing):
                raise SCHelixInputError(
                    f"partition is missing {len(missing)} genes of the data (e.g. {list(missing[:3])})"
                )
            roles = roles.reindex(var_names)
        bad = set(roles.unique()) - {"anchor", "variant"}
        if bad:
            raise SCHelixInputError(f"partition roles must be 'anchor' or 'variant', got {sorted(bad)}")
        scores = pd.Series(np.where(roles == "variant", 1.0, 0.0), index=roles.index)
        return cls(scores=scores, roles=roles, threshold=float("nan"), anchor_variance_share=float("nan"),
                   n_groups=0, details={"source": "given"})


def coerce_partition(partition, var_names) -> PartitionResult:
    """Accept a PartitionResult, a Series of roles, or a DataFrame with a 'role' column."""
    if isinstance(partition, PartitionResult):
        res = PartitionResult.from_roles(partition.roles, var_names)
        res.scores = partition.scores.reindex(res.roles.index)
        res.threshold, res.anchor_variance_share = partition.threshold, partition.anchor_variance_share
        res.n_groups, res.details = partition.n_groups, dict(partition.details)
        return res
    if isinstance(partition, pd.DataFrame):
        if "role" not in partition.columns:
            raise SCHelixInputError("a partition DataFrame needs a 'role' column")
        res = PartitionResult.from_roles(partition["role"], var_names)
        if "score" in partition.columns:
            res.scores = partition["score"].reindex(res.roles.index).astype(float)
        return res
    if isinstance(partition, pd.Series):
        return PartitionResult.from_roles(partition, var_names)
    raise SCHelixInputError(
        f"partition must be a PartitionResult or a pandas Series of roles, got {type(partition).__name__}"
    )


def _codes(values) -> tuple[np.ndarray, np.ndarray]:
    cat = pd.Categorical(pd.Series(values).astype(str))
    return cat.codes.astype(np.int64), np.asarray(cat.categories)


#: How groups of similar cells are found when no labels are given: communities of a
#: batch-balanced kNN graph (default), or k-means on a Harmony-corrected PCA.
GROUPINGS = ("graph", "harmony")


def preliminary_groups(Xlog, batch_codes, n_pcs: int = 30, n_groups: int | None = None, seed: int = 0):
    """Clusters of a Harmony-corrected PCA (groups of similar cells that mix batches)."""
    pcs, _ = pca(Xlog, n_comps=n_pcs, scale=True, seed=seed)
    return kmeans_groups(harmony_corrected(pcs, batch_codes, seed), n_groups, seed, cells_per_group=200,
                         max_groups=40)


def harmony_corrected(X: np.ndarray, batch_codes, seed: int) -> np.ndarray:
    """Harmony-corrected copy of a low-dimensional representation, so that clusters of it
    group similar cells across batches instead of splitting them by batch."""
    import harmonypy

    meta = pd.DataFrame({"batch": pd.Categorical(np.asarray(batch_codes).astype(str))})
    ho = harmonypy.run_harmony(np.asarray(X, dtype=np.float64), meta, "batch", verbose=False,
                               random_state=seed, max_iter_harmony=10)
    Z = np.asarray(ho.Z_corr, dtype=np.float64)
    return Z if Z.shape[0] == X.shape[0] else Z.T


#: Leiden resolutions tried for the graph grouping, finest first.
GRAPH_RESOLUTIONS = (4.0, 2.0, 1.0, 0.5, 0.25)


def scorable_share(group_codes, batch_codes, min_cells_per_batch: int = 5) -> float:
    """Share of cells in groups with at least two batches of ``min_cells_per_batch`` cells."""
    table = pd.crosstab(group_codes, batch_codes)
    ok = (table >= min_cells_per_batch).sum(axis=1) >= 2
    return float(table[ok].to_numpy().sum() / max(len(group_codes), 1))


def graph_groups(Xlog, batch_codes, n_pcs: int = 30, n_neighbors: int = 15, seed: int = 0,
                 min_cells_per_batch: int = 5, min_scorable_share: float = 0.5):
    """Leiden communities of a batch-balanced kNN graph of the PCA: every cell links to its
    nearest cells in every batch, so groups span batches even where batches do not overlap
    at all in PCA space (where Harmony can return its input unchanged).

    Communities should be fine, so that a type missing from some batches (whose cells are
    still linked to other types there) stays apart instead of inflating batch scores, yet
    large enough to be scored. The finest resolution in GRAPH_RESOLUTIONS at which at least
    ``min_scorable_share`` of cells lie in scorable groups is used (the coarsest otherwise).
    """
    from .graph import batch_balanced_knn, graph_communities

    pcs, _ = pca(Xlog, n_comps=n_pcs, scale=True, seed=seed)
    A = batch_balanced_knn(pcs, batch_codes, k=n_neighbors, seed=seed)
    for resolution in GRAPH_RESOLUTIONS:
        groups = graph_communities(A, resolution, seed)
        if scorable_share(groups, batch_codes, min_cells_per_batch) >= min_scorable_share:
            break
    return groups


def kmeans_groups(X: np.ndarray, n_groups: int | None, seed: int, cells_per_group: int, max_groups: int) -> np.ndarray:
    """K-means groups of similar cells; by default about one group per ``cells_per_group`` cells."""
    from sklearn.cluster import KMeans, MiniBatchKMeans

    n = X.shape[0]
    if n_groups is None:
        n_groups = int(np.clip(round(n / cells_per_group), 8, max_groups))
    n_groups = max(2, min(n_groups, n // 10))
    if n > 50_000:
        km = MiniBatchKMeans(n_clusters=n_groups, random_state=seed, n_init=3, batch_size=4096)
    else:
        km = KMeans(n_clusters=n_groups, random_state=seed, n_init=3)
    return km.fit_predict(X.astype(np.float32)).astype(np.int64)


def group_eta2(Xlog, group_codes, batch_codes, n_groups, n_batches, min_cells_per_batch=5):
    """Per-gene within-group batch eta^2, averaged over qualifying groups (weighted by size).

    Returns ``(eta2 per gene, number of qualifying groups, cell mask used)``.
    """
    combo = group_codes * n_batches + batch_codes
    n_combo = n_groups * n_batches
    cnt = np.bincount(combo, minlength=n_combo).reshape(n_groups, n_batches)
    ok_combo = cnt >= min_cells_per_batch
    ok_group = ok_combo.sum(axis=1) >= 2
    ok_combo &= ok_group[:, None]
    keep = ok_combo.ravel()[combo]
    if not ok_group.any():
        return None, 0, keep
    idx = np.flatnonzero(keep)
    M = sp.csc_matrix((np.ones(len(idx), dtype=np.float32), (combo[idx], idx)), shape=(n_combo, len(combo)))
    S, Q = grouped_sums(M, Xlog)  # combos x genes: sums and sums of squares
    nc = np.bincount(combo[idx], minlength=n_combo).astype(np.float64)
    S3 = S.reshape(n_groups, n_batches, -1)
    Q3 = Q.reshape(n_groups, n_batches, -1)
    nc3 = nc.reshape(n_groups, n_batches)
    ng = nc3.sum(axis=1)
    Sg = S3.sum(axis=1)
    Qg = Q3.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        base = np.where(ng[:, None] > 0, Sg**2 / ng[:, None], 0.0)
        within_means = np.where(nc3[..., None] > 0, S3**2 / np.maximum(nc3[..., None], 1), 0.0).sum(axis=1)
        between = np.maximum(within_means - base, 0.0)
        total = np.maximum(Qg - base, 0.0)
        valid = (total > 1e-8 * np.maximum(Qg, 1e-12)) & ok_group[:, None]
        eta = np.where(valid, between / np.where(valid, total, 1.0), 0.0)
    w = ng[:, None] * valid
    wsum = w.sum(axis=0)
    eta2 = np.where(wsum > 0, (eta * w).sum(axis=0) / np.maximum(wsum, 1e-12), 0.0)
    return eta2, int(ok_group.sum()), keep


def group_and_batch_shares(Xlog, group_codes, batch_codes, n_groups, n_batches, min_cells_per_batch=5):
    """Per gene: the cell-group signal that every batch shows, and the batch signal within
    groups, each as a share of the gene's total variance.

    The group share is the smallest over batches of the between-group variance among that
    batch's cells (groups with at least ``min_cells_per_batch`` of them), so a response
    confined to one batch (a stimulation's genes) is not counted as cell-group signal. The
    batch share is the between-batch variance within groups that hold at least two batches.
    """
    combo = group_codes * n_batches + batch_codes
    M = sp.csc_matrix((np.ones(len(combo), dtype=np.float32), (combo, np.arange(len(combo)))),
                      shape=(n_groups * n_batches, len(combo)))
    S, Q = grouped_sums(M, Xlog)
    S = S.reshape(n_groups, n_batches, -1)
    Q = Q.reshape(n_groups, n_batches, -1)
    n = np.bincount(combo, minlength=n_groups * n_batches).reshape(n_groups, n_batches).astype(np.float64)
    ok = n >= min_cells_per_batch
    cell_mean = S / np.maximum(n, 1)[..., None]
    # per batch: between-group variance over its qualifying groups (per cell, not a ratio to
    # that batch's own variance, so a gene nearly silent in a batch shows no group signal there)
    w_b = n * ok
    S_b = (S * ok[..., None]).sum(axis=0)
    N_b = np.maximum(w_b.sum(axis=0), 1)[:, None]
    between_b = ((w_b[..., None] * cell_mean**2).sum(axis=0) - S_b**2 / N_b) / N_b
    scorable = ok.sum(axis=0) >= 2
    n_cells = n.sum()
    variance = np.maximum(Q.sum(axis=(0, 1)) - S.sum(axis=(0, 1)) ** 2 / n_cells, 1e-12) / n_cells
    group_share = (between_b[scorable].min(axis=0) if scorable.any() else np.zeros(S.shape[2])) / variance
    # within each group holding >= 2 batches: between-batch variance, per cell of the data set
    ok_g = ok & (ok.sum(axis=1) >= 2)[:, None]
    w = n * ok_g
    group_mean = (w[..., None] * cell_mean).sum(axis=1) / np.maximum(w.sum(axis=1), 1)[:, None]
    batch_share = (w[..., None] * (cell_mean - group_mean[:, None, :]) ** 2).sum(axis=(0, 1)) / n_cells / variance
    return np.clip(group_share, 0, None), batch_share


def _otsu_upper(x_desc: np.ndarray) -> int:
    """Size of the upper class of Otsu's two-class split of values sorted in decreasing order."""
    x = x_desc.astype(np.float64)
    n = len(x)
    if n < 2:
        return n
    c = np.cumsum(x)
    k = np.arange(1, n)  # size of the upper class
    mu_hi = c[:-1] / k
    mu_lo = (c[-1] - c[:-1]) / (n - k)
    between = k * (n - k) * (mu_hi - mu_lo) ** 2
    return int(k[np.argmax(between)])


def _permute_within(batch_codes, group_codes, rng):
    out = batch_codes.copy()
    order = np.argsort(group_codes, kind="stable")
    g_sorted = group_codes[order]
    bounds = np.flatnonzero(np.diff(g_sorted)) + 1
    for seg in np.split(order, bounds):
        out[seg] = batch_codes[seg][rng.permutation(len(seg))]
    return out


def partition_genes(
    adata,
    batch_key: str,
    layer: str | None = None,
    labels_key: str | None = None,
    seed: int = 0,
    n_pcs: int = 30,
    n_groups: int | None = None,
    min_cells_per_batch: int = 5,
    n_permutations: int = 2,
    variant_score_share: float = 0.5,
    min_anchor_variance_share: float = 0.5,
    min_anchors: int = 20,
    min_variants: int = 5,
    noise_z: float = 4.0,
    protect_ratio: float | None = None,
    groups=None,
    validate: bool = True,
    grouping: str = "graph",
) -> PartitionResult:
    """Partition genes into batch-robust Anchors and batch-sensitive Variants.

    Scores: permutation-corrected within-group eta^2 of batch (see module docstring). Groups
    are the labels when ``labels_key`` is given, else ``grouping`` (see ``GROUPINGS``).
    Split (dataset-adaptive, no fixed count): candidates are genes scoring above the noise
    level of the permutation null (``noise_z`` robust SDs of null-vs-null differences).
    Variants are the top genes up to ``variant_score_share`` of the candidates' cumulative
    score, extended to the upper class of Otsu's split of the log scores (capped at the
    candidates). Guards: Anchors keep at least ``min_anchor_variance_share`` of the total
    log-expression variance and at least ``min_anchors`` genes; at least ``min_variants``
    genes become Variants.

    ``protect_ratio`` (off by default) keeps as Anchors the would-be Variants whose cell-group
    signal in every batch is at least that multiple of their batch signal (see
    :func:`group_and_batch_shares`). It helps where batch effects are shifts shared by all
    cell types, as in the simulator, and hurt on all three real benchmark data sets, whose
    batch effects on such genes differ by cell type (docs/benchmark_analyses.md, "Why the
    partition loses on the simulations").
    """
    from .checks import validate_counts

    if protect_ratio is not None and not float(protect_ratio) >= 0:
        raise SCHelixInputError(f"protect_ratio must be a non-negative number or None, got {protect_ratio!r}")
    if grouping not in GROUPINGS:
        raise SCHelixInputError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    if validate:
        X = validate_counts(adata, batch_key, layer=layer, labels_key=labels_key, min_cells=20)
    else:
        X, _ = get_counts(adata, layer)
    Xlog = log_normalize(X)
    n_cells, n_genes = Xlog.shape
    batch_codes, batch_names = _codes(adata.obs[batch_key].values)
    n_batches = len(batch_names)

    if groups is not None:
        group_codes, _ = _codes(groups)
        source = "given groups"
    elif labels_key is not None:
        group_codes, _ = _codes(adata.obs[labels_key].values)
        source = f"labels '{labels_key}'"
    elif grouping == "graph":
        group_codes = graph_groups(Xlog, batch_codes, n_pcs=n_pcs, seed=seed, min_cells_per_batch=min_cells_per_batch)
        source = "batch-balanced graph communities"
    else:
        group_codes = preliminary_groups(Xlog, batch_codes, n_pcs=n_pcs, n_groups=n_groups, seed=seed)
        source = "harmony+kmeans"
    n_grp = int(group_codes.max()) + 1

    eta, n_ok, keep = group_eta2(Xlog, group_codes, batch_codes, n_grp, n_batches, min_cells_per_batch)
    if eta is None:
        raise SCHelixInputError(
            f"no group of similar cells (from {source}) contains at least 2 batches with at least "
            f"{min_cells_per_batch} cells each, so batch sensitivity cannot be scored; batches may not "
            "share any cell type, or the data set is too small"
        )
    rng = np.random.default_rng(seed)
    nulls = []
    for _ in range(max(1, n_permutations)):
        perm = _permute_within(batch_codes, group_codes, rng)
        e_null, _, _ = group_eta2(Xlog, group_codes, perm, n_grp, n_batches, min_cells_per_batch)
        nulls.append(e_null)
    nulls = np.array(nulls)
    null = nulls.mean(axis=0)
    scores = eta - null

    # Noise scale of the score: spread of differences between independent null draws.
    if len(nulls) >= 2:
        diff = (nulls[0] - nulls[1]) / np.sqrt(2.0)
    else:  # pragma: no cover
        diff = scores[scores <= np.median(scores)]
    noise_sd = 1.4826 * np.median(np.abs(diff - np.median(diff))) + 1e-12
    # Genes clearly above null: the noise-based threshold.
    noise_thr = noise_z * noise_sd * np.sqrt(1 + 1 / max(1, len(nulls)))

    _, gvar = gene_mean_var(Xlog)
    total_var = gvar.sum()
    order = np.argsort(-scores, kind="stable")
    s_sorted = scores[order]
    pos = np.clip(s_sorted, 0, None)
    n_candidates = int((s_sorted > noise_thr).sum())
    # Score-share rule: genes up to `variant_score_share` of the cumulative positive score
    # of the candidates, extended to all candidates that are far above the noise level
    # relative to the median candidate (a gap-based rule keeps the split adaptive).
    if n_candidates > 0:
        cum = np.cumsum(pos[:n_candidates]) / pos[:n_candidates].sum()
        n_share = int(np.searchsorted(cum, variant_score_share) + 1)
        # Adaptive split: Otsu threshold on log scores of all genes (floored at the noise
        # level), i.e. the two-class split of the score distribution, capped at the candidates.
        n_otsu = _otsu_upper(np.log(np.maximum(s_sorted, noise_sd)))
        n_var = max(n_share, min(n_otsu, n_candidates))
    else:
        n_var = 0
    # Guards: anchors keep enough variance and count; variants at least min_variants.
    max_var_by_count = max(0, n_genes - min_anchors)
    cumvar = np.cumsum(gvar[order])
    max_var_by_variance = int(np.searchsorted(cumvar, (1 - min_anchor_variance_share) * total_var, side="right"))
    n_var = min(n_var, max_var_by_count, max_var_by_variance)
    n_var = max(n_var, min(min_variants, max_var_by_count))
    variant_idx = order[:n_var]
    protection = {}
    if protect_ratio is not None:
        group_share, batch_share = group_and_batch_shares(Xlog, group_codes, batch_codes, n_grp, n_batches,
                                                          min_cells_per_batch)
        protection = {"group_share": pd.Series(group_share, index=adata.var_names),
                      "batch_share": pd.Series(batch_share, index=adata.var_names)}
        protected = group_share >= protect_ratio * batch_share
        kept = variant_idx[~protected[variant_idx]]
        if len(kept) < min(min_variants, max_var_by_count):
            kept = order[~protected[order]][:min(min_variants, max_var_by_count)]
        protection["n_protected"] = n_var - len(kept)
        variant_idx = kept
        n_var = len(variant_idx)
    roles = np.full(n_genes, "anchor", dtype=object)
    roles[variant_idx] = "variant"
    threshold = float(scores[variant_idx].min()) if n_var > 0 else float("inf")
    anchor_share = float(gvar[roles == "anchor"].sum() / max(total_var, 1e-12))
    names = adata.var_names
    return PartitionResult(
        scores=pd.Series(scores, index=names, name="score"),
        roles=pd.Series(roles, index=names, name="role"),
        threshold=threshold,
        anchor_variance_share=anchor_share,
        n_groups=n_ok,
        details={
            "source": source,
            "noise_sd": float(noise_sd),
            "noise_threshold": float(noise_thr),
            "n_candidates": n_candidates,
            "n_cells_scored": int(keep.sum()),
            "eta2": pd.Series(eta, index=names),
            "null": pd.Series(null, index=names),
            **protection,
        },
    )
