"""The current query's negative examples: images the query should move away from (Rocchio).

A strip under the query panel's examples that accepts drops as the examples strip does, with the
weight of the negatives (0 = ignore them). The query vector itself is made by the query model (state/query.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PySide6.QtCore import QMimeData, Qt, Signal
from PySide6.QtGui import QDragMoveEvent, QDropEvent, QPixmap
from PySide6.QtWidgets import (
    QDoubleSpinBox, QFrame, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSlider, QToolButton,
    QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from .query_sources import classify_paths, local_files, relative_to_collection
from .query_tiles import EXAMPLE_SIDE, ExampleTile
from ...state.app_state import AppState
from ...state.query import QueryExample
from ...controllers.thumbnails import ThumbnailCache
from ...controllers.session import Session

HINT = "Drop images here that the query should move away from (or right-click a result)"
WEIGHT_STEPS = 100  # slider ticks per 1.0 of weight
MAX_WEIGHT = 2.0


class NegativeExamplesView(QFrame):
    """Negative examples of the current query, and their Rocchio weight."""

    problem = Signal(str)

    def __init__(self, state: AppState, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.query, self.session, self.thumbnails = state, state.query, session, thumbnails
        self.setObjectName("negativeExamples")
        self.setAcceptDrops(True)
        self._tiles: list[ExampleTile] = []
        self._embedding: set = set()
        self._shown: tuple | None = None  # (negatives, weight) the strip shows
        self._build()
        self.query.changed.connect(self._render)
        thumbnails.ready.connect(self._thumbnails_ready)
        self._render()

    def _build(self) -> None:
        self.setStyleSheet("#negativeExamples { border: 2px dashed palette(mid); border-radius: 6px; }")
        header = QHBoxLayout()
        # Folded while empty: the query panel's height goes to the results.
        self.toggle = QToolButton(text="Negatives", checkable=True, autoRaise=True,
                                  toolButtonStyle=Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.toggle.setArrowType(Qt.ArrowType.RightArrow)
        self.toggle.setToolTip("Images the query should move away from. Query = mean of the examples "
                               "\u2212 weight \u00d7 mean of these, renormalised")
        self.toggle.toggled.connect(self.set_expanded)
        header.addWidget(self.toggle, 1)
        self.weight_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=int(MAX_WEIGHT * WEIGHT_STEPS))
        self.weight_slider.setMinimumWidth(40)
        self.weight_slider.setMaximumWidth(100)
        self.weight_spin = QDoubleSpinBox(minimum=0.0, maximum=MAX_WEIGHT, singleStep=0.1, decimals=2)
        for widget in (self.weight_slider, self.weight_spin):
            widget.setToolTip("Weight: how strongly the negatives push the query away (0: ignore them)")
        self.weight_slider.valueChanged.connect(lambda v: self._weight_chosen(v / WEIGHT_STEPS))
        self.weight_spin.valueChanged.connect(self._weight_chosen)
        header.addWidget(self.weight_slider)
        header.addWidget(self.weight_spin)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove every negative example")
        self.clear_button.clicked.connect(self.query.clear_negatives)
        header.addWidget(self.clear_button)

        self.hint = QLabel(HINT, wordWrap=True, alignment=Qt.AlignmentFlag.AlignCenter)
        self.strip = QWidget()
        self.strip_layout = QHBoxLayout(self.strip)
        self.strip_layout.setContentsMargins(2, 2, 2, 2)
        self.strip_layout.addStretch(1)
        self.scroll_area = QScrollArea(widgetResizable=True, frameShape=QFrame.Shape.NoFrame)
        self.scroll_area.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll_area.setWidget(self.strip)
        self.scroll_area.setFixedHeight(EXAMPLE_SIDE + 52)
        self.message = QLabel(wordWrap=True, visible=False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        self.body = QWidget()
        body = QVBoxLayout(self.body)
        body.setContentsMargins(0, 0, 0, 0)
        body.addWidget(self.hint)
        body.addWidget(self.scroll_area)
        layout.addWidget(self.body)
        layout.addWidget(self.message)
        self.set_expanded(False)

    def set_expanded(self, on: bool) -> None:
        with signals_blocked(self.toggle):
            self.toggle.setChecked(on)
        self.toggle.setArrowType(Qt.ArrowType.DownArrow if on else Qt.ArrowType.RightArrow)
        self.body.setVisible(on)

    # --- rendering ------------------------------------------------------------------------

    def _render(self) -> None:
        negatives, weight = self.query.negatives, self.query.negative_weight
        if self._shown == (negatives, weight):
            return  # an edit of the positives: nothing here changed
        self._shown = (negatives, weight)
        with signals_blocked(self.weight_spin), signals_blocked(self.weight_slider):
            self.weight_spin.setValue(weight)
            self.weight_slider.setValue(round(weight * WEIGHT_STEPS))
        for tile in self._tiles:
            tile.deleteLater()
        self._tiles = []
        for i, example in enumerate(negatives):
            tile = ExampleTile(example, self._pixmap(example),
                               lambda *_, i=i: self.query.remove_negative(i), self.strip)
            tile.remove.setToolTip("Remove this negative example")
            self.strip_layout.insertWidget(i, tile)
            self._tiles.append(tile)
        self.hint.setVisible(not negatives)
        self.scroll_area.setVisible(bool(negatives))
        self.clear_button.setEnabled(bool(negatives))
        self.toggle.setText(f"Negatives ({len(negatives)})" if negatives else "Negatives")
        if negatives and not self.toggle.isChecked():
            self.set_expanded(True)  # show what was just added

    def _relative(self, path: Path | None) -> str | None:
        return relative_to_collection(path, self.state.collection) if path is not None else None

    def _pixmap(self, example: QueryExample) -> QPixmap | None:
        if example.thumbnail:
            pixmap = QPixmap()
            if pixmap.loadFromData(example.thumbnail, "JPEG"):
                return pixmap
        relative = self._relative(example.path)
        return self.thumbnails.pixmap(relative) if relative else None

    def _thumbnails_ready(self, paths: list[str]) -> None:
        for tile, example in zip(self._tiles, self.query.negatives):
            relative = self._relative(example.path)
            if relative in paths:
                tile.set_pixmap(self.thumbnails.cached(relative))

    def _weight_chosen(self, weight: float) -> None:
        self.query.set_negative_weight(round(float(weight), 2))

    # --- adding negatives -----------------------------------------------------------------

    def add_rows(self, rows: Sequence[int]) -> None:
        """Indexed images as negatives: their stored vectors, no model work."""
        c = self.state.collection
        if c is None:
            return
        self.query.add_negatives([QueryExample.of_row(c, r) for r in rows])

    def add_paths(self, paths: Sequence[Path]) -> None:
        rows, files, problems = classify_paths(paths, self.state.collection)
        if rows:
            self.add_rows(rows)
        task = self.session.embed_negatives(list(files)) if files else None
        if task is not None:
            task.succeeded.connect(self._embedded)
            self._embedding.add(task)
            self._say(f"Embedding {len(files)} image(s)\u2026")
            task.finished.connect(lambda: self._task_done(task))
        if problems:
            self.problem.emit("Some files could not be used as negative examples:\n" + "\n".join(problems))

    @property
    def embedding(self) -> bool:
        return bool(self._embedding)

    def _embedded(self, result: tuple[list[QueryExample], list[str]]) -> None:
        examples, problems = result
        self.query.add_negatives(examples)
        if problems:
            self.problem.emit("Some images could not be used as negative examples:\n" + "\n".join(problems))

    def _task_done(self, task) -> None:
        self._embedding.discard(task)
        if not self._embedding:
            self._say("")

    def _say(self, text: str) -> None:
        self.message.setText(text)
        self.message.setVisible(bool(text))

    # --- drag and drop --------------------------------------------------------------------

    @staticmethod
    def _paths(mime: QMimeData) -> list[Path]:
        return local_files(mime)

    def dragEnterEvent(self, event: QDragMoveEvent) -> None:  # noqa: N802 (also called for moves)
        if event.mimeData().hasUrls():
            event.setDropAction(Qt.DropAction.CopyAction)
            event.accept()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = self._paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.setDropAction(Qt.DropAction.CopyAction)  # never let a drag source delete its file
        event.accept()
        self.add_paths(paths)
