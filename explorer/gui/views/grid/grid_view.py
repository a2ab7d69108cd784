"""The thumbnail grid: the collection (or the current filter) as tiles, in name or similarity order.

GridView is the controller: it turns AppState (collection, query, filter, selection) into a
display order for GridModel (grid_model.py) and user actions back into state and session calls.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from PySide6.QtCore import QItemSelection, QItemSelectionModel, QPoint, QProcess, Qt, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QGuiApplication, QKeyEvent, QKeySequence, QPainter, \
    QPaintEvent, QWheelEvent
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QComboBox, QHBoxLayout, QLabel, QListView, QMenu, QPushButton, QSizePolicy,
    QSlider, QVBoxLayout, QWidget,
)
from superqt import QElidingLabel
from superqt.utils import signals_blocked

from ....core.analysis import ranking
from .grid_model import DEFAULT_SIZE, DecorationRole, GridModel, ThumbnailDelegate, runs
from .heatmaps import HeatmapCache, legend_pixmap
from ..preview import ImagePreview, PreviewItem
from ...controllers.session import Session
from ...controllers.tasks import TaskKind
from ...state.app_state import EMPTY_ROWS, AppState
from ...controllers.thumbnails import ThumbnailCache

MIN_SIZE, MAX_SIZE, ZOOM_STEP = 64, 320, 16  # thumbnail size in px
BY_NAME, BY_SIMILARITY = 0, 1  # the sort combo's items
MAX_OPENED = 10  # never spawn hundreds of viewers or file manager windows for a big selection


class ThumbnailListView(QListView):
    """QListView in icon mode, plus Ctrl+wheel zoom, Space/Enter preview and an empty-state text."""

    zoom_requested = Signal(int)  # steps: positive = larger
    preview_requested = Signal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setMovement(QListView.Movement.Static)  # tiles never move; also turns drag off...
        self.setDragEnabled(True)  # ...so turn it back on: dragging exports file URLs
        self.setDragDropMode(QAbstractItemView.DragDropMode.DragOnly)
        self.setDefaultDropAction(Qt.DropAction.CopyAction)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setUniformItemSizes(True)  # one sizeHint call, not 100k
        self.setSpacing(2)
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)  # the list model is editable
        self.setSelectionRectVisible(True)
        self.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.setMouseTracking(True)  # hover highlight
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.empty_message = ""
        self._wheel = 0  # accumulated Ctrl+wheel angle: touchpads send many small deltas

    def wheelEvent(self, event: QWheelEvent) -> None:
        if not event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            super().wheelEvent(event)
            return
        self._wheel += event.angleDelta().y()
        steps = int(self._wheel / 120)
        if steps:
            self._wheel -= steps * 120
            self.zoom_requested.emit(steps)
        event.accept()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        opens = (Qt.Key.Key_Space, Qt.Key.Key_Return, Qt.Key.Key_Enter)
        if event.key() in opens and event.modifiers() == Qt.KeyboardModifier.NoModifier:
            self.preview_requested.emit()
            return
        super().keyPressEvent(event)

    def paintEvent(self, event: QPaintEvent) -> None:
        super().paintEvent(event)
        model = self.model()
        if self.empty_message and model is not None and model.rowCount() == 0:
            painter = QPainter(self.viewport())
            painter.setPen(self.palette().placeholderText().color())
            painter.drawText(self.viewport().rect().adjusted(20, 20, -20, -20),
                             Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, self.empty_message)


class GridView(QWidget):
    """The main window's central view: a toolbar (sort, filters, zoom) over the thumbnail list."""

    def __init__(self, state: AppState, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session, self.thumbnails = state, session, thumbnails
        self.model = GridModel(state, thumbnails, self)
        self.heatmaps = HeatmapCache(state, session, self)
        self.model.heatmaps = self.heatmaps
        self.delegate = ThumbnailDelegate(self.model, self)
        self.view = ThumbnailListView(self)
        self.view.setModel(self.model)
        self.view.setItemDelegate(self.delegate)
        self.preview: ImagePreview | None = None
        self._name_keys = np.empty(0, str)  # sorted lower-case relative paths...
        self._name_order = EMPTY_ROWS  # ...and the rows they belong to
        self._paths: list[str] = []  # a copy, to recognise a reload of the same files
        self._folder: Path | None = None
        self._ranked: tuple[object, np.ndarray] = (None, EMPTY_ROWS)  # (scores, rows best first)
        self._query_seen: np.ndarray | None = None  # the query vector last switched to
        self._selection_shown = EMPTY_ROWS  # what "Selection only" filters to
        self._build_toolbar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addLayout(self.toolbar)
        layout.addWidget(self.view, 1)
        self._add_zoom_actions()

        self.view.selectionModel().selectionChanged.connect(self._grid_selection_changed)
        self.view.zoom_requested.connect(lambda steps: self.zoom(steps))
        self.view.preview_requested.connect(self.open_preview)
        self.view.doubleClicked.connect(lambda index: self.open_preview(index.row()))
        self.view.customContextMenuRequested.connect(self._show_context_menu)
        state.collection_changed.connect(self._collection_changed)
        state.collection_grew.connect(self._collection_grew)
        state.query.changed.connect(self._query_changed)
        state.filter_changed.connect(self._filter_changed)
        state.selection_changed.connect(self._state_selection_changed)
        state.indexing_changed.connect(self._update_chrome)
        self._collection_changed()
        self._query_changed()
        self.set_thumbnail_size(DEFAULT_SIZE)

    def _build_toolbar(self) -> None:
        self.sort_combo = QComboBox(self, toolTip="Order of the tiles")
        self.sort_combo.addItems(["Name", "Similarity"])
        self.sort_combo.currentIndexChanged.connect(lambda _: self._refresh(scroll_to_top=True))
        self.selection_only = QCheckBox("Selection only", self, toolTip="Show only the selected images")
        self.selection_only.toggled.connect(self._selection_only_toggled)
        self.filter_label = QElidingLabel(self)  # a long description ends in "…" (full: tooltip)
        font = self.filter_label.font()
        font.setBold(True)
        self.filter_label.setFont(font)
        # It must not widen the central widget: it takes what room is left.
        self.filter_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.show_all_button = QPushButton("Show all", self, toolTip="Clear the filter (Esc)")
        self.show_all_button.clicked.connect(lambda: self.state.set_filter(None, "", "grid"))
        self.why_similar = QCheckBox("Why similar?", self, toolTip=(
            "Over each tile, what in it counts for the query: yellow adds most to its similarity, "
            "dark blue least (exact shares of it, computed for the tiles on screen)"))
        self.why_similar.toggled.connect(self._why_similar_toggled)
        self.heat_opacity = QSlider(Qt.Orientation.Horizontal, self, minimum=10, maximum=90, value=55,
                                    maximumWidth=80, toolTip="Opacity of the heatmaps", visible=False)
        self.heat_opacity.valueChanged.connect(self._heat_opacity_changed)
        self.heat_legend = QLabel(self, visible=False, toolTip="least share → most share")
        self.heat_legend.setPixmap(legend_pixmap())
        self.heatmaps.ready.connect(self.view.viewport().update)
        self.count_label = QLabel(self)
        self.size_slider = QSlider(Qt.Orientation.Horizontal, self, minimum=MIN_SIZE, maximum=MAX_SIZE,
                                   minimumWidth=70, maximumWidth=140, toolTip="Thumbnail size (Ctrl+wheel, Ctrl++ / Ctrl+-)")
        self.size_slider.valueChanged.connect(self.set_thumbnail_size)
        self.toolbar = QHBoxLayout()
        self.toolbar.setContentsMargins(6, 4, 6, 0)
        for widget in (QLabel("Sort:", self), self.sort_combo, self.selection_only, self.show_all_button):
            self.toolbar.addWidget(widget)
        self.toolbar.addWidget(self.filter_label, 1)
        self.toolbar.addStretch(1)
        for widget in (self.why_similar, self.heat_legend, self.heat_opacity):
            self.toolbar.addWidget(widget)
        self.toolbar.addWidget(self.count_label)
        self.toolbar.addWidget(self.size_slider)

    def _why_similar_toggled(self, on: bool) -> None:
        self.heatmaps.enabled = on
        self.heat_opacity.setVisible(on)
        self.heat_legend.setVisible(on)
        self.view.viewport().update()  # the maps already computed show at once

    def _heat_opacity_changed(self, value: int) -> None:
        self.heatmaps.opacity = value / 100
        self.view.viewport().update()

    def _add_zoom_actions(self) -> None:
        bindings = QKeySequence.keyBindings
        for steps, keys in ((1, bindings(QKeySequence.StandardKey.ZoomIn) + [QKeySequence("Ctrl+=")]),
                            (-1, bindings(QKeySequence.StandardKey.ZoomOut))):
            action = QAction(self, shortcutContext=Qt.ShortcutContext.WidgetWithChildrenShortcut)
            # Ctrl+= is Ctrl++ without Shift on many layouts; a key listed twice would be ambiguous.
            action.setShortcuts(list({k.toString(): k for k in keys}.values()))
            action.triggered.connect(lambda *_, s=steps: self.zoom(s))
            self.addAction(action)

    # --- thumbnail size -------------------------------------------------------------------

    def thumbnail_size(self) -> int:
        return self.delegate.size

    def set_thumbnail_size(self, px: int) -> None:
        px = int(min(max(px, MIN_SIZE), MAX_SIZE))
        with signals_blocked(self.size_slider):
            self.size_slider.setValue(px)
        self.view.verticalScrollBar().setSingleStep(max(px // 4, 8))
        if px == self.delegate.size:
            return
        at_top = self.view.verticalScrollBar().value() == 0
        anchor = self.view.indexAt(self.view.viewport().rect().center())  # keep it in view
        self.delegate.size = px
        self.view.doItemsLayout()  # uniform sizes are cached: ask the delegate again
        if anchor.isValid() and not at_top:
            self.view.scrollTo(anchor, QAbstractItemView.ScrollHint.PositionAtCenter)

    def zoom(self, steps: int) -> None:
        self.set_thumbnail_size(self.delegate.size + steps * ZOOM_STEP)

    # --- what is shown ----------------------------------------------------------------------

    def _display_order(self) -> np.ndarray:
        c, state = self.state.collection, self.state
        if c is None or not len(c):
            return EMPTY_ROWS
        ranked = self._ranking() if self.sort_combo.currentIndex() == BY_SIMILARITY else None
        rows = ranked if ranked is not None else self._name_order
        if state.grid_filter is not None:  # filtered rows, in the chosen sort order too
            wanted = np.zeros(len(c), bool)
            filtered = state.grid_filter
            wanted[filtered[(filtered >= 0) & (filtered < len(c))]] = True
            rows = rows[wanted[rows]]
        if self.selection_only.isChecked():
            rows = rows[np.isin(rows, self._selection_shown)]
        return rows

    def _ranking(self) -> np.ndarray | None:
        scores, c = self.state.query.scores, self.state.collection
        if scores is None or c is None or len(scores) != len(c):
            return None
        if self._ranked[0] is not scores:  # sort once per query, not once per refresh
            self._ranked = (scores, ranking(scores))
        return self._ranked[1]

    def _extend_name_order(self, start: int) -> None:
        """Merge rows start.. of the collection into the (case-insensitive) name order."""
        paths = self.state.collection.paths[start:] if self.state.collection is not None else []
        if not paths:
            return
        keys = np.char.lower(np.array(paths, dtype=str))
        by_key = np.argsort(keys, kind="stable")
        keys, rows = keys[by_key], np.arange(start, start + len(paths))[by_key]
        at = np.searchsorted(self._name_keys, keys, side="right")
        dtype = np.promote_types(self._name_keys.dtype, keys.dtype)  # longer names must not be cut
        self._name_keys = np.insert(self._name_keys.astype(dtype, copy=False), at, keys)
        self._name_order = np.insert(self._name_order, at, rows)

    def _refresh(self, scroll_to_top: bool = False) -> None:
        selection_model = self.view.selectionModel()
        with signals_blocked(selection_model):  # moving rows need not carry it: mirrored again below
            selection_model.clearSelection()
        self.model.show_rows(self._display_order())
        self._mirror_selection()
        if scroll_to_top:
            self.view.scrollToTop()
        self._update_chrome()

    def _update_chrome(self) -> None:
        state, shown = self.state, self.model.rowCount()
        total = len(state.collection) if state.collection is not None else 0
        filtered = state.grid_filter is not None
        self.filter_label.setText((state.filter_description or "Filtered") if filtered else "")
        self.filter_label.setToolTip(state.filter_description)
        self.filter_label.setVisible(filtered)
        self.show_all_button.setVisible(filtered)
        self.count_label.setText(f"{shown:,} of {total:,} images" if shown != total else f"{total:,} images")
        if total == 0:
            if state.folder is None:
                message = "Open a folder of photos (Ctrl+O)\nor try File \u203a Open sample collection."
            elif self.session.tasks.latest(TaskKind.OPEN) is not None:
                message = "Opening\u2026"
            elif state.indexing.running:
                message = "Indexing\u2026\nThe grid fills in as images are embedded."
            else:
                message = "No images found in this folder."
        elif shown == 0:
            message = ("No images match this filter." if filtered
                       else "Nothing selected.\nSelect images in the map, the histogram or the grid.")
        else:
            message = ""
        if message != self.view.empty_message:
            self.view.empty_message = message
            self.view.viewport().update()

    # --- state observers --------------------------------------------------------------------

    def _collection_changed(self) -> None:
        c = self.state.collection
        # A reload after indexing brings the same files: keep scroll position and selection.
        same_files = c is not None and c.folder == self._folder and c.paths == self._paths
        self._folder, self._paths = (c.folder, list(c.paths)) if c is not None else (None, [])
        self._name_keys, self._name_order = c.name_order() if c is not None else (np.empty(0, str), EMPTY_ROWS)
        self._selection_shown = self.state.selection
        if same_files and c is not None:
            self._refresh()
            self.model.rows_changed(np.arange(len(c)), [DecorationRole, Qt.ItemDataRole.ToolTipRole])
        else:
            self.model.reset(self._display_order())
            self._mirror_selection()
            self.view.scrollToTop()
            self._update_chrome()

    def _collection_grew(self, rows: np.ndarray) -> None:
        c = self.state.collection
        if c is None:
            return
        start = len(self._paths)
        self._paths.extend(c.paths[start:])
        self._extend_name_order(start)
        self._refresh()  # new rows are inserted, never a reset: the grid fills in where it is
        rows = np.asarray(rows, np.int64)
        self.model.rows_changed(rows[rows < start], [DecorationRole, Qt.ItemDataRole.ToolTipRole])

    def _query_changed(self) -> None:
        query, has_scores = self.state.query.vector, self._ranking() is not None
        self.sort_combo.model().item(BY_SIMILARITY).setEnabled(has_scores)  # type: ignore[attr-defined]  # a QStandardItemModel
        switch_to = None
        if query is not None and query is not self._query_seen:  # a new query, not a re-score
            switch_to = BY_SIMILARITY
        elif not has_scores and self.sort_combo.currentIndex() == BY_SIMILARITY:
            switch_to = BY_NAME
        self._query_seen = query
        if switch_to is not None:
            with signals_blocked(self.sort_combo):
                self.sort_combo.setCurrentIndex(switch_to)
        self._refresh(scroll_to_top=switch_to is not None)
        self.view.viewport().update()  # the score badges changed even where the order did not

    def _filter_changed(self, source: str = "") -> None:
        self._refresh(scroll_to_top=True)

    def _selection_only_toggled(self, on: bool) -> None:
        self._selection_shown = self.state.selection
        self._refresh(scroll_to_top=True)

    def _state_selection_changed(self, source: str) -> None:
        if source == "grid":
            return  # ours: the grid already shows it
        if self.selection_only.isChecked():
            self._selection_shown = self.state.selection
            self._refresh(scroll_to_top=True)
        else:
            self._mirror_selection(scroll=True)

    # --- selection ----------------------------------------------------------------------------

    def _mirror_selection(self, scroll: bool = False) -> None:
        """Show state.selection in the grid without echoing it back to the state."""
        positions = self.model.positions_of(self.state.selection)
        selection = QItemSelection()
        for first, last in runs(positions):
            selection.select(self.model.index(first), self.model.index(last))
        selection_model = self.view.selectionModel()
        with signals_blocked(selection_model):
            selection_model.select(selection, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.viewport().update()  # blocked signals mean the view was not told
        if scroll and len(positions):
            self.view.scrollTo(self.model.index(int(positions[0])))

    def _selected_positions(self) -> np.ndarray:
        selection = self.view.selectionModel().selection()
        ranges = [np.arange(r.top(), r.bottom() + 1) for r in (selection.at(i) for i in range(selection.count()))]
        return np.sort(np.concatenate(ranges)) if ranges else EMPTY_ROWS

    def selected_rows(self) -> np.ndarray:
        """Selected collection rows, in display order."""
        return self.model.order[self._selected_positions()]

    def _grid_selection_changed(self, *_) -> None:
        self.state.select(self.selected_rows(), "grid")

    # --- preview ------------------------------------------------------------------------------

    def open_preview(self, position: int | None = None) -> None:
        if position is None:
            current = self.view.currentIndex()
            selected = self._selected_positions()
            position = current.row() if current.isValid() else int(selected[0]) if len(selected) else 0
        if not 0 <= position < self.model.rowCount():
            return
        if self.preview is None:
            self.preview = ImagePreview(self.session, self)
            self.preview.step_requested.connect(self._step_preview)
        row, c = int(self.model.order[position]), self.state.collection
        path = self.state.path_of(row)
        if c is None or path is None:
            return
        relative = c.paths[row]
        item = PreviewItem(path, relative, self.model.score_at(position), position,
                           self.model.rowCount())
        self.preview.show_item(item, self.thumbnails.cached(relative))

    def _step_preview(self, delta: int) -> None:
        if self.preview is None or self.preview.item is None or not self.model.rowCount():
            return
        position = min(max(self.preview.item.position + delta, 0), self.model.rowCount() - 1)
        index = self.model.index(position)
        self.view.selectionModel().setCurrentIndex(index, QItemSelectionModel.SelectionFlag.ClearAndSelect)
        self.view.scrollTo(index)
        self.open_preview(position)

    # --- context menu -------------------------------------------------------------------------

    def _show_context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        if not index.isValid():
            return
        if not self.view.selectionModel().isSelected(index):
            self.view.setCurrentIndex(index)  # right-click on an unselected tile selects just it
        self.context_menu(self.selected_rows().tolist()).exec(self.view.viewport().mapToGlobal(point))

    def context_menu(self, rows: list[int]) -> QMenu:
        paths = [p for p in map(self.state.path_of, rows) if p is not None]
        noun = "this image" if len(rows) == 1 else f"these {len(rows)} images"
        menu = QMenu(self)
        menu.addAction(f"Query by {noun}", lambda: self.session.query_by_rows(rows))
        menu.addAction("Add to query", lambda: self.session.query_by_rows(rows, replace=False))
        menu.addSeparator()
        menu.addAction("Preview\tSpace", self.open_preview)
        menu.addAction("Open in system viewer", lambda: _open_locally(paths[:MAX_OPENED]))
        menu.addAction("Reveal in file manager", lambda: _reveal(paths[:MAX_OPENED]))
        menu.addAction("Copy path" + ("s" if len(rows) > 1 else ""),
                       lambda: QGuiApplication.clipboard().setText("\n".join(map(str, paths))))
        return menu


def _open_locally(paths: list[Path]) -> None:
    for path in paths:
        QDesktopServices.openUrl(QUrl.fromLocalFile(str(path)))


def _reveal(paths: list[Path]) -> None:
    """Show the files in the platform's file manager (selected where it supports that)."""
    for path in paths:
        if sys.platform == "darwin":
            QProcess.startDetached("open", ["-R", str(path)])
        elif sys.platform == "win32":
            QProcess.startDetached("explorer", ["/select,", str(path)])
    if sys.platform not in ("darwin", "win32"):  # freedesktop has no portable "select this file"
        for folder in dict.fromkeys(p.parent for p in paths):
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(folder)))
