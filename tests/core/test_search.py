"""SearchIndex taking in batches while indexing runs (what the GUI's grid shows)."""

import numpy as np

from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex


def test_batches_applied_during_indexing_equal_the_reopened_index(photo_folder, lite0):
    index_folder(photo_folder, lite0, batch_size=8, cancelled=lambda: False, on_batch=None)
    live = SearchIndex.open(photo_folder)
    assert live.row_of(photo_folder / "extra.jpg") is None  # not there yet (and the lookup is built)
    # Re-embed two files (same ids) and add a new one, as the GUI sees it.
    (photo_folder / "cat" / "cat-flip.jpg").write_bytes((photo_folder / "rocket" / "rocket-original.jpg").read_bytes())
    (photo_folder / "extra.jpg").write_bytes((photo_folder / "coffee" / "coffee-original.jpg").read_bytes())
    seen = []
    index_folder(photo_folder, lite0, on_batch=lambda *batch: seen.append(live.apply_batch(*batch)))
    reopened = SearchIndex.open(photo_folder)
    try:
        np.testing.assert_array_equal(live.ids, reopened.ids)
        assert live.paths == reopened.paths
        np.testing.assert_allclose(live.vectors, reopened.vectors, atol=1e-6)
        assert sorted(np.concatenate(seen).tolist()) == sorted([live.paths.index("cat/cat-flip.jpg"), len(live) - 1])
        # row_of follows the growth, and takes the folder by another spelling (a symlink).
        link = photo_folder.parent / "link"
        link.symlink_to(photo_folder)
        for folder in (photo_folder, link):
            assert live.row_of(folder / "extra.jpg") == len(live) - 1
            assert live.row_of(folder / "cat" / "cat-flip.jpg") == live.paths.index("cat/cat-flip.jpg")
        assert live.row_of(photo_folder.parent / "elsewhere.jpg") is None
        hits = live.search(reopened.vectors[reopened.paths.index("extra.jpg")], k=3)
        assert {h.path.name for h in hits} >= {"extra.jpg", "coffee-original.jpg"}
    finally:
        live.close()
        reopened.close()
