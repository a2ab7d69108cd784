"""Why similar? A result beside the query's example images, each under the heatmap of its exact
share of the similarity (core/explain.py): the result's for the query, each example's for the
result. Computed on a worker; the window shows them when they are ready and saves them as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ....core.backends import AUTO
from ....core.explain import explain, overlay
from ....core.backbones import is_registered
from .heatmaps import rgb_image
from ...controllers.tasks import TaskKind, Tasks

SIDE = 360  # pixels of the longer side of each picture


def explanations(model: str, result: Path, query: np.ndarray, result_vector: np.ndarray,
                 examples: list[tuple[str, Path]], backend: str = AUTO) -> list[tuple[str, Image.Image]]:
    """Worker: (caption, picture) of the result, then of each example (file) of the query."""
    shown = explain(model, result, query, backend)
    pictures = [(f"{result.name}: its share of the similarity to the query, {shown.similarity:.4f}",
                 overlay(result, shown, max_side=SIDE))]
    for name, path in examples:
        share = explain(model, path, result_vector, backend)
        pictures.append((f"example {name}: its share of the similarity to {result.name}, {share.similarity:.4f}",
                         overlay(path, share, max_side=SIDE)))
    return pictures


class WhySimilar(QDialog):
    """One result and the query's examples, side by side, each with its own heatmap."""

    def __init__(self, tasks: Tasks, model: str, result: Path, query: np.ndarray, result_vector: np.ndarray,
                 examples: list[tuple[str, Path | None]], parent: QWidget | None = None, backend: str = AUTO):
        super().__init__(parent)
        self.setObjectName("whySimilar")
        self.setWindowTitle(f"Why similar? {result.name}")
        self.setWindowModality(Qt.WindowModality.NonModal)
        self.pictures = QHBoxLayout()
        self.status = QLabel("Computing the heatmaps\u2026", wordWrap=True)
        self.save_button = QPushButton("Save as PNG\u2026", enabled=False)
        self.save_button.clicked.connect(self._ask_where_to_save)
        layout = QVBoxLayout(self)
        layout.setSizeConstraint(QVBoxLayout.SizeConstraint.SetMinimumSize)  # grows with the pictures
        layout.addLayout(self.pictures)
        layout.addWidget(self.status)
        layout.addWidget(self.save_button, alignment=Qt.AlignmentFlag.AlignRight)
        files = [(name, path) for name, path in examples if path is not None]
        if not is_registered(model):
            self.status.setText(f"{model!r} was imported: Explorer cannot run its model, so it cannot say which "
                                "parts of an image count.")
            return
        skipped = len(examples) - len(files)
        self.note = (f" ({skipped} pasted example{'s' if skipped > 1 else ''} not shown: no file to "
                     "explain)") if skipped else ""
        self.task = tasks.start(TaskKind.WHY_SIMILAR, explanations, model, result, query, result_vector, files, backend,
                                on_result=self._show)
        self.task.failed.connect(lambda err: self.status.setText(f"Could not explain: {err}"))

    def _show(self, pictures: list[tuple[str, Image.Image]]) -> None:
        for caption, picture in pictures:
            column = QVBoxLayout()
            image = QLabel()
            image.setPixmap(QPixmap.fromImage(rgb_image(np.asarray(picture.convert("RGB")))))
            column.addWidget(image, alignment=Qt.AlignmentFlag.AlignTop)
            column.addWidget(QLabel(caption, wordWrap=True, maximumWidth=SIDE))
            self.pictures.addLayout(column)
        self.status.setText("Yellow: the parts that add most to the similarity; each map sums to the "
                            "similarity under it (exact for average pooling)." + self.note)
        self.save_button.setEnabled(True)
        self.adjustSize()  # grow to the pictures now, not on the next layout pass

    def ready(self) -> bool:
        return self.save_button.isEnabled()

    def save_png(self, path: Path) -> bool:
        return self.grab().save(str(path), "PNG")

    def _ask_where_to_save(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save as PNG", "why-similar.png", "PNG images (*.png)")
        if path:
            self.save_png(Path(path))


def show_why_similar(window, row: int) -> WhySimilar | None:
    """Open "Why similar?" for one result row of the window's current query."""
    state, collection = window.state, window.state.collection
    if collection is None or state.query.vector is None:
        return None
    dialog = WhySimilar(window.tasks, collection.collection.model, collection.folder / collection.paths[row],
                        state.query.vector, collection.vectors[row], [(e.name, e.path) for e in state.query.positives],
                        window, state.backend)
    dialog.show()
    return dialog
