"""Near-duplicates: the distribution of every image's similarity to its nearest other image, a
threshold chosen on it, and the resulting groups (connected components) side by side for review.

Both computations are core's (core/duplicates.py), run by the session in the background on a
SearchIndex the worker opens itself, so a reload of the window's collection never pulls it away
mid-run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFileDialog, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter,
    QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ....core import analysis
from ....core.export import write_groups_json
from ..plots import accent_fill, themed_plot
from ...state.app_state import AppState
from ...controllers.session import Session
from ...controllers.thumbnails import ThumbnailCache
from ...controllers.tasks import Task
from ..task_progress import TaskProgress

DEFAULT_THRESHOLD = 0.95  # as `explorer duplicates`
TILE_SIDE = 96
MAX_GROUPS_SHOWN = 100  # one widget per tile: enough to review, never one per photo of 100k
DEBOUNCE_MS = 250
THRESHOLD_COLOUR = QColor(200, 40, 160)


class DuplicatesView(QWidget):
    """Nearest-neighbour similarity histogram, threshold, groups, export."""

    def __init__(self, state: AppState, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session, self.thumbnails = state, session, thumbnails
        self._groups_task: Task | None = None
        self.similarities: np.ndarray | None = None
        self.groups: list[list[Path]] | None = None
        self.groups_threshold: float | None = None
        self._tiles: dict[str, list[QLabel]] = {}  # relative path -> its tiles awaiting a pixmap
        self._source: tuple | None = None  # (folder, model) the results belong to
        self._build()
        self._debounce = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self._compute_groups)
        state.collection_changed.connect(self._collection_changed)
        thumbnails.ready.connect(self._thumbnails_ready)

    def _build(self) -> None:
        self.compute_button = QPushButton("Find near-duplicates")
        self.compute_button.setToolTip("Each image's similarity to its nearest other image, over the collection")
        self.compute_button.clicked.connect(self.compute)
        self.threshold_spin = QDoubleSpinBox(minimum=0.0, maximum=1.0, singleStep=0.005, decimals=3,
                                             value=DEFAULT_THRESHOLD)
        self.threshold_spin.setToolTip("Images at least this similar are grouped (or drag the line)")
        self.threshold_spin.valueChanged.connect(self._spin_changed)
        self.export_button = QPushButton("Export groups\u2026", enabled=False)
        self.export_button.setToolTip('Save the groups as JSON: {"groups": [[path, ...], ...]}')
        self.export_button.clicked.connect(self.ask_export)
        self.status = QLabel("Find images that are near-copies of each other.", wordWrap=True)
        self.progress = TaskProgress("Stop looking for nearest neighbours")
        bar = QHBoxLayout()
        bar.addWidget(self.compute_button)
        bar.addWidget(QLabel("threshold"))
        bar.addWidget(self.threshold_spin)
        bar.addWidget(self.status, 1)
        bar.addWidget(self.progress)
        bar.addWidget(self.export_button)

        self.plot = themed_plot(self, "similarity to the nearest other image", "images", zoom_x_only=True)
        item = self.plot.getPlotItem()
        accent, fill = accent_fill(self)
        self.curve = item.plot([0.0, 1.0], [0], stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(accent))
        self.line = pg.InfiniteLine(DEFAULT_THRESHOLD, angle=90, movable=True,
                                    pen=pg.mkPen(THRESHOLD_COLOUR, width=2), label="{value:.3f}",
                                    labelOpts={"position": 0.9, "color": THRESHOLD_COLOUR})
        self.line.setToolTip("Drag: images at least this similar to another are grouped")
        self.line.sigPositionChanged.connect(self._line_dragged)
        self.line.setZValue(20)
        item.addItem(self.line)
        self.plot.setMinimumHeight(140)

        self.review = QWidget()
        self.review_layout = QVBoxLayout(self.review)
        self.review_layout.addStretch(1)
        self.scroll_area = QScrollArea(widgetResizable=True)
        self.scroll_area.setWidget(self.review)
        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.plot)
        splitter.addWidget(self.scroll_area)
        splitter.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(splitter, 1)

    def sizeHint(self) -> QSize:
        return QSize(900, 380)

    # --- computing ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.progress.running or (self._groups_task is not None and not self._groups_task.done)

    def threshold(self) -> float:
        return float(self.threshold_spin.value())

    def compute(self) -> None:
        """Nearest-neighbour similarities, then the groups at the current threshold."""
        task = self.session.find_nearest()
        if task is None:
            self.status.setText("Open an indexed folder first.")
            return
        self.status.setText("Finding each image's nearest neighbour\u2026")
        self.progress.track(task)
        task.succeeded.connect(self._nearest_found)
        self._compute_groups()

    def _nearest_found(self, similarities: np.ndarray) -> None:
        self.similarities = similarities
        hist = analysis.similarity_histogram(similarities)
        self.curve.setData(hist.edges, hist.counts, stepMode="center")
        low, _ = hist.occupied_range()
        self.plot.getPlotItem().setXRange(max(low, -1.0) - 0.01, 1.005, padding=0)
        self._say()

    def _compute_groups(self) -> None:
        threshold = self.threshold()
        task = self._groups_task = self.session.group_duplicates(threshold)
        if task is not None:
            task.succeeded.connect(lambda groups: self._grouped(groups, threshold))

    def _grouped(self, groups: list[list[Path]], threshold: float) -> None:
        self.groups, self.groups_threshold = groups, threshold
        self.export_button.setEnabled(True)
        self._render_groups()
        self._say()

    def _say(self) -> None:
        parts = []
        if self.similarities is not None:
            close = int(np.count_nonzero(self.similarities >= self.threshold()))
            parts.append(f"{close} of {len(self.similarities)} images have a neighbour \u2265 {self.threshold():.3f}")
        if self.groups is not None:
            parts.append(f"{len(self.groups)} groups ({sum(map(len, self.groups))} images)")
        self.status.setText(" \u00b7 ".join(parts))

    # --- threshold ------------------------------------------------------------------------

    def set_threshold(self, value: float) -> None:
        self.threshold_spin.setValue(value)  # moves the line, regroups after a pause

    def _spin_changed(self, value: float) -> None:
        with signals_blocked(self.line):
            self.line.setValue(value)
        self._threshold_changed()

    def _line_dragged(self) -> None:
        with signals_blocked(self.threshold_spin):
            self.threshold_spin.setValue(float(np.clip(self.line.value(), 0.0, 1.0)))
        self._threshold_changed()

    def _threshold_changed(self) -> None:
        self._say()
        if self.similarities is not None or self.groups is not None:
            self._debounce.start()

    # --- review ---------------------------------------------------------------------------

    def _render_groups(self) -> None:
        while self.review_layout.count() > 1:
            item = self.review_layout.takeAt(0)
            widget = item.widget() if item is not None else None
            if widget is not None:
                widget.deleteLater()
        self._tiles = {}
        folder = self.state.folder
        for number, group in enumerate((self.groups or [])[:MAX_GROUPS_SHOWN], 1):
            self.review_layout.insertWidget(number - 1, self._group_row(number, group, folder))
        if self.groups is not None and len(self.groups) > MAX_GROUPS_SHOWN:
            more = QLabel(f"\u2026 and {len(self.groups) - MAX_GROUPS_SHOWN} more groups (export to see all)")
            self.review_layout.insertWidget(MAX_GROUPS_SHOWN, more)
        if self.groups == []:
            self.review_layout.insertWidget(0, QLabel("No near-duplicates at this threshold."))

    def _group_row(self, number: int, group: list[Path], folder: Path | None) -> QWidget:
        row = QFrame(frameShape=QFrame.Shape.StyledPanel)
        layout = QHBoxLayout(row)
        layout.addWidget(QLabel(f"<b>{number}</b><br>{len(group)} images"))
        for path in group:
            tile = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
            tile.setFixedSize(TILE_SIDE, TILE_SIDE)
            tile.setToolTip(str(path))
            layout.addWidget(tile)
            try:
                relative = path.relative_to(folder).as_posix() if folder is not None else None
            except ValueError:
                relative = None
            pixmap = self.thumbnails.pixmap(relative) if relative else None
            if pixmap is None:
                tile.setText(path.name)
                if relative:
                    self._tiles.setdefault(relative, []).append(tile)
            else:
                self._set_tile(tile, pixmap)
        layout.addStretch(1)
        return row

    @staticmethod
    def _set_tile(tile: QLabel, pixmap) -> None:
        tile.setPixmap(pixmap.scaled(TILE_SIDE, TILE_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                     Qt.TransformationMode.SmoothTransformation))

    def _thumbnails_ready(self, paths: list[str]) -> None:
        for path in paths:
            for tile in self._tiles.pop(path, []):
                pixmap = self.thumbnails.cached(path)
                if pixmap is not None:
                    self._set_tile(tile, pixmap)

    # --- export ---------------------------------------------------------------------------

    def ask_export(self) -> None:
        target, _ = QFileDialog.getSaveFileName(self, "Export near-duplicate groups", "duplicates.json",
                                                "JSON (*.json)")
        if target:
            self.export_groups(Path(target))

    def export_groups(self, target: Path) -> None:
        write_groups_json(self.groups or [], target)

    def _collection_changed(self) -> None:
        source = (self.state.folder, self.state.model)
        if self.state.collection is not None and source == self._source:
            return  # the same collection reloaded after indexing: keep the review
        self._source = source
        self.progress.cancel()
        if self._groups_task is not None:
            self._groups_task.cancel()
        self.similarities, self.groups = None, None
        self.curve.setData([0.0, 1.0], [0], stepMode="center")
        self.export_button.setEnabled(False)
        self._render_groups()
        self.status.setText("Find images that are near-copies of each other.")
