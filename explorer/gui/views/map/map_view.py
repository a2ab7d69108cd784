"""The map: every image as a point at its 2D (UMAP) position, linked to the query and selection.

Until UMAP's layout is ready the map shows the quick layout (core.layout), and says so; when
UMAP's arrives the points glide to their new places, so the eye can follow them.

One `PaletteScatterItem` holds all points (colours quantised to a small palette, so recolouring
100k points is cheap); small overlays mark the query's top-k results, the selection and the
hovered point. Zoomed in far enough, points turn into their thumbnails (an image map). Hit tests
for hover, click and selection run in numpy on the layout's positions, never per point in Python.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import (
    QEasingCurve, QEvent, QObject, QPoint, QPointF, QRectF, Qt, QTimer, QVariantAnimation,
)
from PySide6.QtGui import QAction, QActionGroup, QBrush, QColor
from PySide6.QtWidgets import (
    QComboBox, QGraphicsItem, QLabel, QMenu, QStackedLayout, QToolBar, QVBoxLayout, QWidget,
)

from ....core.layout import QUICK, UMAP, Layout

from .map_items import (
    Colouring, HoverPreview, PaletteScatterItem, SelectionViewBox, ThumbnailLayer, label_colouring,
    points_in_polygon, selection_colouring, similarity_colouring,
)
from ...controllers.session import Session
from ...state.app_state import EMPTY_ROWS, AppState
from ...controllers.thumbnails import ThumbnailCache

SOURCE = "map"  # our name in state.selection_changed, to tell our own changes from others'
IMAGE_MAP_MAX_POINTS = 300  # zoomed in to at most this many visible points: draw thumbnails
TILE_PX = 64  # on-screen size of a thumbnail on the map
LABEL_MARGIN_PX = 6  # the layout's name, this far from the map's lower-left corner
HOVER_INTERVAL_MS = 30  # hover is handled at most this often, on the latest position
RANGE_DEBOUNCE_MS = 60  # the image map follows zooming and panning once they pause
TRANSITION_MS = 700  # quick layout -> UMAP: long enough to follow, short enough not to wait on
TRANSITION_MAX_POINTS = 200_000  # a frame moves every point (a few ms per 100k: bench_layout.py)
BACKGROUND = "#1e1f22"  # dark whatever the theme: thumbnails and bright palettes read best on it
TOP_K_COLOUR = "#ff2d55"
COLOUR_MODES = {
    "label": ("Folder", "Colour each image by its subfolder (its label)"),
    "similarity": ("Similarity", "Colour by similarity to the current query: bright = similar"),
    "selection": ("Selection", "Highlight the selected images, dim all others"),
}
TOOLS = {
    "pan": ("Pan", "Drag to pan, wheel to zoom; Shift+drag selects a rectangle"),
    "rectangle": ("Rectangle", "Drag a rectangle to select the images inside it (Ctrl adds)"),
    "lasso": ("Lasso", "Draw around images to select them (Ctrl adds)"),
}


def point_size_for(n: int) -> int:
    """Smaller points for bigger maps, so dense regions keep some structure."""
    return 8 if n <= 2_000 else 6 if n <= 20_000 else 4


class MapView(QWidget):
    """The UMAP scatter of the collection: colour modes, hover preview, click to query,
    rectangle and lasso selection, and an image map when zoomed in."""

    def __init__(self, state: AppState, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session, self.thumbnails = state, session, thumbnails
        self.image_map_max_points = IMAGE_MAP_MAX_POINTS
        self.colour_mode = "label"
        # Per laid-out point (layout order, points whose id is in the collection).
        self._xy = np.empty((0, 2))
        self._rows = np.empty(0, np.int64)
        self._point_of_row = np.empty(0, np.int64)  # collection row -> point index, -1 if none
        self._by_label = label_colouring([], EMPTY_ROWS)  # computed once per layout, reused
        self._colouring = self._by_label
        self._brushes: dict[int, QBrush] = {}
        self._hover_point: int | None = None
        self._hover_scene_pos: QPointF | None = None
        self._auto_range_pending = True
        self._shown: tuple[object, object] = (self, self)  # (collection, layout) on the map: none yet
        self._transition = QVariantAnimation(self, startValue=0.0, endValue=1.0, duration=TRANSITION_MS,
                                             easingCurve=QEasingCurve(QEasingCurve.Type.InOutCubic))
        self._transition.valueChanged.connect(self._transition_frame)
        self._transition.finished.connect(self._transition_finished)
        self._transition_from = self._transition_to = np.empty((0, 2))
        self._build()
        self._connect()
        self._layout_changed()

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        self.toolbar = QToolBar("Map tools", self)
        self.toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextOnly)
        self.colour_box = QComboBox(self)
        for mode, (text, tip) in COLOUR_MODES.items():
            self.colour_box.addItem(text, mode)
            self.colour_box.setItemData(self.colour_box.count() - 1, tip, Qt.ItemDataRole.ToolTipRole)
        self.colour_box.setToolTip("What the colour of each point shows")
        self.colour_box.currentIndexChanged.connect(
            lambda i: self.set_colour_mode(self.colour_box.itemData(i)))
        self.toolbar.addWidget(QLabel(" Colour: "))
        self.toolbar.addWidget(self.colour_box)
        self.toolbar.addSeparator()
        self.tool_actions: dict[str, QAction] = {}
        group = QActionGroup(self)
        for tool, (text, tip) in TOOLS.items():
            action = QAction(text, self, checkable=True, toolTip=tip, statusTip=tip)
            action.triggered.connect(lambda checked, t=tool: self.set_tool(t))
            group.addAction(action)
            self.toolbar.addAction(action)
            self.tool_actions[tool] = action
        self.tool_actions["pan"].setChecked(True)
        self.toolbar.addSeparator()
        self.reset_action = QAction("Reset view", self, toolTip="Show the whole map",
                                    triggered=lambda *_: self.reset_view())
        self.toolbar.addAction(self.reset_action)

        self.legend = QLabel(self, textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.legend.setToolTip("What the colours mean")
        self.message = QLabel(self, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.message.setObjectName("mapMessage")

        self.view_box = SelectionViewBox(lockAspect=True, enableMenu=False)
        self.plot = pg.PlotWidget(self, viewBox=self.view_box, background=BACKGROUND)
        self.plot.setObjectName("mapPlot")
        for axis in ("left", "bottom"):
            self.plot.hideAxis(axis)
        self.plot.getPlotItem().hideButtons()  # the "A" auto-range button: "Reset view" does it
        self.plot.setMinimumSize(200, 200)
        self.scatter = PaletteScatterItem(pen=None, size=point_size_for(0))
        # Keep the drawn points as a pixmap: a new query or hover only changes the overlays,
        # which then repaint without redrawing 100k points (panning reuses it too).
        self.scatter.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.selection_rings = PaletteScatterItem(pen=pg.mkPen("#ffffff", width=1),
                                                  brush=QBrush(Qt.BrushStyle.NoBrush))
        # Overlays are PaletteScatterItems too: they let clicks through to the view box.
        self.top_rings = PaletteScatterItem(pen=pg.mkPen(TOP_K_COLOUR, width=2),
                                            brush=QBrush(Qt.BrushStyle.NoBrush))
        self.hover_ring = PaletteScatterItem(pen=pg.mkPen("#ffffff", width=2),
                                             brush=QBrush(Qt.BrushStyle.NoBrush))
        for z, item in enumerate((self.scatter, self.selection_rings, self.top_rings)):
            item.setZValue(z)
            self.view_box.addItem(item, ignoreBounds=item is not self.scatter)
        self.hover_ring.setZValue(100)  # above the thumbnails too
        self.view_box.addItem(self.hover_ring, ignoreBounds=True)
        self.image_map = ThumbnailLayer(self.view_box, TILE_PX, z_value=10)
        self.preview = HoverPreview(self.plot)
        # Which layout is shown, in the map's corner: a toolbar item would overflow a narrow dock.
        self.layout_label = QLabel(self.plot.viewport())
        self.layout_label.setObjectName("mapLayoutKind")
        self.layout_label.setStyleSheet("color: #e8e8e8; background: rgba(30, 31, 34, 190); padding: 2px 6px;")

        pages = QWidget(self)
        self.pages = QStackedLayout(pages)
        self.pages.addWidget(self.message)
        self.pages.addWidget(self.plot)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.legend)
        layout.addWidget(pages, 1)

    def _connect(self) -> None:
        self.view_box.shape_drawn.connect(self._shape_drawn)
        self.view_box.clicked_at.connect(self._clicked_at)
        self.view_box.context_menu_at.connect(self._context_menu_at)
        self._range_timer = QTimer(self, singleShot=True, interval=RANGE_DEBOUNCE_MS,
                                   timeout=self._update_image_map)
        self.view_box.sigRangeChanged.connect(lambda *_: self._range_timer.start())
        self._hover_timer = QTimer(self, singleShot=True, interval=HOVER_INTERVAL_MS,
                                   timeout=self._hover_now)
        self.plot.scene().sigMouseMoved.connect(self._mouse_moved)
        self.plot.viewport().installEventFilter(self)
        self.thumbnails.ready.connect(self._thumbnails_arrived)
        state = self.state
        state.collection_changed.connect(self._collection_changed)
        state.layout_changed.connect(self._layout_changed)
        state.query.changed.connect(self._query_changed)
        state.selection_changed.connect(self._selection_changed)

    # --- public API -----------------------------------------------------------------------

    def set_colour_mode(self, mode: str) -> None:
        if mode not in COLOUR_MODES:
            raise ValueError(f"unknown colour mode {mode!r}")
        self.colour_mode = mode
        index = self.colour_box.findData(mode)
        if self.colour_box.currentIndex() != index:
            self.colour_box.blockSignals(True)  # pushing state into the widget: no loop back
            self.colour_box.setCurrentIndex(index)
            self.colour_box.blockSignals(False)
        self._recolour()

    def set_tool(self, tool: str) -> None:
        self.view_box.tool = tool
        self.tool_actions[tool].setChecked(True)
        self.plot.viewport().setCursor(Qt.CursorShape.ArrowCursor if tool == "pan"
                                       else Qt.CursorShape.CrossCursor)

    def reset_view(self) -> None:
        if len(self._xy):
            self.view_box.autoRange(items=[self.scatter], padding=0.05)

    def in_transition(self) -> bool:
        """The points are gliding from the quick layout to UMAP's."""
        return self._transition.state() == QVariantAnimation.State.Running

    def point_rows(self) -> np.ndarray:
        """Collection rows of the points, in layout order."""
        return self._rows

    def thumbnail_rows(self) -> np.ndarray:
        """Rows currently drawn as thumbnails (the image map)."""
        return self.image_map.rows()

    def visible_points(self) -> np.ndarray:
        """Indices of the points inside the visible range."""
        (x0, x1), (y0, y1) = self.view_box.viewRange()
        x, y = self._xy[:, 0], self._xy[:, 1]
        return np.flatnonzero((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1))

    def select_in_rect(self, rect: QRectF, add: bool = False) -> np.ndarray:
        """Select (and show in the grid) the images inside `rect` (view coordinates)."""
        x, y = self._xy[:, 0], self._xy[:, 1]
        rect = rect.normalized()
        inside = (x >= rect.left()) & (x <= rect.right()) & (y >= rect.top()) & (y <= rect.bottom())
        return self._select_points(inside, add)

    def select_in_polygon(self, vertices: np.ndarray, add: bool = False) -> np.ndarray:
        """Select the images inside the polygon (M, 2 vertices in view coordinates)."""
        return self._select_points(points_in_polygon(self._xy, np.asarray(vertices, float)), add)

    def row_at(self, view_pos: QPointF) -> int | None:
        point = self._point_at(view_pos)
        return None if point is None else int(self._rows[point])

    def query_by_row(self, row: int, replace: bool = True) -> None:
        self.session.query_by_rows([row], replace=replace)

    # --- state observers ------------------------------------------------------------------

    def _collection_changed(self) -> None:
        self.image_map.forget_pixmaps()
        self._auto_range_pending = True
        self._layout_changed()  # the layout (if any) now maps to other rows

    def _layout_changed(self) -> None:
        state, layout = self.state, self.state.layout
        collection = state.collection
        self._show_layout_kind()
        if self._shown[0] is collection and self._shown[1] is layout:  # only "refining" changed
            return
        previous = self._shown[1] if self._shown[0] is collection else None
        self._shown = (collection, layout)
        self._transition.stop()
        self.preview.hide_preview()
        if collection is None or layout is None or not len(collection):
            self._set_points(np.empty((0, 2)), np.empty(0, np.int64))
            self.message.setText("Computing map\u2026" if collection is not None and len(collection)
                                 else "Open a folder to see the map of its images.")
            self.pages.setCurrentWidget(self.message)
            self.toolbar.setEnabled(False)
            return
        ids = collection.ids
        sorter = None if np.all(ids[1:] >= ids[:-1]) else np.argsort(ids, kind="stable")
        positions = np.searchsorted(ids, layout.ids, sorter=sorter).clip(0, len(ids) - 1)
        rows = positions if sorter is None else sorter[positions]
        known = ids[rows] == layout.ids  # ids laid out but since removed from the collection
        old_xy, old_point_of_row = self._xy, self._point_of_row
        self._set_points(np.asarray(layout.xy, np.float64)[known], rows[known])
        self.pages.setCurrentWidget(self.plot)
        self.toolbar.setEnabled(True)
        if self._auto_range_pending:
            self._auto_range_pending = False
            self.reset_view()
        if (isinstance(previous, Layout) and previous.kind == QUICK and layout.kind == UMAP
                and 0 < len(self._rows) <= TRANSITION_MAX_POINTS):
            self._start_transition(old_xy, old_point_of_row)

    def _show_layout_kind(self) -> None:
        layout = self.state.layout
        if layout is None:
            text, tip = "", ""
        elif layout.kind == QUICK:
            text = "Quick layout \u2014 refining\u2026" if self.state.layout_refining else "Quick layout"
            tip = ("A first picture: the images on the two main axes of their features. "
                   "UMAP's map, which keeps neighbours together, replaces it when it is ready.")
        else:
            text, tip = "UMAP", "UMAP of the features (cosine): images near each other are similar"
        self.layout_label.setText(text)
        self.layout_label.setToolTip(tip)
        self.layout_label.setVisible(bool(text))
        self._place_layout_label()

    def _place_layout_label(self) -> None:
        self.layout_label.adjustSize()
        viewport = self.plot.viewport()
        self.layout_label.move(LABEL_MARGIN_PX, viewport.height() - self.layout_label.height() - LABEL_MARGIN_PX)

    def _start_transition(self, old_xy: np.ndarray, old_point_of_row: np.ndarray) -> None:
        """Glide each point from where it was to its new place (new points start in place)."""
        end = self._xy
        start = end.copy()
        before = np.full(len(self._rows), -1, np.int64)  # each point's index on the old map
        in_range = self._rows < len(old_point_of_row)
        before[in_range] = old_point_of_row[self._rows[in_range]]
        had = before >= 0
        start[had] = old_xy[before[had]]
        self._transition_from, self._transition_to = start, end
        self._transition_frame(0.0)
        self._transition.start()

    def _transition_frame(self, t: float) -> None:
        start, end = self._transition_from, self._transition_to
        self._xy = start + (end - start) * float(t)  # hit tests follow the points as they move
        self.scatter.move_points(self._xy)
        self._update_selection_rings()
        self._update_top_rings()

    def _transition_finished(self) -> None:
        self._transition_frame(1.0)
        self.reset_view()  # UMAP's map spreads otherwise than the quick one
        self._update_image_map()

    def _query_changed(self) -> None:
        if self.colour_mode == "similarity":
            self._recolour()
        else:
            self._update_top_rings()
            self._update_image_map()

    def _selection_changed(self, source: str) -> None:
        if source != SOURCE:  # our own selections were drawn when they were made
            self._show_selection()

    # --- drawing --------------------------------------------------------------------------

    def _set_points(self, xy: np.ndarray, rows: np.ndarray) -> None:
        collection = self.state.collection
        self._xy, self._rows = xy, rows
        self._point_of_row = np.full(len(collection) if collection is not None else 0, -1, np.int64)
        self._point_of_row[rows] = np.arange(len(rows))
        names, codes = collection.labels() if collection is not None else ([], EMPTY_ROWS)
        self._by_label = label_colouring(names, codes[rows])
        size = point_size_for(len(rows))
        self.scatter.setData([])  # resizing is cheap with no points: size first, then points
        for item, extra in ((self.scatter, 0), (self.selection_rings, 4), (self.top_rings, 7),
                            (self.hover_ring, 8)):
            if item.opts["size"] != size + extra:  # a new size re-renders every point's symbol
                item.setSize(size + extra)
        self.scatter.set_points(xy, rows)
        self.hover_ring.clear()
        self._hover_point = None
        self._recolour()

    def _recolour(self) -> None:
        """Colours of all points for the current mode, then the overlays that depend on them."""
        self._colouring = self._colours()
        self.legend.setText(self._colouring.legend)
        brushes = [self._brush(colour) for colour in self._colouring.palette]
        self.scatter.set_colours(brushes, self._colouring.index)
        self._update_selection_rings()
        self._update_top_rings()
        self._update_image_map()

    def _brush(self, colour: QColor) -> QBrush:
        # One QBrush per colour for the view's lifetime: pyqtgraph caches rendered symbols by
        # brush identity, so fresh brushes on every recolour would grow its atlas without end.
        return self._brushes.setdefault(colour.rgba(), QBrush(colour))

    def _colours(self) -> Colouring:
        if self.colour_mode == "label":
            return self._by_label
        if self.colour_mode == "selection":
            return selection_colouring(np.isin(self._rows, self.state.selection))
        scores, rows = self.state.query.scores, self._rows
        if scores is None or (len(rows) and len(scores) <= rows.max()):  # no query (yet)
            return similarity_colouring(None, len(rows))
        return similarity_colouring(scores[rows])

    def _show_selection(self) -> None:
        """As colours in selection mode, as rings over the other modes' colours."""
        if self.colour_mode == "selection":
            self._recolour()
        else:
            self._update_selection_rings()

    def _update_selection_rings(self) -> None:
        selection = self.state.selection if self.colour_mode != "selection" else EMPTY_ROWS
        points = self._points_of(selection)
        self.selection_rings.set_points(self._xy[points], self._rows[points])

    def _update_top_rings(self) -> None:
        points = self._points_of(self.state.query.top_rows())
        self.top_rings.set_points(self._xy[points], self._rows[points])

    def _points_of(self, rows: np.ndarray) -> np.ndarray:
        rows = np.asarray(rows, np.int64)
        rows = rows[(rows >= 0) & (rows < len(self._point_of_row))]
        points = self._point_of_row[rows]
        return points[points >= 0]

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        self._update_image_map()  # skipped while the dock was closed

    def _update_image_map(self) -> None:
        """Thumbnails for the visible points when few enough are visible; otherwise none."""
        shown = len(self._xy) and self.isVisible()  # a closed dock loads no thumbnails
        visible = self.visible_points() if shown else np.empty(0, np.int64)
        if not len(visible) or len(visible) > self.image_map_max_points:
            self.image_map.clear()
            return
        index, palette = self._colouring.index, self._colouring.palette
        visible = visible[np.argsort(index[visible], kind="stable")]  # bright on top, as points
        top = set(self.state.query.top_rows().tolist())
        frames = [pg.mkPen(TOP_K_COLOUR, width=3) if int(row) in top else pg.mkPen(palette[index[p]], width=2)
                  for p, row in zip(visible, self._rows[visible])]
        paths = self.state.collection.paths if self.state.collection is not None else []
        self.image_map.show(self._rows[visible], self._xy[visible],
                            [paths[r] for r in self._rows[visible]], frames, self.thumbnails.pixmap)

    def _thumbnails_arrived(self, paths: list[str]) -> None:
        self.image_map.pixmaps_arrived(paths, self.thumbnails.cached)
        if self.preview.isVisible() and self.preview.path in paths:
            self.preview.set_pixmap(self.thumbnails.cached(self.preview.path))

    # --- mouse ----------------------------------------------------------------------------

    def _point_at(self, view_pos: QPointF) -> int | None:
        """The point under the cursor: nearest within its drawn radius, measured in pixels."""
        if not len(self._xy):
            return None
        pixel_w, pixel_h = self.view_box.viewPixelSize()
        if not pixel_w or not pixel_h:
            return None
        radius = TILE_PX / 2 if len(self.image_map.tiles()) else self.scatter.opts["size"] / 2 + 3
        dx = (self._xy[:, 0] - view_pos.x()) / pixel_w
        dy = (self._xy[:, 1] - view_pos.y()) / pixel_h
        distance = dx * dx + dy * dy
        nearest = int(np.argmin(distance))
        return nearest if distance[nearest] <= radius * radius else None

    def _mouse_moved(self, scene_pos: QPointF) -> None:
        self._hover_scene_pos = scene_pos
        if not self._hover_timer.isActive():
            self._hover_timer.start()

    def _hover_now(self) -> None:
        scene_pos = self._hover_scene_pos
        inside = scene_pos is not None and self.view_box.sceneBoundingRect().contains(scene_pos)
        point = self._point_at(self.view_box.mapSceneToView(scene_pos)) if inside else None
        if point is None or self.state.collection is None or scene_pos is None:
            self._end_hover()
            return
        if point != self._hover_point:
            self._hover_point = point
            self.hover_ring.set_points(self._xy[point:point + 1], self._rows[point:point + 1])
        path = self.state.collection.paths[self._rows[point]]
        at = self.plot.viewport().mapTo(self.plot, self.plot.mapFromScene(scene_pos))
        self.preview.show_for(path, self.thumbnails.pixmap(path), at)

    def _end_hover(self) -> None:
        if self._hover_point is not None:
            self._hover_point = None
            self.hover_ring.clear()
        self.preview.hide_preview()

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:  # noqa: N802
        if watched is self.plot.viewport() and event.type() == QEvent.Type.Leave:
            self._hover_timer.stop()
            self._end_hover()
        elif watched is self.plot.viewport() and event.type() == QEvent.Type.Resize:
            self._place_layout_label()
        return super().eventFilter(watched, event)

    def _clicked_at(self, view_pos: QPointF, modifiers: Qt.KeyboardModifier) -> None:
        row = self.row_at(view_pos)
        if row is not None:  # Ctrl+click adds the image to the query instead of replacing it
            self.query_by_row(row, replace=not modifiers & Qt.KeyboardModifier.ControlModifier)

    def _context_menu_at(self, view_pos: QPointF, screen_pos: QPoint) -> None:
        row = self.row_at(view_pos)
        menu = QMenu(self)
        if row is not None:
            menu.addAction("Query by this image", lambda: self.query_by_row(row))
            menu.addAction("Add to the query", lambda: self.query_by_row(row, replace=False))
            menu.addSeparator()
        menu.addAction("Reset view", self.reset_view)
        menu.popup(screen_pos)

    def _shape_drawn(self, kind: str, vertices: np.ndarray, modifiers: Qt.KeyboardModifier) -> None:
        add = bool(modifiers & Qt.KeyboardModifier.ControlModifier)
        if kind == "rectangle":
            (x0, y0), (x1, y1) = vertices.min(axis=0), vertices.max(axis=0)
            self.select_in_rect(QRectF(x0, y0, x1 - x0, y1 - y0), add)
        else:
            self.select_in_polygon(vertices, add)

    def _select_points(self, inside: np.ndarray, add: bool) -> np.ndarray:
        rows = self._rows[inside]
        if add:
            rows = np.union1d(rows, self.state.selection)
        rows = np.unique(rows)
        self.state.select(rows, SOURCE)
        if len(rows):
            self.state.set_filter(rows, f"{len(rows)} images selected on the map", SOURCE)
        else:  # an empty shape clears the selection; an empty grid would help nobody
            self.state.set_filter(None, "", SOURCE)
        self._show_selection()
        return rows

