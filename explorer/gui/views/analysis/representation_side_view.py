"""One side of "compare representations": the current query re-made under one representation,
its similarity histogram, its nearest images and the representation's evaluation numbers."""

from __future__ import annotations

import html
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ....core import analysis
from ....core.analysis import Evaluation
from ..plots import accent_fill, themed_plot
from ...controllers.jobs import RepresentationResult
from ...controllers.thumbnails import ThumbnailCache

TOP_SIDE = 72

def describe_evaluation(evaluation: Evaluation | None) -> str:
    if evaluation is None or not evaluation.overall.queries:
        return "no labels to evaluate"
    o = evaluation.overall
    return (f"mAP {o.mean_average_precision:.3f} \u00b7 precision@{evaluation.k} {o.precision_at_k:.3f} "
            f"\u00b7 recall@1 {o.recall_at_1:.3f} ({o.queries} queries)")


class RepresentationSideView(QWidget):
    """Shows one RepresentationResult: title, histogram, nearest images, eval numbers."""

    def __init__(self, letter: str, thumbnails: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self.letter, self.thumbnails = letter, thumbnails
        self.result: RepresentationResult | None = None
        self._items: dict[str, QListWidgetItem] = {}
        self.title = QLabel(f"<b>{letter}</b>")
        self.evaluation_label = QLabel(wordWrap=True, objectName="representationEvaluation")
        self.evaluation_label.setToolTip("The representation's retrieval quality over the whole "
                                         "collection, every labelled image as a query (as `explorer eval`)")
        self.plot = themed_plot(self, "cosine similarity", zoom_x_only=True)
        item = self.plot.getPlotItem()
        accent, fill = accent_fill(self)
        self.curve = item.plot([0.0, 1.0], [0], stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(accent))
        self.cutoff = pg.InfiniteLine(angle=90, pen=pg.mkPen(QColor(230, 120, 0), width=2, style=Qt.PenStyle.DashLine))
        item.addItem(self.cutoff)
        self.plot.setMinimumHeight(120)
        self.top = QListWidget(objectName=f"representationTop{letter}")
        self.top.setViewMode(QListView.ViewMode.IconMode)
        self.top.setFlow(QListView.Flow.LeftToRight)
        self.top.setWrapping(False)
        self.top.setIconSize(QSize(TOP_SIDE, TOP_SIDE))
        self.top.setGridSize(QSize(TOP_SIDE + 12, TOP_SIDE + 34))
        self.top.setFixedHeight(TOP_SIDE + 56)
        self.top.setToolTip("The query's nearest images under this representation, best first")
        self._placeholder = QPixmap(TOP_SIDE, TOP_SIDE)
        self._placeholder.fill(QColor(128, 128, 128, 60))
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.title)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.top)
        layout.addWidget(self.evaluation_label)
        thumbnails.ready.connect(self._thumbnails_ready)

    def show_message(self, text: str) -> None:
        self.evaluation_label.setText(text)

    def show_result(self, result: RepresentationResult) -> None:
        self.result = result
        hist = analysis.similarity_histogram(result.scores, len(result.top_rows))
        self.curve.setData(hist.edges, hist.counts, stepMode="center")
        self.cutoff.setValue(hist.top_k_threshold)
        summary = analysis.summarise(result.scores, len(result.top_rows))
        self.title.setText(f"<b>{self.letter}: {html.escape(result.model)}</b> \u00b7 mean {summary.mean:.3f} "
                           f"\u00b7 median {summary.median:.3f} \u00b7 top-{summary.top_k} mean "
                           f"{summary.top_k_mean:.3f}")
        self.evaluation_label.setText(describe_evaluation(result.evaluation))
        self.top.clear()
        self._items = {}
        for rank, row in enumerate(result.top_rows, 1):
            path, score = result.paths[row], float(result.scores[row])
            item = QListWidgetItem(f"{score:.3f}\n{Path(path).name}")
            item.setToolTip(f"{result.folder / path}\n#{rank} \u00b7 similarity {score:.4f}")
            pixmap = self.thumbnails.pixmap(path)
            item.setIcon(QIcon(pixmap if pixmap is not None else self._placeholder))
            self.top.addItem(item)
            self._items[path] = item

    def set_x_range(self, low: float, high: float) -> None:
        self.plot.getPlotItem().setXRange(low, high, padding=0)
        self.plot.getPlotItem().enableAutoRange(y=True)

    def top_paths(self) -> list[str]:
        return [self.result.paths[r] for r in self.result.top_rows] if self.result else []

    def _thumbnails_ready(self, paths: list[str]) -> None:
        for path in paths:
            item = self._items.get(path)
            pixmap = self.thumbnails.cached(path)
            if item is not None and pixmap is not None:
                item.setIcon(QIcon(pixmap))
