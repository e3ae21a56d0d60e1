"""The stream probe (benchmarks/stream_probe.py) reads type and batch information correctly."""

import importlib.util

import numpy as np
import pytest

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("stream_probe", REPO / "benchmarks" / "stream_probe.py")
stream_probe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stream_probe)


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
