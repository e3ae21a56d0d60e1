"""The stream-selection check (benchmarks/stream_selection.py): its label-free criteria, its join
with the stream probe's scores, and which latent each rule picks."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scanpy as sc

from tests.conftest import load_benchmark

stream_selection = load_benchmark("stream_selection")


@pytest.fixture
def two_batches():
    rng = np.random.default_rng(0)
    n, genes = 200, 60
    batches = np.repeat(["b0", "b1"], n // 2)
    types = rng.integers(0, 4, size=n)
    X = rng.normal(size=(n, genes)) + 3.0 * np.eye(4)[types] @ rng.normal(size=(4, genes))
    return ad.AnnData(X.astype(np.float32)), batches, rng


def _own_pcs(pre, batches):
    z = np.zeros((pre.n_obs, stream_selection.REFERENCE_PCS))
    for batch in np.unique(batches):
        sub = pre[batches == batch].copy()
        sc.pp.pca(sub, n_comps=stream_selection.REFERENCE_PCS, random_state=0)
        z[batches == batch] = sub.obsm["X_pca"]
    return z


def test_a_latent_that_keeps_each_batchs_own_neighbours_preserves_all(two_batches):
    pre, batches, _ = two_batches
    refs = stream_selection.batch_references(pre, batches)
    assert stream_selection.within_batch_preservation(_own_pcs(pre, batches), batches, refs) == pytest.approx(1.0)


def test_a_latent_that_scrambles_cells_within_batches_preserves_about_chance(two_batches):
    pre, batches, rng = two_batches
    refs = stream_selection.batch_references(pre, batches)
    z = _own_pcs(pre, batches)
    for batch in np.unique(batches):
        rows = np.flatnonzero(batches == batch)
        z[rows] = z[rng.permutation(rows)]
    # chance: 15 of a batch's 99 other cells, about 0.15, plus what the 4 types share
    assert stream_selection.within_batch_preservation(z, batches, refs) < 0.4


def _probe_rows(batch_acc_offset=0.0):
    rows = []
    for seed in (0, 1):
        for latent, ilisi, batch_acc, total, averaged in (("anchor", 0.80, 0.40, 0.85, 0.86),
                                                          ("variant", 0.90, 0.45, 0.80, 0.81),
                                                          ("fused", 0.70, 0.30, 0.84, 0.88)):
            rows.append({"dataset": "d", "seed": seed, "latent": latent, "within_batch_preservation": 0.5,
                         "ilisi": ilisi, "batch_acc": batch_acc, "total": total, "total_kmeans_averaged": averaged})
    criteria = pd.DataFrame(rows).drop(columns=["total", "total_kmeans_averaged"])
    scores = pd.DataFrame(rows).assign(batch_acc=lambda t: t["batch_acc"] + batch_acc_offset)
    return criteria, scores


def test_each_rule_picks_its_best_latent_and_reports_the_change_against_the_fused_output():
    criteria, scores = _probe_rows()
    picks = stream_selection.selections(stream_selection.join_scores(criteria, scores)).set_index(["rule", "seed"])
    assert picks.loc[("ilisi", 0), "pick"] == "variant"
    assert picks.loc[("ilisi", 0), "total_change"] == pytest.approx(0.80 - 0.84)
    assert picks.loc[("batch_knn", 1), "pick"] == "fused"
    assert picks.loc[("batch_knn", 1), "total_kmeans_averaged_change"] == 0.0
    assert picks.loc[(stream_selection.BEST_BY_LABELS, 0), "pick"] == "fused"
    summary = stream_selection.summarize(picks.reset_index()).set_index("rule")
    assert summary.loc["ilisi", "picks"] == "variant,variant"


def test_scores_of_other_latents_than_the_probes_are_refused():
    criteria, scores = _probe_rows(batch_acc_offset=0.01)
    with pytest.raises(SystemExit, match="latents differ"):
        stream_selection.join_scores(criteria, scores)


def test_runs_the_probe_did_not_score_are_refused():
    criteria, scores = _probe_rows()
    with pytest.raises(SystemExit, match="lack these runs"):
        stream_selection.join_scores(criteria, scores[scores["seed"] == 0])
