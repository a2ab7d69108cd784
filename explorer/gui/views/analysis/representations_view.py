"""Compare representations: which ones the open folder is indexed with, indexing it with another
(model, pooling or layer), and the current query side by side under two of them.

The point (as in "Neural Codes for Image Retrieval"): an earlier layer may retrieve X where the
last one retrieves "things"; seeing both histograms, both top lists and both eval numbers at
once answers that for a person's own photos.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, QTimer, Signal
from PySide6.QtGui import QShowEvent
from PySide6.QtWidgets import (
    QCheckBox, QComboBox, QHBoxLayout, QLabel, QListWidget, QPushButton, QSplitter,
    QVBoxLayout, QWidget,
)
from superqt.utils import signals_blocked

from ....core import analysis, backbones
from ....core.analysis import Evaluation
from ....core.indexer import IndexReport
from ....core.store import indexed_models
from ...state.named_queries import NamedQueries
from ...controllers.jobs import EVAL_K, RepresentationResult
from .representation_side_view import RepresentationSideView
from ...controllers.thumbnails import ThumbnailCache
from ...controllers.session import Session
from ..task_progress import TaskProgress

DEBOUNCE_MS = 200


def offline_model_names() -> list[str]:
    """Registered representations whose weights are on this machine (usable with no network)."""
    return [spec.name for spec in backbones.list_specs() if spec.is_available_offline()]


class RepresentationsView(QWidget):
    """Indexed representations of the open folder, "Index with...", and A / B side by side."""

    open_requested = Signal(str)  # a representation to show in the window (double-click)

    def __init__(self, analysis_state: NamedQueries, session: Session, thumbnails: ThumbnailCache,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.analysis, self.state, self.session = analysis_state, analysis_state.state, session
        self.results: dict[str, RepresentationResult] = {}  # side letter -> shown result
        self._evaluations: dict[tuple, Evaluation] = {}  # (folder, model, size) -> Evaluation
        self._pending = False  # a comparison was asked for while hidden
        self._build(thumbnails)
        self._timer = QTimer(self, singleShot=True, interval=DEBOUNCE_MS, timeout=self._auto_compare)
        self.state.collection_changed.connect(self._collection_changed)
        self.state.query.changed.connect(self._schedule)
        self.refresh_models()

    def _schedule(self, *_) -> None:
        self._timer.start()  # coalesce: several signals in one turn, one redraw

    def _build(self, thumbnails: ThumbnailCache) -> None:
        self.models_list = QListWidget(objectName="indexedRepresentations")
        self.models_list.setToolTip("Representations this folder is indexed with (or imported with "
                                    "`explorer import`); double-click one to show it in the window")
        self.models_list.itemDoubleClicked.connect(
            lambda item: self.open_requested.emit(item.text().removesuffix(" (open)").removesuffix(" (imported)")))
        self.models_list.setMaximumWidth(260)
        self.index_combo = QComboBox()
        self.index_combo.setToolTip("Representations available offline: model, layer (@) and pooling (+gem)")
        self.index_button = QPushButton("Index with\u2026")
        self.index_button.setToolTip("Index the open folder with the chosen representation, in the background")
        self.index_button.clicked.connect(lambda: self.index_with(self.index_combo.currentText()))
        self.progress = TaskProgress("Stop indexing; what is done so far is kept")
        self.index_status = QLabel(wordWrap=True)
        left = QVBoxLayout()
        left.addWidget(QLabel("<b>Indexed with</b>"))
        left.addWidget(self.models_list, 1)
        left.addWidget(self.index_combo)
        left.addWidget(self.index_button)
        left.addWidget(self.progress)
        left.addWidget(self.index_status)

        self.combo_a, self.combo_b = QComboBox(), QComboBox()
        for combo, letter in ((self.combo_a, "A"), (self.combo_b, "B")):
            combo.setToolTip(f"Representation {letter}")
            combo.currentTextChanged.connect(lambda *_: self._timer.start())
        self.evaluate_box = QCheckBox(f"with eval numbers (mAP, precision@{EVAL_K})", checked=True)
        self.evaluate_box.setToolTip("Evaluate each representation over the collection (once per "
                                     "representation; O(N\u00b2))")
        self.compare_button = QPushButton("Compare")
        self.compare_button.setToolTip("Re-make the current query under A and under B")
        self.compare_button.clicked.connect(self.compare)
        self.status = QLabel(wordWrap=True)
        choose = QHBoxLayout()
        choose.addWidget(QLabel("A"))
        choose.addWidget(self.combo_a, 1)
        choose.addWidget(QLabel("B"))
        choose.addWidget(self.combo_b, 1)
        choose.addWidget(self.evaluate_box)
        choose.addWidget(self.compare_button)
        self.side_a = RepresentationSideView("A", thumbnails)
        self.side_b = RepresentationSideView("B", thumbnails)
        sides = QSplitter()
        sides.addWidget(self.side_a)
        sides.addWidget(self.side_b)
        right = QVBoxLayout()
        right.addLayout(choose)
        right.addWidget(self.status)
        right.addWidget(sides, 1)
        layout = QHBoxLayout(self)
        layout.addLayout(left)
        layout.addLayout(right, 1)

    def sizeHint(self) -> QSize:
        return QSize(1000, 420)

    # --- indexed representations and indexing ---------------------------------------------

    def refresh_models(self) -> None:
        folder = self.state.folder
        indexed = indexed_models(folder) if folder is not None else []
        self.models_list.clear()
        self.models_list.addItems([m + (" (imported)" if not backbones.is_registered(m) else "")
                                   + (" (open)" if m == self.state.model else "") for m in indexed])
        for combo, fallback in ((self.combo_a, self.state.model), (self.combo_b, None)):
            current = combo.currentText()
            with signals_blocked(combo):
                combo.clear()
                combo.addItems(indexed)
                others = [m for m in indexed if m != self.state.model]
                wanted = current if current in indexed else fallback or (others[0] if others else "")
                if wanted in indexed:
                    combo.setCurrentText(wanted)
        offline = [m for m in offline_model_names() if m != self.state.model]  # the session keeps that one
        with signals_blocked(self.index_combo):
            current = self.index_combo.currentText()
            self.index_combo.clear()
            self.index_combo.addItems(offline)
            if current in offline:
                self.index_combo.setCurrentText(current)
        self.index_button.setEnabled(folder is not None and bool(offline) and not self.indexing)
        self.compare_button.setEnabled(bool(indexed))

    def _collection_changed(self) -> None:
        self._evaluations.clear()  # indexing may have changed what the numbers were made from
        self.refresh_models()

    def index_with(self, model: str) -> None:
        folder = self.state.folder
        if folder is None or not model:
            return
        task = self.session.index_representation(model)
        if task is None:
            return
        self.index_status.setText(f"Indexing with {model}\u2026")
        self.progress.track(task)
        self.index_button.setEnabled(False)
        task.succeeded.connect(self._indexed)
        task.finished.connect(self._index_ended)

    @property
    def indexing(self) -> bool:
        return self.progress.running

    def _indexed(self, report: IndexReport) -> None:
        self.index_status.setText(report.summary().replace(str(report.folder), report.folder.name))

    def _index_ended(self) -> None:
        self._evaluations.clear()
        self.refresh_models()

    # --- side by side ---------------------------------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.revisit()

    def revisit(self, *_) -> None:
        """Its dock became visible, or its tab current: a comparison asked for meanwhile runs."""
        if self._pending:
            self._timer.start()

    def looked_at(self) -> bool:
        # A dock behind another's tab is "visible" to Qt, with nothing of it on screen.
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def _auto_compare(self) -> None:
        # Opening two collections costs memory and time (at a million images, seconds of both
        # cores): only for a view someone looks at.
        if self.looked_at():
            self.compare()
        else:
            self._pending = True

    def compare(self) -> None:
        """Re-make the current query under representations A and B, in the background."""
        self._pending = False
        state, folder = self.state, self.state.folder
        if folder is None or not state.query.positives:
            self.status.setText("Add example images to the query to compare representations.")
            return
        positives = [(e.path, e.vector) for e in state.query.positives]
        negatives = [(e.path, e.vector) for e in self.state.query.negatives]
        # Another model can only re-make examples that are files (indexed there, or embedded).
        file_positives = [x for x in positives if x[0] is not None]
        file_negatives = [x for x in negatives if x[0] is not None]
        pasted = len(file_positives) + len(file_negatives) < len(positives) + len(negatives)
        self.status.setText("Pasted images are only known to the open representation; other "
                            "representations use the examples that are files." if pasted else "")
        for letter, combo, side in (("A", self.combo_a, self.side_a), ("B", self.combo_b, self.side_b)):
            model = combo.currentText()
            if not model:
                continue
            same = model == state.model
            used_positives, used_negatives = (positives, negatives) if same else (file_positives, file_negatives)
            if not used_positives:
                side.show_message(f"No example file to re-make the query under {model}.")
                continue
            key = (folder, model)
            with_eval = self.evaluate_box.isChecked() and key not in self._evaluations
            side.show_message(f"Computing under {model}\u2026")
            task = self.session.represent(letter, model, used_positives, used_negatives, with_eval)
            if task is not None:
                task.succeeded.connect(lambda result, letter=letter, key=key: self._represented(letter, key, result))

    def _represented(self, letter: str, key: tuple, result: RepresentationResult | None) -> None:
        if result is None:
            return
        if result.evaluation is not None:
            self._evaluations[key] = result.evaluation
        elif self.evaluate_box.isChecked() and key in self._evaluations:
            result = RepresentationResult(result.model, result.folder, result.paths, result.scores,
                                          result.top_rows, self._evaluations[key])
        self.results[letter] = result
        (self.side_a if letter == "A" else self.side_b).show_result(result)
        self._align_axes()

    def _align_axes(self) -> None:
        """The same similarity axis on both sides, so the two histograms compare by eye."""
        spans = [analysis.similarity_histogram(r.scores).occupied_range() for r in self.results.values()]
        low, high = min(a for a, _ in spans), max(b for _, b in spans)
        pad = max((high - low) * 0.05, 0.01)
        for side in (self.side_a, self.side_b):
            side.set_x_range(low - pad, high + pad)
