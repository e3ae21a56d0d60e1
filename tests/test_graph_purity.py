"""benchmarks/graph_purity.py: the share of a graph's edge weight that joins cells of one type."""

import numpy as np
import pytest
import scipy.sparse as sp

from tests.conftest import load_benchmark

graph_purity = load_benchmark("graph_purity")


def test_shares_weigh_edges_and_split_out_the_cross_batch_ones():
    labels = np.array(["a", "a", "b", "b"])
    batches = np.array([0, 1, 0, 1])
    # same type: 0-1 (cross batch, weight 3); other type: 0-2 (same batch, 1), 1-2 (cross batch, 1)
    rows, cols, weights = [0, 1, 0, 2, 1, 2], [1, 0, 2, 0, 2, 1], [3.0, 3.0, 1.0, 1.0, 1.0, 1.0]
    A = sp.csr_matrix((weights, (rows, cols)), shape=(4, 4))
    shares = graph_purity.same_type_shares(A, labels, batches)
    assert shares["same_type_share"] == pytest.approx(6 / 10)
    assert shares["same_type_share_cross_batch"] == pytest.approx(6 / 8)


def test_depth_correlation_reads_both_ends_of_every_edge():
    log_depth = np.array([1.0, 2.0, 3.0, 4.0])
    A = sp.csr_matrix(([1.0] * 4, ([0, 1, 2, 3], [1, 0, 3, 2])), shape=(4, 4))  # 0-1 and 2-3: similar depths
    assert graph_purity.depth_correlation(A, log_depth) == pytest.approx(0.6)
    B = sp.csr_matrix(([1.0] * 4, ([0, 3, 1, 2], [3, 0, 2, 1])), shape=(4, 4))  # 0-3 and 1-2: opposite ends
    assert graph_purity.depth_correlation(B, log_depth) == pytest.approx(-1.0)
