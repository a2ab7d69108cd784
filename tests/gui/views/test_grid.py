"""The thumbnail grid with real widgets: order, filters, linked selection, thumbnails, zoom, drag,
preview and context menu."""

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QGuiApplication, QWheelEvent
from PySide6.QtWidgets import QApplication

from explorer.core import catalog
from explorer.core.indexer import index_folder
from explorer.gui.views.grid import grid_view as grid_module
from explorer.gui.views.grid.grid_view import BY_NAME, BY_SIMILARITY, MAX_SIZE, MIN_SIZE, GridView
from explorer.gui.views.grid.grid_model import ROW_ROLE, SCORE_ROLE
from explorer.gui.controllers.session import Session
from explorer.gui.state.app_state import AppState, IndexingStatus
from explorer.gui.state.query import QueryExample
from explorer.gui.controllers.thumbnails import ThumbnailCache
from explorer.gui.controllers.tasks import Tasks
from helpers import copy_sample
from gui_helpers import rows_by_name, wait_until_ready

DecorationRole = Qt.ItemDataRole.DecorationRole


@pytest.fixture(scope="module")
def indexed_photos(tmp_path_factory, lite0) -> Path:
    """Indexed once per module: each test's window then opens it (and its cached map) at once."""
    folder = copy_sample(tmp_path_factory.mktemp("grid") / "photos", ["cat", "coffee", "rocket", "astronaut"])
    index_folder(folder, lite0)
    return folder


@pytest.fixture
def win(qtbot, indexed_photos):
    """A main window showing the indexed photos, closed by us rather than by qtbot.

    qtbot closes its widgets before fixture teardown, and a thumbnail load that a timer starts
    right after that close finishes after the window is deleted ("Signal source has been
    deleted"). Closing here lets us stop new loads first and deliver the queued results.
    """
    from explorer.gui.main_window import MainWindow

    window = MainWindow()
    window.show()
    window.open_folder(indexed_photos)
    wait_until_ready(qtbot, window)
    yield window
    window.thumbnails.set_folder(None)  # late paints and timers start no new loads
    window.close()  # closeEvent shuts the session down, waiting for the workers
    qtbot.wait(20)  # their queued results arrive while the Task objects still exist
    window.deleteLater()
    qtbot.wait(1)


def shown_rows(grid: GridView) -> np.ndarray:
    model = grid.model
    return np.array([model.index(i).data(ROW_ROLE) for i in range(model.rowCount())], np.int64)


def name_order(state) -> np.ndarray:
    return np.argsort([p.lower() for p in state.collection.paths], kind="stable")


def test_grid_shows_every_image_in_name_order(win):
    grid, state = win.grid, win.state
    assert win.centralWidget() is grid
    assert grid.model.rowCount() == len(state.collection) == 28
    np.testing.assert_array_equal(shown_rows(grid), name_order(state))
    first = grid.model.index(0)
    assert first.data() == Path(state.collection.paths[shown_rows(grid)[0]]).name
    assert grid.count_label.text() == "28 images"
    assert grid.view.viewMode() == grid.view.ViewMode.IconMode and grid.view.uniformItemSizes()


def test_thumbnails_arrive_and_the_grid_is_not_blank(qtbot, win):
    grid = win.grid
    win.resize(1200, 800)
    grid.set_thumbnail_size(128)
    visible = range(8)
    for i in visible:  # painting asks for them; ask explicitly as well, offscreen paints lazily
        grid.model.index(i).data(DecorationRole)
    qtbot.waitUntil(lambda: all(grid.model.index(i).data(DecorationRole) is not None for i in visible),
                    timeout=20_000)
    pixmap = grid.model.index(0).data(DecorationRole)
    assert not pixmap.isNull() and max(pixmap.width(), pixmap.height()) >= 64
    grab = grid.grab()
    grab.save("/tmp/grid.png")
    pixels = _pixels(grab.toImage())
    assert pixels.std() > 25  # photographs, not a flat background or placeholders


def _pixels(image) -> np.ndarray:
    image = image.convertToFormat(image.Format.Format_RGB32)
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine())


def test_a_query_sorts_by_similarity_and_shows_scores(qtbot, win):
    grid, state = win.grid, win.state
    cat, coffee = rows_by_name(state, "cat/cat-original.jpg", "coffee/coffee-original.jpg")
    win.session.query_by_rows([cat])
    assert grid.sort_combo.currentIndex() == BY_SIMILARITY  # switched by itself
    expected = np.argsort(-state.query.scores, kind="stable")
    np.testing.assert_array_equal(shown_rows(grid), expected)
    assert shown_rows(grid)[0] == cat
    assert grid.model.index(3).data(SCORE_ROLE) == pytest.approx(float(state.query.scores[expected[3]]))
    assert "Similarity" in grid.model.index(0).data(Qt.ItemDataRole.ToolTipRole)

    grid.sort_combo.setCurrentIndex(BY_NAME)
    np.testing.assert_array_equal(shown_rows(grid), name_order(state))
    win.session.query_by_rows([coffee])  # a new query switches back to similarity
    np.testing.assert_array_equal(shown_rows(grid), np.argsort(-state.query.scores, kind="stable"))

    state.query.clear()
    assert grid.sort_combo.currentIndex() == BY_NAME
    assert not grid.sort_combo.model().item(BY_SIMILARITY).isEnabled()
    assert grid.model.index(0).data(SCORE_ROLE) is None


def test_the_filter_shows_exactly_its_rows_in_the_chosen_order(qtbot, win):
    grid, state = win.grid, win.state
    rows = np.array([17, 3, 25, 3, 8], np.int64)  # repeats are shown once
    state.set_filter(rows, "Similarity 0.50 \u2013 0.80", "histogram")
    by_name = [r for r in name_order(state) if r in (3, 8, 17, 25)]
    np.testing.assert_array_equal(shown_rows(grid), by_name)
    win.session.query_by_rows([5])  # a query: the grid sorts by similarity, the filter stays
    qtbot.waitUntil(lambda: grid.sort_combo.currentIndex() == BY_SIMILARITY)
    np.testing.assert_array_equal(shown_rows(grid), sorted({3, 8, 17, 25}, key=lambda r: -state.query.scores[r]))
    state.query.clear()
    state.set_filter(rows, "Similarity 0.50 \u2013 0.80", "histogram")
    assert grid.filter_label.isVisibleTo(grid) and "0.50" in grid.filter_label.text()
    assert grid.count_label.text() == "4 of 28 images"
    state.set_filter(np.array([], np.int64), "empty range", "histogram")
    assert grid.model.rowCount() == 0 and "No images match" in grid.view.empty_message
    qtbot.mouseClick(grid.show_all_button, Qt.MouseButton.LeftButton)
    assert state.grid_filter is None and grid.model.rowCount() == 28
    assert not grid.show_all_button.isVisibleTo(grid)


def test_selection_round_trips_without_loops(qtbot, win):
    grid, state = win.grid, win.state
    emitted = []
    state.selection_changed.connect(emitted.append)

    # grid -> state: click, then shift-click
    view = grid.view
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.visualRect(grid.model.index(2)).center())
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ShiftModifier,
                     view.visualRect(grid.model.index(5)).center())
    np.testing.assert_array_equal(state.selection, np.sort(shown_rows(grid)[2:6]))
    assert emitted and set(emitted) == {"grid"}

    # state -> grid: mirrored, and nothing comes back from the grid
    emitted.clear()
    wanted = np.array([1, 9, 10, 11, 20], np.int64)
    state.select(wanted, "map")
    assert emitted == ["map"]
    np.testing.assert_array_equal(np.sort(grid.selected_rows()), wanted)
    np.testing.assert_array_equal(state.selection, wanted)

    # a reordering keeps the mirrored selection
    win.session.query_by_rows([0])
    np.testing.assert_array_equal(np.sort(grid.selected_rows()), wanted)
    assert emitted == ["map"]


def test_selection_only_shows_the_selection(qtbot, win):
    grid, state = win.grid, win.state
    state.select([4, 12, 13], "map")
    grid.selection_only.setChecked(True)
    np.testing.assert_array_equal(np.sort(shown_rows(grid)), [4, 12, 13])
    # choosing one of them in the grid does not make the other two vanish under the cursor
    grid.view.setCurrentIndex(grid.model.index(0))
    assert len(state.selection) == 1 and grid.model.rowCount() == 3
    state.select([], "map")
    assert grid.model.rowCount() == 0 and "Nothing selected" in grid.view.empty_message
    grid.selection_only.setChecked(False)
    assert grid.model.rowCount() == 28


def test_rows_appear_as_indexing_grows_the_collection(qtbot, win):
    grid, state, c = win.grid, win.state, win.state.collection
    inserted, resets, changed = [], [], []
    grid.model.rowsInserted.connect(lambda parent, first, last: inserted.append((first, last)))
    grid.model.modelReset.connect(lambda: resets.append(1))
    grid.model.dataChanged.connect(lambda a, b, roles: changed.append((a.row(), b.row(), roles)))
    state.select([0], "map")
    new_ids = [int(c.ids.max()) + 1, int(c.ids.max()) + 2]
    new_vectors = c.vectors[[0, 1]].copy()
    rows = c.apply_batch(new_ids + [int(c.ids[5])], ["aaa/first.jpg", "zzz/last.jpg", c.paths[5]],
                         np.concatenate([new_vectors, c.vectors[[5]]]))
    state.grow(rows)
    assert grid.model.rowCount() == 30 and not resets
    assert inserted == [(28, 29)]  # inserted, then moved to their place in name order
    np.testing.assert_array_equal(shown_rows(grid), name_order(state))
    assert shown_rows(grid)[0] == 28 and shown_rows(grid)[-1] == 29
    position_of_5 = int(np.flatnonzero(shown_rows(grid) == 5)[0])
    assert any(first <= position_of_5 <= last and DecorationRole in roles for first, last, roles in changed)
    np.testing.assert_array_equal(grid.selected_rows(), [0])  # the selection followed its tile


def test_a_drag_carries_file_urls(win):
    grid, state = win.grid, win.state
    indexes = [grid.model.index(0), grid.model.index(7)]
    data = grid.model.mimeData(indexes)
    assert data.hasUrls()
    paths = [Path(url.toLocalFile()) for url in data.urls()]
    assert paths == [state.path_of(i.data(ROW_ROLE)) for i in indexes]
    assert all(p.is_file() and p.is_absolute() for p in paths)
    assert grid.view.dragEnabled()
    assert grid.model.flags(indexes[0]) & Qt.ItemFlag.ItemIsDragEnabled


def test_ctrl_wheel_and_ctrl_plus_minus_zoom(qtbot, win):
    grid = win.grid
    view = grid.view
    grid.set_thumbnail_size(160)
    width = view.visualRect(grid.model.index(0)).width()

    def wheel(delta: int, modifiers=Qt.KeyboardModifier.ControlModifier) -> None:
        centre = QPointF(view.viewport().rect().center())
        event = QWheelEvent(centre, QPointF(view.viewport().mapToGlobal(centre.toPoint())), QPoint(),
                            QPoint(0, delta), Qt.MouseButton.NoButton, modifiers, Qt.ScrollPhase.NoScrollPhase,
                            False)
        QApplication.sendEvent(view.viewport(), event)

    wheel(120)
    assert grid.thumbnail_size() > 160
    assert view.visualRect(grid.model.index(0)).width() > width  # the tiles really grew
    wheel(-240)
    assert grid.thumbnail_size() < 160
    wheel(-120, Qt.KeyboardModifier.NoModifier)  # a plain wheel scrolls, it does not zoom
    assert grid.thumbnail_size() < 160
    size = grid.thumbnail_size()
    view.setFocus()
    qtbot.keyClick(view, Qt.Key.Key_Plus, Qt.KeyboardModifier.ControlModifier)
    assert grid.thumbnail_size() > size
    qtbot.keyClick(view, Qt.Key.Key_Minus, Qt.KeyboardModifier.ControlModifier)
    assert grid.thumbnail_size() == size
    grid.set_thumbnail_size(10_000)
    assert grid.thumbnail_size() == MAX_SIZE and grid.size_slider.value() == MAX_SIZE
    grid.set_thumbnail_size(1)
    assert grid.thumbnail_size() == MIN_SIZE


def test_space_opens_the_preview_and_arrows_step(qtbot, win):
    grid, state = win.grid, win.state
    view = grid.view
    view.setFocus()
    view.setCurrentIndex(grid.model.index(3))
    qtbot.keyClick(view, Qt.Key.Key_Space)
    preview = grid.preview
    assert preview is not None and preview.isVisible()
    assert preview.item.path == state.path_of(shown_rows(grid)[3])
    qtbot.waitUntil(lambda: preview.loaded is not None, timeout=10_000)
    assert preview.loaded.image is not None and "\u00d7" in preview.caption.text()
    assert "4 / 28" in preview.caption.text()
    qtbot.keyClick(preview, Qt.Key.Key_Right)
    assert preview.item.position == 4 and grid.view.currentIndex().row() == 4
    np.testing.assert_array_equal(state.selection, [shown_rows(grid)[4]])
    qtbot.keyClick(preview, Qt.Key.Key_Left)
    qtbot.keyClick(preview, Qt.Key.Key_Left)
    assert preview.item.position == 2
    qtbot.keyClick(preview, Qt.Key.Key_Escape)
    assert not preview.isVisible()
    qtbot.keyClick(view, Qt.Key.Key_Return)  # Enter opens it too
    assert preview.isVisible()
    preview.close()


def test_double_click_opens_the_preview(qtbot, win):
    grid = win.grid
    centre = grid.view.visualRect(grid.model.index(1)).center()
    # QTest's double click lacks the press that QAbstractItemView wants to see first
    qtbot.mouseClick(grid.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(grid.view.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert grid.preview is not None and grid.preview.isVisible() and grid.preview.item.position == 1
    grid.preview.close()


def test_context_menu_actions(qtbot, win, monkeypatch):
    grid, state = win.grid, win.state
    rows = [int(shown_rows(grid)[0]), int(shown_rows(grid)[1])]
    menu = grid.context_menu(rows)
    actions = {a.text().split("\t")[0]: a for a in menu.actions() if a.text()}
    assert {"Query by these 2 images", "Add to query", "Preview", "Open in system viewer",
            "Reveal in file manager", "Copy paths"} <= set(actions)

    actions["Query by these 2 images"].trigger()
    assert [e.path for e in state.query.positives] == [state.path_of(r) for r in rows]
    grid.context_menu([5]).actions()[1].trigger()  # "Add to query"
    assert len(state.query.positives) == 3

    actions["Copy paths"].trigger()
    assert QGuiApplication.clipboard().text().splitlines() == [str(state.path_of(r)) for r in rows]

    opened = []
    monkeypatch.setattr(grid_module.QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()))
    monkeypatch.setattr(grid_module.sys, "platform", "linux")
    actions["Open in system viewer"].trigger()
    assert opened == [str(state.path_of(r)) for r in rows]
    opened.clear()
    actions["Reveal in file manager"].trigger()
    assert opened == [str(state.path_of(rows[0]).parent)]  # both in one folder: opened once


def test_empty_states(qtbot, window, tmp_path):
    grid, state = window.grid, window.state
    assert grid.model.rowCount() == 0
    assert grid.view.empty_message.startswith("Open a folder of photos (Ctrl+O)")
    assert _pixels(grid.grab().toImage()).std() > 0  # the message is painted
    state.set_collection(None, tmp_path, "efficientnet-lite0")
    state.set_indexing(IndexingStatus(True, 0, 0, "scanning"))
    assert grid.view.empty_message.startswith("Indexing")
    state.set_indexing(IndexingStatus(False))


class SyntheticCollection:
    """What the grid reads of a SearchIndex, for 100k rows without 100k files."""

    def __init__(self, n: int, dim: int = 16):
        rng = np.random.default_rng(0)
        self.folder = Path("/nonexistent")
        self.ids = np.arange(1, n + 1)
        self.paths = [f"Label{i % 37:02d}/img_{int(v):09d}.jpg" for i, v in enumerate(rng.integers(1e9, size=n))]
        vectors = rng.standard_normal((n, dim)).astype(np.float32)
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def __len__(self) -> int:
        return len(self.ids)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def similarities(self, query: np.ndarray) -> np.ndarray:
        return self.vectors @ query

    def name_order(self) -> tuple[np.ndarray, np.ndarray]:
        return catalog.name_order(self.paths)

    def apply_batch(self, ids, paths, vectors) -> np.ndarray:
        start = len(self.ids)
        self.ids = np.concatenate([self.ids, ids])
        self.paths.extend(paths)
        self.vectors = np.concatenate([self.vectors, vectors])
        return np.arange(start, len(self.ids))


def test_a_hundred_thousand_rows(qtbot):
    """Correct at scale (timings: bench/, not asserts): name order, growth, ranking, filter."""
    state, tasks = AppState(), Tasks()
    grid = GridView(state, Session(state, tasks), ThumbnailCache(tasks, state))
    qtbot.addWidget(grid)
    grid.resize(1200, 800)
    grid.show()
    c = SyntheticCollection(100_000)
    state.set_collection(c, c.folder, "synthetic")
    assert grid.model.rowCount() == 100_000
    np.testing.assert_array_equal(grid.model.order, name_order(state))
    assert _pixels(grid.grab().toImage()).std() > 5  # placeholder tiles and names

    inserted = []
    grid.model.rowsInserted.connect(lambda parent, first, last: inserted.append(last - first + 1))
    state.grow(c.apply_batch(np.arange(100_001, 100_033), [f"label05/new_{i}.jpg" for i in range(32)],
                             c.vectors[:32].copy()))
    assert sum(inserted) == 32 and grid.model.rowCount() == 100_032
    np.testing.assert_array_equal(grid.model.order, name_order(state))

    state.query.add([QueryExample("q", c.vectors[7])])
    np.testing.assert_array_equal(grid.model.order, np.argsort(-state.query.scores, kind="stable"))
    state.select(np.arange(0, 100_032, 3), "map")
    assert len(grid.selected_rows()) == len(state.selection)
    state.set_filter(np.arange(5000)[::-1], "5000 rows", "histogram")
    ranked = np.argsort(-state.query.scores, kind="stable")
    np.testing.assert_array_equal(grid.model.order, ranked[ranked < 5000])  # still by similarity
    tasks.shutdown()
