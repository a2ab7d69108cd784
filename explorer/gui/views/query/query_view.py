"""The query panel: the example images that make the current query, and its top-K results.

Examples arrive by drop (files from the file manager, thumbnails dragged from the grid), by paste,
and from "Query by this image" in the other views. Indexed images are used by their stored
vectors at once; any other image is embedded by the session in the background.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from PySide6.QtCore import QMimeData, QPoint, QSize, Qt, QTimer
from PySide6.QtGui import (
    QColor, QDragEnterEvent, QDragMoveEvent, QDropEvent, QGuiApplication, QIcon, QImage, QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView, QFrame, QHBoxLayout, QLabel, QListView, QListWidgetItem, QMenu, QPushButton,
    QScrollArea, QSizePolicy, QSpinBox, QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ....core.backbones import is_registered
from .query_sources import classify_paths, local_files, paths_in_text, png_bytes, relative_to_collection
from .query_tiles import EXAMPLE_SIDE, RESULT_SIDE, ROW_ROLE, ExampleTile, ResultList, square
from .region_picker import RegionDialog
from ...controllers.session import Session
from ...state.app_state import AppState
from ...state.query import EMPTY_ROWS, QueryExample
from ...controllers.thumbnails import ThumbnailCache

__all__ = ["EMPTY_HINT", "EXAMPLE_SIDE", "ExampleTile", "QueryView", "classify_paths", "paths_in_text",
           "png_bytes"]  # the helpers moved to query_sources / query_tiles; importable here as before

SOURCE = "query"
EMPTY_HINT = "Drop photos here, paste an image (Ctrl+V), or right-click an image > Query by this image"
NO_RESULTS = "The images most similar to the query appear here, best first."
IMPORTED_HINT = ("Right-click an image > Query by this image, or drop images of this folder: this "
                 "representation was imported, and outside images cannot be embedded under it")


class QueryView(QWidget):
    """Examples of the current query (drop / paste target) above its top-K results."""

    def __init__(self, state: AppState, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session, self.thumbnails = state, session, thumbnails
        self.setAcceptDrops(True)
        self._shown_examples: tuple[int, ...] | None = None  # None: never rendered
        self._tiles: list[ExampleTile] = []
        self._items: dict[str, QListWidgetItem] = {}  # relative path -> result item
        self._embedding: set = set()  # the session's tasks embedding our drops and pastes
        self._placeholder = QPixmap(RESULT_SIDE, RESULT_SIDE)
        self._placeholder.fill(QColor(128, 128, 128, 60))
        self._placeholder_icon = QIcon(self._placeholder)
        self._icons: dict[str, QIcon] = {}  # relative path -> square result icon
        # Extra entries of the results' context menu: (text, callback(rows)); see add_result_action.
        self._result_actions: list[tuple[str, Callable[[list[int]], object]]] = []
        self._build()
        self._refresh_timer = QTimer(self, singleShot=True, interval=0, timeout=self._refresh)
        self._message_timer = QTimer(self, singleShot=True, timeout=lambda: self._say(""))
        self._say("")

        state.query.changed.connect(self._schedule)
        state.collection_changed.connect(self._collection_changed)
        state.selection_changed.connect(self._selection_changed)
        thumbnails.ready.connect(self._thumbnails_ready)
        self._refresh()

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        header = QHBoxLayout()
        header.addWidget(QLabel("<b>Query examples</b>"), 1)
        header.addWidget(QLabel("Top K"))
        self.k_spin = QSpinBox(minimum=1, maximum=1000, value=self.state.query.top_k)
        self.k_spin.setToolTip("How many results to show (and where the histogram's cut-off lies)")
        self.k_spin.valueChanged.connect(self.state.query.set_top_k)
        header.addWidget(self.k_spin)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove every example (Ctrl+Shift+X)")
        self.clear_button.clicked.connect(self.state.query.clear)
        header.addWidget(self.clear_button)

        self.drop_area = QFrame(objectName="dropArea")
        self.drop_area.setStyleSheet(
            "#dropArea { border: 2px dashed palette(mid); border-radius: 6px; }"
            "#dropArea[dragging=\"true\"] { border-color: palette(highlight); }")
        self.hint = QLabel(EMPTY_HINT, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.hint.setObjectName("emptyHint")
        self.hint.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(4, 4, 4, 4)
        self.strip_layout.addStretch(1)
        self.scroll_area = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setWidget(self.strip)
        self.scroll_area.setFixedHeight(EXAMPLE_SIDE + 52)
        area = QVBoxLayout(self.drop_area)
        area.setContentsMargins(4, 4, 4, 4)
        area.addWidget(self.hint)
        area.addWidget(self.scroll_area)
        self.drop_area.setMinimumHeight(EXAMPLE_SIDE + 60)

        self.message = QLabel(wordWrap=True, objectName="queryMessage")
        self.results_label = QLabel(NO_RESULTS, wordWrap=True)
        self.results = ResultList(self.state)
        self.results.setViewMode(QListView.ViewMode.IconMode)
        self.results.setMovement(QListView.Movement.Static)
        self.results.setResizeMode(QListView.ResizeMode.Adjust)
        self.results.setIconSize(QSize(RESULT_SIDE, RESULT_SIDE))
        self.results.setGridSize(QSize(RESULT_SIDE + 16, RESULT_SIDE + 40))
        self.results.setUniformItemSizes(True)
        self.results.setTextElideMode(Qt.TextElideMode.ElideMiddle)
        self.results.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.results.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.results.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.results.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.results.itemSelectionChanged.connect(self._results_selected)
        self.results.itemDoubleClicked.connect(lambda item: self.add_rows([item.data(ROW_ROLE)]))
        self.results.customContextMenuRequested.connect(self._results_menu)

        layout = self.main_layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.drop_area)
        layout.addWidget(self.message)
        layout.addWidget(self.results_label)
        layout.addWidget(self.results, 1)

    def sizeHint(self) -> QSize:
        return QSize(400, 700)

    def add_section(self, widget: QWidget) -> None:
        """Another part of the query (e.g. its negative examples), under the examples strip."""
        self.main_layout.insertWidget(self.main_layout.indexOf(self.drop_area) + 1, widget)

    def add_result_action(self, text: str, callback: Callable[[list[int]], object]) -> None:
        """Offer `callback(rows)` in the results' context menu, for the clicked or selected results."""
        self._result_actions.append((text, callback))

    # --- adding examples ------------------------------------------------------------------

    def paste(self) -> None:
        """Ctrl+V: an image on the clipboard, or image files copied in a file manager."""
        clipboard = QGuiApplication.clipboard()
        mime = clipboard.mimeData()
        if mime is not None and (mime.hasUrls() or mime.hasText()) and self._take_files(mime):
            return
        image = clipboard.image()
        if not image.isNull():
            self.add_image(image)
            return
        self.session.query_failed.emit("The clipboard holds no image. Copy an image (or an image "
                                       "file in the file manager), then paste it here.")

    def pick_region(self, index: int) -> RegionDialog:
        """Draw a rectangle on example `index`: its region takes the example's place."""
        example = self.state.query.positives[index]
        assert example.path is not None, "the region button is only on examples that are files"
        dialog = RegionDialog(example.path, self)
        dialog.accepted.connect(lambda: dialog.region is not None and self.session.query_by_region(example, dialog.region))
        dialog.open()
        return dialog

    def add_image(self, image: QImage, name: str = "pasted image") -> None:
        self._embed([(png_bytes(image), name)])

    def add_rows(self, rows: Sequence[int], replace: bool = False) -> None:
        """Indexed images as examples (their vectors are known: no model work)."""
        c = self.state.collection
        if c is None:
            return
        if not replace:
            present = {e.path for e in self.state.query.positives}
            fresh = [int(r) for r in rows if c.folder / c.paths[r] not in present]
            if len(fresh) < len(rows):
                self._say("Already in the query: " + ", ".join(
                    Path(c.paths[r]).name for r in rows if int(r) not in fresh), seconds=5)
            rows = fresh
        if rows or replace:
            self.session.query_by_rows(list(rows), replace=replace)

    def add_paths(self, paths: Sequence[Path]) -> None:
        rows, files, problems = classify_paths(paths, self.state.collection)
        present = {e.path for e in self.state.query.positives}
        files = [f for f in files if f not in present]
        if rows:
            self.add_rows(rows)
        if files:
            self._embed([(f, f.name) for f in files])
        if problems:
            self.session.query_failed.emit("Some files could not be used as a query:\n" + "\n".join(problems))

    def _take_files(self, mime: QMimeData) -> bool:
        """Use the files a drop / the clipboard names; False when it names none."""
        urls = mime.urls() if mime.hasUrls() else []
        paths = local_files(mime)
        if not urls and mime.hasText():
            paths = paths_in_text(mime.text())
        if paths:
            self.add_paths(paths)
            return True
        return False

    def _embed(self, items: list[tuple[Path | bytes, str]]) -> None:
        sources, names = zip(*items)
        task = self.session.query_by_files(list(sources), list(names))
        self._embedding.add(task)
        self._say(f"Embedding {len(sources)} image{'s' if len(sources) > 1 else ''}\u2026")
        task.finished.connect(lambda: self._embedded(task))

    def _embedded(self, task) -> None:
        self._embedding.discard(task)
        if not self._embedding:
            self._say("")

    @property
    def embedding(self) -> bool:
        """Whether dropped / pasted images are still being embedded."""
        return bool(self._embedding)

    def _say(self, text: str, seconds: float | None = None) -> None:
        """A line of status under the examples; `seconds`: clear it after that long."""
        self.message.setText(text)
        self.message.setVisible(bool(text))
        if seconds is None:
            self._message_timer.stop()
        else:
            self._message_timer.start(int(seconds * 1000))

    # --- drag and drop --------------------------------------------------------------------

    def _acceptable(self, mime: QMimeData) -> bool:
        return mime.hasUrls() or mime.hasImage()

    def _set_dragging(self, on: bool) -> None:
        self.drop_area.setProperty("dragging", on)
        self.drop_area.style().unpolish(self.drop_area)
        self.drop_area.style().polish(self.drop_area)

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
            self._set_dragging(True)
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        if self._acceptable(event.mimeData()):
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()

    def dragLeaveEvent(self, event) -> None:
        self._set_dragging(False)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_dragging(False)
        mime = event.mimeData()
        if not self._acceptable(mime):
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)  # never let a drag source delete its file
        event.accept()
        if self._take_files(mime):
            return
        data = mime.imageData()  # an image dragged from a web browser or an image editor
        image = data if isinstance(data, QImage) else data.toImage() if isinstance(data, QPixmap) else QImage()
        if not image.isNull():
            self.add_image(image, "dropped image")
        else:
            self.session.query_failed.emit(
                "Only image files on this computer can be dropped here (save a web image first).")

    # --- rendering ------------------------------------------------------------------------

    def _collection_changed(self) -> None:
        self._icons.clear()  # another folder may reuse the same relative paths
        model = self.state.model
        self.hint.setText(IMPORTED_HINT if model and not is_registered(model) else EMPTY_HINT)
        self._schedule()

    def _schedule(self) -> None:
        self._refresh_timer.start()  # once per event-loop turn, however many signals arrived

    def _refresh(self) -> None:
        state = self.state
        with signals_blocked(self.k_spin):
            self.k_spin.setValue(state.query.top_k)
        self.clear_button.setEnabled(bool(state.query.positives))
        self._render_examples()
        self._render_results()

    def _render_examples(self) -> None:
        examples = self.state.query.positives
        key = tuple(id(e) for e in examples)
        if key == self._shown_examples:
            return
        self._shown_examples = key
        for tile in self._tiles:
            tile.deleteLater()
        self._tiles = []
        for i, example in enumerate(examples):
            tile = ExampleTile(example, self._example_pixmap(example),
                                lambda *_, i=i: self.state.query.remove(i), self.strip,
                                on_region=lambda *_, i=i: self.pick_region(i))
            self.strip_layout.insertWidget(i, tile)
            self._tiles.append(tile)
        self.hint.setVisible(not examples)
        self.scroll_area.setVisible(bool(examples))

    def _example_pixmap(self, example: QueryExample) -> QPixmap | None:
        if example.thumbnail:
            pixmap = QPixmap()
            if pixmap.loadFromData(example.thumbnail, "JPEG"):
                return pixmap
        relative = relative_to_collection(example.path, self.state.collection) if example.path else None
        return self.thumbnails.pixmap(relative) if relative else None

    def _render_results(self) -> None:
        state, c, scores = self.state, self.state.collection, self.state.query.scores
        rows = state.query.top_rows() if c is not None and scores is not None else EMPTY_ROWS
        if state.query.vector is None:
            self.results_label.setText(NO_RESULTS)
        elif c is None or scores is None:
            self.results_label.setText("Results appear as soon as images are indexed.")
        else:
            self.results_label.setText(f"Top {len(rows)} of {len(c)} images, best first "
                                       "(click to select, double-click to add to the query)")
        selected = set(state.selection.tolist())
        with signals_blocked(self.results):
            self.results.clear()
            self._items = {}
            for rank, row in enumerate(rows, 1):
                assert c is not None and scores is not None  # rows is empty otherwise
                path, score = c.paths[row], float(scores[row])
                item = QListWidgetItem(f"{score:.3f}\n{Path(path).name}")
                item.setData(ROW_ROLE, int(row))
                item.setToolTip(f"{c.folder / path}\n#{rank} \u00b7 similarity {score:.4f}")
                item.setIcon(self._icon(path))
                self.results.addItem(item)
                self._items[path] = item
                item.setSelected(int(row) in selected)

    def _icon(self, path: str) -> QIcon:
        """The result's square icon, kept: results are rebuilt on every query change."""
        icon = self._icons.get(path)
        if icon is None:
            pixmap = self.thumbnails.pixmap(path)
            if pixmap is None:
                return self._placeholder_icon  # not cached: `ready` will bring it
            if len(self._icons) > 2000:
                self._icons.clear()
            icon = self._icons[path] = QIcon(square(pixmap))
        return icon

    def _thumbnails_ready(self, paths: list[str]) -> None:
        for path in paths:
            item = self._items.get(path)
            if item is not None:
                self._icons.pop(path, None)
                item.setIcon(self._icon(path))
        c = self.state.collection
        for tile, example in zip(self._tiles, self.state.query.positives):
            relative = relative_to_collection(example.path, c) if example.path and not example.thumbnail else None
            if relative in paths:
                tile.set_pixmap(self.thumbnails.cached(relative))

    def result_paths(self) -> list[str]:
        """Relative paths of the results shown, top to bottom."""
        c = self.state.collection
        return [c.paths[self.results.item(i).data(ROW_ROLE)] for i in range(self.results.count())] if c else []

    # --- selection ------------------------------------------------------------------------

    def _results_selected(self) -> None:
        self.state.select([item.data(ROW_ROLE) for item in self.results.selectedItems()], SOURCE)

    def _selection_changed(self, source: str) -> None:
        if source == SOURCE:
            return
        selected = set(self.state.selection.tolist())
        with signals_blocked(self.results):
            for i in range(self.results.count()):
                item = self.results.item(i)
                item.setSelected(item.data(ROW_ROLE) in selected)
        self.results.viewport().update()

    def _results_menu(self, pos: QPoint) -> None:
        item = self.results.itemAt(pos)
        if item is None:
            return
        row = item.data(ROW_ROLE)
        menu = QMenu(self)
        menu.addAction("Add to query", lambda: self.add_rows([row]))
        menu.addAction("Query by this image", lambda: self.add_rows([row], replace=True))
        menu.addAction("Copy path", lambda: QGuiApplication.clipboard().setText(str(self.state.path_of(row))))
        if self._result_actions:
            selected = [i.data(ROW_ROLE) for i in self.results.selectedItems()]
            rows = selected if row in selected else [row]
            menu.addSeparator()
            for text, callback in self._result_actions:
                menu.addAction(text, partial(callback, rows))
        menu.popup(self.results.viewport().mapToGlobal(pos))

