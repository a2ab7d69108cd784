"""HNSW against exact search on clustered vectors like real embeddings."""

import numpy as np
import pytest

from explorer.core.ann import AnnIndex, exact_search


def clustered(n: int, dim: int = 64, clusters: int = 20, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_exact_search_matches_a_full_sort():
    vectors = clustered(500)
    queries = clustered(7, seed=1)
    rows, scores = exact_search(vectors, queries, 10)
    full = queries @ vectors.T
    np.testing.assert_array_equal(rows, np.argsort(-full, axis=1, kind="stable")[:, :10])
    np.testing.assert_allclose(scores, np.sort(full, axis=1)[:, ::-1][:, :10], rtol=1e-6)


def test_hnsw_recall_against_exact():
    data = clustered(3200)
    vectors, queries = data[:3000], data[3000:]  # queries from the same clusters, not indexed
    ids = np.arange(100, 3100)  # labels are file ids, not row numbers
    ann = AnnIndex.build(vectors, ids)
    labels, scores = ann.search(queries, 10)
    truth, truth_scores = exact_search(vectors, queries, 10)
    recall = np.mean([len(set(l) & set(ids[t])) / 10 for l, t in zip(labels, truth)])
    assert recall >= 0.99
    assert np.mean(np.abs(scores[:, 0] - truth_scores[:, 0]) < 1e-4) >= 0.99


def test_upsert_replace_remove_and_generation_checked_on_load(tmp_path):
    vectors = clustered(200)
    ann = AnnIndex.build(vectors[:100], np.arange(100))
    ann.upsert(vectors[100:], np.arange(100, 200))  # grows past the initial capacity
    ann.upsert(vectors[150:151], np.array([3]))  # file 3 re-embedded with new content
    ann.remove([150, 999])  # 999 was never there: ignored
    labels, scores = ann.search(vectors[150:151], 2)
    assert labels[0, 0] == 3 and scores[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert 150 not in labels[0]

    ann.save(tmp_path, generation=7)
    assert AnnIndex.load(tmp_path, 64, generation=8) is None  # stale: rebuilt by the caller
    assert AnnIndex.load(tmp_path, 32, generation=7) is None
    loaded = AnnIndex.load(tmp_path, 64, generation=7)
    assert loaded is not None
    np.testing.assert_array_equal(loaded.search(vectors[:5], 3)[0], ann.search(vectors[:5], 3)[0])
