"""The default screen (benchmarks/sweep_defaults.py) appends its runs, and with --metrics-out every
run's scIB metrics, from which the run's total is recomputed."""

import importlib.util

import pandas as pd
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("sweep_defaults", REPO / "benchmarks" / "sweep_defaults.py")
sweep_defaults = importlib.util.module_from_spec(spec)
spec.loader.exec_module(sweep_defaults)


def test_runs_and_their_metrics_are_appended(tmp_path):
    from schelix_core import partition_genes
    from schelix_core.benchmark.aggregate import run_scores
    from schelix_core.benchmark.preprocess import preprocess
    from tests.schelix_fixtures import small_sim

    results = tmp_path / "results"
    (results / "sim" / "partition").mkdir(parents=True)
    pre = preprocess(small_sim(n_cells=400, seed=0), "batch", n_top_genes=300, n_pcs=20, target_sum=1e4)
    pre.write_h5ad(results / "sim" / "preprocessed.h5ad")
    roles = partition_genes(pre, "batch", layer="counts", seed=0).to_frame().rename_axis("gene").reset_index()
    roles.to_parquet(results / "sim" / "partition" / "seed0.parquet", index=False)
    out, metrics_out = tmp_path / "screen.csv", tmp_path / "metrics.csv"
    for name, params in (("default", "{}"), ("scales01", '{"diffusion_scales": [0, 1]}')):
        argv = ["--name", name, "--params", params, "--results", str(results), "--datasets", "sim", "--seeds", "0",
                "--n-kmeans-seeds", "2", "--out", str(out), "--metrics-out", str(metrics_out)]
        assert sweep_defaults.main(argv) == 0
    runs = pd.read_csv(out).set_index("candidate")
    assert list(runs.index) == ["default", "scales01"]
    metrics = pd.read_csv(metrics_out)
    assert metrics.groupby("candidate")["metric"].nunique().eq(10).all()
    for name, table in metrics.groupby("candidate"):
        assert table["params"].iloc[0] == runs.loc[name, "params"]
        total = run_scores(table.assign(method=name, status="ok")).iloc[0]["total"]
        assert total == pytest.approx(runs.loc[name, "total"])
