"""Query by a region: draw a rectangle on a query example's image; its region becomes the example."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QPoint, QRect, QSize, Qt
from PySide6.QtGui import QMouseEvent, QPixmap
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QRubberBand, QVBoxLayout, QWidget

SIDE = 520


class RegionPicker(QLabel):
    """The image, on which a dragged rectangle marks the region."""

    def __init__(self, pixmap: QPixmap, parent: QWidget | None = None):
        super().__init__(parent)
        self.setPixmap(pixmap)
        self.setFixedSize(pixmap.size())
        self.setCursor(Qt.CursorShape.CrossCursor)
        self.band = QRubberBand(QRubberBand.Shape.Rectangle, self)
        self._origin = QPoint()

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 (Qt's name)
        self._origin = event.position().toPoint()
        self.band.setGeometry(QRect(self._origin, QSize()))
        self.band.show()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:  # noqa: N802
        self.band.setGeometry(QRect(self._origin, event.position().toPoint()).normalized() & self.rect())

    def set_region(self, region: tuple[float, float, float, float]) -> None:
        x0, y0, x1, y1 = region
        w, h = self.width(), self.height()
        self.band.setGeometry(QRect(round(x0 * w), round(y0 * h), round((x1 - x0) * w), round((y1 - y0) * h)))
        self.band.show()

    def region(self) -> tuple[float, float, float, float] | None:
        """The rectangle as fractions of the image (x0, y0, x1, y1); None if none was drawn."""
        r = self.band.geometry()
        if not self.band.isVisible() or r.width() < 4 or r.height() < 4:
            return None
        w, h = self.width(), self.height()
        return (max(r.left() / w, 0.0), max(r.top() / h, 0.0),
                min((r.right() + 1) / w, 1.0), min((r.bottom() + 1) / h, 1.0))


class RegionDialog(QDialog):
    def __init__(self, path: Path, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("regionDialog")
        self.setWindowTitle(f"Query by a region of {path.name}")
        pixmap = QPixmap(str(path))
        if pixmap.width() > SIDE or pixmap.height() > SIDE:
            pixmap = pixmap.scaled(SIDE, SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                   Qt.TransformationMode.SmoothTransformation)
        self.picker = RegionPicker(pixmap, self)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Query by this region")
        buttons.accepted.connect(self._accept)
        self.region: tuple[float, float, float, float] | None = None  # what was chosen, on OK
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Drag a rectangle around what the query is about (the face, not the thing):"))
        layout.addWidget(self.picker)
        layout.addWidget(buttons)

    def _accept(self) -> None:
        self.region = self.picker.region()  # read before closing hides the rectangle
        if self.region is not None:
            self.accept()
