"""Shared fixtures: small simulated datasets, and the real data in ../shared/data.

Tests that need ../shared skip with a reason where it is absent, and fail under CI=true,
so CI can never pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SCHELIX_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL_DATASETS = ("kang_ifnb_pbmc_1k", "symphony_pbmc_3chem", "baron_pancreas_mouse")


def load_benchmark(name: str):
    """A script of ``benchmarks/`` as a module: the scripts are not a package, so plain imports miss them."""
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        message = f"real datasets not found at {SHARED_DATA} (set SCHELIX_SHARED_DATA or place ../shared beside the repo)"
        if os.environ.get("CI") == "true":
            pytest.fail(message + "; CI must run these tests")
        pytest.skip(message)
    return SHARED_DATA


@pytest.fixture(scope="session")
def small_counts():
    """600 cells x 400 genes, 3 batches, raw counts."""
    from schelix_core.simulate import simulate

    return simulate(n_cells=600, n_genes=400, n_batches=3, n_cell_types=5, seed=3)


@pytest.fixture(scope="session")
def small_preprocessed(small_counts):
    from schelix_core.benchmark.preprocess import preprocess, qc_filter

    filtered, _ = qc_filter(small_counts, "batch", min_genes=20, min_counts=50, max_pct_mito=50, min_cells_per_gene=3)
    return preprocess(filtered, "batch", n_top_genes=300, n_pcs=20, target_sum=1e4)
