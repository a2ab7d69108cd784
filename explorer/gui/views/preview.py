"""The large preview of one image: the full picture, decoded off the GUI thread by the session.

The grid owns one `ImagePreview` and feeds it items; Left/Right ask the grid for the
neighbouring tile (the grid knows the display order), Esc or Space close it.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QRect, QSize, Qt, Signal
from PySide6.QtGui import QKeyEvent, QPainter, QPaintEvent, QPixmap
from PySide6.QtWidgets import QDialog, QLabel, QSizePolicy, QVBoxLayout, QWidget

from ..controllers.jobs import LoadedPreview
from ..controllers.session import Session

@dataclass(frozen=True)
class PreviewItem:
    path: Path  # absolute
    caption: str  # relative path, as the grid shows it
    score: float | None  # similarity to the current query
    position: int  # 0-based place in the grid's display order
    count: int  # tiles in the grid


def file_size_text(path: Path) -> str:
    try:
        size = float(path.stat().st_size)
    except OSError:
        return ""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return ""


class _ImageCanvas(QWidget):
    """Draws a pixmap as large as fits, keeping its aspect (a QLabel would not rescale)."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.pixmap: QPixmap | None = None
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setMinimumSize(200, 150)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        self.pixmap = pixmap
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.fillRect(self.rect(), Qt.GlobalColor.black)
        if self.pixmap is None or self.pixmap.isNull():
            return
        fitted = self.pixmap.size().scaled(self.size(), Qt.AspectRatioMode.KeepAspectRatio)
        target = QRect(0, 0, fitted.width(), fitted.height())
        target.moveCenter(self.rect().center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
        painter.drawPixmap(target, self.pixmap)


class ImagePreview(QDialog):
    step_requested = Signal(int)  # -1 previous tile, +1 next tile

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("imagePreview")
        self.setWindowTitle("Preview")
        self.session = session
        self.item: PreviewItem | None = None
        self.loaded: LoadedPreview | None = None
        self.canvas = _ImageCanvas(self)
        self.caption = QLabel(self, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.caption.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # keys stay with the dialog
        hint = QLabel("\u2190 \u2192 previous / next \u00b7 Esc close", self)
        hint.setEnabled(False)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.caption)
        layout.addWidget(hint)
        self.resize(QSize(1000, 760))

    def show_item(self, item: PreviewItem, placeholder: QPixmap | None = None) -> None:
        """Show the thumbnail scaled up at once, and the full picture when it is decoded."""
        self.item, self.loaded = item, None
        self.canvas.set_pixmap(placeholder)
        self._update_caption()
        self.session.load_preview(item.path).succeeded.connect(self._loaded)
        if not self.isVisible():
            self.show()
        self.raise_()
        self.activateWindow()

    def _loaded(self, loaded: LoadedPreview) -> None:
        if self.item is None or loaded.path != self.item.path:
            return  # a newer item was asked for meanwhile
        self.loaded = loaded
        if loaded.image is not None:
            self.canvas.set_pixmap(QPixmap.fromImage(loaded.image))
        self._update_caption()

    def _update_caption(self) -> None:
        item, loaded = self.item, self.loaded
        if item is None:
            return
        parts = [f"<b>{html.escape(item.caption)}</b>"]
        if loaded is None:
            parts.append("loading\u2026")
        elif loaded.size is not None:
            parts.append(f"{loaded.size[0]} \u00d7 {loaded.size[1]} px")
        else:
            parts.append(f"<span style='color:#c33'>could not open: {html.escape(loaded.error)}</span>")
        parts.append(file_size_text(item.path))
        if item.score is not None:
            parts.append(f"similarity {item.score:.3f}")
        parts.append(f"{item.position + 1} / {item.count}")
        self.caption.setText(" \u00b7 ".join(p for p in parts if p))
        self.setWindowTitle(f"{item.path.name} \u2014 Preview")

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key in (Qt.Key.Key_Left, Qt.Key.Key_Up):
            self.step_requested.emit(-1)
        elif key in (Qt.Key.Key_Right, Qt.Key.Key_Down):
            self.step_requested.emit(1)
        elif key == Qt.Key.Key_Space:
            self.close()
        else:
            super().keyPressEvent(event)  # Esc closes
