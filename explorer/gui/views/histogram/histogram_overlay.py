"""More on the similarity plot: the named queries' distributions overlaid on the current one's,
a per-query summary table with a threshold, and, for a query made of labelled images, the split
into same-label and other-label images with its average precision and precision@K.

All curves share core's bin grid (analysis.similarity_histogram), so they compare bin for bin.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QObject, QSize, Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView, QCheckBox, QDoubleSpinBox, QHBoxLayout, QHeaderView, QLabel, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ....core import analysis
from ...state.named_queries import CURRENT, NamedQueries
from .histogram_view import HistogramView
from ..query.named_queries_view import swatch

SAME_LABEL_COLOUR = QColor(30, 150, 70)
OTHER_LABEL_COLOUR = QColor(150, 150, 150)
THRESHOLD_COLOUR = QColor(200, 40, 160)
COLUMNS = ("query", "mean", "median", "top-K mean", "\u2265 threshold")
TABLE_ROWS = 4  # rows visible before the table scrolls: the plot keeps most of the height
PLOT_MIN_HEIGHT = 100  # with the summary under it, the dock's minimum stays near what it was


@dataclass(frozen=True)
class LabelQuality:
    """How well the current query retrieves its own label (query images left out)."""

    label: str
    same: np.ndarray  # scores of the other images with the label
    other: np.ndarray  # scores of every other image
    average_precision: float
    precision_at_k: float
    k: int


def label_quality(scores: np.ndarray, labels: np.ndarray, label: str, query_rows: np.ndarray,
                  k: int) -> LabelQuality:
    exclude = np.zeros(len(scores), bool)
    exclude[query_rows] = True
    relevant = labels == label  # compared once: a million strings take ~20 ms
    same, other = scores[relevant & ~exclude], scores[~relevant & ~exclude]
    return LabelQuality(label, same, other, *analysis.ap_and_precision_at_k(scores, relevant, k, exclude), k)


def _format(value: float) -> str:
    return "\u2013" if not np.isfinite(value) else f"{value:.3f}"


class HistogramOverlay(QObject):
    """Adds named-query curves, a legend, a threshold, a summary table and a label split to a
    HistogramView."""

    def __init__(self, view: HistogramView, analysis_state: NamedQueries):
        super().__init__(view)
        self.view, self.analysis, self.state = view, analysis_state, analysis_state.state
        self.curves: dict[str, pg.PlotDataItem] = {}  # named query -> its curve
        self.quality: LabelQuality | None = None
        self.summaries: dict[str, analysis.DistributionSummary] = {}
        self._legend_entries: list[tuple[str, str]] = []  # what the legend shows: (colour, name)
        self._build()
        view.overlay_has_curves = lambda: bool(self.analysis.visible_names())
        view.overlay_range = self._occupied_range
        view.refreshed.connect(self._render)  # same turn as the current curve: no flicker
        analysis_state.queries_changed.connect(view.refresh)
        # Named queries rescore as indexing adds images, even with no current query to announce it.
        self.state.collection_grew.connect(lambda *_: view.refresh())
        analysis_state.threshold_changed.connect(self._threshold_changed)
        self.split_box.toggled.connect(lambda *_: self._render())
        view.refresh()

    # --- construction ---------------------------------------------------------------------

    def _build(self) -> None:
        item = self.view.plot.getPlotItem()
        # The legend is a line under the plot, not an item on it: over the plot it hid the
        # high-similarity end, where a label's own images (the answer) usually are.
        self.legend = QLabel(objectName="histogramLegend", textFormat=Qt.TextFormat.RichText, wordWrap=True)
        self.legend.setToolTip("What each curve on the plot shows")
        self.same_curve = item.plot([0.0, 1.0], [0], stepMode="center", fillLevel=0,
                                    brush=_alpha(SAME_LABEL_COLOUR, 150), pen=pg.mkPen(SAME_LABEL_COLOUR))
        self.other_curve = item.plot([0.0, 1.0], [0], stepMode="center", fillLevel=0,
                                     brush=_alpha(OTHER_LABEL_COLOUR, 110), pen=pg.mkPen(OTHER_LABEL_COLOUR))
        for curve in (self.same_curve, self.other_curve):
            curve.setVisible(False)
        self.threshold_line = pg.InfiniteLine(
            self.analysis.threshold, angle=90, movable=True,
            pen=pg.mkPen(THRESHOLD_COLOUR, width=2, style=Qt.PenStyle.DotLine),
            hoverPen=pg.mkPen(THRESHOLD_COLOUR, width=3), label="\u2265 {value:.2f}",
            labelOpts={"position": 0.75, "color": THRESHOLD_COLOUR, "anchors": [(0, 0), (0, 0)]})
        self.threshold_line.setToolTip("Drag to count the images above a similarity threshold")
        self.threshold_line.setZValue(25)
        self.threshold_line.sigPositionChanged.connect(
            lambda line: self.analysis.set_threshold(float(line.value())))
        item.addItem(self.threshold_line)

        self.threshold_spin = QDoubleSpinBox(minimum=-1.0, maximum=1.0, singleStep=0.01, decimals=3,
                                             value=self.analysis.threshold)
        self.threshold_spin.setToolTip("Count the images scoring at least this (or drag the dotted line)")
        self.threshold_spin.valueChanged.connect(self.analysis.set_threshold)
        self.split_box = QCheckBox("Split by label", checked=True)
        self.split_box.setToolTip("For a query made of images of one label (subfolder): same-label "
                                  "images in green, the rest in grey, query images left out")
        self.quality_label = QLabel(wordWrap=True, objectName="labelQuality")
        self.quality_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        controls = QHBoxLayout()
        controls.addWidget(QLabel("Threshold"))
        controls.addWidget(self.threshold_spin)
        controls.addWidget(self.split_box)
        controls.addWidget(self.quality_label, 1)

        self.table = _SummaryTable(0, len(COLUMNS), objectName="summaryTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        row_height = self.table.fontMetrics().height() + 6
        self.table.verticalHeader().setDefaultSectionSize(row_height)
        self.table.setMaximumHeight(row_height * (TABLE_ROWS + 1) + 6)
        self.table.setMinimumHeight(row_height * 2 + 6)  # header and one query; the rest scrolls
        self.table.setToolTip("Per query: mean and median similarity over the collection, mean of "
                              "the K best, and how many images reach the threshold")
        self.panel = QWidget(objectName="histogramSummary")
        layout = QVBoxLayout(self.panel)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.legend)
        layout.addLayout(controls)
        layout.addWidget(self.table)
        view_layout, stack_layout = self.view.layout(), self.view.stack.layout()
        assert view_layout is not None and stack_layout is not None, "HistogramView lays out its plot and hint"
        view_layout.addWidget(self.panel)
        # The summary takes some of the height the plot alone had: keep the dock's minimum as it was.
        self.view.plot.setMinimumHeight(PLOT_MIN_HEIGHT)
        stack_layout.invalidate()  # the stack caches its pages' minimum

    # --- rendering ------------------------------------------------------------------------

    def _occupied_range(self) -> tuple[float, float] | None:
        spans = [analysis.similarity_histogram(s.scores).occupied_range()
                 for s in self.analysis.shown_scores() if s.name != CURRENT]
        return (min(a for a, _ in spans), max(b for _, b in spans)) if spans else None

    def _render(self) -> None:
        shown = [s for s in self.analysis.shown_scores() if s.name != CURRENT]
        names = {s.name for s in shown}
        item = self.view.plot.getPlotItem()
        for name in list(self.curves):
            if name not in names:
                item.removeItem(self.curves.pop(name))
        for s in shown:
            curve = self.curves.get(s.name)
            if curve is None:
                curve = self.curves[s.name] = item.plot([0.0, 1.0], [0], stepMode="center")
                curve.setZValue(5)
            curve.setPen(pg.mkPen(QColor(s.colour), width=2))
            self._set_distribution(curve, s.scores)
        self._render_split()
        self._render_legend(shown)
        self._render_table()
        self.threshold_line.setVisible(self.view.stack.currentWidget() is self.view.plot)

    def _set_distribution(self, curve: pg.PlotDataItem, scores: np.ndarray) -> None:
        if self.view.cumulative:
            x, y = analysis.cumulative(scores)
            curve.setData(x, y, stepMode=None)
        else:
            hist = analysis.similarity_histogram(scores)
            curve.setData(hist.edges, hist.counts, stepMode="center")

    def _render_split(self) -> None:
        self.quality = None
        scores = self.state.query.scores
        found = self.analysis.query_label() if scores is not None else None
        labels = self.analysis.labels()
        if scores is not None and found is not None and labels is not None:
            label, rows = found
            self.quality = label_quality(scores, labels, label, rows, self.state.query.top_k)
        split = self.quality is not None and self.split_box.isChecked()
        self.view.curve.setVisible(not split)
        for curve, part in ((self.same_curve, "same"), (self.other_curve, "other")):
            curve.setVisible(split)
            if split:
                self._set_distribution(curve, getattr(self.quality, part))
        self.split_box.setEnabled(self.quality is not None)
        q = self.quality
        if q is None:
            hint = "Split by label: make the query from indexed images of one subfolder" \
                if labels is not None and self.state.query.scores is not None else ""
            self.quality_label.setText(hint)
        else:
            self.quality_label.setText(
                f"Label <b>{html.escape(q.label)}</b>: AP {_format(q.average_precision)} \u00b7 "
                f"precision@{q.k} {_format(q.precision_at_k)} "
                f"({len(q.same)} other {html.escape(q.label)} images; query images left out)")

    def _render_legend(self, shown) -> None:
        entries = []  # (colour, name) per curve, as drawn
        if self.state.query.scores is not None:
            if self.same_curve.isVisible() and self.quality is not None:
                entries += [(SAME_LABEL_COLOUR.name(), f"current query: {self.quality.label}"),
                            (OTHER_LABEL_COLOUR.name(), "current query: other labels")]
            else:
                entries.append((self.view.palette().color(QPalette.ColorRole.Highlight).name(), CURRENT))
        entries += [(QColor(s.colour).name(), s.name) for s in shown]
        if entries == self._legend_entries:
            return
        self._legend_entries = entries
        self.legend.setText(" &nbsp; ".join(
            f'<span style="color:{colour}">&#9632;</span>&nbsp;{html.escape(name)}' for colour, name in entries))
        self.legend.setVisible(bool(entries))

    def legend_names(self) -> list[str]:
        """The curves the legend names, in its order."""
        return [name for _, name in self._legend_entries]

    def _render_table(self) -> None:
        threshold, k = self.analysis.threshold, self.state.query.top_k
        shown = self.analysis.shown_scores()
        self.summaries = {s.name: analysis.summarise(s.scores, k, threshold) for s in shown}
        self.table.setHorizontalHeaderItem(3, QTableWidgetItem(f"top-{k} mean"))
        self.table.setHorizontalHeaderItem(4, QTableWidgetItem(f"\u2265 {threshold:.3f}"))
        if self.table.rowCount() != len(shown):
            self.table.setRowCount(len(shown))
            self.table.updateGeometry()  # its size hint follows its rows
        accent = self.view.palette().color(QPalette.ColorRole.Highlight).name()
        for row, s in enumerate(shown):
            summary = self.summaries[s.name]
            name = QTableWidgetItem(swatch(s.colour or accent), s.name)
            values = (summary.mean, summary.median, summary.top_k_mean)
            cells = [name] + [QTableWidgetItem(_format(v)) for v in values] + \
                [QTableWidgetItem(f"{summary.above_threshold} of {summary.n}")]
            for column, cell in enumerate(cells):
                if column:
                    cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                self.table.setItem(row, column, cell)

    def _threshold_changed(self) -> None:
        value = self.analysis.threshold
        with signals_blocked(self.threshold_spin):
            self.threshold_spin.setValue(value)
        if abs(self.threshold_line.value() - value) > 1e-9:
            with signals_blocked(self.threshold_line):
                self.threshold_line.setValue(value)
        self._render_table()  # only the counts depend on the threshold


class _SummaryTable(QTableWidget):
    """Asks for the height of its rows (up to TABLE_ROWS), not a fixed block: the rest of the
    dock goes to the plot."""

    def sizeHint(self) -> QSize:
        rows = min(max(self.rowCount(), 1), TABLE_ROWS)
        height = self.horizontalHeader().height() + rows * self.verticalHeader().defaultSectionSize()
        return QSize(super().sizeHint().width(), height + 2 * self.frameWidth() + 2)


def _alpha(colour: QColor, alpha: int) -> QColor:
    colour = QColor(colour)
    colour.setAlpha(alpha)
    return colour
