"""Config validation and incremental re-runs, through snakemake's dry run (fast, no jobs run)."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(REPO)]


def dry_run(tmp_path: Path, config: dict, *extra):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return subprocess.run(SNAKEMAKE + ["--configfile", str(path), "--cores", "1", "-n", "--quiet", "rules", *extra],
                          capture_output=True, text=True)


def base_config(tmp_path):
    return yaml.safe_load((REPO / "config" / "test.yaml").read_text()) | {"results_dir": str(tmp_path / "res")}


def test_unknown_key_fails_naming_the_key(tmp_path):
    config = base_config(tmp_path) | {"metircs": {"engine": "scib"}}
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0
    assert "metircs" in proc.stdout + proc.stderr


def test_unknown_method_fails(tmp_path):
    config = base_config(tmp_path) | {"methods": ["harmony", "not_a_method"]}
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0 and "not_a_method" in proc.stdout + proc.stderr


def test_unsafe_dataset_name_fails(tmp_path):
    config = base_config(tmp_path)
    config["datasets"] = {"../escape": config["datasets"]["tiny"]}
    proc = dry_run(tmp_path, config)
    assert proc.returncode != 0 and "../escape" in proc.stdout + proc.stderr


def planned_jobs(proc) -> dict:
    counts = {}
    for line in proc.stdout.splitlines():
        match = re.match(r"^(\w+)\s+(\d+)$", line.strip())
        if match and match.group(1) not in ("total", "job"):
            counts[match.group(1)] = int(match.group(2))
    return counts


def test_adding_a_method_seed_or_dataset_plans_only_new_jobs(tmp_path):
    """After a finished run (simulated by touching its outputs), extending the config plans only new work."""
    config = base_config(tmp_path) | {"methods": ["unintegrated", "harmony"], "seeds": [0]}
    first = dry_run(tmp_path, config)
    assert first.returncode == 0, first.stderr
    assert planned_jobs(first)["integrate"] == 2
    # Mark every planned job as done without running it: create each output, then --touch.
    cfg = ["--configfile", str(tmp_path / "config.yaml"), "--cores", "1"]
    summary = subprocess.run(SNAKEMAKE + cfg + ["--summary"], capture_output=True, text=True, check=True)
    results = Path(config["results_dir"])
    for line in summary.stdout.splitlines()[1:]:
        output = Path(line.split("\t")[0])
        paths = [output]
        if output.parent.parent.name == "integrated":  # its benchmark file is an input of the aggregation
            dataset, method = output.parents[2].name, output.parent.name
            paths.append(results / "benchmarks" / "integrate" / dataset / method / f"{output.stem}.tsv")
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
    touched = subprocess.run(SNAKEMAKE + cfg + ["--touch", "--quiet", "all"], capture_output=True, text=True)
    assert touched.returncode == 0, touched.stderr
    nothing = dry_run(tmp_path, config)
    assert planned_jobs(nothing) == {}, nothing.stdout

    more_methods = dry_run(tmp_path, config | {"methods": ["unintegrated", "harmony", "control_floor"]})
    jobs = planned_jobs(more_methods)
    assert jobs["integrate"] == 1 and jobs["metrics"] == 1
    assert "qc_preprocess" not in jobs and "load_dataset" not in jobs
    assert jobs["aggregate_metrics"] == 1

    more_seeds = dry_run(tmp_path, config | {"seeds": [0, 1]})
    jobs = planned_jobs(more_seeds)
    assert jobs["integrate"] == 2 and jobs["metrics"] == 2 and "qc_preprocess" not in jobs

    datasets = dict(config["datasets"])
    datasets["second"] = {"simulate": {"n_cells": 300, "n_genes": 200, "seed": 9}}
    more_data = dry_run(tmp_path, config | {"datasets": datasets})
    jobs = planned_jobs(more_data)
    assert jobs["load_dataset"] == 1 and jobs["qc_preprocess"] == 1 and jobs["integrate"] == 2


def test_benchmark_config_covers_every_method_three_seeds_and_plans(tmp_path, shared_data):
    """config/benchmark.yaml (issue #4): the real datasets, three simulated scenarios, every
    method, three seeds, and no per-dataset scHelix parameters."""
    from schelix_core.benchmark.methods import METHODS

    config = yaml.safe_load((REPO / "config" / "benchmark.yaml").read_text())
    assert set(config["methods"]) == set(METHODS)
    assert len(config["seeds"]) == 3
    real = [spec["path"] for spec in config["datasets"].values() if "path" in spec]
    assert {Path(p).name for p in real} == {p.name for p in shared_data.glob("*.h5ad")}
    assert sum("simulate" in spec for spec in config["datasets"].values()) >= 3
    assert not any(m.startswith("schelix") for m in config.get("method_params", {}))
    for spec in config["datasets"].values():
        if "path" in spec:
            spec["path"] = str(shared_data / Path(spec["path"]).name)
    proc = dry_run(tmp_path, config | {"results_dir": str(tmp_path / "res")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_runs = len(config["datasets"]) * len(config["methods"]) * 3
    assert re.search(rf"^integrate\s+{n_runs}$", proc.stdout, re.M), proc.stdout[-2000:]


@pytest.mark.parametrize("heldout", ["heldout.yaml", "heldout_shared_composition.yaml"])
def test_heldout_config_shares_no_scenario_with_the_benchmark(tmp_path, heldout):
    """A held-out config checks the defaults on simulations no screen has seen: its scenarios
    differ from every benchmark simulation and every other held-out one (seed and settings), every
    scHelix ablation runs, scHelix has no parameters of its own, and the plan is valid."""
    from schelix_core.benchmark.methods import METHODS

    bench = yaml.safe_load((REPO / "config" / "benchmark.yaml").read_text())
    held = yaml.safe_load((REPO / "config" / heldout).read_text())
    others = [yaml.safe_load(p.read_text()) for p in (REPO / "config").glob("heldout*.yaml") if p.name != heldout]
    other_sims = [spec["simulate"] for cfg in [bench, *others] for spec in cfg["datasets"].values()
                  if "simulate" in spec]
    held_sims = [spec["simulate"] for spec in held["datasets"].values()]
    assert len(held_sims) == len(held["datasets"]) >= 3
    assert not {s["seed"] for s in held_sims} & {s["seed"] for s in other_sims}
    assert all(h != b for h in held_sims for b in other_sims)
    assert held["results_dir"] not in {cfg["results_dir"] for cfg in [bench, *others]}
    assert {m for m in METHODS if m.startswith("schelix")} <= set(held["methods"])
    assert not any(m.startswith("schelix") for m in held.get("method_params", {}))
    proc = dry_run(tmp_path, held | {"results_dir": str(tmp_path / "res")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_runs = len(held["datasets"]) * len(held["methods"]) * len(held["seeds"])
    assert re.search(rf"^integrate\s+{n_runs}$", proc.stdout, re.M), proc.stdout[-2000:]


def test_fresh_seeds_config_reruns_the_benchmark_at_unscreened_seeds(tmp_path, shared_data):
    """config/fresh_seeds.yaml is the benchmark (same datasets and settings, every label-free method
    and ablation) at seeds that no default screen used, into its own results folder."""
    bench = yaml.safe_load((REPO / "config" / "benchmark.yaml").read_text())
    fresh = yaml.safe_load((REPO / "config" / "fresh_seeds.yaml").read_text())
    assert fresh["datasets"] == bench["datasets"]
    assert set(fresh["methods"]) == set(bench["methods"]) - {"scanvi"}
    assert len(fresh["seeds"]) == 3 and not set(fresh["seeds"]) & set(bench["seeds"])
    assert fresh["results_dir"] != bench["results_dir"]
    for key in ("qc", "preprocess", "metrics"):
        assert fresh[key] == bench[key]
    assert fresh["method_params"] == {k: v for k, v in bench["method_params"].items() if k != "scanvi"}
    for spec in fresh["datasets"].values():
        if "path" in spec:
            spec["path"] = str(shared_data / Path(spec["path"]).name)
    proc = dry_run(tmp_path, fresh | {"results_dir": str(tmp_path / "res")})
    assert proc.returncode == 0, proc.stderr[-3000:]
    n_runs = len(fresh["datasets"]) * len(fresh["methods"]) * len(fresh["seeds"])
    assert re.search(rf"^integrate\s+{n_runs}$", proc.stdout, re.M), proc.stdout[-2000:]
