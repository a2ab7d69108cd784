"""Compact search codes on real features: the bundled sample's 91 photos, embedded by the
default model. Quality at scale is bench/bench_codes.py's; here, what must hold at any size."""

import numpy as np
import pytest

from explorer.core.codes import CODEBOOK_FILE, CODES_FILE, Codebook, Codes
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


def test_refit_once_the_collection_has_doubled(sample_vectors):
    _, vectors, _ = sample_vectors
    book = Codebook.fit(vectors[:40], dims=16)
    assert book.fitted_rows == 40
    assert not book.needs_refit(79) and book.needs_refit(80)
