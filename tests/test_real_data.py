"""The real datasets in ../shared/data through the workflow: QC, preprocessing, two methods, metrics."""

import subprocess
import sys

import anndata as ad
import pandas as pd
import pytest
import yaml

from tests.conftest import REAL_DATASETS, REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)]


@pytest.mark.slow
def test_real_datasets_through_qc_integration_and_metrics(shared_data, tmp_path):
    results = tmp_path / "results"
    config = {
        "results_dir": str(results),
        "datasets": {name: {"path": str(shared_data / f"{name}.h5ad"), "batch_key": "batch", "label_key": "cell_type"}
                     for name in REAL_DATASETS},
        "methods": ["unintegrated", "harmony"],
        "seeds": [0],
        "qc": {"min_genes": 100, "min_counts": 200, "max_pct_mito": 25, "min_cells_per_gene": 3},
        "preprocess": {"n_top_genes": 2000, "n_pcs": 30},
    }
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    targets = [str(results / "tables" / "summary.parquet")]
    proc = subprocess.run(SNAKEMAKE + ["--configfile", str(path), "--cores", "2", *targets], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-5000:]
    summary = pd.read_parquet(results / "tables" / "summary.parquet").set_index(["dataset", "method"])
    for name in REAL_DATASETS:
        qc = pd.read_csv(results / name / "qc" / "qc_table.csv")
        assert qc["n_cells_out"].sum() > 0.5 * qc["n_cells_in"].sum(), f"{name}: QC kept too few cells"
        pre = ad.read_h5ad(results / name / "preprocessed.h5ad", backed="r")
        assert "counts" in pre.layers and pre.obsm["X_pca"].shape[1] == 30
        assert summary.loc[(name, "harmony"), "status"] == "ok"
        # Harmony removes batch effect on every real dataset.
        assert summary.loc[(name, "harmony"), "batch_correction_mean"] > summary.loc[(name, "unintegrated"), "batch_correction_mean"]
