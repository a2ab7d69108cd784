"""The map view (explorer/gui/views/map/map_view.py) with real widgets on the indexed 28-image folder."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pyqtgraph as pg
import pytest
from PIL import Image
from PySide6.QtCore import QEvent, QPoint, QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QMouseEvent, QPolygonF
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

from explorer.core import analysis, layout_worker
from explorer.core.layout import QUICK, UMAP, extend_layout, quick_layout
from explorer.gui.controllers.tasks import TaskKind
from explorer.gui.views.map import map_view as scatter
from explorer.gui.views.map.map_items import (
    NO_QUERY_COLOUR, SELECTION_COLOURS, PaletteScatterItem, label_colouring, points_in_polygon,
    similarity_palette,
)

# Screenshots to look at by eye (not compared with anything): /tmp/map.png, /tmp/map-zoomed.png.
SCREENSHOTS = Path(os.environ.get("EXPLORER_SCREENSHOT_DIR", tempfile.gettempdir()))


@pytest.fixture
def map_view(qtbot, ready_window):
    """The map of the ready window, its dock floated at a fixed size (the other docks' sizes
    are none of these tests' business)."""
    win = ready_window
    win.map_dock.setFloating(True)
    win.map_dock.resize(760, 640)
    view = win.map
    qtbot.waitUntil(lambda: len(view.point_rows()) == len(win.state.layout.ids) and view.plot.width() > 600
                    and view.plot.height() > 450)
    view.reset_view()
    yield view
    # The map starts thumbnail loads (28 points fit the image map). Let them finish and deliver
    # their queued results while the window still exists: delivered after it is deleted, they
    # raise "Signal source has been deleted" inside the next test.
    win.tasks.shutdown()
    QApplication.processEvents()


def point_table(view) -> tuple[np.ndarray, np.ndarray]:
    """(collection rows, positions) of the layout's points, in layout order."""
    state = view.state
    rows = np.searchsorted(state.collection.ids, state.layout.ids)
    return rows, np.asarray(state.layout.xy, np.float64)


def viewport_pos(view, xy) -> QPoint:
    scene = view.view_box.mapViewToScene(QPointF(float(xy[0]), float(xy[1])))
    return view.plot.mapFromScene(scene)


def send_mouse(widget, kind: QEvent.Type, pos: QPoint, button=Qt.MouseButton.NoButton,
               buttons=Qt.MouseButton.NoButton, modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A real QMouseEvent straight to the widget (QTest's go through the window system, which
    does not route them reliably to a floating dock under the offscreen platform)."""
    event = QMouseEvent(kind, QPointF(pos), QPointF(widget.mapToGlobal(pos)), button, buttons, modifiers)
    QApplication.sendEvent(widget, event)


def click(widget, pos: QPoint) -> None:
    left = Qt.MouseButton.LeftButton
    send_mouse(widget, QEvent.Type.MouseButtonPress, pos, left, left)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, pos, left)


def drag(widget, points: list[QPoint], modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    """A left-button drag through `points`."""
    left = Qt.MouseButton.LeftButton
    send_mouse(widget, QEvent.Type.MouseButtonPress, points[0], left, left, modifiers)
    for pos in points[1:]:
        QTest.qWait(20)  # pyqtgraph starts a drag only after a short time or distance
        send_mouse(widget, QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, left, modifiers)
    send_mouse(widget, QEvent.Type.MouseButtonRelease, points[-1], left, Qt.MouseButton.NoButton, modifiers)


def grab_array(widget) -> np.ndarray:
    image = widget.grab().toImage().convertToFormat(widget.grab().toImage().Format.Format_RGB32)
    array = np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)
    return array[:, :image.width(), :3].copy()


# --- pure parts --------------------------------------------------------------------------------


def test_points_in_polygon_matches_qt_on_a_concave_polygon():
    rng = np.random.default_rng(1)
    points = rng.uniform(-1.2, 1.2, (4000, 2))
    angles = np.linspace(0, 2 * np.pi, 11)[:-1]
    radii = np.where(np.arange(10) % 2, 0.35, 1.0)  # a five-pointed star: concave
    star = np.column_stack([radii * np.cos(angles), radii * np.sin(angles)])
    polygon = QPolygonF([QPointF(x, y) for x, y in star])
    expected = np.array([polygon.containsPoint(QPointF(x, y), Qt.FillRule.OddEvenFill) for x, y in points])
    assert 200 < expected.sum() < 3000
    assert np.array_equal(points_in_polygon(points, star), expected)
    assert not points_in_polygon(points, star[:2]).any()  # not a polygon


def test_label_colouring_follows_state_label_of_and_keeps_colours_by_name(qtbot):
    colouring = label_colouring(*analysis.label_codes(["b/1.jpg", "top.jpg", "a/2.jpg", "b/c/3.jpg"]))
    names = [colouring.palette[i].name() for i in colouring.index]
    assert names[0] == names[3] != names[2]  # b, b (first component only), a
    assert names[2] == QColor("#4e79a7").name()  # "a" sorts first: the first colour
    assert names[1] == QColor("#8a8a8a").name()  # top level: grey
    assert "(top level)" in colouring.legend


def test_palette_scatter_matches_pyqtgraph_and_draws_bright_last(qtbot):
    rng = np.random.default_rng(2)
    item = PaletteScatterItem(pen=None, size=6)
    brushes = [pg.mkBrush(c) for c in ("#ff0000", "#00ff00", "#0000ff", "#ffffff")]
    index = rng.integers(0, 4, 500)
    xy = rng.normal(size=(500, 2))
    reference = pg.ScatterPlotItem(pxMode=True, pen=None, size=6)
    reference.setData(pos=xy, data=np.arange(500))
    item.set_points(xy, np.arange(500))
    for name in item.data.dtype.names:  # the point table pyqtgraph's setData would have built
        assert [repr(v) for v in item.data[name]] == [repr(v) for v in reference.data[name]], name
    assert item.boundingRect() == reference.boundingRect()
    item.set_colours(brushes, index)
    data = item.data
    rows = data["data"].astype(int)
    assert [data["brush"][i] is brushes[index[r]] for i, r in enumerate(rows)] == [True] * 500
    assert np.all(np.diff(index[rows]) >= 0)  # palette order = paint order
    fast = data["sourceRect"].copy()
    data["sourceRect"] = 0
    pg.ScatterPlotItem.updateSpots(item)  # pyqtgraph's own per-point lookup
    assert np.array_equal(fast, data["sourceRect"])


def test_a_dense_scatter_is_painted_as_one_image_kept_while_panning(qtbot):
    """From `dense_from` points the scatter paints an image of them: each point in its colour
    where pyqtgraph would draw it, the colour drawn last on top, the same image while panning,
    and a new one once a zoom pauses."""
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    widget.resize(600, 400)
    widget.show()
    qtbot.waitExposed(widget)
    item = PaletteScatterItem(pen=None, size=4)
    item.dense_from = 1_000
    widget.addItem(item)
    rng = np.random.default_rng(3)
    cloud = rng.normal(scale=0.5, size=(3_000, 2))  # a dense cloud round (0, 0)
    lone = np.array([[4.0, 3.0], [-4.0, -3.0], [4.0, -3.0], [-4.0, 3.0]])
    xy = np.vstack([cloud, lone, lone[:1]])  # the first lone point twice, in two colours
    index = np.r_[rng.integers(0, 3, len(cloud)), 0, 1, 2, 0, 2]
    colours = ["#ff0000", "#00ff00", "#0000ff"]
    item.set_points(xy, np.arange(len(xy)))
    item.set_colours([pg.mkBrush(c) for c in colours], index)
    view = widget.getViewBox()
    view.setRange(QRectF(-6, -5, 12, 10), padding=0)

    def colour_at(image, x: float, y: float) -> str:
        """The palette colour (or black) nearest the pixel at data point (x, y): pyqtgraph's
        symbols are antialiased."""
        where = widget.mapFromScene(view.mapViewToScene(QPointF(x, y)))
        seen = np.array(image.pixelColor(where.x(), where.y()).getRgb()[:3])
        return min(colours + ["#000000"], key=lambda c: np.abs(np.array(QColor(c).getRgb()[:3]) - seen).sum())

    image = widget.grab().toImage()
    assert item.rasters_made == 1
    expected = ["#0000ff", "#00ff00", "#0000ff", "#ff0000"]  # the doubled point: blue (drawn last) on top
    assert [colour_at(image, x, y) for x, y in lone] == expected
    assert colour_at(image, 2.5, 0) == "#000000"  # nothing there
    assert len(item.data) == 2  # pyqtgraph's table: the corners of the points' bounds only

    def show(dense_from: int) -> None:
        item.dense_from = dense_from
        item.set_points(xy, np.arange(len(xy)))
        item.set_colours([pg.mkBrush(c) for c in colours], index)

    show(10 ** 9)  # the same points drawn by pyqtgraph, point by point
    assert len(item.data) == len(xy)
    assert [colour_at(widget.grab().toImage(), x, y) for x, y in lone] == expected
    show(1_000)
    widget.grab()
    made = item.rasters_made

    view.translateBy(x=1.0, y=0.5)  # a pan within the half view painted around the view
    image = widget.grab().toImage()
    assert item.rasters_made == made
    assert [colour_at(image, x, y) for x, y in lone] == expected

    view.scaleBy((0.9, 0.9), center=QPointF(0, 0))  # zooming in: the last image scaled, at most
    widget.grab()                                     # until the zoom pauses
    qtbot.waitUntil(lambda: (widget.grab(), item.rasters_made)[1] > made, timeout=2000)
    image = widget.grab().toImage()
    assert [colour_at(image, x, y) for x, y in lone] == expected


# --- the map in the main window ----------------------------------------------------------------


def test_one_scatter_holds_every_laid_out_image(map_view):
    state, view = map_view.state, map_view
    layout = state.layout
    scatters = [item for item in view.view_box.addedItems if isinstance(item, pg.ScatterPlotItem)
                and len(item.data) == len(layout.ids)]
    assert scatters == [view.scatter] and view.scatter.opts["pxMode"]
    rows = view.scatter.data["data"].astype(np.int64)
    ids = state.collection.ids[rows]
    assert sorted(ids) == sorted(layout.ids)
    where = np.searchsorted(layout.ids, ids)
    drawn = np.column_stack([view.scatter.data["x"], view.scatter.data["y"]])
    np.testing.assert_allclose(drawn, layout.xy[where], rtol=1e-6)
    assert view.pages.currentWidget() is view.plot


def test_rectangle_selection_selects_and_filters_exactly_the_points_inside(qtbot, map_view):
    state, view = map_view.state, map_view
    rows, xy = point_table(view)
    # The left half of the map, all heights: never empty, whatever shape UMAP gives the clusters
    # (a lower-left quadrant was empty for some layouts).
    x0, y0 = xy.min(axis=0) - 1
    x1, y1 = np.median(xy[:, 0]) + 0.01, xy[:, 1].max() + 1
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    expected = np.sort(rows[inside])
    assert 0 < len(expected) < len(rows)
    with qtbot.waitSignal(state.filter_changed):
        view.select_in_rect(QRectF(QPointF(x0, y0), QPointF(x1, y1)))
    assert np.array_equal(state.selection, expected)
    assert np.array_equal(state.grid_filter, expected)
    assert state.filter_description == f"{len(expected)} images selected on the map"
    assert len(view.selection_rings.data) == len(expected)  # shown in the folder colouring too
    # An empty rectangle clears both.
    view.select_in_rect(QRectF(x1 + 100, y1 + 100, 1, 1))
    assert len(state.selection) == 0 and state.grid_filter is None


def test_shift_drag_with_the_mouse_selects_a_rectangle(qtbot, map_view):
    state, view = map_view.state, map_view
    rows, xy = point_table(view)
    corner_a, corner_b = xy.min(axis=0), np.array([np.median(xy[:, 0]), xy[:, 1].max()])  # left half
    a, b = viewport_pos(view, corner_a) - QPoint(6, -6), viewport_pos(view, corner_b)
    steps = [a + (b - a) * t / 8 for t in range(9)]
    drag(view.plot.viewport(), steps, Qt.KeyboardModifier.ShiftModifier)
    low = view.view_box.mapSceneToView(view.plot.mapToScene(a))
    high = view.view_box.mapSceneToView(view.plot.mapToScene(b))
    (x0, x1), (y0, y1) = sorted((low.x(), high.x())), sorted((low.y(), high.y()))
    inside = (xy[:, 0] >= x0) & (xy[:, 0] <= x1) & (xy[:, 1] >= y0) & (xy[:, 1] <= y1)
    assert inside.any()
    assert np.array_equal(state.selection, np.sort(rows[inside]))
    assert np.array_equal(state.grid_filter, np.sort(rows[inside]))


def test_lasso_selects_exactly_the_points_inside_the_polygon(qtbot, map_view):
    state, view = map_view.state, map_view
    rows, xy = point_table(view)
    centre, spread = xy.mean(axis=0), xy.std(axis=0)
    # A concave "L" around the centre, offset by an irrational-ish amount so no point is on an edge.
    shape = np.array([(-1.3, -1.1), (1.17, -1.1), (1.17, 0.05), (0.03, 0.05), (0.03, 1.21), (-1.3, 1.21)])
    polygon = centre + shape * spread
    qt_polygon = QPolygonF([QPointF(x, y) for x, y in polygon])
    inside = np.array([qt_polygon.containsPoint(QPointF(x, y), Qt.FillRule.OddEvenFill) for x, y in xy])
    assert 0 < inside.sum() < len(xy)
    view.set_tool("lasso")
    assert view.view_box.tool == "lasso" and view.tool_actions["lasso"].isChecked()
    view.select_in_polygon(polygon)
    assert np.array_equal(state.selection, np.sort(rows[inside]))
    assert np.array_equal(state.grid_filter, np.sort(rows[inside]))
    # Ctrl adds to the selection instead of replacing it.
    view.select_in_polygon(centre + shape * spread * np.array([-1, -1]), add=True)
    assert set(rows[inside]) <= set(state.selection.tolist())


def test_click_on_a_point_queries_by_that_image_and_hover_previews_it(qtbot, map_view):
    state, view = map_view.state, map_view
    rows, xy = point_table(view)
    target = int(np.argmax(xy[:, 0]))  # rightmost point: nothing drawn over it on the right
    pos = viewport_pos(view, xy[target])
    expected = view.row_at(QPointF(*xy[target]))
    assert expected is not None
    send_mouse(view.plot.viewport(), QEvent.Type.MouseMove, pos)
    qtbot.waitUntil(lambda: view.preview.isVisible())
    assert view.preview.name.text() == Path(state.collection.paths[expected]).name
    assert len(view.hover_ring.data) == 1
    click(view.plot.viewport(), pos)
    qtbot.waitUntil(lambda: len(state.query.positives) == 1)
    assert state.query.positives[0].path == state.path_of(expected)
    assert state.query.scores is not None
    assert len(view.top_rings.data) == min(state.query.top_k, len(rows))  # top-k outlined
    send_mouse(view.plot.viewport(), QEvent.Type.MouseMove, QPoint(2, 2))  # far from every point
    qtbot.waitUntil(lambda: not view.preview.isVisible())


def test_colour_by_similarity_and_by_selection(qtbot, map_view):
    state, view = map_view.state, map_view
    view.set_colour_mode("similarity")
    assert view.colour_box.currentData() == "similarity"
    grey = {brush.color().name() for brush in view.scatter.data["brush"]}
    assert grey == {QColor(NO_QUERY_COLOUR).name()}  # no query yet
    view.session.query_by_rows([3])
    top_row = int(np.argmax(state.query.scores))
    data = view.scatter.data
    brushes = {int(row): brush.color() for row, brush in zip(data["data"], data["brush"])}
    assert brushes[top_row].name() == similarity_palette()[-1].name()
    assert data["data"][-1] == top_row  # the most similar is painted last, on top
    view.image_map_max_points = 0  # points only
    view._update_image_map()
    view.grab().save(str(SCREENSHOTS / "map-similarity.png"))
    # Another view selects: the selection colouring follows.
    view.set_colour_mode("selection")
    chosen = np.array([0, 5, 9])
    state.select(chosen, "grid")
    data = view.scatter.data
    selected = {int(row) for row, brush in zip(data["data"], data["brush"])
                if brush.color() == QColor(*SELECTION_COLOURS[1])}
    assert selected == set(chosen.tolist())


def test_zooming_in_turns_visible_points_into_thumbnails(qtbot, map_view, monkeypatch):
    state, view = map_view.state, map_view
    rows, xy = point_table(view)
    asked = []  # thumbnails the map asks for (the grid shares the cache: watch the map only)
    show = view.image_map.show
    monkeypatch.setattr(view.image_map, "show", lambda rows_, xy_, keys, *rest: (
        asked.extend(keys), show(rows_, xy_, keys, *rest))[-1])
    # Zoom to one folder's cluster (its 7 variants sit close together), so they spread out.
    folder = np.array([state.label_of(r) for r in rows]) == state.label_of(rows[0])
    low, high = xy[folder].min(axis=0), xy[folder].max(axis=0)
    view.view_box.setRange(QRectF(*low, *(high - low)), padding=0.6)
    asked.clear()  # the full view (28 points) had its thumbnails; from here, only these
    # (The whole map's 28 thumbnails stay until the debounced update after the zoom.)
    qtbot.waitUntil(lambda: sorted(view.thumbnail_rows()) == sorted(rows[view.visible_points()]))
    visible = view.visible_points()
    assert 0 < len(visible) < len(rows)
    assert set(asked) == {state.collection.paths[r] for r in rows[visible]}
    assert sum(tile.isVisible() for tile in view.image_map._pool) == len(visible)
    qtbot.waitUntil(lambda: all(t.image.isVisible() for t in view.image_map.tiles()), timeout=20_000)
    view.plot.grab().save(str(SCREENSHOTS / "map-zoomed.png"))
    # The whole map holds more points than the threshold: back to plain points.
    view.image_map_max_points = 8
    view.reset_view()
    qtbot.waitUntil(lambda: len(view.thumbnail_rows()) == 0)
    assert not any(tile.isVisible() for tile in view.image_map._pool)


def test_the_map_draws_something_and_says_when_there_is_no_layout(qtbot, map_view):
    state, view = map_view.state, map_view
    view.set_colour_mode("label")
    view.image_map_max_points = 0  # points only, for the pixel statistics
    view.reset_view()
    qtbot.wait(scatter.RANGE_DEBOUNCE_MS + 50)
    pixels = grab_array(view.plot)
    background = np.array(QColor(scatter.BACKGROUND).getRgb()[:3])[::-1]  # grab is BGR(A) in memory
    drawn = np.abs(pixels.astype(int) - background).sum(axis=2) > 30
    assert drawn.sum() > 28 * 8  # a point covers ~50 pixels; variants of one photo overlap
    colours = {tuple(p) for p in pixels[drawn][::3]}
    assert len(colours) >= 4  # four folders, four colours (plus antialiasing shades)
    view.grab().save(str(SCREENSHOTS / "map.png"))
    assert "cat" in view.legend.text() and "rocket" in view.legend.text()
    layout = state.layout
    state.set_layout(None)
    assert view.pages.currentWidget() is view.message
    assert view.message.text() == "Computing map\u2026" and not view.toolbar.isEnabled()
    state.set_layout(layout)
    assert view.pages.currentWidget() is view.plot and len(view.scatter.data) == len(layout.ids)
    for action in [*view.tool_actions.values(), view.reset_action]:
        assert action.toolTip()
    assert view.colour_box.toolTip()


def test_a_photo_added_later_is_placed_by_umap_transform_and_no_point_moves(qtbot, ready_window):
    win, state = ready_window, ready_window.state
    before = state.layout
    source = state.folder / "rocket" / "rocket-original.jpg"
    with Image.open(source) as im:  # a new rocket photo, no copy of an indexed one
        im.convert("RGB").resize((im.width * 3 // 4, im.height * 3 // 4)).rotate(8).save(
            state.folder / "rocket" / "rocket-added.jpg", quality=85)
    win.session.reindex()
    qtbot.waitUntil(lambda: len(state.layout.ids) == len(before.ids) + 1 and not state.indexing.running
                    and win.tasks.latest(TaskKind.OPEN) is None, timeout=120_000)
    known, xy = state.layout.positions_of(before.ids)
    assert known.all()
    np.testing.assert_array_equal(xy, before.xy)  # no refit: the map the user knows stays
    [new_id] = np.setdiff1d(state.layout.ids, before.ids)
    [position] = state.layout.positions_of(np.array([new_id]))[1]
    rows = np.searchsorted(state.collection.ids, before.ids)
    start = extend_layout(before, state.collection.vectors, state.collection.ids, state.collection.vectors[rows])
    [start_position] = start.positions_of(np.array([new_id]))[1]
    assert not np.allclose(position, start_position, atol=1e-3)  # UMAP's epochs moved it on
    labels = np.array([state.label_of(r) for r in rows])
    centres = {label: before.xy[labels == label].mean(axis=0) for label in set(labels)}
    assert min(centres, key=lambda label: np.linalg.norm(centres[label] - position)) == "rocket"
    assert win.map.point_rows().size == len(state.layout.ids)


def drawn_positions(view, layout) -> np.ndarray:
    """Where the scatter draws each of `layout`'s ids (in layout order)."""
    rows = view.scatter.data["data"].astype(np.int64)
    drawn = np.column_stack([view.scatter.data["x"], view.scatter.data["y"]])
    where = np.searchsorted(view.state.collection.ids[rows], layout.ids, sorter=np.argsort(rows))
    return drawn[np.argsort(rows)][where]


def test_the_quick_map_shows_at_once_and_umap_replaces_it_keeping_the_selection(qtbot, window, indexed_folder):
    """A cold layout process whose fit is held back (its lock taken by the test), so that the
    quick map is certainly on screen, and used, before UMAP's arrives."""
    state, view = window.state, window.map
    process = layout_worker.shared_process()
    process.stop()  # cold: the next fit starts a new child
    with process._lock:
        window.open_folder(indexed_folder)
        qtbot.waitUntil(lambda: state.layout is not None, timeout=60_000)
        quick = state.layout
        assert quick.kind == QUICK and len(quick.ids) == len(state.collection) == 28
        assert sorted(view.point_rows()) == list(range(28))
        np.testing.assert_allclose(drawn_positions(view, quick), quick.xy, rtol=1e-6)
        assert view.layout_label.text() == "Quick layout \u2014 refining\u2026" and state.layout_refining
        label = view.layout_label  # in the map's corner, whole, whatever the dock's width
        assert label.isVisible() and view.plot.viewport().rect().contains(label.geometry())
        # The selection works on the quick map.
        rows, xy = point_table(view)
        x1 = np.median(xy[:, 0]) + 1e-6
        view.select_in_rect(QRectF(QPointF(xy[:, 0].min() - 1, xy[:, 1].min() - 1),
                                   QPointF(x1, xy[:, 1].max() + 1)))
        selected = np.sort(rows[xy[:, 0] <= x1])
        assert 0 < len(selected) < 28 and np.array_equal(state.selection, selected)
        qtbot.wait(300)
        assert state.layout is quick  # UMAP is still waiting for the lock
    qtbot.waitUntil(lambda: state.layout.kind == UMAP, timeout=120_000)
    umap_layout = state.layout
    assert sorted(umap_layout.ids) == sorted(quick.ids)
    qtbot.waitUntil(lambda: not view.in_transition() and not state.layout_refining, timeout=10_000)
    assert view.layout_label.text() == "UMAP"
    # Every point is drawn at its own UMAP position, and the selection followed its images.
    np.testing.assert_allclose(drawn_positions(view, umap_layout), umap_layout.xy, rtol=1e-6)
    assert np.array_equal(state.selection, selected)
    rings = np.column_stack([view.selection_rings.data["x"], view.selection_rings.data["y"]])
    ring_rows = view.selection_rings.data["data"].astype(np.int64)
    assert sorted(ring_rows) == selected.tolist()
    _, expected = umap_layout.positions_of(state.collection.ids[ring_rows])
    np.testing.assert_allclose(rings, expected, rtol=1e-6)


def test_the_points_glide_from_the_quick_layout_to_umaps(qtbot, ready_window):
    """Mid-transition every point lies between its two places, and the hit tests follow."""
    win, state, view = ready_window, ready_window.state, ready_window.map
    umap_layout = state.layout
    quick = quick_layout(state.collection.vectors, state.collection.ids)
    state.set_layout(quick)
    state.set_layout(umap_layout)
    assert view.in_transition()
    view._transition.pause()
    view._transition.setCurrentTime(scatter.TRANSITION_MS // 2)
    halfway = drawn_positions(view, umap_layout)
    middle = (quick.xy.astype(np.float64) + umap_layout.xy) / 2
    # InOutCubic is exactly half-way at half the time.
    np.testing.assert_allclose(halfway, middle, rtol=1e-5, atol=1e-5)
    view._transition.setCurrentTime(scatter.TRANSITION_MS)
    view._transition.resume()
    qtbot.waitUntil(lambda: not view.in_transition(), timeout=5000)
    np.testing.assert_allclose(drawn_positions(view, umap_layout), umap_layout.xy, rtol=1e-6)
