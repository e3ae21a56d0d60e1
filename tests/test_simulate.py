import numpy as np
import pytest

from schelix_core.simulate import simulate


def test_deterministic_for_a_seed():
    a, b = simulate(n_cells=300, n_genes=200, seed=5), simulate(n_cells=300, n_genes=200, seed=5)
    assert (a.X != b.X).nnz == 0
    assert a.obs.equals(b.obs)
    c = simulate(n_cells=300, n_genes=200, seed=6)
    assert (a.X != c.X).nnz > 0


def test_counts_are_non_negative_integers():
    a = simulate(n_cells=300, n_genes=200, seed=1)
    data = a.X.data
    assert (data >= 0).all() and np.array_equal(data, np.round(data))


def test_composition_uneven_with_missing_and_rare_types():
    a = simulate(n_cells=4000, n_genes=300, n_batches=3, n_cell_types=8, missing_types_per_batch=1, seed=2)
    table = a.obs.groupby(["batch", "cell_type"], observed=False).size().unstack()
    assert (table == 0).sum(axis=1).min() >= 1, "each batch lacks at least one type"
    assert (table.sum(axis=0) > 0).all(), "every type exists in some batch"
    sizes = table.sum(axis=0).sort_values()
    assert sizes.iloc[-1] > 5 * sizes.iloc[0], "type sizes are uneven"
    assert sizes.iloc[0] / len(a) < 0.05, "there is a rare type"


def test_minority_of_genes_carries_most_batch_effect():
    a = simulate(n_cells=500, n_genes=1000, frac_batch_genes=0.1, seed=0)
    affected = a.var["batch_affected"].to_numpy()
    assert affected.mean() == pytest.approx(0.1, abs=0.01)
    sd = a.var["batch_lfc_sd"].to_numpy()
    share = (sd[affected] ** 2).sum() / (sd**2).sum()
    assert share > 0.8


def test_rejects_a_single_batch():
    with pytest.raises(ValueError, match="n_batches"):
        simulate(n_batches=1)
