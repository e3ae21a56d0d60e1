"""benchmarks/batch_variance.py tells composition from batch effect."""

import numpy as np

from tests.conftest import load_benchmark

batch_variance = load_benchmark("batch_variance")


def _cells(batch_shift: float, seed: int = 0):
    """Two batches holding two types in opposite proportions (90/10 and 10/90)."""
    rng = np.random.default_rng(seed)
    batch = np.repeat(["a", "b"], 500)
    labels = np.where(np.concatenate([rng.random(500) < 0.9, rng.random(500) < 0.1]), "t0", "t1")
    emb = rng.normal(size=(1000, 4))
    emb[:, 0] += 5.0 * (labels == "t0")
    emb[:, 1] += batch_shift * (batch == "b")
    return emb, batch, labels


def test_composition_alone_shows_over_all_cells_but_not_within_types():
    shares = batch_variance.batch_variance_shares(*_cells(batch_shift=0.0))
    assert shares["batch_share_all_cells"] > 0.3
    assert shares["batch_share_within_types"] < 0.01
    assert shares["type_share"] > 0.5


def test_a_batch_shift_shows_within_types():
    shares = batch_variance.batch_variance_shares(*_cells(batch_shift=2.0))
    assert shares["batch_share_within_types"] > 0.05


def test_types_held_by_one_batch_are_left_out_of_the_within_type_share():
    emb, batch, labels = _cells(batch_shift=0.0)
    labels = labels.copy()
    only_a = (batch == "a") & (labels == "t1")
    labels[only_a] = "t_a_only"
    emb[only_a, 2] += 10.0  # far away, and in batch a only
    shares = batch_variance.batch_variance_shares(emb, batch, labels)
    assert shares["batch_share_within_types"] < 0.01


def test_the_all_cells_share_is_what_scib_metrics_pcr_comparison_compares():
    import scib_metrics

    post, batch, labels = _cells(batch_shift=2.0)
    pre = post.copy()
    pre[:, 1] += 3.0 * (batch == "b")
    pre[:, 2] += 1.5 * (batch == "b")
    share = {name: batch_variance.batch_variance_shares(X, batch, labels)["batch_share_all_cells"]
             for name, X in (("pre", pre), ("post", post))}
    pcr = scib_metrics.pcr_comparison(pre, post, (batch == "b").astype(int))
    assert abs((1 - share["post"] / share["pre"]) - pcr) < 1e-4
