"""How the whole collection relates to the current query: its similarity distribution.

The histogram is cheap (one numpy pass over the scores), so it is computed on the GUI thread, at
most once per event-loop turn however many state signals arrive. A similarity range chosen on it
(drag on the plot, or "Select range") shows exactly the images in that range in the grid, and stays
applied as the query or the collection changes.
"""

from __future__ import annotations

import html
from collections.abc import Callable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QStackedWidget, QVBoxLayout, QWidget
from superqt.utils import signals_blocked

from ....core import analysis
from ....core.analysis import SimilarityHistogram
from ..plots import themed_plot
from ...controllers.session import Session
from ...state.app_state import AppState

SOURCE = "histogram"
EMPTY_TEXT = "Add an example image to see how the whole collection relates to it"
RANGE_HINT = "Drag on the plot to show the images in a similarity range"
DRAG_DEBOUNCE_MS = 120
MAX_TITLE_NAMES = 3


def describe_range(count: int, low: float, high: float) -> str:
    return f"{count} images with similarity {low:.2f}\u2013{high:.2f}"


class _BrushViewBox(pg.ViewBox):
    """A left-button drag on the background draws a similarity range instead of panning."""

    def __init__(self, on_brush):
        super().__init__(enableMenu=False)
        self._on_brush = on_brush

    def mouseDragEvent(self, ev, axis=None) -> None:
        if axis is not None or ev.button() != Qt.MouseButton.LeftButton:
            super().mouseDragEvent(ev, axis)
            return
        ev.accept()
        start = self.mapSceneToView(ev.buttonDownScenePos()).x()
        here = self.mapSceneToView(ev.scenePos()).x()
        self._on_brush(min(start, here), max(start, here))


class HistogramView(QWidget):
    """The current query's similarity histogram, its top-K cut-off, and a range selection.

    Other curves (named queries, a label split) are drawn on the same plot by an overlay
    (histogram_overlay.py), which re-renders on `refreshed` and follows `mode_changed`.
    """

    refreshed = Signal()  # the plot was redrawn for the current state
    mode_changed = Signal(bool)  # True: cumulative distribution; False: histogram

    def __init__(self, state: AppState, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session = state, session
        self.histogram: SimilarityHistogram | None = None  # what the plot shows now
        self.cumulative = False
        # Set by an overlay: whether it has curves to show without a current query, and the
        # similarity range its curves occupy (so the initial zoom covers every curve).
        self.overlay_has_curves: Callable[[], bool] = lambda: False
        self.overlay_range: Callable[[], tuple[float, float] | None] = lambda: None
        self._range_active = False  # the region is shown and drives the grid's filter
        self._owns_filter = False  # the grid's current filter is ours
        self._zoomed_for: tuple | None = None
        self._build()
        self._refresh_timer = QTimer(self, singleShot=True, interval=0, timeout=self._refresh)
        self._range_timer = QTimer(self, singleShot=True, interval=DRAG_DEBOUNCE_MS,
                                   timeout=self._apply_range)
        self.region.sigRegionChanged.connect(self._range_dragged)

        state.query.changed.connect(self._schedule)
        state.collection_changed.connect(self._collection_changed)
        state.filter_changed.connect(self._filter_changed)
        self._refresh()

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        accent = self.palette().color(QPalette.ColorRole.Highlight)

        self.range_label = QLabel()
        self.select_button = QPushButton("Select range")
        self.select_button.setToolTip("Show the top-K images in the grid; then drag the range's "
                                      "edges, or drag on the plot for another range")
        self.select_button.clicked.connect(self.select_top_k)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Forget the range and show all images in the grid")
        self.clear_button.clicked.connect(self.clear_range)
        self.mode_button = QPushButton("Cumulative", checkable=True)
        self.mode_button.setToolTip("Switch between the histogram and the cumulative distribution "
                                    "(share of images scoring at most x)")
        self.mode_button.toggled.connect(self.set_cumulative)
        bar = QHBoxLayout()
        bar.addWidget(self.range_label, 1)
        bar.addWidget(self.mode_button)
        bar.addWidget(self.select_button)
        bar.addWidget(self.clear_button)

        self.plot = themed_plot(self, "cosine similarity", "images", _BrushViewBox(self._brushed), zoom_x_only=True)
        item = self.plot.getPlotItem()
        item.showGrid(x=False, y=True, alpha=0.15)
        item.getViewBox().setAutoVisible(y=True)
        item.getViewBox().setLimits(yMin=0)
        fill = QColor(accent)
        fill.setAlpha(140)
        self.curve = item.plot(np.array([0.0, 1.0]), np.array([0]), stepMode="center", fillLevel=0,
                               brush=fill, pen=pg.mkPen(accent, width=1))
        self.cutoff = pg.InfiniteLine(
            angle=90, movable=False, pen=pg.mkPen(QColor(230, 120, 0), width=2, style=Qt.PenStyle.DashLine),
            label="top K", labelOpts={"position": 0.9, "color": QColor(200, 90, 0), "anchors": [(1, 0), (1, 0)]})
        self.cutoff.setZValue(20)  # above the range, whose edge often sits on the cut-off
        item.addItem(self.cutoff)
        region_fill = QColor(accent)
        region_fill.setAlpha(45)
        self.region = pg.LinearRegionItem((0.0, 1.0), brush=region_fill, pen=pg.mkPen(accent, width=2))
        self.region.setZValue(10)
        self.region.setVisible(False)
        item.addItem(self.region)

        self.plot.setMinimumHeight(160)  # docks start at their minimum: leave room for the bars
        self.empty = QLabel(EMPTY_TEXT, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.empty.setObjectName("emptyHint")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty)
        self.stack.addWidget(self.plot)

        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)

    def sizeHint(self) -> QSize:
        return QSize(720, 300)

    # --- rendering ------------------------------------------------------------------------

    def _schedule(self) -> None:
        self._refresh_timer.start()  # coalesce: several signals in one turn, one recomputation

    def _collection_changed(self) -> None:
        self._owns_filter = False  # AppState.set_collection dropped the grid filter silently
        self._zoomed_for = None
        self._schedule()

    def set_cumulative(self, on: bool) -> None:
        """Show cumulative distributions (True) or histograms (False)."""
        if on == self.cumulative:
            return
        self.cumulative = on
        with signals_blocked(self.mode_button):
            self.mode_button.setChecked(on)
        item = self.plot.getPlotItem()
        item.setLabel("left", "share of images \u2264 x" if on else "images")
        item.getViewBox().setLimits(yMin=0, yMax=1.05 if on else None)
        self._zoomed_for = None  # the y axis means something else now
        self.mode_changed.emit(on)
        self._refresh()

    def refresh(self) -> None:
        """Redraw at the next event-loop turn (for an overlay whose curves changed)."""
        self._schedule()

    def _refresh(self) -> None:
        state = self.state
        scores = state.query.scores
        if (scores is None or not len(scores)) and self.overlay_has_curves() and state.collection is not None:
            self._refresh_overlay_only()
            return
        if scores is None or not len(scores):
            self.histogram = None
            self.empty.setText(EMPTY_TEXT if state.query.vector is None
                               else "The distribution appears as soon as images are indexed.")
            self.stack.setCurrentWidget(self.empty)
            self.select_button.setEnabled(False)
            self.clear_range()
            self.refreshed.emit()
            return
        hist = analysis.similarity_histogram(scores, state.query.top_k)
        self.histogram = hist
        if self.cumulative:
            x, y = analysis.cumulative(scores)
            self.curve.setData(x, y, stepMode=None, fillLevel=None)
        else:
            self.curve.setData(hist.edges, hist.counts, stepMode="center", fillLevel=0)
        k = min(hist.top_k, hist.total)
        self.cutoff.setVisible(True)
        self.cutoff.setValue(hist.top_k_threshold)
        self.cutoff.label.setFormat(f"top {k}")
        self.plot.getPlotItem().setTitle(self._title(hist), size="10pt")
        self._zoom((id(state.query.vector), id(state.collection), hist.total), hist.occupied_range())
        self.stack.setCurrentWidget(self.plot)
        self.select_button.setEnabled(True)
        if self._range_active:
            self._apply_range()  # the same range over the new scores
        else:
            self.range_label.setText(RANGE_HINT)
        self.refreshed.emit()

    def _refresh_overlay_only(self) -> None:
        """No current query, but the overlay has named queries to show: the plot without the
        current query's curve, cut-off and range."""
        self.histogram = None
        self.curve.setData([], [], stepMode=None)
        self.cutoff.setVisible(False)
        self.clear_range()
        self.select_button.setEnabled(False)
        self.range_label.setText("")
        images = len(self.state.collection) if self.state.collection is not None else 0
        self.plot.getPlotItem().setTitle(f"{images} images", size="10pt")
        self._zoom(("overlay", id(self.state.collection)), None)
        self.stack.setCurrentWidget(self.plot)
        self.refreshed.emit()

    def _zoom(self, key: tuple, occupied: tuple[float, float] | None) -> None:
        """Zoom to the data once per query and collection; keep the user's zoom while only K
        changes. The overlay's curves count too."""
        if key == self._zoomed_for:
            return
        extra = self.overlay_range()
        spans = [r for r in (occupied, extra) if r is not None]
        if not spans:
            return
        self._zoomed_for = key
        low, high = min(r[0] for r in spans), max(r[1] for r in spans)
        pad = max((high - low) * 0.05, 0.01)
        self.plot.getPlotItem().setXRange(low - pad, high + pad, padding=0)
        self.plot.getPlotItem().enableAutoRange(y=True)

    def _title(self, hist: SimilarityHistogram) -> str:
        names = [e.name for e in self.state.query.positives]
        shown = ", ".join(names[:MAX_TITLE_NAMES])
        if len(names) > MAX_TITLE_NAMES:
            shown += f" +{len(names) - MAX_TITLE_NAMES} more"
        return f"{hist.total} images \u00b7 similarity to {html.escape(shown)}"

    # --- range selection ------------------------------------------------------------------

    def select_top_k(self) -> None:
        """Select the range from the top-K cut-off to the best score."""
        if self.histogram is None or self.state.query.scores is None:
            return
        self.set_range(self.histogram.top_k_threshold, float(self.state.query.scores.max()))

    def set_range(self, low: float, high: float) -> None:
        """Show the range and filter the grid to it now (no debounce)."""
        self._show_range(low, high)
        self._range_timer.stop()
        self._apply_range()

    def selected_range(self) -> tuple[float, float] | None:
        if not self._range_active:
            return None
        low, high = self.region.getRegion()
        return float(low), float(high)

    def clear_range(self) -> None:
        self._range_active = False
        self._range_timer.stop()
        self.region.setVisible(False)
        self.range_label.setText(RANGE_HINT if self.histogram is not None else "")
        self.clear_button.setEnabled(False)
        if self._owns_filter:
            self._owns_filter = False
            self.state.set_filter(None, "", SOURCE)

    def _brushed(self, low: float, high: float) -> None:
        if self.histogram is not None:
            self._show_range(low, high)  # sigRegionChanged starts the debounce

    def _show_range(self, low: float, high: float) -> None:
        self._range_active = True
        self.region.setVisible(True)
        self.clear_button.setEnabled(True)
        self.region.setRegion((low, high))

    def _range_dragged(self) -> None:
        if self._range_active:
            self._range_timer.start()  # restarts: the filter follows once the drag pauses

    def _apply_range(self) -> None:
        scores, span = self.state.query.scores, self.selected_range()
        if span is None or scores is None:
            return
        low, high = span
        rows = analysis.rows_in_range(scores, low, high)
        description = describe_range(len(rows), low, high)
        self.range_label.setText(description)
        current = self.state.grid_filter
        if self._owns_filter and current is not None and np.array_equal(current, rows) \
                and self.state.filter_description == description:
            return
        self._owns_filter = True
        self.state.set_filter(rows, description, SOURCE)

    def _filter_changed(self, source: str) -> None:
        if source != SOURCE:  # another view filtered the grid: our range no longer describes it
            self._owns_filter = False
            self.clear_range()
