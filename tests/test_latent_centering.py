"""benchmarks/latent_centering.py: centring each batch within each mixing group."""

import numpy as np

from tests.conftest import load_benchmark

latent_centering = load_benchmark("latent_centering")


def _data():
    rng = np.random.default_rng(0)
    groups = np.repeat([0, 0, 1], 40)
    batch = np.tile([0, 1], 60)
    z = rng.normal(size=(120, 3)) + 5.0 * groups[:, None] + 2.0 * batch[:, None]  # batch 1 offset by 2
    single = np.arange(120) >= 110  # group 2: batch 0 only
    groups[single], batch[single] = 2, 0
    return z, batch, groups


def test_full_strength_without_shrinkage_removes_each_batch_offset_within_its_group():
    z, batch, groups = _data()
    out = latent_centering.centred(z, batch, groups, strength=1.0, shrink=0.0)
    for g in (0, 1):
        means = [out[(groups == g) & (batch == b)].mean(axis=0) for b in (0, 1)]
        np.testing.assert_allclose(means[0], means[1], atol=1e-9)
        np.testing.assert_allclose(out[groups == g].mean(axis=0),  # the batches' mean centre, kept
                                   np.mean([z[(groups == g) & (batch == b)].mean(axis=0) for b in (0, 1)], axis=0),
                                   atol=1e-9)
    np.testing.assert_array_equal(out[groups == 2], z[groups == 2])  # one batch: nothing to centre on


def test_shrinkage_and_strength_move_cells_part_of_the_way():
    z, batch, groups = _data()
    full = latent_centering.centred(z, batch, groups, strength=1.0, shrink=0.0)
    half = latent_centering.centred(z, batch, groups, strength=0.5, shrink=0.0)
    np.testing.assert_allclose(half - z, 0.5 * (full - z), atol=1e-9)
    shrunk = latent_centering.centred(z, batch, groups, strength=1.0, shrink=1000.0)
    assert np.abs(shrunk - z).max() < 0.1 * np.abs(full - z).max()
