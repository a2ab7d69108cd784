"""One side of "compare representations": the current query re-made under one representation,
its similarity histogram, its nearest images and the representation's evaluation numbers.

`represent` is the worker: it opens the folder's collection for that representation, rebuilds
the query from the same example images (indexed ones by their stored vectors there, other files
embedded with that model) and scores the whole collection.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QColor, QIcon, QPalette, QPixmap
from PySide6.QtWidgets import QLabel, QListView, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from ....core import analysis
from ....core.analysis import Evaluation
from ....core.backends import AUTO
from ....core.search import SearchIndex
from ...controllers.models import example_vectors_in
from ...controllers.thumbnails import ThumbnailCache

TOP_SIDE = 72
EVAL_K = 10  # as `explorer eval`

Examples = list[tuple[Path | None, np.ndarray]]  # (file, vector under the window's model)


@dataclass(frozen=True, eq=False)
class RepresentationResult:
    model: str
    folder: Path
    paths: list[str]  # relative, row order of `scores`
    scores: np.ndarray
    top_rows: np.ndarray  # best first
    evaluation: Evaluation | None  # None: no labels, or not asked for


def _vectors(index: SearchIndex, examples: Examples, model: str, same_model: bool,
             backend: str) -> np.ndarray:
    if same_model:  # the window's own representation: the examples' vectors are already right
        return np.stack([v for _, v in examples]).astype(np.float32)
    return example_vectors_in(index, examples, model, backend)


def represent(folder: Path, model: str, same_model: bool, positives: Examples, negatives: Examples,
              negative_weight: float, k: int, with_evaluation: bool, backend: str = AUTO,
              progress=None, cancelled=lambda: False) -> RepresentationResult | None:
    """Worker: the query under `model`, its scores over the folder, top k, and eval numbers."""
    index = SearchIndex.open(folder, model)
    try:
        query = analysis.rocchio(_vectors(index, positives, model, same_model, backend),
                                 _vectors(index, negatives, model, same_model, backend) if negatives else None,
                                 negative_weight)
        scores = index.similarities(query)
        evaluation = None
        labels = analysis.labels_of(index.paths)
        if with_evaluation and np.any(labels != ""):
            evaluation = analysis.evaluate(index.vectors, labels, EVAL_K, progress, cancelled)
            if evaluation is None:  # cancelled
                return None
        return RepresentationResult(model, index.folder, list(index.paths), scores,
                                    analysis.ranking(scores, k), evaluation)
    finally:
        index.close()


def describe_evaluation(evaluation: Evaluation | None) -> str:
    if evaluation is None or not evaluation.overall.queries:
        return "no labels to evaluate"
    o = evaluation.overall
    return (f"mAP {o.mean_average_precision:.3f} \u00b7 precision@{evaluation.k} {o.precision_at_k:.3f} "
            f"\u00b7 recall@1 {o.recall_at_1:.3f} ({o.queries} queries)")


class RepresentationSide(QWidget):
    """Shows one RepresentationResult: title, histogram, nearest images, eval numbers."""

    def __init__(self, letter: str, thumbnails: ThumbnailCache, parent: QWidget | None = None):
        super().__init__(parent)
        self.letter, self.thumbnails = letter, thumbnails
        self.result: RepresentationResult | None = None
        self._items: dict[str, QListWidgetItem] = {}
        palette = self.palette()
        text = palette.color(QPalette.ColorRole.WindowText)
        self.title = QLabel(f"<b>{letter}</b>")
        self.evaluation_label = QLabel(wordWrap=True, objectName="representationEvaluation")
        self.evaluation_label.setToolTip("The representation's retrieval quality over the whole "
                                         "collection, every labelled image as a query (as `explorer eval`)")
        self.plot = pg.PlotWidget(background=palette.color(QPalette.ColorRole.Base))
        item = self.plot.getPlotItem()
        item.setLabel("bottom", "cosine similarity", color=text.name())
        for axis in ("bottom", "left"):
            item.getAxis(axis).setPen(text)
            item.getAxis(axis).setTextPen(text)
        item.hideButtons()
        item.setMenuEnabled(False)
        item.setMouseEnabled(x=True, y=False)
        accent = QColor(palette.color(QPalette.ColorRole.Highlight))
        fill = QColor(accent)
        fill.setAlpha(140)
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
