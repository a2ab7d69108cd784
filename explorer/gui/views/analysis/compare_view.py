"""Compare two queries: every image's similarity to query A (x) against query B (y).

Images that A retrieves and B does not sit right of A's threshold and below B's; one click on
"A but not B" shows exactly those in the grid. A click on a point selects (and previews) it.
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor, QPalette, QPixmap
from PySide6.QtWidgets import (
    QComboBox, QDoubleSpinBox, QGridLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ....core import analysis
from ..plots import themed_plot
from ...state.named_queries import CURRENT, NamedQueries
from ...controllers.thumbnails import ThumbnailCache

SOURCE = "compare"
POINT_COLOUR = QColor(90, 120, 170, 150)
HIGHLIGHT_COLOUR = QColor(235, 120, 0, 220)  # the "A but not B" corner
PREVIEW_SIDE = 160
EMPTY_TEXT = "Save a query (Named queries) to compare it with another, or with the current query"


def a_but_not_b(scores_a: np.ndarray, scores_b: np.ndarray, threshold_a: float,
                threshold_b: float) -> np.ndarray:
    """Rows with score_A >= threshold_A and score_B < threshold_B, best A score first."""
    rows = np.flatnonzero((scores_a >= threshold_a) & (scores_b < threshold_b))
    return rows[np.argsort(-scores_a[rows], kind="stable")]


class CompareView(QWidget):
    """A scatter of two queries' scores, their thresholds, and the "A but not B" filter."""

    def __init__(self, analysis_state: NamedQueries, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.analysis, self.state, self.thumbnails = analysis_state, analysis_state.state, thumbnails
        self.scores_a: np.ndarray | None = None
        self.scores_b: np.ndarray | None = None
        self.preview_row: int | None = None
        self._pair: tuple | None = None  # (A, B, collection) the thresholds were set for
        self._syncing = False  # moving spin boxes and lines together: redraw once, after
        self._build()
        self._timer = QTimer(self, singleShot=True, interval=0, timeout=self._refresh)
        for signal in (analysis_state.queries_changed, self.state.query.changed,
                       self.state.collection_changed, self.state.collection_grew):
            signal.connect(self._schedule)
        self.state.selection_changed.connect(self._selection_changed)
        thumbnails.ready.connect(self._thumbnails_ready)
        self._refresh()

    def _schedule(self, *_) -> None:
        self._timer.start()  # coalesce: several signals in one turn, one redraw

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        self.combo_a, self.combo_b = QComboBox(), QComboBox()
        self.combo_a.setToolTip("Query A: similarity along the x axis")
        self.combo_b.setToolTip("Query B: similarity along the y axis")
        self.spin_a = QDoubleSpinBox(minimum=-1.0, maximum=1.0, singleStep=0.01, decimals=3)
        self.spin_b = QDoubleSpinBox(minimum=-1.0, maximum=1.0, singleStep=0.01, decimals=3)
        self.spin_a.setToolTip("A retrieves an image scoring at least this (or drag the vertical line)")
        self.spin_b.setToolTip("B retrieves an image scoring at least this (or drag the horizontal line)")
        self.filter_button = QPushButton("A but not B \u2192 grid")
        self.filter_button.setToolTip("Show in the grid the images A retrieves and B does not "
                                      "(the orange corner), best A score first")
        self.filter_button.clicked.connect(self.show_a_but_not_b)
        self.count_label = QLabel()
        controls = QGridLayout()
        controls.addWidget(QLabel("A (x)"), 0, 0)
        controls.addWidget(self.combo_a, 0, 1)
        controls.addWidget(QLabel("A \u2265"), 0, 2)
        controls.addWidget(self.spin_a, 0, 3)
        controls.addWidget(QLabel("B (y)"), 1, 0)
        controls.addWidget(self.combo_b, 1, 1)
        controls.addWidget(QLabel("B <"), 1, 2)
        controls.addWidget(self.spin_b, 1, 3)
        controls.addWidget(self.filter_button, 0, 4)
        controls.addWidget(self.count_label, 1, 4)
        controls.setColumnStretch(1, 1)
        for combo in (self.combo_a, self.combo_b):
            combo.currentTextChanged.connect(lambda *_: self._refresh())
        self.spin_a.valueChanged.connect(lambda v: self._threshold_moved(self.line_a, v))  # line_a: below
        self.spin_b.valueChanged.connect(lambda v: self._threshold_moved(self.line_b, v))

        self.plot = themed_plot(self)  # its axes are named after the two queries
        item = self.plot.getPlotItem()
        item.showGrid(x=True, y=True, alpha=0.12)
        self.diagonal = pg.InfiniteLine((0, 0), angle=45, pen=pg.mkPen(text, width=1, style=Qt.PenStyle.DashLine))
        self.diagonal.setToolTip("Equal similarity to A and B")
        item.addItem(self.diagonal)
        self.scatter = pg.ScatterPlotItem(pxMode=True, size=6, pen=None, brush=pg.mkBrush(POINT_COLOUR))
        # The "A but not B" points drawn again on top: moving a threshold redraws only these,
        # not a brush per point of the whole collection.
        self.corner = pg.ScatterPlotItem(pxMode=True, size=6, pen=None, brush=pg.mkBrush(HIGHLIGHT_COLOUR))
        for points in (self.scatter, self.corner):
            points.sigClicked.connect(self._clicked)
            item.addItem(points)
        self.selected = pg.ScatterPlotItem(pxMode=True, size=12, brush=None,
                                           pen=pg.mkPen(palette.color(QPalette.ColorRole.Highlight), width=2))
        item.addItem(self.selected)
        line_pen = pg.mkPen(HIGHLIGHT_COLOUR, width=2)
        self.line_a: pg.InfiniteLine = pg.InfiniteLine(0.5, angle=90, movable=True, pen=line_pen, label="A \u2265 {value:.2f}",
                                      labelOpts={"position": 0.95, "color": HIGHLIGHT_COLOUR})
        self.line_b: pg.InfiniteLine = pg.InfiniteLine(0.5, angle=0, movable=True, pen=line_pen, label="B < {value:.2f}",
                                      labelOpts={"position": 0.95, "color": HIGHLIGHT_COLOUR})
        for line, spin in ((self.line_a, self.spin_a), (self.line_b, self.spin_b)):
            line.setZValue(20)
            line.sigPositionChanged.connect(lambda l, spin=spin: self._line_dragged(spin, l.value()))
            item.addItem(line)

        self.preview = QLabel(alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self.preview.setFixedWidth(PREVIEW_SIDE + 8)
        self.preview.setMinimumHeight(PREVIEW_SIDE)
        self.preview.setToolTip("The image last clicked on the scatter")
        self.caption = QLabel(wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.caption.setFixedWidth(PREVIEW_SIDE + 8)
        self.caption.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        side = QVBoxLayout()
        side.addWidget(self.preview)
        side.addWidget(self.caption)
        side.addStretch(1)
        self.empty = QLabel(EMPTY_TEXT, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        body = QHBoxLayout()
        body.addWidget(self.plot, 1)
        body.addWidget(self.empty, 1)
        body.addLayout(side)
        layout = QVBoxLayout(self)
        layout.addLayout(controls)
        layout.addLayout(body, 1)

    def sizeHint(self) -> QSize:
        return QSize(760, 360)

    # --- choosing queries -----------------------------------------------------------------

    def choices(self) -> list[str]:
        names = self.analysis.names()
        return ([CURRENT] if self.state.query.scores is not None else []) + names

    def set_pair(self, a: str, b: str) -> None:
        with signals_blocked(self.combo_a), signals_blocked(self.combo_b):
            self.combo_a.setCurrentText(a)
            self.combo_b.setCurrentText(b)
        self._refresh()

    def _fill_combos(self) -> None:
        choices = self.choices()
        for combo, fallback in ((self.combo_a, 0), (self.combo_b, 1)):
            current = combo.currentText()
            with signals_blocked(combo):
                combo.clear()
                combo.addItems(choices)
                if current in choices:
                    combo.setCurrentText(current)
                elif choices:
                    combo.setCurrentIndex(min(fallback, len(choices) - 1))

    # --- rendering ------------------------------------------------------------------------

    def _refresh(self) -> None:
        self._fill_combos()
        a, b = self.combo_a.currentText(), self.combo_b.currentText()
        self.scores_a = scores_a = self.analysis.scores_of(a) if a else None
        self.scores_b = scores_b = self.analysis.scores_of(b) if b else None
        ready = scores_a is not None and scores_b is not None and len(self.choices()) >= 2
        self.plot.setVisible(ready)
        self.empty.setVisible(not ready)
        self.filter_button.setEnabled(ready)
        if not ready or scores_a is None or scores_b is None:
            self.scatter.clear()
            self.corner.clear()
            self.count_label.setText("")
            return
        pair = (a, b, id(self.state.collection))
        if pair != self._pair:  # new pair: start from each query's top-K cut-off
            self._pair = pair
            k = self.state.query.top_k
            self.set_thresholds(analysis.top_k_threshold(scores_a, k), analysis.top_k_threshold(scores_b, k))
        item = self.plot.getPlotItem()
        item.setLabel("bottom", f"similarity to A: {html.escape(a)}")
        item.setLabel("left", f"similarity to B: {html.escape(b)}")
        self._draw_points()
        self._selection_changed("")

    def _draw_points(self) -> None:
        if self.scores_a is None or self.scores_b is None:
            return
        self.scatter.setData(x=self.scores_a, y=self.scores_b, data=np.arange(len(self.scores_a)))
        self._draw_corner()

    def _draw_corner(self) -> None:
        if self.scores_a is None or self.scores_b is None:
            return
        rows = a_but_not_b(self.scores_a, self.scores_b, self.spin_a.value(), self.spin_b.value())
        self.corner.setData(x=self.scores_a[rows], y=self.scores_b[rows], data=rows)
        self.count_label.setText(f"{len(rows)} images in A but not B")

    def set_thresholds(self, threshold_a: float, threshold_b: float) -> None:
        self._syncing = True  # one redraw at the end, not one per widget moved
        try:
            self.spin_a.setValue(float(threshold_a))
            self.spin_b.setValue(float(threshold_b))
        finally:
            self._syncing = False
        self._draw_corner()

    def thresholds(self) -> tuple[float, float]:
        return self.spin_a.value(), self.spin_b.value()

    def _threshold_moved(self, line: pg.InfiniteLine, value: float) -> None:
        # Not signals_blocked: the line's label follows its sigPositionChanged.
        if abs(line.value() - value) > 1e-9:
            line.setValue(value)  # comes back through _line_dragged, which finds the spin in place
        if not self._syncing:
            self._draw_corner()

    def _line_dragged(self, spin: QDoubleSpinBox, value: float) -> None:
        if abs(spin.value() - value) > 5e-4:  # the spin box rounds to its 3 decimals
            with signals_blocked(spin):
                spin.setValue(float(value))
        if not self._syncing:
            self._draw_corner()

    # --- actions --------------------------------------------------------------------------

    def show_a_but_not_b(self) -> np.ndarray | None:
        """Filter the grid to the images A retrieves and B does not; returns their rows."""
        if self.scores_a is None or self.scores_b is None:
            return None
        ta, tb = self.thresholds()
        rows = a_but_not_b(self.scores_a, self.scores_b, ta, tb)
        a, b = self.combo_a.currentText(), self.combo_b.currentText()
        self.state.set_filter(rows, f"{len(rows)} images: {a} \u2265 {ta:.2f} but {b} < {tb:.2f}", SOURCE)
        return rows

    def _clicked(self, _item, points, _event=None) -> None:
        if len(points):
            self.show_row(int(points[0].data()))

    def show_row(self, row: int) -> None:
        """Select an image in every view and preview it here."""
        self.preview_row = row
        self.state.select([row], SOURCE)
        self._render_preview()

    def _render_preview(self) -> None:
        row, c, scores_a, scores_b = self.preview_row, self.state.collection, self.scores_a, self.scores_b
        if row is None or c is None or row >= len(c) or scores_a is None or scores_b is None:
            self.preview.clear()
            self.caption.setText("")
            return
        relative = c.paths[row]
        pixmap = self.thumbnails.pixmap(relative)
        if pixmap is None:
            self.preview.setText("loading\u2026")
        else:
            self.preview.setPixmap(pixmap.scaled(PREVIEW_SIDE, PREVIEW_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                                 Qt.TransformationMode.SmoothTransformation))
        self.caption.setText(f"{html.escape(Path(relative).name)}<br>A {scores_a[row]:.3f} \u00b7 "
                             f"B {scores_b[row]:.3f}")
        self.preview.setToolTip(str(c.folder / relative))

    def preview_pixmap(self) -> QPixmap | None:
        return self.preview.pixmap() if self.preview.pixmap() and not self.preview.pixmap().isNull() else None

    def _thumbnails_ready(self, paths: list[str]) -> None:
        c = self.state.collection
        if self.preview_row is not None and c is not None and self.preview_row < len(c) \
                and c.paths[self.preview_row] in paths:
            self._render_preview()

    def _selection_changed(self, _source: str) -> None:
        rows = self.state.selection
        if self.scores_a is None or self.scores_b is None or not len(rows):
            self.selected.clear()
            return
        rows = rows[rows < len(self.scores_a)]
        self.selected.setData(x=self.scores_a[rows], y=self.scores_b[rows])
