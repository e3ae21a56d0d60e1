"""What re-runs after a finished run: new data content and edited package code do, a file's age does not.

Snakemake alone re-runs on inputs' modification times and its rules' own code. Shared data are
re-mounted with a fresh time each session, and the model's code lives in schelix_core, which the
rules only call: the workflow compares content digests instead (see ``workflow/rules/common.smk``).
"""

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from schelix_core.benchmark.workflow_io import source_digest, source_files
from schelix_core.simulate import simulate
from tests.conftest import REPO
from tests.test_config import base_config, planned_jobs


def test_source_files_follow_the_model_imports_lazy_ones_included():
    names = {path.relative_to(REPO).as_posix() for path in source_files(REPO, ["schelix_core.model"])}
    assert {"schelix_core/model.py", "schelix_core/graph.py", "schelix_core/partition.py",
            "schelix_core/preprocess.py", "schelix_core/checks.py", "schelix_core/__init__.py"} <= names
    assert {"schelix_core/training.py", "schelix_core/module.py"} <= names  # imported inside functions
    assert not any(name.startswith("schelix_core/benchmark/") for name in names)
    assert "schelix_core/simulate.py" not in names
    data = {path.relative_to(REPO).as_posix() for path in source_files(REPO, ["schelix_core.benchmark.data"])}
    assert {"schelix_core/benchmark/__init__.py", "schelix_core/simulate.py"} <= data  # parent package, lazy import


def test_source_digest_is_independent_of_the_checkout_location(tmp_path):
    shutil.copytree(REPO / "schelix_core", tmp_path / "schelix_core", ignore=shutil.ignore_patterns("__pycache__"))
    assert source_digest(tmp_path, ["schelix_core.model"]) == source_digest(REPO, ["schelix_core.model"])
    with pytest.raises(FileNotFoundError, match="schelix_core.no_such_module"):
        source_digest(tmp_path, ["schelix_core.no_such_module"])


def test_source_digest_ignores_comments_docstrings_and_layout_but_not_code(tmp_path):
    shutil.copytree(REPO / "schelix_core", tmp_path / "schelix_core", ignore=shutil.ignore_patterns("__pycache__"))
    graph = tmp_path / "schelix_core" / "graph.py"
    original = graph.read_text()
    before = source_digest(tmp_path, ["schelix_core.model"])
    assert '"""' in original.split("\n", 1)[0], "graph.py should open with a docstring for this test"
    prose = original.replace('"""', '"""Reworded. ', 1) + "\n\n# a new comment\n"
    graph.write_text(prose)
    assert source_digest(tmp_path, ["schelix_core.model"]) == before
    graph.write_text(original + "\nUNUSED_CONSTANT = 1\n")
    assert source_digest(tmp_path, ["schelix_core.model"]) != before
    graph.write_text(original.replace("return", "return  ", 1))  # layout only
    assert source_digest(tmp_path, ["schelix_core.model"]) == before


@pytest.mark.slow
def test_reruns_follow_data_content_and_package_code_not_file_age(tmp_path):
    """A re-mounted dataset (new age, same bytes) re-runs nothing; new bytes re-run everything from
    loading; an edit to the model's code re-runs the scHelix jobs only, and an edit to code no job
    runs re-runs nothing."""
    repo = tmp_path / "repo"
    for part in ("workflow", "scripts", "schelix_core", "envs"):
        shutil.copytree(REPO / part, repo / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(REPO / "Snakefile", repo / "Snakefile")
    data = tmp_path / "local.h5ad"
    simulate(n_cells=300, n_genes=200, n_batches=2, n_cell_types=3, seed=4).write_h5ad(data)
    config = base_config(tmp_path) | {"methods": ["unintegrated", "schelix"], "seeds": [0],
                                      "datasets": {"local": {"path": str(data)}}}
    snakemake = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(repo)]

    def plan():
        (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
        proc = subprocess.run(snakemake + ["--configfile", str(tmp_path / "config.yaml"), "--cores", "1", "-n",
                                           "--quiet", "rules"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return planned_jobs(proc)

    assert plan()["integrate"] == 2
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    run = subprocess.run(snakemake + ["--configfile", str(tmp_path / "config.yaml"), "--cores", "2"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-3000:]
    assert plan() == {}

    later = data.stat().st_mtime + 3600
    os.utime(data, (later, later))
    assert plan() == {}

    training = repo / "schelix_core" / "training.py"  # reached from the model only by a lazy import
    original = training.read_text()
    training.write_text(original + "\n_AN_EDIT = 1\n")
    jobs = plan()
    assert jobs["integrate"] == 1 and jobs["metrics"] == 1, jobs
    assert not {"load_dataset", "qc_preprocess", "partition_genes"} & set(jobs), jobs
    training.write_text(original)
    assert plan() == {}

    report = repo / "schelix_core" / "benchmark" / "report.py"
    report.write_text(report.read_text() + "\n_AN_EDIT = 1\n")
    assert plan() == {}

    changed = simulate(n_cells=300, n_genes=200, n_batches=2, n_cell_types=3, seed=5)
    changed.write_h5ad(data)
    jobs = plan()
    assert jobs["load_dataset"] == 1 and jobs["integrate"] == 2, jobs
