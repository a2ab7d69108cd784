"""Why similar? A result beside the query's example images, each under the heatmap of its exact
share of the similarity (core/explain.py): the result's for the query, each example's for the
result. The session computes them on a worker; the dialog shows them when they are ready and
saves them as PNG."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtCore import Qt
from PySide6.QtGui import QPixmap
from PySide6.QtWidgets import QDialog, QFileDialog, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ....core.backbones import is_registered
from ...controllers.session import Session
from .heatmaps import rgb_image

SIDE = 360  # pixels of the longer side of each picture


class WhySimilar(QDialog):
    """One result and the query's examples, side by side, each with its own heatmap."""

    def __init__(self, session: Session, row: int, parent: QWidget | None = None):
        super().__init__(parent)
        state = session.state
        assert state.collection is not None, "a result row of the open collection"
        model, result = state.collection.collection.model, state.collection.folder / state.collection.paths[row]
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
        if not is_registered(model):
            self.status.setText(f"{model!r} was imported: Explorer cannot run its model, so it cannot say which "
                                "parts of an image count.")
            return
        skipped = sum(e.path is None for e in state.query.positives)
        self.note = (f" ({skipped} pasted example{'s' if skipped > 1 else ''} not shown: no file to "
                     "explain)") if skipped else ""
        self.task = session.explain_similarity(row, SIDE)
        if self.task is not None:
            self.task.succeeded.connect(self._show)
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


def show_why_similar(session: Session, row: int, parent: QWidget | None = None) -> WhySimilar | None:
    """Open "Why similar?" for one result row of the current query."""
    state = session.state
    if state.collection is None or state.query.vector is None:
        return None
    dialog = WhySimilar(session, row, parent)
    dialog.show()
    return dialog
