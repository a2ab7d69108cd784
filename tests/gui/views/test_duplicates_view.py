"""Near-duplicates and retrieval evaluation in the GUI: the same numbers and groups as core and
as the CLI (`explorer duplicates --json`, `explorer eval --json`)."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QLabel

from explorer import cli
from explorer.core import analysis
from explorer.core.duplicates import duplicate_groups, nearest_neighbour_similarities
from explorer.core.search import SearchIndex
from explorer.gui.views.analysis.evaluation_view import NO_LABELS

SCREENSHOT = Path("/tmp/issue4-duplicates.png")


@pytest.fixture
def panels(ready_window):
    return ready_window


def core_index(win) -> SearchIndex:
    return SearchIndex.open(win.state.folder, win.state.model)


def wait_groups(qtbot, view, threshold):
    qtbot.waitUntil(lambda: not view.busy and view.groups_threshold == pytest.approx(threshold), timeout=60_000)


def test_duplicates_match_core_and_cli(qtbot, ready_window, panels, capsys, tmp_path):
    view = panels.duplicates
    panels.duplicates_dock.show()
    panels.duplicates_dock.raise_()
    view.compute()
    wait_groups(qtbot, view, 0.95)
    qtbot.waitUntil(lambda: view.similarities is not None, timeout=60_000)
    index = core_index(ready_window)
    try:
        expected_nn = nearest_neighbour_similarities(index)
        expected_095 = duplicate_groups(index, 0.95)
        expected_080 = duplicate_groups(index, 0.80)
    finally:
        index.close()
    np.testing.assert_allclose(view.similarities, expected_nn)
    x, y = view.curve.getData()
    np.testing.assert_array_equal(y, np.histogram(np.clip(expected_nn, -1, 1), 400, (-1, 1))[0])
    assert view.groups == expected_095

    # Dragging the threshold regroups (after a pause), as core does at that threshold.
    view.line.setValue(0.8)
    assert view.threshold_spin.value() == pytest.approx(0.8)
    wait_groups(qtbot, view, 0.8)
    assert view.groups == expected_080 and len(expected_080) > 0
    close = int(np.count_nonzero(expected_nn >= 0.8))
    assert f"{close} of 28 images" in view.status.text() and f"{len(expected_080)} groups" in view.status.text()

    # The review: one row per group, one tile per image, thumbnails arriving.
    rows = [view.review_layout.itemAt(i).widget() for i in range(view.review_layout.count() - 1)]
    assert len(rows) == len(expected_080)
    tiles = [[t.toolTip() for t in row.findChildren(QLabel) if t.toolTip()] for row in rows]
    assert tiles == [[str(p) for p in group] for group in expected_080]
    qtbot.waitUntil(lambda: not view._tiles, timeout=20_000)

    # Export: the same JSON as `explorer duplicates --threshold 0.8 --json`.
    target = tmp_path / "groups.json"
    view.export_groups(target)
    assert cli.main(["duplicates", str(ready_window.state.folder), "--threshold", "0.8", "--json"]) == 0
    assert json.loads(target.read_text()) == json.loads(capsys.readouterr().out)

    ready_window.resize(1400, 1000)
    ready_window.resizeDocks([panels.duplicates_dock], [520], Qt.Orientation.Vertical)
    qtbot.wait(100)
    image = view.grab().toImage()
    assert image.save(str(SCREENSHOT))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(96, 64)
    assert len({small.pixel(i, j) for i in range(96) for j in range(64)}) > 20


def test_exact_copies_group_at_the_default_threshold(qtbot, window, indexed_folder):
    from gui_helpers import wait_until_ready

    copy = indexed_folder / "rocket" / "rocket-copy.jpg"
    shutil.copy2(indexed_folder / "rocket" / "rocket-original.jpg", copy)
    panels = window
    window.open_folder(indexed_folder)
    wait_until_ready(qtbot, window, layout=False)
    qtbot.waitUntil(lambda: len(window.state.collection) == 29, timeout=60_000)
    panels.duplicates.compute()
    wait_groups(qtbot, panels.duplicates, 0.95)
    assert [indexed_folder / "rocket" / "rocket-copy.jpg", indexed_folder / "rocket" / "rocket-original.jpg"] \
        in [sorted(g) for g in panels.duplicates.groups]


def test_evaluation_table_is_explorer_eval(qtbot, ready_window, panels, capsys):
    view = panels.evaluation
    view.evaluate()
    qtbot.waitUntil(lambda: view.result is not None and not view.running, timeout=60_000)
    c = ready_window.state.collection
    expected = analysis.evaluate(c.vectors, analysis.labels_of(c.paths), k=10)
    assert view.result.to_json() == expected.to_json()
    assert cli.main(["eval", str(ready_window.state.folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == expected.to_json()

    table = view.table
    header = [table.horizontalHeaderItem(i).text() for i in range(5)]
    assert header == ["label", "queries", "mAP", "precision@10", "recall@1"]
    shown = {table.item(r, 0).text(): [table.item(r, i).text() for i in range(1, 5)]
             for r in range(table.rowCount())}
    assert list(shown) == ["overall", "astronaut", "cat", "coffee", "rocket"]
    for name, s in [("overall", expected.overall), *expected.labels.items()]:
        assert shown[name] == [str(s.queries), f"{s.mean_average_precision:.3f}",
                               f"{s.precision_at_k:.3f}", f"{s.recall_at_1:.3f}"]


def test_evaluation_without_labels_says_so(qtbot, window, tmp_path, lite0):
    from explorer.core.indexer import index_folder
    from gui_helpers import wait_until_ready

    flat = tmp_path / "flat"
    flat.mkdir()
    from explorer.resources import sample_folder
    for path in sorted((sample_folder() / "cat").iterdir())[:3]:
        shutil.copy2(path, flat / path.name)
    index_folder(flat, lite0)
    panels = window
    window.open_folder(flat)
    wait_until_ready(qtbot, window, layout=False)
    panels.evaluation.evaluate()
    assert panels.evaluation.status.text() == NO_LABELS and not panels.evaluation.running
