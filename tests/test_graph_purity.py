"""benchmarks/graph_purity.py: the share of a graph's edge weight that joins cells of one type."""

import importlib.util

import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import REPO

spec = importlib.util.spec_from_file_location("graph_purity", REPO / "benchmarks" / "graph_purity.py")
graph_purity = importlib.util.module_from_spec(spec)
spec.loader.exec_module(graph_purity)


def test_shares_weigh_edges_and_split_out_the_cross_batch_ones():
    labels = np.array(["a", "a", "b", "b"])
    batches = np.array([0, 1, 0, 1])
    # same type: 0-1 (cross batch, weight 3); other type: 0-2 (same batch, 1), 1-2 (cross batch, 1)
    rows, cols, weights = [0, 1, 0, 2, 1, 2], [1, 0, 2, 0, 2, 1], [3.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    A = sp.csr_matrix((weights, (rows, cols)), shape=(4, 4))
    shares = graph_purity.same_type_shares(A, labels, batches)
    assert shares["same_type_share"] == pytest.approx(6 / 10)
    assert shares["same_type_share_cross_batch"] == pytest.approx(6 / 8)
