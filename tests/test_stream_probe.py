"""The stream probe (benchmarks/stream_probe.py) reads type and batch information correctly."""

import numpy as np
import pytest

from tests.conftest import load_benchmark

stream_probe = load_benchmark("stream_probe")


@pytest.fixture
def cells():
    rng = np.random.default_rng(0)
    labels = np.repeat(["t0", "t1"], 100)
    batches = rng.choice(["b0", "b1"], size=200)
    return rng, labels, batches


def test_a_latent_that_separates_types_and_mixes_batches(cells):
    rng, labels, batches = cells
    z = rng.normal(size=(200, 4)) + 10.0 * (labels == "t1")[:, None]
    result = stream_probe.probe(z, labels, batches, seed=0)
    assert result["label_acc"] == pytest.approx(1.0)
    assert result["cross_batch_label_acc"] == pytest.approx(1.0)
    assert result["batch_acc"] < 0.65


def test_a_latent_that_holds_only_batch(cells):
    rng, labels, batches = cells
    z = rng.normal(size=(200, 4)) + 10.0 * (batches == "b1")[:, None]
    result = stream_probe.probe(z, labels, batches, seed=0)
    assert result["batch_acc"] == pytest.approx(1.0)
    assert result["label_acc"] < 0.65
    assert result["cross_batch_label_acc"] < 0.65


def test_a_cell_type_broken_into_clumps_loses_graph_connectivity(cells):
    """Two tight, distant clumps of one type are two pieces of its kNN graph: about half its
    cells lie outside the largest; one continuous cloud per type is one piece."""
    rng, labels, batches = cells
    one_piece = rng.normal(size=(200, 4)) + 10.0 * (labels == "t1")[:, None]
    clumps = one_piece.copy()
    clumps[:50] += 30.0  # half of t0 moved far away, as a separate clump
    whole = stream_probe.probe(one_piece, labels, batches, seed=0)["graph_connectivity"]
    broken = stream_probe.probe(clumps, labels, batches, seed=0)["graph_connectivity"]
    assert whole > 0.98  # a stray cell or two may lie outside a random cloud's largest piece
    assert broken == pytest.approx((0.5 + 1.0) / 2, abs=0.02)  # t0 keeps half its cells, t1 all
