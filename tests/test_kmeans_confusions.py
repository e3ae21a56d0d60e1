"""benchmarks/kmeans_confusions.py names the types a k-means draw splits and absorbs, and the split's axis."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from tests.conftest import load_benchmark

kmeans_confusions = load_benchmark("kmeans_confusions")


def _types():
    return np.array(["mono"] * 60 + ["cd4"] * 20 + ["cd8"] * 20)


def test_a_type_split_in_two_and_two_types_merged_are_named():
    types = _types()
    clusters = np.array([0] * 30 + [1] * 30 + [2] * 40)
    split, absorbed = kmeans_confusions.confusions(types, clusters)
    assert split == ["mono"]
    assert absorbed == ["cd4"] or absorbed == ["cd8"]


def test_a_clustering_that_matches_the_types_confuses_nothing():
    types = _types()
    clusters = np.array([2] * 60 + [0] * 20 + [1] * 20)
    assert kmeans_confusions.confusions(types, clusters) == ([], [])
    profile = kmeans_confusions.split_profile(types, clusters, np.ones(100), np.array(["a", "b"] * 50), [])
    assert profile["split_type"] == "" and np.isnan(profile["split_depth_ratio"])


def test_a_split_along_depth_is_told_from_a_split_along_batch():
    types = _types()
    clusters = np.array([0] * 30 + [1] * 30 + [2] * 40)
    # the two monocyte parts: one at depth 1,000, the other at 2,000; batches alternate in both
    depth = np.array([1000.0] * 30 + [2000.0] * 30 + [1500.0] * 40)
    batches = np.array(["a", "b"] * 50)
    by_depth = kmeans_confusions.split_profile(types, clusters, depth, batches, ["mono"])
    assert by_depth["split_type"] == "mono" and by_depth["split_parts"] == "30/30"
    assert by_depth["split_depth_ratio"] == 2.0
    assert by_depth["split_batch_share_diff"] < 0.1
    # same sizes, equal depth, but each part is one batch
    by_batch = kmeans_confusions.split_profile(types, clusters, np.full(100, 1500.0),
                                               np.array(["a"] * 30 + ["b"] * 30 + ["a", "b"] * 20), ["mono"])
    assert by_batch["split_depth_ratio"] == 1.0
    assert by_batch["split_batch_share_diff"] == 1.0


def test_draws_cluster_as_the_metric_stage_does():
    rng = np.random.default_rng(0)
    types = np.repeat(["a", "b", "c"], 50)
    emb = np.concatenate([rng.normal(c, 0.1, size=(50, 2)) for c in ((0, 0), (5, 0), (0, 5))])
    rows = kmeans_confusions.draws(emb, types, np.ones(150), np.array(["x", "y"] * 75), n_kmeans_seeds=3)
    assert [r["kmeans_seed"] for r in rows] == [0, 1, 2]
    # three well-separated blobs: every draw finds them
    assert all(r["ari"] == 1.0 and r["split"] == "" and r["absorbed"] == "" for r in rows)
    assert all(r["inertia"] > 0 for r in rows)


def test_depth_that_follows_the_types_is_told_from_depth_that_does_not():
    types = np.repeat(["mono", "t"], 50)
    by_type = np.repeat([3000.0, 1000.0], 50)
    assert kmeans_confusions.depth_explained_by_type(by_type, types) == 1.0
    # the same depths alternating between the types: the types explain none of it
    assert kmeans_confusions.depth_explained_by_type(np.tile([3000.0, 1000.0], 50), types) == pytest.approx(0.0, abs=1e-12)
    assert np.isnan(kmeans_confusions.depth_explained_by_type(np.full(100, 1000.0), types))


def test_a_graph_only_output_is_refused_by_name(tmp_path):
    results = tmp_path / "res" / "d"
    (results / "integrated" / "bbknn").mkdir(parents=True)
    obs = pd.DataFrame({"cell_type": ["a", "b"] * 5, "batch": ["x"] * 5 + ["y"] * 5}, index=[f"c{i}" for i in range(10)])
    pre = ad.AnnData(X=np.ones((10, 3), dtype=np.float32), obs=obs)
    pre.layers["counts"] = pre.X.copy()
    pre.write_h5ad(results / "preprocessed.h5ad")
    graph_only = ad.AnnData(obs=obs[[]])
    graph_only.obsp["connectivities"] = sp.identity(10, format="csr")
    graph_only.write_h5ad(results / "integrated" / "bbknn" / "seed0.h5ad")
    with pytest.raises(SystemExit, match="no embedding.*bbknn outputs a graph only"):
        kmeans_confusions.main(["--results-dir", str(tmp_path / "res"), "--datasets", "d", "--methods", "bbknn",
                                "--seeds", "0", "--out", str(tmp_path / "out.csv")])
    assert not (tmp_path / "out.csv").exists()


def test_a_split_along_a_gene_program_is_named_and_found_in_the_expression():
    rng = np.random.default_rng(0)
    types = _types()
    clusters = np.array([0] * 30 + [1] * 30 + [2] * 40)
    batches = np.array(["a", "b"] * 50)
    genes = np.array(["CCL3", "CCL4", "HLA-DPB1", "LYZ", "CD3E"])
    expression = rng.normal(1.0, 0.05, size=(100, 5))
    expression[:30, :2] += 2.0  # the first monocyte part raises the inflammatory genes
    expression[30:60, 2] += 2.0  # the second raises an MHC class II gene
    pcs = np.column_stack([expression[:, 0] - expression[:, 2], rng.normal(0, 0.05, 100)])
    pcs[batches == "b", 1] += 5.0  # a batch offset the centring must set aside
    profile = kmeans_confusions.split_profile(types, clusters, np.ones(100), batches, ["mono"],
                                              sp.csr_matrix(expression), genes, pcs, n_genes=2)
    first = dict(item.split(":") for item in profile["split_genes_first"].split(";"))
    assert set(first) == {"CCL3", "CCL4"} and all(abs(float(d) - 2.0) < 0.1 for d in first.values())
    second = profile["split_genes_second"].split(";")[0].split(":")
    assert second[0] == "HLA-DPB1" and abs(float(second[1]) + 2.0) < 0.1
    assert profile["split_expression_ari"] == pytest.approx(1.0)
    # a split the expression does not hold: the parts are drawn at random among identical cells
    noise = rng.normal(0, 1, size=(100, 2))
    random_parts = kmeans_confusions.split_profile(types, clusters, np.ones(100), batches, ["mono"], pcs=noise)
    assert random_parts["split_expression_ari"] < 0.2
