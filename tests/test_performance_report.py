"""The scaling benchmark (issue #6) runs end to end, and its report's verdicts follow the figures."""

import pandas as pd
import pytest

from tests.conftest import load_benchmark


report = load_benchmark("report_performance")
GPU_TARGET = "scHelix at 1,000,000 cells on a GPU: time and peak GPU memory"
MACHINE = {"threads": 2, "machine": "test", "cpu": "x86_64", "n_cpus": 2, "status": "ok"}


def _totals(figures):
    """Scaling rows from {(n_cells, method): (seconds, peak_mb)}, one repeat each."""
    return pd.DataFrame([{"n_cells": n, "method": m, "repeat": 0, "stage": "total", "seconds": s, "peak_mb": mb,
                          **MACHINE} for (n, m), (s, mb) in figures.items()])


def _verdicts(text):
    rows = [line.split(" | ") for line in text.splitlines() if line.startswith("| scHelix")]
    return {cells[0].lstrip("| "): cells[2].rstrip(" |") for cells in rows}


def test_verdicts_follow_the_measured_figures():
    met = _totals({(100_000, "schelix"): (40, 3000), (100_000, "scvi"): (100, 2000),
                   (200_000, "schelix"): (80, 6000), (200_000, "scvi"): (100, 2100)})
    verdicts = _verdicts(report.markdown(met, "cmd"))
    assert verdicts == {"scHelix time at 100k cells <= 0.5x scVI's": "met",
                        "scHelix peak memory 200k / 100k <= 2.2x": "met",
                        "scHelix peak memory at 200k < 8 GB": "met",
                        GPU_TARGET: "n/a (not measured)"}
    missed = _totals({(100_000, "schelix"): (60, 3000), (100_000, "scvi"): (100, 2000),
                      (200_000, "schelix"): (80, 9000), (200_000, "scvi"): (100, 2100)})
    verdicts = _verdicts(report.markdown(missed, "cmd"))
    assert set(verdicts.values()) - {verdicts[GPU_TARGET]} == {"**not met**"}


def test_gpu_run_is_reported_only_once_measured():
    cpu = _totals({(100_000, "schelix"): (40, 3000), (100_000, "scvi"): (100, 2000)})
    text = report.markdown(cpu, "cmd")
    assert "Not measured yet: no GPU machine has run" in text
    gpu = pd.DataFrame([
        {"n_cells": 1_000_000, "method": "schelix", "repeat": 0, "stage": stage, "seconds": seconds,
         "peak_mb": 30_000, "status": "ok", "command": "gpu cmd",
         **({"gpu_peak_mb": 5_120, "gpu": "NVIDIA H200", "batch_size": 1024} if stage == "total" else {})}
        for stage, seconds in (("graph", 100.0), ("train_phase0", 3.0), ("total", 600.0))])
    text = report.markdown(cpu, "cmd", gpu=gpu)
    assert _verdicts(text)[GPU_TARGET] == "reported"
    assert "| scHelix at 1,000,000 cells on a GPU: time and peak GPU memory | 600.0 s, 5.00 GB | reported |" in text
    assert "| 1,000,000 | NVIDIA H200 | 1024 | 600.0 | 5120 | 30000 | 1 | n/a | n/a | 100.0 |" in text
    failed = gpu.assign(status="failed")
    assert _verdicts(report.markdown(cpu, "cmd", gpu=failed))[GPU_TARGET] == "n/a (not measured)"


def test_unmeasured_targets_are_not_claimed():
    small = _totals({(10_000, "schelix"): (5, 500), (10_000, "scvi"): (50, 800)})
    assert set(_verdicts(report.markdown(small, "cmd")).values()) == {"n/a (not measured)"}


def test_quality_is_the_scib_total_of_each_size_and_method():
    rows = []
    for method, batch, bio in (("schelix", 0.5, 0.8), ("scvi", 0.6, 0.7)):
        for metric, kind, value in (("ilisi_knn", "batch_correction", batch), ("nmi_kmeans", "bio_conservation", bio)):
            rows.append({"n_cells": 1000, "method": method, "metric": metric, "metric_type": kind, "value": value,
                         "seed": 0})
    total = report.quality(pd.DataFrame(rows))["total"]
    assert total.loc[(1000, "schelix")] == pytest.approx(0.4 * 0.5 + 0.6 * 0.8)
    assert total.loc[(1000, "scvi")] == pytest.approx(0.4 * 0.6 + 0.6 * 0.7)


def test_quality_verdicts_compare_with_scvi_and_with_the_smaller_size():
    rows = []
    for n, method, value in ((10_000, "schelix", 0.75), (100_000, "schelix", 0.745), (100_000, "scvi", 0.83)):
        for metric, kind in (("ilisi_knn", "batch_correction"), ("nmi_kmeans", "bio_conservation")):
            rows.append({"n_cells": n, "method": method, "metric": metric, "metric_type": kind, "value": value, "seed": 0,
                         "seconds": 1.0, "peak_mb": 100.0})
    table = _totals({(100_000, "schelix"): (40, 3000), (100_000, "scvi"): (100, 2000)})
    verdicts = _verdicts(report.markdown(table, "cmd", metrics=pd.DataFrame(rows)))
    assert verdicts["scHelix quality at 100k: total vs its own at 10,000 cells (no loss at scale)"] == "met"
    assert verdicts["scHelix quality at 100k: total vs scVI's"] == "**not met**"


def test_kmeans_averaged_quality_uses_only_the_embeddings_that_were_scored():
    """NMI/ARI averaged over k-means seeds replace the seed-0 scores only for runs whose seed-0
    scores match the metric stage's; a run re-scored since is left out, not mixed in."""
    rows = []
    for n, method, ari in ((10_000, "schelix", 0.9), (100_000, "schelix", 0.6), (100_000, "scvi", 0.7)):
        for metric, kind, value in (("ilisi_knn", "batch_correction", 0.5), ("nmi_kmeans", "bio_conservation", 0.8),
                                    ("ari_kmeans", "bio_conservation", ari)):
            rows.append({"n_cells": n, "method": method, "metric": metric, "metric_type": kind, "value": value,
                         "seed": 0, "seconds": 1.0, "peak_mb": 100.0})
    metrics = pd.DataFrame(rows)
    kmeans = pd.DataFrame([
        {"n_cells": 10_000, "method": "schelix", "seed": 0, "nmi_kmeans_seed0": 0.8, "ari_kmeans_seed0": 0.9,
         "nmi_mean": 0.8, "ari_mean": 0.7, "ari_min": 0.6, "ari_max": 0.9, "n_kmeans_seeds": 5},
        {"n_cells": 100_000, "method": "schelix", "seed": 0, "nmi_kmeans_seed0": 0.8, "ari_kmeans_seed0": 0.6,
         "nmi_mean": 0.8, "ari_mean": 0.7, "ari_min": 0.6, "ari_max": 0.8, "n_kmeans_seeds": 5},
        # stale: scVI's embedding was re-scored after these k-means runs
        {"n_cells": 100_000, "method": "scvi", "seed": 0, "nmi_kmeans_seed0": 0.8, "ari_kmeans_seed0": 0.2,
         "nmi_mean": 0.8, "ari_mean": 0.2, "ari_min": 0.1, "ari_max": 0.3, "n_kmeans_seeds": 5},
    ])
    averaged = report.kmeans_averaged(metrics, kmeans)
    assert set(zip(averaged["n_cells"], averaged["method"])) == {(10_000, "schelix"), (100_000, "schelix")}
    assert (averaged.loc[averaged["metric"] == "ari_kmeans", "value"] == 0.7).all()
    table = _totals({(100_000, "schelix"): (40, 3000), (100_000, "scvi"): (100, 2000)})
    text = report.markdown(table, "cmd", metrics=metrics, kmeans=kmeans)
    verdicts = _verdicts(text)
    assert verdicts["scHelix quality at 100k: total vs its own at 10,000 cells (no loss at scale)"] == "**not met**"
    assert verdicts["scHelix quality at 100k vs 10,000 cells, NMI/ARI averaged over k-means seeds"] == "met"
    assert "## Quality with NMI and ARI averaged over 5 k-means seeds" in text
    assert "0.700 (0.60-0.90)" in text


def test_gpu_scaling_refuses_a_machine_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA; the refusal is for machines without it")
    scaling = load_benchmark("scaling")
    out = tmp_path / "scaling_gpu.csv"
    assert scaling.main(["--sizes", "800", "--methods", "schelix", "--accelerator", "gpu", "--out", str(out)]) == 2
    assert "no CUDA device" in capsys.readouterr().err and not out.exists()


@pytest.mark.slow
def test_scaling_script_measures_stages_and_metrics(tmp_path):
    scaling = load_benchmark("scaling")
    out = tmp_path / "scaling.csv"
    assert scaling.main(["--sizes", "800", "--methods", "schelix", "harmony", "--repeats", "1",
                         "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    table = pd.read_csv(out)
    assert (table["status"] == "ok").all()
    schelix = set(table.loc[table["method"] == "schelix", "stage"])
    assert {"partition", "graph", "diffusion_cache", "train_phase0", "train_phase2", "total"} <= schelix
    totals = table[table["stage"] == "total"].set_index("method")
    assert (totals["seconds"] > 0).all() and (totals["peak_mb"] > 0).all()
    metrics = pd.read_csv(tmp_path / "scaling_metrics.csv")
    assert set(metrics["method"]) == {"schelix", "harmony"}
    assert metrics["value"].between(0, 1).all() and metrics.groupby("method")["metric"].nunique().min() >= 10

    # A second invocation with --resume keeps what was measured and runs nothing again.
    before = out.read_text()
    assert scaling.main(["--sizes", "800", "--methods", "schelix", "harmony", "--repeats", "1", "--resume",
                         "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    assert out.read_text() == before

    # Re-running a training run (its row removed) rewrites its embedding, so its old metric
    # rows are dropped and the new embedding is scored again.
    metrics_file = tmp_path / "scaling_metrics.csv"
    # read as the script reads it (exact float round trip), or a value re-parsed by pandas'
    # default parser can differ in its last bit and the comparison below fails by chance
    stale = pd.read_csv(metrics_file, float_precision="round_trip")
    stale.loc[stale["method"] == "harmony", "value"] = -1.0
    stale.to_csv(metrics_file, index=False)
    runs = pd.read_csv(out)
    runs[runs["method"] != "harmony"].to_csv(out, index=False)
    assert scaling.main(["--sizes", "800", "--methods", "schelix", "harmony", "--repeats", "1", "--resume",
                         "--out", str(out), "--data-dir", str(tmp_path / "data")]) == 0
    rescored = pd.read_csv(metrics_file, float_precision="round_trip")
    assert set(rescored["method"]) == {"schelix", "harmony"}
    assert rescored["value"].between(0, 1).all()
    assert rescored[rescored["method"] == "schelix"].equals(stale[stale["method"] == "schelix"])


def test_sweep_screens_a_candidate_on_every_dataset(tmp_path, monkeypatch):
    """The defaults screen reads the benchmark's own inputs and appends one scored row per
    (candidate, dataset, seed), as scored and k-means averaged; a second candidate keeps the first
    one's rows; with --metrics-out each run's scIB metrics, from which its total is recomputed."""
    from schelix_core import partition_genes
    from schelix_core.benchmark.aggregate import run_scores
    from schelix_core.benchmark.preprocess import preprocess
    from tests.schelix_fixtures import small_sim

    sweep = load_benchmark("sweep_defaults")
    results = tmp_path / "results"
    for name, seed in (("sim_a", 0), ("sim_b", 1)):
        pre = preprocess(small_sim(seed=seed), "batch", n_top_genes=300, n_pcs=20, target_sum=1e4)
        (results / name / "partition").mkdir(parents=True)
        pre.write_h5ad(results / name / "preprocessed.h5ad")
        roles = partition_genes(pre, "batch", layer="counts", seed=0).to_frame().rename_axis("gene").reset_index()
        roles.to_parquet(results / name / "partition" / "seed0.parquet", index=False)
    out = tmp_path / "sweep.csv"
    common = ["--results", str(results), "--datasets", "sim_a,sim_b", "--out", str(out)]
    fast = '{"target_steps": 30}'
    # an all-digit short hash with a leading zero (a CI run met one) must survive being read back
    monkeypatch.setattr(sweep, "code_version", lambda: "0410610")
    assert sweep.main(["--name", "first", "--params", fast, "--n-kmeans-seeds", "1", *common]) == 0
    monkeypatch.undo()
    first_rows = out.read_text()
    metrics_out = tmp_path / "sweep_metrics.csv"
    assert sweep.main(["--name", "second", "--params", '{"target_steps": 30, "contrast_weight": 1.0}',
                       "--n-kmeans-seeds", "3", "--metrics-out", str(metrics_out), *common]) == 0
    assert out.read_text().startswith(first_rows)  # earlier rows are written back verbatim
    table = pd.read_csv(out, dtype={"commit": str})
    metrics = pd.read_csv(metrics_out, dtype={"commit": str})
    assert set(metrics["candidate"]) == {"second"}
    second = table[table["candidate"] == "second"].set_index("dataset")
    for dataset, runs in metrics.groupby("dataset"):
        assert runs["metric"].nunique() == 10 and runs["params"].iloc[0] == second.loc[dataset, "params"]
        total = run_scores(runs.assign(method="second", status="ok")).iloc[0]["total"]
        assert total == pytest.approx(second.loc[dataset, "total"])
    assert sorted(zip(table["candidate"], table["dataset"])) == [
        ("first", "sim_a"), ("first", "sim_b"), ("second", "sim_a"), ("second", "sim_b")]
    assert table[["total", "total_kmeans_averaged"]].stack().between(0, 1).all()
    # scib-metrics clusters once, at k-means seed 0: "averaged" over that one seed is the scored total
    first = table[table["candidate"] == "first"]
    assert (first["total_kmeans_averaged"] - first["total"]).abs().max() < 1e-9
    assert (table["total"] - (0.4 * table["batch_correction"] + 0.6 * table["bio_conservation"])).abs().max() < 1e-9
    # each row names the commit it ran at (a repository checkout here)
    assert table["commit"].str.fullmatch(r"[0-9a-f]{7,}(-dirty)?").all(), table["commit"].tolist()
    assert (metrics["commit"] == table["commit"].iloc[-1]).all()
    with pytest.raises(SystemExit, match="sim_missing"):
        sweep.main(["--name", "x", "--results", str(results), "--datasets", "sim_missing", "--out", str(out)])


@pytest.mark.slow
def test_batch_size_check_scores_each_size_on_the_cpu(tmp_path):
    """The GPU's mini-batch sizes are trained on a CPU and scored twice: NMI/ARI at k-means seed 0
    (as the metric stage scores them) and averaged over k-means seeds; nothing else differs."""
    check = load_benchmark("batch_size_quality")
    out = tmp_path / "batch_size_quality.csv"
    argv = ["--data-dir", str(tmp_path / "data"), "--sizes", "800", "--batch-sizes", "64", "200",
            "--n-kmeans-seeds", "3", "--threads", "1", "--out", str(out)]
    assert check.main(argv) == 0
    table = pd.read_csv(out)
    assert set(table["batch_size"]) == {64, 200} and set(table["kmeans"]) == {"seed0", "averaged"}
    wide = table.pivot_table(index=["batch_size", "metric"], columns="kmeans", values="value")
    same = wide.drop(index=["nmi_kmeans", "ari_kmeans"], level="metric")
    assert (same["seed0"] == same["averaged"]).all() and table["value"].between(0, 1).all()
    section = "\n".join(report.batch_size_section(table))
    assert section.count("| 800 | ") == 4 and "averaged over 3 k-means seeds" in section
    # running one size again replaces its rows and keeps the other's
    assert check.main([*argv[:4], "--batch-sizes", "64", *argv[7:]]) == 0
    again = pd.read_csv(out)
    assert len(again) == len(table) and again.groupby("batch_size").size().to_dict() == {64: 20, 200: 20}
