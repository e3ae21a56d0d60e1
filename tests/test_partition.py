import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from schelix_core.checks import SCHelixInputError
from schelix_core.partition import (PartitionResult, coerce_partition, group_and_batch_shares, group_eta2,
                                     partition_genes)
from schelix_core.simulate import simulate
from tests.schelix_fixtures import small_sim


def precision_recall(adata, res):
    truth = adata.var["batch_affected"].values
    pred = (res.roles == "variant").values
    tp = (truth & pred).sum()
    return tp / max(pred.sum(), 1), tp / truth.sum()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_partition_recovers_batch_genes(seed):
    """Default settings, simulate() defaults: variants match the simulator's batch genes."""
    adata = simulate(seed=seed)
    res = partition_genes(adata, "batch", seed=0)
    prec, rec = precision_recall(adata, res)
    assert prec >= 0.8 and rec >= 0.8, (seed, prec, rec)
    # anchors keep at least half of the variance; both roles present
    assert res.anchor_variance_share >= 0.5
    assert set(res.roles.unique()) == {"anchor", "variant"}
    assert res.n_groups >= 1
    assert list(res.scores.index) == list(adata.var_names)
    assert np.isfinite(res.threshold)


def test_partition_with_labels_and_to_frame():
    adata = simulate(seed=0, n_cells=1500, n_genes=500)
    res = partition_genes(adata, "batch", labels_key="cell_type", seed=0)
    prec, rec = precision_recall(adata, res)
    assert prec >= 0.8 and rec >= 0.8
    df = res.to_frame()
    assert list(df.columns) == ["score", "role"] and df.shape[0] == adata.n_vars
    # round trip through the roles Series
    back = coerce_partition(df, adata.var_names)
    assert (back.roles == res.roles).all()


def test_partition_is_deterministic():
    adata = small_sim()
    r1 = partition_genes(adata, "batch", seed=3)
    r2 = partition_genes(adata, "batch", seed=3)
    pd.testing.assert_series_equal(r1.scores, r2.scores)
    assert (r1.roles == r2.roles).all()


def test_variance_guard_keeps_half_for_anchors():
    adata = small_sim()
    res = partition_genes(adata, "batch", seed=0, variant_score_share=1.0, noise_z=0.0)
    assert res.anchor_variance_share >= 0.5 - 1e-9
    assert (res.roles == "anchor").sum() >= 20


def test_eta2_matches_direct_computation():
    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(1.0, size=(200, 6)).astype(np.float32))
    groups = rng.integers(0, 3, 200)
    batches = rng.integers(0, 2, 200)
    eta, n_ok, _ = group_eta2(X, groups, batches, 3, 2, min_cells_per_batch=5)
    D = X.toarray().astype(float)
    exp = np.zeros(6)
    wsum = np.zeros(6)
    for g in range(3):
        m = groups == g
        x = D[m]
        tot = ((x - x.mean(0)) ** 2).sum(0)
        bt = sum((batches[m] == b).sum() * (x[batches[m] == b].mean(0) - x.mean(0)) ** 2 for b in range(2))
        ok = tot > 0
        exp += np.where(ok, bt / np.where(ok, tot, 1), 0) * m.sum() * ok
        wsum += m.sum() * ok
    np.testing.assert_allclose(eta, exp / wsum, rtol=1e-4, atol=1e-6)
    assert n_ok == 3


def test_batch_pure_groups_raise():
    adata = small_sim()
    with pytest.raises(SCHelixInputError, match="no group"):
        partition_genes(adata, "batch", groups=adata.obs["batch"].values)


def test_from_roles_validation():
    names = pd.Index(["a", "b", "c"])
    with pytest.raises(SCHelixInputError, match="missing"):
        PartitionResult.from_roles(pd.Series(["anchor", "variant"], index=["a", "b"]), names)
    with pytest.raises(SCHelixInputError, match="roles must be"):
        PartitionResult.from_roles(pd.Series(["anchor", "x", "variant"], index=names), names)


def test_strong_batch_effect_partition_groups_span_batches():
    """A strong gene-specific batch effect leaves Harmony's groups batch-pure (nothing to score),
    while communities of the batch-balanced graph span batches: the default recovers the genes."""
    adata = simulate(n_cells=2000, n_genes=1500, seed=12, frac_batch_genes=0.2, batch_effect_strong=1.2,
                     library_size_batch_sd=0.5, missing_types_per_batch=0)
    with pytest.raises(SCHelixInputError, match="harmony"):
        partition_genes(adata, "batch", seed=0, grouping="harmony")
    res = partition_genes(adata, "batch", seed=0)
    assert res.details["source"] == "batch-balanced graph communities"
    prec, rec = precision_recall(adata, res)
    assert prec >= 0.8 and rec >= 0.7, (prec, rec)


def test_unknown_grouping_is_refused():
    with pytest.raises(SCHelixInputError, match="grouping"):
        partition_genes(small_sim(), "batch", grouping="louvain")


def test_small_data_gets_coarser_communities_that_can_be_scored():
    """On 200 cells the finest communities are too small to hold two batches of 5 cells;
    the grouping coarsens until most cells can be scored, instead of failing."""
    from schelix_core.partition import scorable_share

    adata = small_sim(n_cells=200, n_genes=120)
    res = partition_genes(adata, "batch", seed=0)
    assert res.details["n_cells_scored"] >= 0.5 * adata.n_obs
    assert set(res.roles.unique()) == {"anchor", "variant"}
    groups = np.repeat([0, 1], 10)
    assert scorable_share(groups, np.tile([0, 1], 10)) == 1.0
    assert scorable_share(groups, np.repeat([0, 1], 10)) == 0.0  # each group holds one batch


def _shares_data(n_per=60, seed=0):
    """Three groups x two batches, four log-expression genes with known structure."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(3), 2 * n_per)
    batches = np.tile(np.repeat([0, 1], n_per), 3)
    X = rng.normal(0, 0.1, size=(len(groups), 4))
    X[:, 0] += 1.0 * batches                              # batch shift only
    X[:, 1] += 2.0 * (groups == 0)                        # marker of group 0, same in both batches
    X[:, 2] += 2.0 * (groups == 0) + 1.0 * batches        # the same marker, also shifted by batch
    X[:, 3] += 2.0 * ((groups == 0) & (batches == 1))     # a response of group 0 in batch 1 only
    return X, groups, batches


def test_group_and_batch_shares_separate_biology_from_batch():
    X, groups, batches = _shares_data()
    group_share, batch_share = group_and_batch_shares(X, groups, batches, 3, 2)
    # batch shift: all batch, no group signal
    assert batch_share[0] > 0.9 and group_share[0] < 0.02
    # a marker seen in every batch: all group signal
    assert group_share[1] > 0.9 and batch_share[1] < 0.02
    # a batch-shifted marker keeps its group signal (the batch shift does not hide it)
    assert group_share[2] > 2 * batch_share[2] > 0.2
    # a response confined to one batch is not counted as cell-group signal
    assert group_share[3] < 0.02 and batch_share[3] > 0.2
    # shares of the total variance, matching a direct computation for the batch shift
    total = X[:, 0].var()
    direct = sum(((groups == g) & (batches == b)).sum()
                 * (X[(groups == g) & (batches == b), 0].mean() - X[groups == g, 0].mean()) ** 2
                 for g in range(3) for b in range(2)) / len(X) / total
    np.testing.assert_allclose(batch_share[0], direct, rtol=1e-6)


def test_protect_ratio_keeps_batch_shifted_markers_as_anchors():
    """Simulated markers that also carry a batch effect: protection returns the markers whose
    cell-type signal outweighs their batch effect to the Anchors, and no pure batch gene."""
    adata = simulate(seed=0, batch_effect_strong=0.4, missing_types_per_batch=0)
    plain = partition_genes(adata, "batch", seed=0)
    protected = partition_genes(adata, "batch", seed=0, protect_ratio=1.0)
    marker = adata.var["is_marker"].values
    was, now = (plain.roles == "variant").values, (protected.roles == "variant").values
    moved = was & ~now
    assert protected.details["n_protected"] == moved.sum() > 0
    assert marker[moved].all()
    assert not (now & ~was).any()
    shares = protected.details["group_share"].values, protected.details["batch_share"].values
    assert (shares[0][moved] >= shares[1][moved]).all()
    with pytest.raises(SCHelixInputError, match="protect_ratio"):
        partition_genes(adata, "batch", seed=0, protect_ratio=-1)
