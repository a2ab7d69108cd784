"""Tiles of the query panel: an example image with its remove button, and the results list
(whose drags carry file URLs and only ever copy)."""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QMimeData, Qt, QUrl
from PySide6.QtGui import QDrag, QPainter, QPixmap
from PySide6.QtWidgets import QFrame, QGridLayout, QLabel, QListWidget, QListWidgetItem, QSizePolicy, QToolButton

from ...state.app_state import AppState
from ...state.query import QueryExample

ROW_ROLE = Qt.ItemDataRole.UserRole
EXAMPLE_SIDE = 72
RESULT_SIDE = 96


def square(pixmap: QPixmap, side: int = RESULT_SIDE) -> QPixmap:
    """The thumbnail centred on a transparent square: portrait and landscape tiles line up."""
    scaled = pixmap.scaled(side, side, Qt.AspectRatioMode.KeepAspectRatio,
                           Qt.TransformationMode.SmoothTransformation)
    square = QPixmap(side, side)
    square.fill(Qt.GlobalColor.transparent)
    painter = QPainter(square)
    painter.drawPixmap((side - scaled.width()) // 2, (side - scaled.height()) // 2, scaled)
    painter.end()
    return square


class ResultList(QListWidget):
    """Results as thumbnails; drags carry the files' URLs (as the grid's do) and only ever copy."""

    def __init__(self, state: AppState):
        super().__init__(objectName="queryResults")
        self.app_state = state  # not `state`: QAbstractItemView.state() is a method

    def mimeData(self, items: Sequence[QListWidgetItem]) -> QMimeData:
        mime = QMimeData()
        paths = (self.app_state.path_of(item.data(ROW_ROLE)) for item in items)
        mime.setUrls([QUrl.fromLocalFile(str(p)) for p in paths if p is not None])
        return mime

    def startDrag(self, actions: Qt.DropAction) -> None:
        items = self.selectedItems()
        if not items:
            return
        drag = QDrag(self)
        drag.setMimeData(self.mimeData(items))
        drag.setPixmap(items[0].icon().pixmap(64, 64))
        drag.exec(Qt.DropAction.CopyAction)  # never Move: a file manager would move the photo


class ExampleTile(QFrame):
    def __init__(self, example: QueryExample, pixmap: QPixmap | None, on_remove, parent=None, on_region=None):
        super().__init__(parent)
        self.setObjectName("exampleTile")
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)
        layout = QGridLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        layout.setSpacing(2)
        self.image = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        self.image.setFixedSize(EXAMPLE_SIDE, EXAMPLE_SIDE)
        self.set_pixmap(pixmap)
        self.image.setToolTip(str(example.path) if example.path else example.name)
        name = QLabel(alignment=Qt.AlignmentFlag.AlignCenter)
        name.setText(name.fontMetrics().elidedText(example.name, Qt.TextElideMode.ElideMiddle, EXAMPLE_SIDE))
        self.remove = QToolButton(text="\u2715", objectName="removeExample", autoRaise=False)
        self.remove.setToolTip("Remove this example from the query")
        self.remove.setFixedSize(18, 18)
        self.remove.clicked.connect(on_remove)
        layout.addWidget(self.image, 0, 0)
        layout.addWidget(self.remove, 0, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignRight)
        if on_region is not None and example.path is not None:
            self.region = QToolButton(text="\u25ad", objectName="regionExample", autoRaise=False)
            self.region.setToolTip("Query by a region of this image: draw a rectangle on it")
            self.region.setFixedSize(18, 18)
            self.region.clicked.connect(on_region)
            layout.addWidget(self.region, 0, 0, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
        layout.addWidget(name, 1, 0)

    def set_pixmap(self, pixmap: QPixmap | None) -> None:
        if pixmap is None or pixmap.isNull():
            self.image.setText("no preview")
        else:
            self.image.setPixmap(pixmap.scaled(EXAMPLE_SIDE, EXAMPLE_SIDE, Qt.AspectRatioMode.KeepAspectRatio,
                                               Qt.TransformationMode.SmoothTransformation))
