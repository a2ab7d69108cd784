"""Similarity distributions against direct numpy computations."""

import numpy as np

from explorer.core import analysis


def unit_rows(n, dim=32, seed=0):
    x = np.random.default_rng(seed).normal(size=(n, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def test_histogram_counts_every_image_once_on_a_shared_grid():
    vectors = unit_rows(1000)
    scores = analysis.similarities(vectors, vectors[0])
    np.testing.assert_allclose(scores, [float(v @ vectors[0]) for v in vectors], rtol=1e-5, atol=1e-6)
    histogram = analysis.similarity_histogram(scores, top_k=10)
    assert histogram.total == 1000
    assert len(histogram.edges) == analysis.HISTOGRAM_BINS + 1
    # Bin by bin, the same as numpy's own histogram of the scores.
    expected, _ = np.histogram(scores, bins=histogram.edges)
    np.testing.assert_array_equal(histogram.counts, expected)
    assert histogram.top_k_threshold == np.sort(scores)[-10]
    low, high = histogram.occupied_range()
    assert low <= scores.min() and high >= scores.max()


def test_range_selection_and_ranking():
    scores = np.array([0.1, 0.9, 0.5, 0.7, 0.5, -0.2], np.float32)
    assert analysis.rows_in_range(scores, 0.5, 0.8).tolist() == [3, 2, 4]
    assert analysis.ranking(scores, 3).tolist() == [1, 3, 2]
    assert analysis.ranking(scores).tolist() == [1, 3, 2, 4, 0, 5]
    assert analysis.top_k_threshold(scores, 100) == scores.min()
