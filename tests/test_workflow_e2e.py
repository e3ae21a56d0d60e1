"""End to end: the whole workflow on the tiny config, every promised output, sane numbers, the report."""

import subprocess
import sys

import anndata as ad
import pandas as pd
import pytest
import yaml

from tests.conftest import REPO

pytestmark = pytest.mark.slow
SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    config = yaml.safe_load((REPO / "config" / "test.yaml").read_text())
    config["results_dir"] = str(root / "results")
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    proc = subprocess.run(SNAKEMAKE + ["--configfile", str(path), "--cores", "2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-5000:]
    report = root / "results" / "report.html"
    rep = subprocess.run(SNAKEMAKE + ["--configfile", str(path), "--report", str(report)], capture_output=True, text=True)
    assert rep.returncode == 0, rep.stderr[-3000:]
    return config, root / "results"


def test_every_promised_output_exists(finished_run):
    config, results = finished_run
    for dataset in config["datasets"]:
        assert (results / dataset / "qc" / "qc_table.csv").exists()
        for method in config["methods"]:
            for seed in config["seeds"]:
                out = ad.read_h5ad(results / dataset / "integrated" / method / f"seed{seed}.h5ad")
                assert out.uns["status"] == "ok", (method, out.uns["error"])
                assert out.uns["seed"] == seed and out.uns["method"] == method
                assert "scanpy" in out.uns["versions"]
                if out.uns["output_type"] == "graph":
                    assert "connectivities" in out.obsp
                else:
                    assert out.obsm["X_emb"].shape[0] == out.n_obs
        for seed in config["seeds"]:
            assert (results / dataset / "partition" / f"seed{seed}.png").stat().st_size > 0
    for name in ("metrics.parquet", "summary.csv", "summary.parquet", "summary.md", "runs.parquet"):
        assert (results / "tables" / name).stat().st_size > 0
    for name in ("results_table", "resources", "completeness", f"umap_{next(iter(config['datasets']))}"):
        for ext in ("png", "svg"):
            assert (results / "figures" / f"{name}.{ext}").stat().st_size > 0
    assert (results / "report.html").stat().st_size > 10_000


def test_long_metrics_table_has_the_promised_columns(finished_run):
    _, results = finished_run
    metrics = pd.read_parquet(results / "tables" / "metrics.parquet")
    assert {"dataset", "method", "seed", "metric", "metric_type", "value"} <= set(metrics.columns)
    assert set(metrics["metric_type"]) == {"batch_correction", "bio_conservation"}


def test_summary_lists_every_method_with_scores(finished_run):
    config, results = finished_run
    summary = pd.read_parquet(results / "tables" / "summary.parquet")
    assert set(summary["method"]) == set(config["methods"])
    for col in ("batch_correction_mean", "bio_conservation_mean", "total_mean", "runtime_s", "peak_mem_mb"):
        assert summary[col].notna().all(), col
    text = (results / "tables" / "summary.md").read_text()
    for method in config["methods"]:
        assert f"| {method}" in text


def test_scores_are_sane_on_the_simulation(finished_run):
    _, results = finished_run
    s = pd.read_parquet(results / "tables" / "summary.parquet").set_index("method")
    # Graph methods are scored on the graph metrics only: compare like with like.
    s = s[s["output_type"] != "graph"]
    bio, batch = s["bio_conservation_mean"], s["batch_correction_mean"]
    assert bio.idxmin() == "control_floor"
    assert bio.idxmax() == "control_ceiling"
    assert batch["control_floor"] <= batch["unintegrated"] + 0.05
    assert batch["harmony"] > batch["unintegrated"]
    assert batch["scvi"] > batch["unintegrated"]
    assert batch["schelix"] > batch["unintegrated"]
