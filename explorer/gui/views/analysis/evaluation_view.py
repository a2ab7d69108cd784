"""Retrieval quality by label: every labelled image as a query over the collection (exact search),
mean average precision, precision@10 and recall@1, overall and per label: the numbers
`explorer eval` prints, computed by the same core function in the background."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
    QTableWidgetItem, QVBoxLayout, QWidget,
)

from ....core import analysis
from ....core.analysis import Evaluation
from ...state.app_state import AppState
from ...controllers.session import Session
from ..task_progress import TaskProgress

K = 10  # as `explorer eval`'s default
OVERALL = "overall"
NO_LABELS = ("This collection has no labels. Evaluation needs subfolders (labels) holding at least "
             "two images each; the first-level subfolder name is an image's label.")


def evaluation_rows(result: Evaluation) -> list[tuple[str, analysis.RetrievalScores]]:
    """The overall line first, then one per label (as `explorer eval` lists them)."""
    return [(OVERALL, result.overall), *result.labels.items()]


def _cell(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "\u2013"


def fill_evaluation_table(table: QTableWidget, result: Evaluation | None) -> None:
    """label, queries, mAP, precision@k, recall@1; empty for None."""
    rows = evaluation_rows(result) if result is not None else []
    k = result.k if result is not None else K
    table.setHorizontalHeaderLabels(["label", "queries", "mAP", f"precision@{k}", "recall@1"])
    table.setRowCount(len(rows))
    bold = QFont()
    bold.setBold(True)
    for r, (name, scores) in enumerate(rows):
        cells = [QTableWidgetItem(name), QTableWidgetItem(str(scores.queries))] + [
            QTableWidgetItem(_cell(v)) for v in
            (scores.mean_average_precision, scores.precision_at_k, scores.recall_at_1)]
        for column, cell in enumerate(cells):
            if column:
                cell.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if name == OVERALL:
                cell.setFont(bold)
            table.setItem(r, column, cell)


def evaluation_table() -> QTableWidget:
    table = QTableWidget(0, 5)
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
    table.setToolTip("Each labelled image queries the rest of the collection: mean average precision, "
                     f"share of its label among the {K} nearest, and whether the nearest shares it")
    fill_evaluation_table(table, None)
    return table


class EvaluationView(QWidget):
    """The "Evaluate" action and its table."""

    def __init__(self, state: AppState, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.state, self.session = state, session
        self.result: Evaluation | None = None
        self._evaluated_for: tuple | None = None  # (folder, model, images) of `result`
        self.evaluate_button = QPushButton("Evaluate")
        self.evaluate_button.setToolTip("Compute mAP, precision@10 and recall@1 over the collection "
                                        "(as `explorer eval`; O(N\u00b2): may take a while for a large one)")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.progress = TaskProgress("Stop evaluating")
        self.status = QLabel("Evaluate how well this representation retrieves each label.", wordWrap=True)
        self.table = evaluation_table()
        bar = QHBoxLayout()
        bar.addWidget(self.status, 1)
        bar.addWidget(self.progress)
        bar.addWidget(self.evaluate_button)
        layout = QVBoxLayout(self)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        state.collection_changed.connect(self._collection_changed)

    def sizeHint(self) -> QSize:
        return QSize(560, 300)

    @property
    def running(self) -> bool:
        return self.progress.running

    def evaluate(self) -> None:
        c = self.state.collection
        if c is None or not len(c):
            self.status.setText("Open an indexed folder first.")
            return
        task = self.session.evaluate(K)
        if task is None:
            self.status.setText(NO_LABELS)
            return
        self.status.setText(f"Evaluating {self.state.model} on {len(c)} images\u2026")
        self.progress.track(task)
        task.succeeded.connect(lambda result, source=self._source(): self._evaluated(result, source))
        task.finished.connect(lambda: self._ended(task))

    def _source(self) -> tuple:
        c = self.state.collection
        return self.state.folder, self.state.model, len(c) if c is not None else 0

    def _evaluated(self, result: Evaluation | None, source: tuple) -> None:
        if result is None:
            return
        self.result, self._evaluated_for = result, source
        model = source[1]
        fill_evaluation_table(self.table, result)
        text = f"{model}: {result.overall.queries} query images."
        if not result.overall.queries:
            text = NO_LABELS
        elif result.singletons:
            text += f" Not evaluated (one image): {', '.join(result.singletons)}"
        self.status.setText(text)

    def _ended(self, task) -> None:
        if task.cancelled and self.result is None:
            self.status.setText("Evaluation cancelled.")

    def _collection_changed(self) -> None:
        # A reload after indexing that changed nothing keeps the numbers valid.
        if self.result is not None and self._source() != self._evaluated_for:
            self.status.setText("The collection changed since this evaluation: evaluate again.")
