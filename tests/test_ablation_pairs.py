"""The paired ablation analysis (benchmarks/ablation_pairs.py) pairs runs by seed and calls only clear effects."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_benchmark

ablation_pairs = load_benchmark("ablation_pairs")


def _runs(full, ablated, variant="no_fusion", dataset="d"):
    rows = []
    for seed, (f, a) in enumerate(zip(full, ablated)):
        for name, value in (("full", f), (variant, a)):
            rows.append({"dataset": dataset, "variant": name, "seed": seed, "total": value,
                         "total_kmeans_averaged": value})
    return pd.DataFrame(rows)


def _row(summary, score="total"):
    return summary[summary.score == score].iloc[0]


def test_a_consistent_drop_under_seed_noise_is_called_a_clear_help():
    # the seeds differ by 0.05 among themselves, but the ablation is 0.01 lower at every one
    full = np.array([0.80, 0.85, 0.75, 0.82, 0.78, 0.83])
    ablated = full - 0.01 + np.array([0.001, -0.001, 0.0, 0.001, -0.001, 0.0])
    row = _row(ablation_pairs.paired_changes(_runs(full, ablated)))
    assert row["mean_change"] == pytest.approx(-0.01)
    assert row["seeds_lower"] == 6 and row["seeds_higher"] == 0
    assert row["helps_clearly"] and not row["hurts_clearly"]
    assert row["ci95_high"] < 0


def test_changes_that_flip_sign_between_seeds_are_not_called_either_way():
    full = np.full(6, 0.80)
    ablated = full + np.array([0.01, -0.01, 0.012, -0.012, 0.008, -0.008])
    row = _row(ablation_pairs.paired_changes(_runs(full, ablated)))
    assert row["mean_change"] == pytest.approx(0.0, abs=1e-9)
    assert row["seeds_lower"] == 3 and row["seeds_higher"] == 3
    assert not row["helps_clearly"] and not row["hurts_clearly"]
    assert row["ci95_low"] < 0 < row["ci95_high"]


def test_pairs_are_matched_by_seed_not_by_order():
    runs = _runs([0.8, 0.9, 0.7], [0.81, 0.91, 0.71]).sample(frac=1.0, random_state=0)
    row = _row(ablation_pairs.paired_changes(runs))
    assert row["mean_change"] == pytest.approx(0.01)
    assert row["hurts_clearly"]


def test_without_the_full_model_there_is_nothing_to_pair_with():
    runs = _runs([0.8, 0.9], [0.8, 0.9])
    with pytest.raises(ValueError, match="full model"):
        ablation_pairs.paired_changes(runs[runs.variant != "full"])


def test_a_single_seed_gives_no_interval():
    with pytest.raises(ValueError, match="at least 2 paired seeds"):
        ablation_pairs.paired_changes(_runs([0.8], [0.79]))


def test_runs_are_scored_and_their_metrics_kept(tmp_path):
    """Trained end to end on a small simulation: one row per (variant, seed), and with --metrics-out
    every run's scIB metrics, from which the run's total is recomputed."""
    from schelix_core import partition_genes
    from schelix_core.benchmark.aggregate import run_scores
    from schelix_core.benchmark.preprocess import preprocess
    from tests.schelix_fixtures import small_sim

    results = tmp_path / "results"
    (results / "sim" / "partition").mkdir(parents=True)
    pre = preprocess(small_sim(n_cells=400, seed=0), "batch", n_top_genes=300, n_pcs=20, target_sum=1e4)
    pre.write_h5ad(results / "sim" / "preprocessed.h5ad")
    for seed in (0, 1):
        roles = partition_genes(pre, "batch", layer="counts", seed=seed).to_frame().rename_axis("gene").reset_index()
        roles.to_parquet(results / "sim" / "partition" / f"seed{seed}.parquet", index=False)
    out, metrics_out = tmp_path / "pairs.csv", tmp_path / "metrics.csv"
    argv = ["--results", str(results), "--datasets", "sim", "--variants", "full", "no_diffusion",
            "--seeds", "0", "1", "--n-kmeans-seeds", "2", "--out", str(out), "--metrics-out", str(metrics_out)]
    assert ablation_pairs.main(argv) == 0
    runs = pd.read_csv(out)
    assert sorted(zip(runs["variant"], runs["seed"])) == [("full", 0), ("full", 1), ("no_diffusion", 0),
                                                           ("no_diffusion", 1)]
    metrics = pd.read_csv(metrics_out)
    assert metrics.groupby(["variant", "seed"])["metric"].nunique().eq(10).all()
    written = runs.set_index(["variant", "seed"])["total"]
    for (variant, seed), table in metrics.groupby(["variant", "seed"]):
        total = run_scores(table.assign(method=variant, status="ok")).iloc[0]["total"]
        assert total == pytest.approx(written[(variant, seed)], abs=5e-5)  # the run CSV keeps 4 decimals
    with pytest.raises(SystemExit):
        ablation_pairs.main(["--summarize", str(out), "--metrics-out", str(metrics_out), "--out", str(out)])


def test_a_subsample_is_seeded_and_keeps_only_counted_genes():
    import anndata as ad
    import scipy.sparse as sp

    counts = np.zeros((300, 4))
    counts[:, :3] = np.random.default_rng(0).poisson(2.0, size=(300, 3))
    counts[7, 3] = 5  # the only count of the last gene: it stays only where cell 7 is drawn
    adata = ad.AnnData(X=counts.copy(), layers={"counts": sp.csr_matrix(counts)})
    adata.obs_names = [f"c{i}" for i in range(300)]
    a, b = ablation_pairs.subsample(adata, 120, seed=3), ablation_pairs.subsample(adata, 120, seed=3)
    assert a.n_obs == 120 and list(a.obs_names) == list(b.obs_names)
    assert list(a.obs_names) != list(ablation_pairs.subsample(adata, 120, seed=4).obs_names)
    assert a.n_vars == (4 if "c7" in a.obs_names else 3)
    assert (np.asarray(a.layers["counts"].sum(axis=0)).ravel() > 0).all()
    assert ablation_pairs.subsample(adata, 300, seed=0) is adata


def test_runs_on_a_subsample_partition_it_afresh(tmp_path):
    """--n-cells trains on the drawn cells and partitions them itself (no workflow partition here)."""
    from schelix_core.benchmark.preprocess import preprocess
    from tests.schelix_fixtures import small_sim

    results = tmp_path / "results"
    (results / "sim").mkdir(parents=True)
    preprocess(small_sim(n_cells=400, seed=0), "batch", n_top_genes=300, n_pcs=20,
               target_sum=1e4).write_h5ad(results / "sim" / "preprocessed.h5ad")
    out = tmp_path / "pairs.csv"
    argv = ["--results", str(results), "--datasets", "sim", "--variants", "full", "no_diffusion",
            "--seeds", "0", "1", "--n-kmeans-seeds", "2", "--n-cells", "200", "--out", str(out)]
    assert ablation_pairs.main(argv) == 0
    runs = pd.read_csv(out)
    assert len(runs) == 4 and runs["n_cells"].eq(200).all()
    assert runs["total"].between(0, 1).all()
    with pytest.raises(SystemExit):
        ablation_pairs.main(argv[:-4] + ["--n-cells", "50", "--out", str(out)])
