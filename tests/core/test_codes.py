"""Compact search codes on real features: the bundled sample's 91 photos, embedded by the
default model. Quality at scale is bench/bench_codes.py's; here, what must hold at any size."""

import numpy as np
import pytest
from PIL import Image

from explorer.core.codes import CODEBOOK_FILE, CODES_FILE, Codebook, Codes, update_codes
from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex
from helpers import copy_sample


@pytest.fixture(scope="module")
def sample_vectors(tmp_path_factory, lite0):
    folder = copy_sample(tmp_path_factory.mktemp("codes") / "photos")
    index_folder(folder, lite0)
    index = SearchIndex.open(folder)
    try:
        yield index.ids.copy(), index.vectors.copy(), index.labels()[1]
    finally:
        index.close()


def test_codes_rank_like_the_full_vectors(sample_vectors):
    ids, vectors, labels = sample_vectors
    codes = Codes.build(vectors, ids, dims=48)
    assert codes.codes.dtype == np.float16 and codes.codes.shape == (91, 48)
    errors, overlap = [], []
    for row in range(len(vectors)):
        exact = vectors @ vectors[row]
        approx = codes.similarities(vectors[row])
        assert approx.dtype == np.float32 and approx.shape == exact.shape
        errors.append(np.abs(approx - exact).max())
        overlap.append(len(set(np.argsort(-exact)[1:7]) & set(np.argsort(-approx)[1:7])) / 6)
    # 48 of 1280 dims keep the cosines to within a few hundredths, and nearly all of each
    # photo's six nearest (its six variants, mostly).
    assert np.median(errors) < 0.03, np.median(errors)
    assert np.mean(overlap) >= 0.95, np.mean(overlap)
    # More axes, closer cosines: with every axis the data has, only float16's rounding is left.
    full = Codes.build(vectors, ids, dims=256)
    assert full.codebook.dims == 90  # 91 vectors span 90 directions about their mean
    assert np.abs(full.similarities(vectors[0]) - vectors @ vectors[0]).max() < 2e-3


def test_numpy_and_torch_score_the_codes_alike(sample_vectors, monkeypatch):
    """Under TORCH_FROM rows numpy scores them (no torch import to hold the GUI); above, torch's
    float16 matmul. Both give float16 values, which rank by a radix sort, equal within one
    float16 step of each other."""
    from explorer.core import codes as codes_module

    ids, vectors, _ = sample_vectors
    codes = Codes.build(vectors, ids, dims=64)
    by_numpy = [codes.similarities(v) for v in vectors[:10]]
    monkeypatch.setattr(codes_module, "TORCH_FROM", 0)
    by_torch = [codes.similarities(v) for v in vectors[:10]]
    for a, b, v in zip(by_numpy, by_torch, vectors):
        for scores in (a, b):
            assert scores.dtype == np.float32 and (scores.astype(np.float16) == scores).all()
        assert np.abs(a - b).max() <= 1e-3
        assert np.abs(a - vectors @ v).max() < 0.02


def test_no_whitening_the_axes_are_orthonormal_and_the_scale_kept(sample_vectors):
    ids, vectors, _ = sample_vectors
    book = Codes.build(vectors, ids, dims=32).codebook
    np.testing.assert_allclose(book.axes @ book.axes.T, np.eye(32), atol=1e-4)
    # A code's length is the centred vector's length on the axes: never more than the whole.
    centred = np.linalg.norm(vectors - book.mean, axis=1)
    coded = np.linalg.norm(book.encode(vectors).astype(np.float32), axis=1)
    assert (coded <= centred + 2e-3).all() and coded.mean() > 0.5 * centred.mean()


def test_codes_saved_load_memory_mapped_and_damage_makes_them_again(sample_vectors, tmp_path):
    ids, vectors, _ = sample_vectors
    codes = Codes.build(vectors, ids, dims=32)
    codes.save(tmp_path, generation=7)
    loaded = Codes.load(tmp_path)
    assert loaded is not None and loaded.matches(ids) and not loaded.matches(ids[:-1])
    assert isinstance(loaded.codes, np.memmap)
    np.testing.assert_array_equal(loaded.codes, codes.codes)
    np.testing.assert_array_equal(loaded.similarities(vectors[3]), codes.similarities(vectors[3]))
    assert not [p for p in tmp_path.iterdir() if p.name not in (CODES_FILE, CODEBOOK_FILE)]

    # Codes of another length than the codebook names (a kill between the two writes).
    np.save(tmp_path / CODES_FILE, codes.codes[:-1])
    assert Codes.load(tmp_path) is None
    codes.save(tmp_path, generation=7)
    (tmp_path / CODEBOOK_FILE).write_bytes(b"PK\x03\x04 not a zip")
    assert Codes.load(tmp_path) is None
    (tmp_path / CODEBOOK_FILE).unlink()
    assert Codes.load(tmp_path) is None


def test_refit_once_the_collection_has_doubled_or_outgrown_few_axes(sample_vectors):
    _, vectors, _ = sample_vectors
    book = Codebook.fit(vectors[:40], dims=16)
    assert book.fitted_rows == 40 and book.dims == 16
    assert not book.needs_refit(40, dims=16) and not book.needs_refit(79, dims=16)
    assert book.needs_refit(80, dims=16)
    few = Codebook.fit(vectors[:10], dims=16)  # 10 photos span 9 directions, not 16
    assert few.dims == 9 and not few.needs_refit(10, dims=16) and few.needs_refit(11, dims=16)


def test_update_encodes_only_what_changed(sample_vectors, tmp_path):
    ids, vectors, _ = sample_vectors
    none = np.array([], np.int64)
    first = update_codes(tmp_path, ids[:60], vectors[:60].__getitem__, none, 1, since=0, dims=16)
    assert first is not None and first.codebook.fitted_rows == 60
    before = np.array(first.codes)
    # 31 more, the vector of one of the first changed (as a file re-embedded), one removed.
    grown = vectors.copy()
    grown[5] = vectors[80]
    keep = np.delete(np.arange(91), 7)
    read = grown[keep].__getitem__
    second = update_codes(tmp_path, ids[keep], read, ids[[5]], 2, since=1, dims=16)
    assert second is not None and second.matches(ids[keep]) and second.generation == 2
    np.testing.assert_array_equal(second.codebook.axes, first.codebook.axes)  # 90 < 2 x 60
    old_rows = [r for r in range(60) if r not in (5, 7)]
    np.testing.assert_array_equal(second.codes[[list(keep).index(r) for r in old_rows]], before[old_rows])
    # The rest (the changed and the new) encoded on those axes (to float16's rounding).
    np.testing.assert_allclose(second.codes.astype(np.float32),
                               second.codebook.encode(grown[keep]).astype(np.float32), atol=1e-3)
    loaded = Codes.load(tmp_path)
    assert loaded is not None and loaded.matches(ids[keep]) and loaded.generation == 2
    # Nothing changed: the saved codes as they are, not written again.
    stamp = (tmp_path / CODES_FILE).stat().st_mtime_ns
    del loaded, second
    assert update_codes(tmp_path, ids[keep], read, none, 2, since=2, dims=16) is not None
    assert (tmp_path / CODES_FILE).stat().st_mtime_ns == stamp
    # Codes saved at another generation than the changes began at (a run killed after it
    # committed vectors, before it saved codes): none reused, though the ids are the same.
    grown[0] = vectors[90]
    third = update_codes(tmp_path, ids[keep], grown[keep].__getitem__, none, 9, since=8, dims=16)
    assert third is not None
    np.testing.assert_allclose(third.codes[0].astype(np.float32),
                               third.codebook.encode(vectors[90:91])[0].astype(np.float32), atol=1e-3)
    # Fewer than two images: no axes, no files.
    assert update_codes(tmp_path, ids[:1], vectors[:1].__getitem__, none, 10, since=9) is None
    assert not list(tmp_path.iterdir())


def test_graph_on_the_codes_updated_in_place_finds_what_a_fresh_one_does(sample_vectors):
    ids, vectors, _ = sample_vectors
    half = 45
    codes = Codes.build(vectors, ids, dims=64)
    fresh = codes.build_graph()
    grown = Codes.build(vectors[:half], ids[:half], dims=64, codebook=codes.codebook).build_graph()
    grown.upsert(codes.graph_vectors(slice(half, None)), ids[half:])
    queries = codes.codebook.project(vectors)
    exact = np.argsort(-(vectors @ vectors.T), axis=1)[:, :10]
    for graph in (fresh, grown):
        labels, _ = graph.search(queries, 10)
        found = np.searchsorted(ids, labels)
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, exact)])
        assert recall >= 0.98, recall


def test_indexing_keeps_the_codes_in_step(tmp_path, lite0):
    folder = copy_sample(tmp_path / "photos", ["cat", "coffee", "rocket", "astronaut"])
    index_folder(folder, lite0)
    index = SearchIndex.open(folder)
    first = index.codes()
    assert first is not None and first.matches(index.ids) and first.codebook.fitted_rows == 28
    index.close()

    # More photos, one changed, one removed: codes for exactly the images now there, each the
    # one its current vector gives (28 photos had 27 axes: the grown collection gets its own).
    copy_sample(tmp_path / "more", ["brick", "clock"])
    for label in ("brick", "clock"):
        (tmp_path / "more" / label).rename(folder / label)
    changed = folder / "cat" / "cat-original.jpg"
    Image.open(changed).rotate(90, expand=True).save(changed)
    next((folder / "coffee").glob("*.jpg")).unlink()
    index_folder(folder, lite0)
    index = SearchIndex.open(folder)
    try:
        second = index.codes()
        assert second is not None and second.matches(index.ids) and len(index) == 28 + 14 - 1
        assert second.codebook.fitted_rows == 41
        np.testing.assert_allclose(second.codes.astype(np.float32),
                                   second.codebook.encode(index.vectors).astype(np.float32), atol=1e-3)
        # The search index answers from the codes when asked to, exactly by default at this size.
        query = index.vectors[0]
        np.testing.assert_array_equal(index.similarities(query, exact=False), second.similarities(query))
        np.testing.assert_allclose(index.similarities(query), index.vectors @ query, rtol=1e-6)
        assert np.abs(index.similarities(query, exact=False) - index.vectors @ query).max() < 2e-3
    finally:
        index.close()


def test_a_batch_taken_in_while_indexing_makes_the_codes_stale(sample_vectors, tmp_path, lite0):
    folder = copy_sample(tmp_path / "photos", ["cat", "coffee"])
    index_folder(folder, lite0)
    index = SearchIndex.open(folder)
    try:
        assert index.codes() is not None
        index.apply_batch([10_000], ["cat/new.jpg"], index.vectors[:1].copy())
        query = index.vectors[3]
        np.testing.assert_array_equal(index.similarities(query, exact=False), index.vectors @ query)
    finally:
        index.close()


def test_a_large_collection_answers_without_loading_its_vectors(tmp_path, lite0, monkeypatch):
    """From CODES_FROM images on (here 10) the full vectors stay on disk: searches re-rank the
    graph's candidates on the rows they read, similarities, the map's vectors and the
    evaluation come from the codes, and each agrees with the exact answer."""
    from explorer.core import analysis, search

    folder = copy_sample(tmp_path / "photos")
    index_folder(folder, lite0)
    monkeypatch.setattr(search, "CODES_FROM", 10)
    index = SearchIndex.open(folder)
    monkeypatch.setattr(search, "CODES_FROM", 10 ** 9)
    full = SearchIndex.open(folder)  # the same collection, every vector loaded
    monkeypatch.setattr(search, "CODES_FROM", 10)
    try:
        assert index._vectors is None and full._vectors is not None
        query = index.vector(5)
        np.testing.assert_array_equal(query, full.vectors[5])
        top, expected = index.search(query, k=7, exact=False), full.search(query, k=7, exact=True)
        assert [h.path for h in top] == [h.path for h in expected]
        np.testing.assert_allclose([h.score for h in top], [h.score for h in expected], atol=1e-5)
        assert np.abs(index.similarities(query) - full.vectors @ query).max() < 2e-3
        assert index.layout_vectors().shape == (91, index.codes().codebook.dims)
        labels = analysis.labels_of(index.paths)
        approx, truth = index.evaluation(labels), full.evaluation(labels)
        assert approx.query_rows.tolist() == truth.query_rows.tolist()
        assert abs(approx.overall.mean_average_precision - truth.overall.mean_average_precision) < 0.02
        assert index._vectors is None  # nothing above read them all
    finally:
        index.close()
        full.close()
