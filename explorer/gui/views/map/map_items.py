"""Parts of the map view that know nothing of the application state.

- `PaletteScatterItem`: one pxMode scatter whose points take their fill from a small palette;
  recolouring 100k points costs milliseconds instead of pyqtgraph's half second; from
  `dense_from` points on it paints them as one image (`raster_index`), kept while panning.
- `SelectionViewBox`: pyqtgraph's pan/zoom view box, plus rectangle and lasso drawing, and plain
  signals for clicks and context menus (so no item ever has to look points up in Python).
- `ThumbnailLayer`: thumbnails drawn at their points at a fixed size on screen, from a pool.
- `HoverPreview`: thumbnail and file name next to the cursor.
- Colourings (palette, palette index per point, legend) by folder label, similarity, selection;
  `points_in_polygon` for the lasso.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QBrush, QColor, QImage, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import (
    QFrame, QGraphicsItem, QGraphicsPathItem, QGraphicsPixmapItem, QGraphicsRectItem, QLabel,
    QVBoxLayout, QWidget,
)

LASSO_MIN_STEP_PX = 3.0  # lasso vertices closer than this on screen add nothing but cost
PREVIEW_PX = 192

# Tableau 20, strong colours first: neighbouring labels get the most distinct colours.
LABEL_COLOURS = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac", "#a0cbe8", "#ffbe7d", "#ff9d9a", "#86bcb6", "#8cd17d", "#f1ce63",
    "#d4a6c8", "#fabfd2", "#d7b5a6", "#79706e",
]
UNLABELLED_COLOUR = "#8a8a8a"  # files directly in the folder, not in a label subfolder
NO_QUERY_COLOUR = "#7a7a7a"
SIMILARITY_STEPS = 16
SELECTION_COLOURS = [(140, 140, 140, 70), (255, 176, 0, 255)]  # RGBA: others dimmed, selected


# --- colourings --------------------------------------------------------------------------------


@dataclass(eq=False)
class Colouring:
    """What the points' colours say: point i is drawn in `palette[index[i]]`."""

    palette: list[QColor]
    index: np.ndarray
    legend: str  # rich text for a one-line legend


def label_colouring(names: Sequence[str], codes: np.ndarray, legend_entries: int = 12) -> Colouring:
    """Colour by folder label (`analysis.label_codes`). Labels sorted by name share out the
    palette, so a folder keeps its colour from one session to the next; beyond 20 labels
    colours repeat."""
    first = 1 if names and names[0] == "" else 0  # '' sorts first and has its own grey
    slots = np.array([(i - first) % len(LABEL_COLOURS) if name else len(LABEL_COLOURS)
                      for i, name in enumerate(names)], np.int64)
    palette = [QColor(c) for c in LABEL_COLOURS + [UNLABELLED_COLOUR]]
    legend = " ".join(_swatch(palette[slot]) + f"&nbsp;{_escape(name or '(top level)')}"
                      for name, slot in list(zip(names, slots))[:legend_entries])
    if len(names) > legend_entries:
        legend += f" \u2026 +{len(names) - legend_entries} folders"
    return Colouring(palette, slots[codes], legend)


def similarity_palette() -> list[QColor]:
    # viridis without its darkest eighth, which vanishes on the dark background
    values = np.linspace(0.125, 1.0, SIMILARITY_STEPS)
    return [QColor(*rgba) for rgba in pg.colormap.get("viridis").map(values, mode="byte")]


def similarity_colouring(values: np.ndarray | None, n: int = 0) -> Colouring:
    """Colour by similarity to the query, in equal steps from the least to the most similar
    image (so the best match always gets the top colour); all `n` grey when there is no query."""
    if values is None or not len(values):
        return Colouring([QColor(NO_QUERY_COLOUR)], np.zeros(n, np.int64),
                         "No query: click an image or add an example")
    palette = similarity_palette()
    low, high = float(values.min()), float(values.max())
    steps = ((values - low) / max(high - low, 1e-12) * SIMILARITY_STEPS).astype(np.int64)
    legend = f"similarity {low:.2f}&nbsp;" + "".join(_swatch(c) for c in palette[::3]) + f"&nbsp;{high:.2f}"
    return Colouring(palette, steps.clip(0, SIMILARITY_STEPS - 1), legend)


def selection_colouring(selected: np.ndarray) -> Colouring:
    palette = [QColor(*rgba) for rgba in SELECTION_COLOURS]
    return Colouring(palette, selected.astype(np.int64),
                     _swatch(palette[1]) + f"&nbsp;selected ({int(selected.sum())})")


def _swatch(colour: QColor) -> str:
    return f'<span style="color:{colour.name()}">&#9632;</span>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --- geometry and graphics items ---------------------------------------------------------------


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """Mask of `points` (N, 2) inside `polygon` (M, 2 vertices, implicitly closed), even-odd rule.

    Ray casting, vectorised over points and looped over edges; a bounding-box test first keeps
    a small lasso on a 100k map cheap.
    """
    inside = np.zeros(len(points), bool)
    if len(polygon) < 3 or not len(points):
        return inside
    px, py = polygon[:, 0].astype(np.float64), polygon[:, 1].astype(np.float64)
    x, y = points[:, 0], points[:, 1]
    candidates = np.flatnonzero((x >= px.min()) & (x <= px.max()) & (y >= py.min()) & (y <= py.max()))
    cx, cy = x[candidates].astype(np.float64), y[candidates].astype(np.float64)
    crossings = np.zeros(len(candidates), bool)
    xj, yj = px[-1], py[-1]
    for xi, yi in zip(px, py):
        straddles = (yi > cy) != (yj > cy)
        if yi != yj:  # a horizontal edge is never crossed by a horizontal ray
            x_at_y = (xj - xi) * (cy - yi) / (yj - yi) + xi
            crossings ^= straddles & (cx < x_at_y)
        xj, yj = xi, yi
    inside[candidates] = crossings
    return inside


def raster_index(x: np.ndarray, y: np.ndarray, index: np.ndarray, rect: tuple[float, float, float, float],
                 width: int, height: int, dot: int) -> np.ndarray:
    """The points as an image: (height, width) uint8, 0 where no point, else 1 + the highest
    palette `index` among the points whose `dot`-pixel square covers the pixel, so the colours
    that set_colours draws last are on top here too. Row 0 is the bottom edge of `rect`
    (x0, y0, x1, y1); `index` must be sorted (set_colours' drawing order), so that each colour's
    points are one run and no pixel depends on the order of a fancy assignment."""
    x0, y0, x1, y1 = rect
    half = dot // 2
    ix = ((x - x0) * (width / (x1 - x0)) - half).astype(np.int64)
    iy = ((y - y0) * (height / (y1 - y0)) - half).astype(np.int64)
    inside = (ix >= 0) & (ix < width) & (iy >= 0) & (iy < height)
    flat, colours = (iy * width + ix)[inside], index[inside]
    drawn = np.zeros(width * height, np.uint8)
    starts = np.flatnonzero(np.diff(colours)) + 1
    for start, stop in zip(np.r_[0, starts], np.r_[starts, len(colours)]):
        drawn[flat[start:stop]] = colours[start] + 1
    image = drawn.reshape(height, width)
    for axis in (0, 1):  # each point a dot x dot square: a running maximum along each axis
        grown = image.copy()
        for k in range(1, min(dot, image.shape[axis])):
            target = grown[k:] if axis == 0 else grown[:, k:]
            np.maximum(target, image[:-k] if axis == 0 else image[:, :-k], out=target)
        image = grown
    return image


@dataclass(eq=False)
class _Raster:
    """One painted image of the points: what it shows and where."""

    version: int  # of the colours
    scale: tuple[float, float]  # device pixels per data unit, x and y
    rect: QRectF  # data coordinates it covers
    covers: QRectF  # the region it stands for: `rect` is this clipped to the points' bounds
    pixels: np.ndarray  # ARGB32 words, kept alive for `image`
    image: QImage
    made: float  # time.monotonic()


class PaletteScatterItem(pg.ScatterPlotItem):
    """A pxMode scatter whose points share symbol, size and pen; fills come from a palette.

    pyqtgraph finds each point's pre-rendered symbol with a Python lookup per point (~3-5 us, so
    0.4-0.6 s to recolour 100k points; see perf-notes.md). Here the lookup runs once per distinct
    brush and numpy fans the atlas coordinates out to the points. The per-point `brush` column is
    kept exactly as pyqtgraph would have it, so its own code paths (a device-pixel-ratio change
    re-renders the atlas) stay correct. Per-point symbols, sizes or pens fall back to pyqtgraph.
    """

    # From this many points on they are painted as one image of the view and its surroundings,
    # made in numpy (~30 ms at 1M points) and drawn again while panning: pyqtgraph maps every
    # point through the view transform each frame (~250 ms a frame at 1M, bench/bench_map.py).
    dense_from = 200_000
    SETTLE_S = 0.08  # zooming: the image is scaled until the zoom pauses this long, then made anew

    def __init__(self, **options):
        super().__init__(pxMode=True, **options)
        self._xy = np.empty((0, 2))
        self._rows = np.empty(0, np.int64)
        self._order = np.empty(0, np.int64)  # point index of each row of the table (drawing order)
        self._palette = np.zeros(256, np.uint32)  # ARGB32 of 1 + palette index; 0: no point
        self._sorted_index = np.empty(0, np.uint8)  # palette index of each point, drawing order
        self._drawn_xy = self._xy  # positions in drawing order
        self._colour_version = 0
        self._raster: _Raster | None = None
        self.rasters_made = 0
        self._settle = QTimer(singleShot=True, interval=int(self.SETTLE_S * 1000))
        self._settle.timeout.connect(self.update)

    def _table(self) -> np.ndarray:
        """pyqtgraph's point table (a structured array; untyped in pyqtgraph)."""
        return self.data

    def dense(self) -> bool:
        """Whether the points are painted as one image (and pyqtgraph's table holds only the
        two corners of their bounds, so that nothing of pyqtgraph's costs a pass over them)."""
        return len(self._rows) >= self.dense_from

    def set_points(self, xy: np.ndarray, rows: np.ndarray) -> None:
        """Positions and per-point data (collection rows), all with the default brush.

        Builds the point table as setData would, but from zeros: pyqtgraph's np.empty of the
        table fills its object fields element by element (~50 ms at 100k points)."""
        self._xy, self._rows = np.asarray(xy, np.float64), np.asarray(rows, np.int64)
        self._order = np.arange(len(self._rows))
        self._drawn_xy = self._xy
        table_xy, table_rows = (self._corners(), np.full(2, -1)) if self.dense() else (self._xy, self._rows)
        data = np.zeros(len(table_xy), self._table().dtype)
        for name in ("symbol", "pen", "brush", "item"):
            data[name] = None
        data["x"], data["y"] = table_xy[:, 0], table_xy[:, 1]
        data["size"], data["visible"], data["data"] = -1, True, table_rows
        self.data = data
        self._palette[1] = pg.mkBrush(self.opts["brush"]).color().rgba()
        self._sorted_index = np.zeros(len(self._rows), np.uint8)
        self._colour_version += 1
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.bounds = [None, None]
        self.invalidate()
        self.updateSpots(data)
        self.sigPlotChanged.emit(self)

    def _corners(self) -> np.ndarray:
        return np.array([np.nanmin(self._xy, axis=0), np.nanmax(self._xy, axis=0)])

    def move_points(self, xy: np.ndarray) -> None:
        """New positions for the same points (in `set_points` order), colours kept: one frame
        of a transition between two layouts, a few milliseconds at 100k points."""
        self._xy = np.asarray(xy, np.float64)
        self._drawn_xy = self._xy[self._order]
        drawn = self._corners() if self.dense() else self._drawn_xy
        self.data["x"], self.data["y"] = drawn[:, 0], drawn[:, 1]
        self._colour_version += 1
        self.prepareGeometryChange()
        self.informViewBoundsChanged()
        self.bounds = [None, None]
        self.invalidate()

    def set_colours(self, brushes: Sequence[QBrush], index: np.ndarray) -> None:
        """Fill point i (in `set_points` order) with `brushes[index[i]]`.

        Points are redrawn in order of palette index, so later palette entries (most similar,
        selected) are painted on top of earlier ones where points overlap.
        """
        if len(index) != len(self._rows):
            raise ValueError(f"{len(index)} colour indices for {len(self._rows)} points")
        if not len(index):
            return
        # A stable sort of bytes is numpy's radix sort: 10x faster than of int64 at 1M points.
        keys = index.astype(np.uint8) if len(brushes) <= 256 else index
        order = self._order = np.argsort(keys, kind="stable")
        self._drawn_xy = self._xy[order]
        slots = min(len(brushes), len(self._palette) - 1)  # beyond 255 colours the last repeats
        self._palette[1:slots + 1] = [brush.color().rgba() for brush in brushes[:slots]]
        self._sorted_index = np.minimum(index[order], slots - 1).astype(np.uint8)
        self._colour_version += 1
        if self.dense():
            self.update()
            return
        palette = np.empty(len(brushes), object)
        palette[:] = list(brushes)
        data = self.data
        data["x"], data["y"] = self._drawn_xy[:, 0], self._drawn_xy[:, 1]
        data["data"] = self._rows[order]
        data["item"] = None  # SpotItems (if pyqtgraph made any) would describe the old order
        data["brush"] = palette[index[order]]
        data["sourceRect"] = self._atlas_rects(brushes)[index[order]]
        self._updateMaxSpotSizes(data=data)
        self.invalidate()

    def _atlas_rects(self, brushes: Sequence[QBrush]) -> np.ndarray:
        symbol, size, pen = self.opts["symbol"], self.opts["size"], self.opts["pen"]
        rects = self.fragmentAtlas[[(symbol, size, pen, brush) for brush in brushes]]
        return np.array(rects, dtype=self._table().dtype["sourceRect"])

    def updateSpots(self, dataSet=None) -> None:  # noqa: N802 (pyqtgraph's name)
        data = self.data if dataSet is None else dataSet
        uniform = ((data["size"] == -1).all() and np.equal(data["symbol"], None).all()
                   and np.equal(data["pen"], None).all())
        if not (self.opts["pxMode"] and self.opts["useCache"] and uniform):
            super().updateSpots(dataSet)
            return
        stale = np.flatnonzero(data["sourceRect"]["w"] == 0)
        if len(stale):
            brushes = data["brush"][stale]
            if np.equal(brushes, None).all():  # fresh points, all in the default brush
                data["sourceRect"][stale] = self._atlas_rects([self.opts["brush"]])[0]
            else:
                keys = np.fromiter(map(id, brushes), np.int64, count=len(brushes))
                _, first, index = np.unique(keys, return_index=True, return_inverse=True)
                distinct = [brushes[i] if brushes[i] is not None else self.opts["brush"] for i in first]
                data["sourceRect"][stale] = self._atlas_rects(distinct)[index.ravel()]
            self.invalidate()
        self._updateMaxSpotSizes(data=data)

    def paint(self, p, option, widget) -> None:
        if not self.dense() or self._exportOpts is not False:
            super().paint(p, option, widget)
            return
        view = self.viewRect()
        transform = p.transform()
        scale = (transform.m11(), transform.m22())
        if view is None or transform.isRotating() or not scale[0] or not scale[1]:
            return
        raster = self._raster
        if raster is None or raster.version != self._colour_version:
            raster = self._raster = self._make_raster(view, scale)
        elif raster.scale != scale and time.monotonic() - raster.made < self.SETTLE_S \
                and 0.5 <= scale[0] / raster.scale[0] <= 2:
            self._settle.start()  # zooming: this frame scales the last image
        elif raster.scale != scale or not raster.covers.contains(view):
            raster = self._raster = self._make_raster(view, scale)
        p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        p.drawImage(raster.rect, raster.image)

    def _make_raster(self, view: QRectF, scale: tuple[float, float]) -> _Raster:
        """The image of the points in the view and half a view around it (clipped to the
        points' bounds), one image pixel per device pixel."""
        margin_x, margin_y = view.width() / 2, view.height() / 2
        covers = view.adjusted(-margin_x, -margin_y, margin_x, margin_y)
        x, y = self._drawn_xy[:, 0], self._drawn_xy[:, 1]
        pad_x, pad_y = self.opts["size"] / abs(scale[0]), self.opts["size"] / abs(scale[1])
        bounds = QRectF(QPointF(x.min() - pad_x, y.min() - pad_y), QPointF(x.max() + pad_x, y.max() + pad_y))
        region = covers.intersected(bounds)
        width = max(1, math.ceil(region.width() * abs(scale[0])))
        height = max(1, math.ceil(region.height() * abs(scale[1])))
        region.setWidth(width / abs(scale[0]))
        region.setHeight(height / abs(scale[1]))
        rect = (region.left(), region.top(), region.right(), region.bottom())
        shown = int(np.count_nonzero((x >= rect[0]) & (x < rect[2]) & (y >= rect[1]) & (y < rect[3])))
        # Dense: small dots keep the structure; sparse (zoomed in): points of their usual size.
        dot = max(1, self.opts["size"] // 2) if shown * 8 > width * height else self.opts["size"]
        pixels = self._palette[raster_index(x, y, self._sorted_index, rect, width, height, dot)]
        image = QImage(pixels.data, width, height, width * 4, QImage.Format.Format_ARGB32)
        self.rasters_made += 1
        return _Raster(self._colour_version, scale, region, covers, pixels, image, time.monotonic())

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        # pyqtgraph's version builds a SpotItem for every point (seconds at 100k) to find the
        # clicked one; the view box reports clicks and the map view looks points up in numpy.
        ev.ignore()


class SelectionViewBox(pg.ViewBox):
    """Pan and zoom as usual; with the rectangle or lasso tool (or Shift) a left drag draws a shape.

    Positions in signals are in view (data) coordinates.
    """

    shape_drawn = Signal(str, object, object)  # "rectangle" | "lasso", (M, 2) vertices, modifiers
    clicked_at = Signal(object, object)  # QPointF, Qt.KeyboardModifier
    context_menu_at = Signal(object, object)  # QPointF, global screen QPoint

    TOOLS = ("pan", "rectangle", "lasso")

    def __init__(self, **options):
        super().__init__(**options)
        self.tool = "pan"
        self._drag_tool: str | None = None
        self._trace: list[QPointF] = []  # lasso vertices, view coordinates
        self._last_trace_px = QPointF()
        self._outline = QGraphicsPathItem()
        self._outline.setPen(pg.mkPen("#ffffff", width=1.5, style=Qt.PenStyle.DashLine))
        self._outline.setBrush(QBrush(QColor(255, 255, 255, 40)))
        self._outline.setZValue(1e6)
        self._outline.hide()
        self.addItem(self._outline, ignoreBounds=True)

    def mouseDragEvent(self, ev, axis=None) -> None:  # noqa: N802
        if ev.isStart():
            shift = bool(ev.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._drag_tool = "rectangle" if shift and self.tool == "pan" else self.tool
        if ev.button() != Qt.MouseButton.LeftButton or axis is not None or self._drag_tool == "pan":
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start, here = self.mapToView(ev.buttonDownPos()), self.mapToView(ev.pos())
        if ev.isStart():
            self._trace, self._last_trace_px = [start], ev.buttonDownPos()
        if self._drag_tool == "lasso" and (ev.pos() - self._last_trace_px).manhattanLength() >= LASSO_MIN_STEP_PX:
            self._trace.append(here)
            self._last_trace_px = ev.pos()
        vertices = (np.array([(start.x(), start.y()), (here.x(), start.y()),
                              (here.x(), here.y()), (start.x(), here.y())])
                    if self._drag_tool == "rectangle" else
                    np.array([(p.x(), p.y()) for p in self._trace + [here]]))
        if ev.isFinish():
            self._outline.hide()
            self.shape_drawn.emit(self._drag_tool, vertices, ev.modifiers())
            return
        path = QPainterPath()
        path.addPolygon(QPolygonF([QPointF(x, y) for x, y in vertices]))
        path.closeSubpath()
        self._outline.setPath(path)
        self._outline.show()

    def mouseClickEvent(self, ev) -> None:  # noqa: N802
        if ev.button() == Qt.MouseButton.LeftButton and not ev.double():
            ev.accept()
            self.clicked_at.emit(self.mapToView(ev.pos()), ev.modifiers())
        elif ev.button() == Qt.MouseButton.RightButton:
            ev.accept()
            self.context_menu_at.emit(self.mapToView(ev.pos()), ev.screenPos().toPoint())
        else:
            super().mouseClickEvent(ev)


class _Tile(QGraphicsRectItem):
    """A frame at a point, constant size on screen, holding the thumbnail once it has arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations)
        self.image = QGraphicsPixmapItem(self)
        self.image.setTransformationMode(Qt.TransformationMode.SmoothTransformation)
        self.setBrush(QBrush(QColor(60, 60, 60)))  # shown until the thumbnail loads
        self.row = -1
        self.key = ""


class ThumbnailLayer:
    """Thumbnails at their points' positions, `size_px` on screen whatever the zoom.

    Items come from a pool that only ever grows to the most thumbnails shown at once, so
    zooming around creates no garbage; scaled pixmaps are cached (they are tiny) so a frame
    draws plain pixmaps, not 300 smooth rescales.
    """

    SCALED_CACHE = 2000

    def __init__(self, view_box: pg.ViewBox, size_px: int = 64, z_value: float = 10.0):
        self.view_box = view_box
        self.size_px = size_px
        self.z_value = z_value
        self._pool: list[_Tile] = []
        self._shown: dict[str, _Tile] = {}  # key (relative path) -> tile
        self._scaled: OrderedDict[str, QPixmap] = OrderedDict()

    def show(self, rows: np.ndarray, xy: np.ndarray, keys: Sequence[str], frames: Sequence[QPen],
             pixmap_of: Callable[[str], QPixmap | None]) -> None:
        """Show exactly these points as thumbnails (later ones on top); hide all others."""
        for tile in self._shown.values():
            tile.hide()
        self._shown = {}
        for n, (row, (x, y), key, frame) in enumerate(zip(rows, xy, keys, frames)):
            tile = self._tile(n)
            tile.row, tile.key = int(row), key
            tile.setPos(float(x), float(y))
            tile.setPen(frame)
            tile.setZValue(self.z_value + n * 1e-4)
            self._set_pixmap(tile, pixmap_of(key))
            tile.show()
            self._shown[key] = tile

    def clear(self) -> None:
        self.show(np.empty(0, np.int64), np.empty((0, 2)), [], [], lambda key: None)

    def forget_pixmaps(self) -> None:
        """Drop scaled pixmaps (another folder: the same relative path is another image)."""
        self._scaled.clear()

    def pixmaps_arrived(self, keys: Sequence[str], pixmap_of: Callable[[str], QPixmap | None]) -> None:
        for key in keys:
            tile = self._shown.get(key)
            if tile is not None:
                self._set_pixmap(tile, pixmap_of(key))

    def rows(self) -> np.ndarray:
        return np.array([tile.row for tile in self._shown.values()], np.int64)

    def tiles(self) -> list[_Tile]:
        return list(self._shown.values())

    def _tile(self, n: int) -> _Tile:
        if n == len(self._pool):
            tile = _Tile()
            self.view_box.addItem(tile, ignoreBounds=True)
            self._pool.append(tile)
        return self._pool[n]

    def _set_pixmap(self, tile: _Tile, pixmap: QPixmap | None) -> None:
        side = self.size_px
        if pixmap is None or pixmap.isNull():
            tile.image.hide()
            tile.setRect(-side / 2, -side / 2, side, side)
            return
        scaled = self._scaled.get(tile.key)
        if scaled is None:
            scaled = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
            self._scaled[tile.key] = scaled
            while len(self._scaled) > self.SCALED_CACHE:
                self._scaled.popitem(last=False)
        else:
            self._scaled.move_to_end(tile.key)
        w, h = scaled.width(), scaled.height()
        # y points up in the view but down on screen; the tile ignores the view's transform, so
        # it is laid out in screen pixels around its point.
        tile.setRect(QRectF(-w / 2, -h / 2, w, h))
        tile.image.setOffset(-w / 2, -h / 2)
        tile.image.setPixmap(scaled)
        tile.image.show()


class HoverPreview(QFrame):
    """Thumbnail and file name floating next to the cursor; never takes the mouse."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setObjectName("mapHoverPreview")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet("#mapHoverPreview { background: rgba(20, 20, 20, 225); border: 1px solid #666; }"
                           "QLabel { color: #eee; }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.name = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.image)
        layout.addWidget(self.name)
        self.path = ""
        self.hide()

    def show_for(self, path: str, pixmap: QPixmap | None, at: QPoint) -> None:
        """Show `path` (relative; its file name is shown) next to `at` (parent coordinates)."""
        if path != self.path:
            self.path = path
            self.name.setText(path.rsplit("/", 1)[-1])
            self.set_pixmap(pixmap)
        parent = self.parentWidget()
        if parent is None:
            return
        area = parent.rect()
        x, y = at.x() + 16, at.y() + 16
        if x + self.width() > area.right():  # flip to the other side near the edges
            x = at.x() - 16 - self.width()
        if y + self.height() > area.bottom():
            y = at.y() - 16 - self.height()
        self.move(max(0, x), max(0, y))
        self.show()

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        if pixmap is None:  # not loaded yet: the view calls again when it arrives
            self.image.setPixmap(QPixmap())
            self.image.setText("loading\u2026")
        else:
            self.image.setPixmap(pixmap.scaled(PREVIEW_PX, PREVIEW_PX, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
        self.adjustSize()

    def hide_preview(self) -> None:
        self.path = ""
        self.hide()
