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


def test_descending_order_is_a_stable_sort_of_the_negated_scores():
    rng = np.random.default_rng(3)
    for scores in (
        rng.standard_normal(5000).astype(np.float32),
        np.round(rng.standard_normal(5000), 1).astype(np.float32),  # many long runs of ties
        rng.permutation(np.r_[rng.standard_normal(5000), np.zeros(20)]).astype(np.float32),  # a few
        rng.normal(0.3, 0.2, 20000).astype(np.float16).astype(np.float32),  # the codes' scores
        np.r_[np.zeros(5000), -np.zeros(5000), [65504.0, -65504.0, 1e-7]].astype(np.float16)
        .astype(np.float32),  # float16's extremes, subnormals, both zeros
        np.zeros(300, np.float32),  # one run
        np.array([0.5, -0.0, 0.0, 0.5, 1.0], np.float32),  # -0.0 == 0.0 is a tie too
        np.empty(0, np.float32),
    ):
        expected = np.argsort(-scores, kind="stable")
        np.testing.assert_array_equal(analysis.descending_order(scores), expected)
        np.testing.assert_array_equal(analysis.ranking(scores), expected)
        np.testing.assert_array_equal(analysis.ranking(scores, 37), expected[:37])
