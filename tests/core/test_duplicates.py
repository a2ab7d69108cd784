"""Near-duplicate groups on generated vectors with planted groups, exact and through HNSW."""

from pathlib import Path

import numpy as np
import pytest

from explorer.core import search as search_module
from explorer.core.duplicates import duplicate_groups, nearest_neighbour_similarities
from explorer.core.search import SearchIndex


class VectorsOnly:
    """Just what SearchIndex needs from a Collection, over vectors made in the test."""

    def __init__(self, directory: Path, vectors: np.ndarray):
        self.folder = Path("/photos")
        self.dir = directory
        self.dim = vectors.shape[1]
        self.generation = 0
        self._vectors = vectors

    def count(self):
        return len(self._vectors)

    def live(self):
        n = len(self._vectors)
        return np.arange(1, n + 1, dtype=np.int64), [f"img{i:04d}.jpg" for i in range(n)], self._vectors.copy()

    def close(self):
        pass


def unit(x):
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


def planted(n=600, dim=32, seed=0):
    """Random images (nearest similarity ~0.6) with near-duplicate groups planted among them."""
    rng = np.random.default_rng(seed)
    vectors = unit(rng.normal(size=(n, dim)))
    groups = [[10, 400], [20, 21, 599], [5, 50, 150, 250, 350]]
    vectors[400] = vectors[10]  # an exact copy
    for group in groups[1:]:
        for member in group[1:]:
            vectors[member] = unit(vectors[group[0]] + 0.02 * rng.normal(size=dim))
    # A chain: a~b and b~c above 0.95, a~c below; linked through b into one group.
    a, b = vectors[7], unit(rng.normal(size=dim))
    b = unit(b - (b @ a) * a)  # orthogonal to a
    theta = np.arccos(0.96)
    vectors[[7, 8, 9]] = [a, unit(np.cos(theta) * a + np.sin(theta) * b),
                          unit(np.cos(2 * theta) * a + np.sin(2 * theta) * b)]
    assert vectors[7] @ vectors[9] < 0.9
    groups.append([7, 8, 9])
    return vectors, groups


def brute_force_nearest(vectors):
    scores = vectors.astype(np.float64) @ vectors.T.astype(np.float64)
    np.fill_diagonal(scores, -np.inf)
    return scores.max(axis=1)


@pytest.fixture(params=["exact", "hnsw"])
def search_mode(request, monkeypatch):
    if request.param == "hnsw":
        monkeypatch.setattr(search_module, "EXACT_BELOW", 10)  # 600 images: the graph answers
    return request.param


def test_groups_are_the_planted_components(tmp_path, search_mode):
    vectors, groups = planted()
    index = SearchIndex(VectorsOnly(tmp_path, vectors))
    found = duplicate_groups(index, threshold=0.95)
    expected = sorted(([Path("/photos") / f"img{i:04d}.jpg" for i in g] for g in groups),
                      key=lambda g: (-len(g), g[0]))
    assert found == expected
    assert [len(g) for g in found] == [5, 3, 3, 2]
    assert (tmp_path / "hnsw.bin").exists() == (search_mode == "hnsw")
    assert duplicate_groups(index, threshold=1.01) == []
    # With k = 1 each image only links to its nearest: the chain still connects through b.
    assert [len(g) for g in duplicate_groups(index, threshold=0.95, k=1)] == [5, 3, 3, 2]


def test_nearest_neighbour_similarity_of_every_image(tmp_path, search_mode):
    vectors, _ = planted()
    index = SearchIndex(VectorsOnly(tmp_path, vectors))
    seen = []
    nearest = nearest_neighbour_similarities(index, progress=lambda d, t, m: seen.append((d, t)))
    expected = brute_force_nearest(vectors)
    assert nearest.shape == (600,) and seen[-1] == (600, 600)
    assert nearest[10] == pytest.approx(1.0, abs=1e-6) and nearest[400] == pytest.approx(1.0, abs=1e-6)
    if search_mode == "exact":
        np.testing.assert_allclose(nearest, expected, atol=1e-5)
    else:  # approximate: allow the rare miss, never a score above the true nearest
        assert np.mean(np.abs(nearest - expected) < 1e-5) >= 0.99
        assert (nearest <= expected + 1e-5).all()


def test_tiny_collections(tmp_path):
    one = SearchIndex(VectorsOnly(tmp_path, unit(np.ones((1, 4)))))
    assert duplicate_groups(one, 0.5) == []
    assert np.isnan(nearest_neighbour_similarities(one)).all()
    two = SearchIndex(VectorsOnly(tmp_path, unit(np.ones((2, 4)))))
    assert duplicate_groups(two, 0.99) == [[Path("/photos/img0000.jpg"), Path("/photos/img0001.jpg")]]
