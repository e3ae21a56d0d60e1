"""The seed-grid analysis (benchmarks/seed_components.py) attributes spread to the right source."""

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_benchmark

seed_components = load_benchmark("seed_components")


def _grid(values, dataset="d"):
    k = len(values)
    return pd.DataFrame([{"dataset": dataset, "partition_seed": p, "train_seed": t, "total": values[p][t],
                          "total_kmeans_averaged": values[p][t]} for p in range(k) for t in range(k)])


def test_partition_only_spread_is_attributed_to_the_partition():
    offsets = np.array([0.0, 0.01, 0.02])
    result = seed_components.components(_grid(0.8 + offsets[:, None] + np.zeros((1, 3))), "total")
    assert result["sd_partition"] == pytest.approx(0.01)
    assert result["sd_training"] == pytest.approx(0.0, abs=1e-9)
    assert result["sd_interaction"] == pytest.approx(0.0, abs=1e-9)
    assert result["grid_mean"] == pytest.approx(0.81)


def test_a_lucky_diagonal_shows_as_interaction_and_as_a_diagonal_above_the_grid():
    values = np.full((3, 3), 0.80)
    np.fill_diagonal(values, 0.83)
    result = seed_components.components(_grid(values), "total")
    assert result["diagonal_mean"] == pytest.approx(0.83)
    assert result["grid_mean"] == pytest.approx(0.81)
    assert result["off_diagonal_mean"] == pytest.approx(0.80)
    assert result["sd_interaction"] > 0.01
    assert result["sd_partition"] == pytest.approx(0.0, abs=1e-9)
    assert result["sd_training"] == pytest.approx(0.0, abs=1e-9)


def test_an_incomplete_grid_is_refused():
    grid = _grid(np.full((3, 3), 0.8)).iloc[:-1]
    with pytest.raises(ValueError, match="complete square grid"):
        seed_components.components(grid, "total")


def test_summary_has_one_row_per_dataset_and_score():
    grid = pd.concat([_grid(np.full((2, 2), 0.7), "a"), _grid(np.full((2, 2), 0.9), "b")])
    summary = seed_components.summarize(grid)
    assert list(summary["dataset"]) == ["a", "a", "b", "b"]
    assert set(summary["score"]) == set(seed_components.TOTALS)
    assert summary.loc[summary.dataset == "b", "grid_mean"].tolist() == pytest.approx([0.9, 0.9])
