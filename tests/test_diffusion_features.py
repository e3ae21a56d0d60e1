"""benchmarks/diffusion_features.py: batch mixing and type purity of a feature space's kNN."""

import numpy as np
import pytest

from tests.conftest import load_benchmark

diffusion_features = load_benchmark("diffusion_features")


def _two_rings():
    """Two far apart rings of 20 evenly spaced cells (types a and b): on a ring every cell's 4
    nearest are the two cells either side of it."""
    angle = 2 * np.pi * np.arange(20) / 20
    ring = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return np.concatenate([ring, ring + 1000.0]), np.array(["a"] * 20 + ["b"] * 20)


def test_separated_batches_score_no_mixing_and_full_type_purity():
    features, labels = _two_rings()
    batches = np.array([0] * 20 + [1] * 20)  # batch = type: no cell has another batch's neighbour
    scores = diffusion_features.neighbour_scores(features, batches, labels, k=5)
    assert scores["batch_mixing"] == pytest.approx(0.0)
    assert scores["same_type_share"] == pytest.approx(1.0)


def test_alternating_batches_mix_about_as_a_random_draw():
    features, labels = _two_rings()
    batches = np.tile([0, 1], 20)  # batches alternate around each ring
    scores = diffusion_features.neighbour_scores(features, batches, labels, k=4)
    # of a cell's 4 nearest, the 2 next to it are of the other batch: 0.5, as a random draw gives
    assert scores["batch_mixing"] == pytest.approx(1.0)
    assert scores["same_type_share"] == pytest.approx(1.0)


def test_a_cell_is_not_its_own_neighbour_among_duplicates():
    features = np.zeros((6, 2))  # all identical: the kNN order among them is arbitrary
    labels = np.array(["a", "a", "a", "b", "b", "b"])
    batches = np.array([0, 1, 0, 1, 0, 1])
    scores = diffusion_features.neighbour_scores(features, batches, labels, k=5)
    # every other cell is a neighbour: 2 of 5 share the type, 3 of 5 are of the other batch (expected 0.5)
    assert scores["same_type_share"] == pytest.approx(2 / 5)
    assert scores["batch_mixing"] == pytest.approx((3 / 5) / 0.5)
