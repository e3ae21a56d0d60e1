"""The paired ablation analysis (benchmarks/ablation_pairs.py) pairs runs by seed and calls only clear effects."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("ablation_pairs", REPO / "benchmarks" / "ablation_pairs.py")
ablation_pairs = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ablation_pairs)


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
