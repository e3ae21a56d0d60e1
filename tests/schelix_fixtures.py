"""Shared helpers for the scHelix library tests (fixtures live in the test modules)."""

from __future__ import annotations

import functools

import numpy as np
from sklearn.neighbors import NearestNeighbors

from schelix_core.simulate import simulate

FAST_EPOCHS = (3, 3, 3)


@functools.lru_cache(maxsize=None)
def _sim(n_cells, n_genes, seed):
    return simulate(n_cells=n_cells, n_genes=n_genes, seed=seed)


def small_sim(n_cells=600, n_genes=300, seed=0):
    """A small simulation (copied, so tests may modify it)."""
    return _sim(n_cells, n_genes, seed).copy()


def knn_batch_entropy_and_accuracy(z, batch, labels, k=15):
    """Mean normalised batch entropy of kNN sets and kNN majority-vote label accuracy."""
    nn = NearestNeighbors(n_neighbors=k + 1).fit(z)
    _, ind = nn.kneighbors(z)
    ind = ind[:, 1:]
    cats = np.unique(batch)
    bb = batch[ind]
    P = np.stack([(bb == c).mean(1) for c in cats], 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -(np.where(P > 0, P * np.log(P), 0.0)).sum(1) / np.log(len(cats))
    yy = labels[ind]
    acc = np.mean([np.bincount(r).argmax() == labels[i] for i, r in enumerate(yy)])
    return float(ent.mean()), float(acc)
