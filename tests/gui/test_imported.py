"""An imported representation (issue 16) in the window: listed in Representations, opened with a
double-click, then grid, map and queries by its own images work; an outside image is a message."""

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from explorer.core.exchange import import_embeddings
from explorer.core.search import SearchIndex

from gui_helpers import rows_by_name, wait_until_ready


def test_an_imported_representation_works_in_the_window(qtbot, window, indexed_folder, tmp_path):
    # Vectors "made elsewhere": the app's own, turned by a random rotation (another space, the same
    # cosines), so the results under it are known.
    index = SearchIndex.open(indexed_folder)
    paths, vectors = list(index.paths), index.vectors.copy()
    index.close()
    rotation, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((vectors.shape[1],) * 2))
    turned = (vectors @ rotation).astype(np.float32)
    source = tmp_path / "elsewhere.parquet"
    pq.write_table(pa.table({"path": paths, "embedding": pa.FixedSizeListArray.from_arrays(
        pa.array(turned.ravel()), vectors.shape[1])}), source)
    import_embeddings(indexed_folder, [source], "elsewhere")

    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window, layout=False)
    expected = [h.path.name for h in window.state.collection.search(vectors[paths.index("cat/cat-flip.jpg")], 10)]
    representations = window.representations
    representations.refresh_models()
    [item] = representations.models_list.findItems("elsewhere (imported)", Qt.MatchFlag.MatchExactly)
    representations.models_list.itemDoubleClicked.emit(item)
    qtbot.waitUntil(lambda: window.state.model == "elsewhere" and window.state.collection is not None
                    and window.state.collection.collection.model == "elsewhere", timeout=30_000)
    wait_until_ready(qtbot, window)  # the map too
    state = window.state
    assert len(state.collection) == 28 and len(state.layout.ids) == 28
    assert "was imported, and outside images cannot be embedded" in window.query_view.hint.text()
    assert not [w for w in window.findChildren(QMessageBox) if w.objectName() == "errorDialog" and w.isVisible()]

    window.session.query_by_rows(rows_by_name(state, "cat-flip.jpg"))
    assert [h.path.name for h in state.collection.search(state.query.vector, 10)] == expected

    # Evaluation and near-duplicates run on it as on a computed one (a rotation keeps every cosine).
    panels = window
    panels.evaluation.evaluate()
    panels.duplicates.compute()
    qtbot.waitUntil(lambda: panels.evaluation.result is not None and panels.duplicates.groups is not None,
                    timeout=60_000)
    assert panels.evaluation.result.overall.queries == 28

    failures = []
    window.session.query_failed.connect(failures.append)
    task = window.session.query_by_files([indexed_folder / "cat" / "cat-crop.jpg", tmp_path / "outside.jpg"])
    qtbot.waitUntil(lambda: task.done, timeout=30_000)
    qtbot.waitUntil(lambda: bool(failures), timeout=5_000)
    assert "outside.jpg: 'elsewhere' was imported and Explorer cannot run its model" in failures[0]
    assert [e.name for e in state.query.positives][-1] == "cat-crop.jpg"  # an image it holds: its stored vector
