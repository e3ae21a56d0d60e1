"""benchmarks/isolated_labels.py: the types scIB's isolated-label score reads, and their placement."""

import numpy as np
import pytest
from sklearn.metrics import silhouette_samples

from tests.conftest import load_benchmark

isolated_labels = load_benchmark("isolated_labels")


def test_isolated_types_are_those_in_the_fewest_batches():
    cell_types = np.array(["a", "a", "b", "b", "c", "c", "d"])
    batches = np.array([0, 1, 0, 1, 0, 0, 1])
    assert isolated_labels.isolated_types(cell_types, batches) == ["c", "d"]


def test_describe_gives_the_types_mean_silhouette_and_nearest_centroid():
    rng = np.random.default_rng(0)
    centres = {"a": (0.0, 0.0), "b": (10.0, 0.0), "c": (3.0, 0.0)}
    cell_types = np.repeat(list(centres), 20)
    emb = np.vstack([rng.normal(centres[t], 0.5, size=(20, 2)) for t in centres])
    row, = isolated_labels.describe(emb, cell_types, ["c"])
    assert row["nearest_type"] == "a"
    assert row["silhouette"] == pytest.approx(silhouette_samples(emb, cell_types)[cell_types == "c"].mean())
    assert 0 < row["silhouette"] < 1
