"""Placeholder: replaced by the real view."""

from PySide6.QtWidgets import QLabel


class HistogramView(QLabel):
    def __init__(self, state, session, thumbnails=None):
        super().__init__("HistogramView")
        self.state, self.session, self.thumbnails = state, session, thumbnails

    def set_thumbnail_size(self, size: int) -> None:
        self._size = size

    def thumbnail_size(self) -> int:
        return getattr(self, "_size", 160)

    def paste(self) -> None:
        pass
