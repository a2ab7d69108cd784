"""The similarity histogram with real widgets: counts against numpy, range selection, coalescing."""

from pathlib import Path

import numpy as np
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QApplication

from explorer.core import analysis
from explorer.gui.views.histogram import histogram_view as histograms
from explorer.gui.views.histogram.histogram_view import EMPTY_TEXT
from gui_helpers import rows_by_name

SCREENSHOT = Path("/tmp/histogram.png")


def query(qtbot, win, *names: str) -> np.ndarray:
    """Query by indexed images; returns the scores, computed independently of the app."""
    rows = rows_by_name(win.state, *names)
    win.session.query_by_rows(rows)
    qtbot.wait(20)  # the view refreshes on the next event-loop turn
    c = win.state.collection
    return c.vectors @ (c.vectors[rows].mean(0) / np.linalg.norm(c.vectors[rows].mean(0)))


def send_mouse(widget, kind: QEvent.Type, pos: QPointF, buttons: Qt.MouseButton) -> None:
    button = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseMove else Qt.MouseButton.LeftButton
    event = QMouseEvent(kind, pos, widget.mapToGlobal(pos), button, buttons, Qt.KeyboardModifier.NoModifier)
    QApplication.sendEvent(widget, event)


def test_empty_state_until_there_is_a_query(qtbot, window):
    view = window.histograms
    assert view.stack.currentWidget() is view.empty and view.empty.text() == EMPTY_TEXT
    assert view.histogram is None and not view.select_button.isEnabled() and not view.range_label.text()
    assert view.grab().toImage().save("/tmp/histogram_empty.png")


def test_counts_cutoff_and_title_match_numpy(qtbot, ready_window):
    view, state = ready_window.histograms, ready_window.state
    scores = query(qtbot, ready_window, "cat-original.jpg", "cat-gray.jpg")
    np.testing.assert_allclose(state.query.scores, scores, atol=1e-5)
    assert view.stack.currentWidget() is view.plot and view.range_label.text() == histograms.RANGE_HINT

    counts, edges = np.histogram(np.clip(state.query.scores, -1, 1), bins=400, range=(-1, 1))
    x, y = view.curve.getData()
    np.testing.assert_array_equal(y, counts)
    np.testing.assert_allclose(x, edges)
    np.testing.assert_array_equal(view.histogram.counts, counts)
    assert int(y.sum()) == len(state.collection) == 28

    k = state.query.top_k
    kth_best = np.sort(state.query.scores)[::-1][k - 1]
    assert view.cutoff.value() == view.histogram.top_k_threshold == kth_best
    assert view.cutoff.label.format == f"top {k}"
    title = view.plot.getPlotItem().titleLabel.text
    assert "28 images" in title and "cat-original.jpg, cat-gray.jpg" in title

    # Zoomed to the data: the occupied bins are all in view, and not much else.
    (x_low, x_high), _ = view.plot.getPlotItem().getViewBox().viewRange()
    low, high = view.histogram.occupied_range()
    assert x_low <= low and high <= x_high and (x_high - x_low) < 1.5 * (high - low) + 0.05

    # Back to empty when the query is cleared.
    state.query.clear()
    qtbot.wait(20)
    assert view.stack.currentWidget() is view.empty and view.histogram is None


def test_range_selection_filters_the_grid_exactly(qtbot, ready_window):
    view, state = ready_window.histograms, ready_window.state
    query(qtbot, ready_window, "coffee-original.jpg")

    view.set_range(0.35, 0.9)
    lo, hi = view.region.getRegion()
    expected = analysis.rows_in_range(state.query.scores, lo, hi)
    np.testing.assert_array_equal(state.grid_filter, expected)
    assert 0 < len(expected) < 28
    assert state.filter_description == f"{len(expected)} images with similarity 0.35\u20130.90"
    assert view.range_label.text() == state.filter_description

    # Dragging the region (programmatically here): the filter follows once the drag pauses.
    filters = []
    state.filter_changed.connect(filters.append)
    view.region.setRegion((0.2, 0.6))
    view.region.setRegion((0.25, 0.65))
    assert filters == []  # debounced
    qtbot.waitUntil(lambda: filters == ["histogram"], timeout=2000)
    np.testing.assert_array_equal(state.grid_filter, analysis.rows_in_range(state.query.scores, 0.25, 0.65))

    # "Select range": the top K by default, best first, as the grid will list them.
    view.select_button.click()
    np.testing.assert_array_equal(state.grid_filter, state.query.top_rows())
    assert view.selected_range() == (view.histogram.top_k_threshold, float(state.query.scores.max()))

    # A new query keeps the range and re-applies it to the new scores.
    lo, hi = 0.3, 0.7
    view.set_range(lo, hi)
    query(qtbot, ready_window, "rocket-original.jpg")
    np.testing.assert_array_equal(state.grid_filter, analysis.rows_in_range(state.query.scores, lo, hi))

    # Another view's filter replaces ours: the region goes away.
    state.set_filter(np.array([1, 2]), "2 selected", "map")
    assert not view.region.isVisible() and view.selected_range() is None
    np.testing.assert_array_equal(state.grid_filter, [1, 2])

    # Clear resets the grid to every image.
    view.set_range(lo, hi)
    view.clear_button.click()
    assert state.grid_filter is None and state.filter_description == ""
    assert not view.region.isVisible()


def test_dragging_on_the_plot_draws_a_range(qtbot, ready_window):
    view, state = ready_window.histograms, ready_window.state
    query(qtbot, ready_window, "astronaut-original.jpg")
    ready_window.histogram_dock.widget().resize(700, 300)
    qtbot.wait(20)
    vb = view.plot.getPlotItem().getViewBox()
    (x_low, x_high), (y_low, y_high) = vb.viewRange()
    a = x_low + 0.3 * (x_high - x_low)
    b = x_low + 0.7 * (x_high - x_low)
    y = (y_low + y_high) / 2
    viewport = view.plot.viewport()
    start = QPointF(view.plot.mapFromScene(vb.mapViewToScene(QPointF(a, y))))
    end = QPointF(view.plot.mapFromScene(vb.mapViewToScene(QPointF(b, y))))
    send_mouse(viewport, QEvent.Type.MouseButtonPress, start, Qt.MouseButton.LeftButton)
    for t in np.linspace(0.1, 1, 6):
        send_mouse(viewport, QEvent.Type.MouseMove, start + (end - start) * float(t), Qt.MouseButton.LeftButton)
    send_mouse(viewport, QEvent.Type.MouseButtonRelease, end, Qt.MouseButton.NoButton)
    assert view.region.isVisible()
    lo, hi = view.selected_range()
    tolerance = 0.03 * (x_high - x_low)
    assert abs(lo - a) < tolerance and abs(hi - b) < tolerance
    qtbot.waitUntil(lambda: state.grid_filter is not None, timeout=2000)
    np.testing.assert_array_equal(state.grid_filter, analysis.rows_in_range(state.query.scores, lo, hi))


def test_recomputes_at_most_once_per_event_loop_turn(qtbot, ready_window, monkeypatch):
    view, state = ready_window.histograms, ready_window.state
    calls = []
    real = analysis.similarity_histogram
    monkeypatch.setattr(histograms.analysis, "similarity_histogram",
                        lambda *a, **k: calls.append(1) or real(*a, **k))
    [cat, rocket] = rows_by_name(state, "cat-original.jpg", "rocket-original.jpg")
    ready_window.session.query_by_rows([cat])
    ready_window.session.query_by_rows([rocket], replace=False)
    state.query.set_top_k(5)
    state.query.set_top_k(7)
    assert calls == []
    qtbot.wait(30)
    assert len(calls) == 1
    assert view.histogram.top_k == 7 and view.cutoff.label.format == "top 7"
    np.testing.assert_array_equal(view.histogram.counts,
                                  np.histogram(np.clip(state.query.scores, -1, 1), 400, (-1, 1))[0])


def test_screenshot_is_not_blank(qtbot, ready_window):
    view = ready_window.histograms
    query(qtbot, ready_window, "cat-original.jpg")
    ready_window.histogram_dock.widget().resize(760, 320)
    view.select_top_k()
    qtbot.wait(50)
    image = view.grab().toImage()
    assert image.save(str(SCREENSHOT))
    small = image.convertToFormat(QImage.Format.Format_RGB32).scaled(96, 48)
    colours = {small.pixel(x, y) for x in range(96) for y in range(48)}
    assert len(colours) > 20, f"histogram looks blank ({len(colours)} colours)"
