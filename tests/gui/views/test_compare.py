"""Compare two queries: the scatter's points, "A but not B" against the numpy mask, a click that
selects and previews an image."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QImage

from explorer.core import analysis
from explorer.gui.state.named_queries import CURRENT
from explorer.gui.views.analysis.compare_view import EMPTY_TEXT
from gui_helpers import rows_by_name

SCREENSHOT = Path("/tmp/issue4-compare.png")


def unit(v):
    return v / np.linalg.norm(v)


@pytest.fixture
def compare(qtbot, ready_window):
    panels = ready_window
    state, named = ready_window.state, panels.named_queries
    for name, files in (("cats", ("cat-original.jpg", "cat-gray.jpg")), ("coffee", ("coffee-original.jpg",))):
        ready_window.session.query_by_rows(rows_by_name(state, *files))
        named.save_current(name)
    ready_window.session.query_by_rows(rows_by_name(state, "rocket-original.jpg"))
    panels.compare_dock.show()
    panels.compare_dock.raise_()
    qtbot.wait(20)
    return panels.compare


def scores_of(state, *files):
    vectors = state.collection.vectors
    return vectors @ unit(vectors[rows_by_name(state, *files)].mean(0))


def test_empty_until_two_queries(qtbot, window):
    panels = window
    view = panels.compare
    assert view.empty.text() == EMPTY_TEXT and not view.filter_button.isEnabled()
    assert view.show_a_but_not_b() is None


def test_scatter_points_are_the_two_queries_scores(qtbot, ready_window, compare):
    state = ready_window.state
    assert [compare.combo_a.itemText(i) for i in range(compare.combo_a.count())] == [CURRENT, "cats", "coffee"]
    compare.set_pair("cats", "coffee")
    cats, coffee = scores_of(state, "cat-original.jpg", "cat-gray.jpg"), scores_of(state, "coffee-original.jpg")
    x, y = compare.scatter.getData()
    np.testing.assert_allclose(x, cats, atol=1e-5)
    np.testing.assert_allclose(y, coffee, atol=1e-5)
    np.testing.assert_array_equal([p.data() for p in compare.scatter.points()], np.arange(28))
    # A new pair starts from each query's top-K cut-off.
    k = state.query.top_k
    assert compare.thresholds() == pytest.approx((analysis.top_k_threshold(cats, k),
                                                  analysis.top_k_threshold(coffee, k)), abs=1e-3)
    assert compare.line_a.value() == pytest.approx(compare.spin_a.value())

    # The current query follows the query panel.
    compare.set_pair(CURRENT, "cats")
    np.testing.assert_allclose(compare.scatter.getData()[0], scores_of(state, "rocket-original.jpg"), atol=1e-5)
    ready_window.session.query_by_rows(rows_by_name(state, "astronaut-original.jpg"))
    qtbot.wait(20)
    np.testing.assert_allclose(compare.scatter.getData()[0], scores_of(state, "astronaut-original.jpg"), atol=1e-5)


def test_a_but_not_b_filters_the_grid_exactly(qtbot, ready_window, compare):
    state = ready_window.state
    compare.set_pair("cats", "coffee")
    cats, coffee = scores_of(state, "cat-original.jpg", "cat-gray.jpg"), scores_of(state, "coffee-original.jpg")
    for ta, tb in ((0.3, 0.3), (0.15, 0.2), (0.8, 0.9)):
        compare.set_thresholds(ta, tb)
        filters = []
        state.filter_changed.connect(filters.append)
        rows = compare.show_a_but_not_b()
        state.filter_changed.disconnect(filters.append)
        mask = (cats >= ta) & (coffee < tb)
        assert filters == ["compare"]
        assert sorted(state.grid_filter.tolist()) == np.flatnonzero(mask).tolist()
        np.testing.assert_array_equal(state.grid_filter, rows)
        assert np.all(np.diff(cats[rows]) <= 0)  # best A first
        assert state.filter_description == f"{mask.sum()} images: cats \u2265 {ta:.2f} but coffee < {tb:.2f}"
        assert compare.count_label.text() == f"{mask.sum()} images in A but not B"
    # Dragging a threshold line moves its spin box (and the other way round).
    compare.line_a.setValue(0.4)
    assert compare.spin_a.value() == pytest.approx(0.4)
    compare.spin_b.setValue(0.25)
    assert compare.line_b.value() == pytest.approx(0.25)
    compare.filter_button.click()
    np.testing.assert_array_equal(np.sort(state.grid_filter), np.flatnonzero((cats >= 0.4) & (coffee < 0.25)))


def test_click_on_a_point_selects_and_previews_it(qtbot, ready_window, compare):
    state = ready_window.state
    ready_window.resize(1400, 1000)
    ready_window.resizeDocks([ready_window.compare_dock], [520], Qt.Orientation.Vertical)
    compare.set_pair("cats", "coffee")
    compare.set_thresholds(0.35, 0.35)
    qtbot.wait(100)
    [row] = rows_by_name(state, "coffee-gray.jpg")
    vb = compare.plot.getPlotItem().getViewBox()
    x, y = compare.scatter.getData()
    scene = vb.mapViewToScene(QPointF(float(x[row]), float(y[row])))
    pos = compare.plot.mapFromScene(scene)
    qtbot.mouseClick(compare.plot.viewport(), Qt.MouseButton.LeftButton, pos=pos)
    assert compare.preview_row is not None
    clicked = compare.preview_row
    # Points can overlap; the one clicked must be under the cursor.
    assert abs(x[clicked] - x[row]) < 0.02 and abs(y[clicked] - y[row]) < 0.02
    np.testing.assert_array_equal(state.selection, [clicked])
    qtbot.waitUntil(lambda: compare.preview_pixmap() is not None, timeout=10_000)
    assert Path(state.collection.paths[clicked]).name in compare.caption.text()
    sx, sy = compare.selected.getData()
    assert (sx[0], sy[0]) == (x[clicked], y[clicked])

    # Another view's selection is ringed here too.
    state.select([1, 2], "map")
    assert len(compare.selected.getData()[0]) == 2

    compare.show_a_but_not_b()
    qtbot.wait(50)
    image = compare.grab().toImage()
    assert image.save(str(SCREENSHOT))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(96, 64)
    assert len({small.pixel(i, j) for i in range(96) for j in range(64)}) > 20
