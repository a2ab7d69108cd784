"""The grid's item model and tile delegate: display order as one numpy array, tiles painted
from cached pixmaps. No Python object or widget per photo, so 100k images stay cheap.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import (
    QMimeData, QModelIndex, QObject, QPersistentModelIndex, QRect, QSize, QStringListModel, Qt, QUrl,
)
from PySide6.QtGui import QColor, QImage, QPainter, QPixmap
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem
from superqt.utils import signals_blocked

from ..preview import file_size_text
from .heatmaps import HeatmapCache
from ...state.app_state import EMPTY_ROWS, AppState
from ...controllers.thumbnails import ThumbnailCache

DEFAULT_SIZE = 160  # px, the longer side of a thumbnail in the grid
PADDING = 4
INSERT_CHUNK = 1000
SCORE_ROLE = Qt.ItemDataRole.UserRole + 1
ROW_ROLE = Qt.ItemDataRole.UserRole + 2  # the collection row behind a tile
DecorationRole = Qt.ItemDataRole.DecorationRole


def runs(positions: np.ndarray) -> list[tuple[int, int]]:
    """Sorted positions as (first, last) runs of consecutive numbers."""
    if not len(positions):
        return []
    breaks = np.flatnonzero(np.diff(positions) != 1)
    starts = np.r_[positions[0], positions[breaks + 1]]
    ends = np.r_[positions[breaks], positions[-1]]
    return list(zip(starts.tolist(), ends.tolist()))


class GridModel(QStringListModel):
    """Display position -> collection row (`order`); everything else is looked up when painted.

    A QStringListModel of empty strings only so that rowCount() and index() stay in C++: the icon
    view calls them once per item on every layout, and Python overrides made a 100k-row layout
    take 400 ms instead of 50. `data` (called for visible tiles only) is ours.
    """

    def __init__(self, state: AppState, thumbnails: ThumbnailCache, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.thumbnails = state, thumbnails
        self.heatmaps: HeatmapCache | None = None  # set once the view offers "Why similar?"
        self.order = EMPTY_ROWS
        self._position = EMPTY_ROWS  # collection row -> display position, -1 where hidden
        self._waiting: dict[str, int] = {}  # thumbnail misses: relative path -> collection row
        thumbnails.ready.connect(self._thumbnails_arrived)

    # --- Qt model interface ----------------------------------------------------------------

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or index.row() >= len(self.order):
            return None
        position, row = index.row(), int(self.order[index.row()])
        if role == DecorationRole:
            return self.pixmap_at(position)
        if role == Qt.ItemDataRole.DisplayRole:
            return self.name_at(position)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row)
        if role == SCORE_ROLE:
            return self.score_at(position)
        if role == ROW_ROLE:
            return row
        return None

    def mimeTypes(self) -> list[str]:
        return ["text/uri-list"]

    def mimeData(self, indexes: Sequence[QModelIndex]) -> QMimeData:
        """File URLs, so tiles drop onto the query panel, a file manager or another app."""
        data = QMimeData()
        paths = [self.state.path_of(int(self.order[i.row()])) for i in indexes if i.isValid()]
        data.setUrls([QUrl.fromLocalFile(str(p)) for p in paths if p is not None])
        return data

    def supportedDragActions(self) -> Qt.DropAction:
        return Qt.DropAction.CopyAction

    # --- fast accessors for the delegate (no QVariant round trip) --------------------------

    def _paths(self) -> list[str]:
        c = self.state.collection
        assert c is not None, "the grid has rows only with a collection"
        return c.paths

    def name_at(self, position: int) -> str:
        return self._paths()[self.order[position]].rpartition("/")[2]

    def score_at(self, position: int) -> float | None:
        scores, row = self.state.query.scores, self.order[position]
        return float(scores[row]) if scores is not None and row < len(scores) else None

    def heat_at(self, position: int) -> QImage | None:
        """The "Why similar?" heatmap of the tile, when the overlay is on and it is ready."""
        if self.heatmaps is None:
            return None
        return self.heatmaps.image_for(self._paths()[int(self.order[position])])

    def pixmap_at(self, position: int) -> QPixmap | None:
        row = int(self.order[position])
        path = self._paths()[row]
        pixmap = self.thumbnails.pixmap(path)
        if pixmap is None:
            self._waiting[path] = row
        return pixmap

    def _tooltip(self, row: int) -> str:
        path = self.state.path_of(row)
        if path is None:
            return ""
        lines = [path.name, f"Folder: {self.state.label_of(row) or '(top level)'}", file_size_text(path)]
        scores = self.state.query.scores
        if scores is not None and row < len(scores):
            lines.append(f"Similarity: {scores[row]:.3f}")
        return "\n".join(line for line in lines if line)

    # --- changing what is shown ------------------------------------------------------------

    def positions_of(self, rows: np.ndarray) -> np.ndarray:
        """Display positions of these collection rows that are shown, ascending."""
        rows = rows[(rows >= 0) & (rows < len(self._position))]
        positions = self._position[rows]
        return np.sort(positions[positions >= 0])

    def reset(self, order: np.ndarray) -> None:
        self.beginResetModel()
        self._waiting.clear()
        self._set_order(order)
        with signals_blocked(self):  # one reset, not a remove and an insert inside it
            self.removeRows(0, self.rowCount())
            self.insertRows(0, len(self.order))
        self.endResetModel()

    def show_rows(self, order: np.ndarray) -> None:
        """Show these rows in this order: insert and reorder when nothing left, else reset.

        Inserting and moving (rather than resetting) keeps the scroll position while indexing
        runs and while a query re-ranks the grid.
        """
        old = self.order
        if np.array_equal(order, old):
            return
        fresh = order[~np.isin(order, old)]
        if len(fresh) > max(len(old), INSERT_CHUNK) or not np.isin(old, order).all():
            self.reset(order)  # mostly new, or rows left: nothing worth keeping in place
            return
        self._set_order(np.concatenate([old, fresh]))
        # QStringListModel.insertRows is quadratic in the count appended: append in chunks.
        for start in range(len(old), len(self.order), INSERT_CHUNK):
            self.insertRows(start, min(INSERT_CHUNK, len(self.order) - start))
        if not np.array_equal(order, self.order):
            self._permute(order)

    def _permute(self, order: np.ndarray) -> None:
        self.layoutAboutToBeChanged.emit()
        before = self.persistentIndexList()
        old_order = self.order
        self._set_order(order)
        after = [self.index(int(self._position[old_order[i.row()]])) for i in before]
        self.changePersistentIndexList(before, after)
        self.layoutChanged.emit()

    def _set_order(self, order: np.ndarray) -> None:
        self.order = np.asarray(order, np.int64)
        size = len(self.state.collection) if self.state.collection is not None else 0
        self._position = np.full(max(size, int(self.order.max(initial=-1)) + 1), -1, np.int64)
        self._position[self.order] = np.arange(len(self.order))

    def rows_changed(self, rows: np.ndarray, roles: list[Qt.ItemDataRole]) -> None:
        for first, last in runs(self.positions_of(rows)):
            self.dataChanged.emit(self.index(first), self.index(last), roles)

    def _thumbnails_arrived(self, paths: list[str]) -> None:
        rows = [self._waiting.pop(p) for p in paths if p in self._waiting]
        if rows:
            self.rows_changed(np.asarray(rows, np.int64), [DecorationRole])


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a tile: the cached thumbnail (or a placeholder), its score, its file name."""

    def __init__(self, model: GridModel, parent: QObject | None = None):
        super().__init__(parent)
        self.model, self.size = model, DEFAULT_SIZE

    def sizeHint(self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex) -> QSize:
        return QSize(self.size + 2 * PADDING, self.size + 2 * PADDING + option.fontMetrics.height())

    def paint(self, painter: QPainter, option: QStyleOptionViewItem,
              index: QModelIndex | QPersistentModelIndex) -> None:
        position, rect, palette = index.row(), option.rect, option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        if selected:
            painter.fillRect(rect, palette.highlight())
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect, palette.midlight())
        thumb = QRect(rect.x() + PADDING, rect.y() + PADDING, self.size, self.size)
        pixmap = self.model.pixmap_at(position)
        if pixmap is None:  # still loading: a quiet tile of the same size, so nothing jumps
            target = thumb.adjusted(6, 6, -6, -6)
            painter.fillRect(target, palette.mid())
        else:
            fitted = pixmap.size().scaled(thumb.size(), Qt.AspectRatioMode.KeepAspectRatio)
            target = QRect(0, 0, fitted.width(), fitted.height())
            target.moveCenter(thumb.center())
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawPixmap(target, pixmap)
            heat, heatmaps = self.model.heat_at(position), self.model.heatmaps
            if heat is not None and heatmaps is not None:  # 7 x 7 cells, smoothly over the picture the model saw whole
                painter.setOpacity(heatmaps.opacity)
                painter.drawImage(target, heat)
                painter.setOpacity(1.0)
        score = self.model.score_at(position)
        if score is not None:
            badge = option.fontMetrics.boundingRect(f"{score:.3f}").adjusted(-3, -1, 3, 1)
            badge.moveTopLeft(target.topLeft())  # on the picture, not in the letterbox above it
            painter.fillRect(badge, QColor(0, 0, 0, 170))
            painter.setPen(Qt.GlobalColor.white)
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, f"{score:.3f}")
        text = QRect(thumb.left(), thumb.bottom() + 1, self.size, option.fontMetrics.height())
        painter.setPen(palette.highlightedText().color() if selected else palette.text().color())
        name = option.fontMetrics.elidedText(self.model.name_at(position), Qt.TextElideMode.ElideMiddle,
                                             self.size)
        painter.drawText(text, Qt.AlignmentFlag.AlignCenter, name)
        if option.state & QStyle.StateFlag.State_HasFocus:
            painter.setPen(palette.highlight().color())
            painter.drawRect(rect.adjusted(0, 0, -1, -1))
        painter.restore()
