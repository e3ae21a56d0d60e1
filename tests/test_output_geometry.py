"""benchmarks/output_geometry.py: the projections it scores and the within-type correlation it reports."""

import numpy as np
import pytest

from tests.conftest import load_benchmark

output_geometry = load_benchmark("output_geometry")


def test_unit_projections_put_every_cell_on_the_sphere_and_keep_directions():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 4)) + 3.0
    assert output_geometry.projected(z, "none") is z
    unit = output_geometry.projected(z, "unit")
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0)
    np.testing.assert_allclose(unit * np.linalg.norm(z, axis=1, keepdims=True), z)
    centred = output_geometry.projected(z, "centred_unit")
    np.testing.assert_allclose(np.linalg.norm(centred, axis=1), 1.0)
    np.testing.assert_allclose(centred * np.linalg.norm(z - z.mean(0), axis=1, keepdims=True), z - z.mean(0))
    with pytest.raises(ValueError, match="unknown projection"):
        output_geometry.projected(z, "whiten")


def test_within_type_correlation_ignores_what_the_types_differ_in():
    rng = np.random.default_rng(1)
    labels = np.repeat(["a", "b"], 200)
    depth = rng.normal(size=400) + 10.0 * (labels == "b")
    unrelated = rng.normal(size=400) + 10.0 * (labels == "b")  # correlated with depth only through the type
    assert np.corrcoef(unrelated, depth)[0, 1] > 0.9
    assert abs(output_geometry.within_type_correlation(unrelated, depth, labels)) < 0.15
    within = depth - 10.0 * (labels == "b") + 0.1 * rng.normal(size=400)  # follows depth within each type
    assert output_geometry.within_type_correlation(within, depth, labels) > 0.99
