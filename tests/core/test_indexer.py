"""Indexing real photo folders end to end: bad input, incremental updates, retrieval quality."""

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explorer.core import store
from explorer.core.catalog import FolderError
from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex
from helpers import add_bad_and_odd_files


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every entry under folder with size and mtime: indexing must leave it untouched."""
    out = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            p = Path(root) / name
            st = p.lstat()
            out[str(p.relative_to(folder))] = (st.st_size, st.st_mtime_ns)
    return out


def vector_of(index: SearchIndex, relative: str) -> np.ndarray:
    return index.vectors[index.paths.index(relative)]


def test_index_bad_input_skips_with_reasons_and_never_writes_into_the_folder(photo_folder, lite0):
    expected = add_bad_and_odd_files(photo_folder)
    (photo_folder / "gone").mkdir()
    vanishing = photo_folder / "gone" / "vanishes.jpg"
    shutil.copy(photo_folder / "cat" / "cat-flip.jpg", vanishing)
    expected["gone/vanishes.jpg"] = "vanished"
    before = snapshot(photo_folder)

    def delete_between_scan_and_decode(done, total, message):
        if message == "embedding":
            vanishing.unlink()

    report = index_folder(photo_folder, lite0, progress=delete_between_scan_and_decode)
    for changed_by_this_test in ["gone", "gone/vanishes.jpg"]:
        before.pop(changed_by_this_test)
    after = snapshot(photo_folder)
    after.pop("gone")
    assert after == before, "indexing changed something in the photo folder"

    index = SearchIndex.open(photo_folder)
    skipped = {s.path: s.reason for s in index.collection.skipped()}
    for path, reason in expected.items():
        if reason is None:
            assert path in index.paths, f"{path} should be embedded, skipped: {skipped.get(path)}"
        else:
            assert reason in skipped.get(path, ""), f"{path}: {skipped.get(path)!r} lacks {reason!r}"
    assert report.skipped == len(skipped) == sum(r is not None for r in expected.values())
    assert len(index) == 28 + sum(r is None for r in expected.values())

    # EXIF orientation applied: the rotated file embeds like its upright copy.
    rotated, upright = vector_of(index, "odd/exif-rotated.jpg"), vector_of(index, "odd/upright.jpg")
    assert float(rotated @ upright) > 0.99
    # Odd modes still look like the cat they were made from.
    original = vector_of(index, "cat/cat-original.jpg")
    for odd in ["odd/cmyk.jpg", "odd/palette-transparent.png", "odd/animated.gif"]:
        assert float(vector_of(index, odd) @ original) > 0.85, odd
    index.close()


def test_retrieval_quality_and_hnsw_agreement(photo_folder, lite0, tmp_path):
    index_folder(photo_folder, lite0)
    index = SearchIndex.open(photo_folder)
    try:
        # An exact copy, from outside the folder, ranks its original first.
        from explorer.core.embed import embed_query_images

        copy = tmp_path / "copy.jpg"
        shutil.copy(photo_folder / "rocket" / "rocket-original.jpg", copy)
        hits = index.search(embed_query_images(lite0, [copy])[0], k=5)
        assert hits[0].path == photo_folder / "rocket" / "rocket-original.jpg"
        assert hits[0].score >= 0.99
        # HNSW agrees with exact search over every image as a query.
        exact = {p: [h.path for h in hits] for p, hits in index.neighbours(10, exact=True)}
        approx = {p: [h.path for h in hits] for p, hits in index.neighbours(10, exact=False)}
        recall = np.mean([len(set(exact[p]) & set(approx[p])) / 10 for p in exact])
        assert recall >= 0.99
        # Variants of one photo are each other's nearest neighbours.
        same_label = [h.parent.name == p.parent.name for p, hits in exact.items() for h in hits[:3]]
        assert np.mean(same_label) > 0.9
    finally:
        index.close()


def test_resized_recompressed_copy_finds_its_original(tmp_path, lite0):
    """Among distinct photos (one version of each), a smaller, lossier copy finds its source."""
    from explorer.core.embed import embed_query_images
    from explorer.resources import sample_folder

    folder = tmp_path / "distinct"
    folder.mkdir()
    for original in sample_folder().glob("*/*-original.jpg"):
        shutil.copy(original, folder / original.name)
    index_folder(folder, lite0)
    index = SearchIndex.open(folder)
    try:
        for original in sorted(folder.iterdir()):
            image = Image.open(original)
            image.resize((image.width // 2, image.height // 2)).save(tmp_path / "small.jpg", quality=40)
            hits = index.search(embed_query_images(lite0, [tmp_path / "small.jpg"])[0], k=3)
            assert original in [h.path for h in hits], original
    finally:
        index.close()


def test_incremental_update_touches_only_what_changed(photo_folder, lite0):
    first = index_folder(photo_folder, lite0)
    assert (first.new, first.embedded) == (28, 28)
    index = SearchIndex.open(photo_folder)
    before = {p: v.copy() for p, v in zip(index.paths, index.vectors)}
    graph = index.collection.dir / "hnsw.bin"
    index.close()
    graph_written = graph.stat().st_mtime_ns

    unchanged = index_folder(photo_folder, "efficientnet-lite0")  # by name: no model build needed
    assert (unchanged.unchanged, unchanged.embedded, unchanged.new) == (28, 0, 0)
    assert unchanged.seconds < 5
    assert graph.stat().st_mtime_ns == graph_written  # the HNSW graph is neither read nor rewritten

    (photo_folder / "cat" / "cat-flip.jpg").unlink()
    shutil.copy(photo_folder / "coffee" / "coffee-original.jpg", photo_folder / "cat" / "cat-crop.jpg")
    shutil.copy(photo_folder / "rocket" / "rocket-flip.jpg", photo_folder / "new-rocket.jpg")
    report = index_folder(photo_folder, lite0)
    assert (report.new, report.modified, report.removed, report.embedded) == (1, 1, 1, 2)

    index = SearchIndex.open(photo_folder)
    try:
        assert len(index) == 28 and len(set(index.paths)) == 28
        assert "cat/cat-flip.jpg" not in index.paths
        for path, vector in zip(index.paths, index.vectors):
            if path in before and path != "cat/cat-crop.jpg":
                np.testing.assert_array_equal(vector, before[path])  # untouched vectors kept
        np.testing.assert_allclose(vector_of(index, "cat/cat-crop.jpg"), before["coffee/coffee-original.jpg"], atol=1e-5)
        hits = index.search(before["coffee/coffee-original.jpg"], k=2)  # via the updated HNSW
        assert {h.path.name for h in hits} == {"coffee-original.jpg", "cat-crop.jpg"}
    finally:
        index.close()


def test_cancel_then_resume(photo_folder, lite0):
    calls = []

    def on_batch(ids, paths, vectors):
        assert len(ids) == len(paths) == len(vectors) == 8
        calls.append(ids)

    def cancel_after_first_batch():
        return len(calls) >= 1

    report = index_folder(photo_folder, lite0, batch_size=8, on_batch=on_batch,
                          cancelled=cancel_after_first_batch)
    assert report.cancelled and 0 < report.embedded < 28
    index = SearchIndex.open(photo_folder)
    assert len(index) == report.embedded
    index.close()
    resumed = index_folder(photo_folder, lite0)
    assert resumed.embedded == 28 - report.embedded and resumed.unchanged == report.embedded
    index = SearchIndex.open(photo_folder)
    assert sorted(index.paths) == sorted(set(index.paths)) and len(index) == 28
    index.close()


def test_vectors_of_two_weights_are_never_mixed(photo_folder, lite0):
    index_folder(photo_folder, lite0)
    with pytest.raises(store.CollectionError, match="weights changed"):
        store.Collection(photo_folder, "efficientnet-lite0", 1280, {"weights_sha256": "0" * 64})
    with pytest.raises(store.CollectionError):
        store.Collection(photo_folder, "efficientnet-lite0", 512, {})


def test_unusable_folder_raises_folder_error(tmp_path, lite0):
    with pytest.raises(FolderError):
        index_folder(tmp_path / "missing", lite0)
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(FolderError):
        index_folder(tmp_path / "file.jpg", lite0)


def test_orphan_shards_from_a_crash_are_discarded(photo_folder, lite0):
    index_folder(photo_folder, lite0)
    collection = store.Collection.open_existing(photo_folder, "efficientnet-lite0")
    directory = collection.dir
    collection.close()
    # A shard written but never committed (killed between the rename and the transaction).
    np.save(directory / "shard-999999.npy", np.ones((4, 1280), np.float32))
    (directory / "shard-999998.npy.tmp").write_bytes(b"partial")
    index = SearchIndex.open(photo_folder)
    assert not (directory / "shard-999999.npy").exists()
    assert not (directory / "shard-999998.npy.tmp").exists()
    assert len(index) == 28
    index.close()
