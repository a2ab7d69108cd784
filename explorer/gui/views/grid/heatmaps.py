"""Heatmaps over the grid's tiles ("Why similar?"): what in each visible image counts for the query.

Feature maps are computed on a worker for the tiles asked for (the visible ones) and kept, least
recently used first out; the grid of shares for the current query is a product with the map
(core/explain.py), made on demand, so a new query, or toggling the overlay, redraws at once.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap

from ....core.explain import colour, contributions
from ....core.backbones import get_spec, is_registered
from ...state.app_state import AppState
from ...controllers.session import Session

MAPS_KEPT = 300  # about 250 KB each for a 1280 x 7 x 7 map: 75 MB
BATCH = 12  # tiles per worker run: the first ones show while the rest compute


def rgb_image(rgb: np.ndarray) -> QImage:
    """A QImage (its own copy) of an (H, W, 3) uint8 array."""
    rgb = np.ascontiguousarray(rgb, np.uint8)
    return QImage(rgb.data, rgb.shape[1], rgb.shape[0], 3 * rgb.shape[1], QImage.Format.Format_RGB888).copy()


def legend_pixmap(width: int = 60, height: int = 10) -> QPixmap:
    """The heatmaps' colours, least to most share."""
    return QPixmap.fromImage(rgb_image(colour(np.linspace(0, 1, width))[None].repeat(height, axis=0)))


class HeatmapCache(QObject):
    ready = Signal()  # more heatmaps can be drawn: repaint

    def __init__(self, state: AppState, session: Session, parent: QObject | None = None):
        super().__init__(parent)
        self.state, self.session = state, session
        self.enabled = False
        self.opacity = 0.55
        self._maps: OrderedDict[str, np.ndarray | None] = OrderedDict()
        self._images: dict[str, QImage] = {}  # per path, for the current query
        self._queued: dict[str, None] = {}
        self._in_flight = False
        self._key: tuple = ()
        self._start = QTimer(self, singleShot=True, interval=0, timeout=self._start_batch)
        state.query.changed.connect(self._query_changed)
        state.collection_changed.connect(self._reset)

    def _query_changed(self) -> None:
        self._images.clear()  # the maps stay: the new query's shares are a product away

    def _reset(self) -> None:
        self._maps.clear()
        self._images.clear()
        self._queued.clear()

    def available(self) -> bool:
        model = self.state.model
        return bool(model) and is_registered(model) and self.state.query.vector is not None

    def image_for(self, path: str) -> QImage | None:
        """A small colour image of `path`'s shares for the current query (drawn scaled, smoothly,
        over the tile), or None while its map is computed (it is queued)."""
        if not self.enabled or not self.available():
            return None
        image = self._images.get(path)
        if image is not None:
            return image
        grid = self.grid_for(path)
        if grid is None:
            return None
        low, high = float(grid.min()), float(grid.max())
        image = rgb_image(colour((grid - low) / (high - low) if high > low else grid * 0))
        self._images[path] = image
        return image

    def grid_for(self, path: str) -> np.ndarray | None:
        """`path`'s shares of the similarity to the current query (summing to it), or None (queued)."""
        if path not in self._maps:
            self._queued[path] = None
            self._start.start()
            return None
        self._maps.move_to_end(path)
        fmap = self._maps[path]
        if fmap is None or self.state.query.vector is None:
            return None
        return contributions(fmap.astype(np.float64), self.state.query.vector,
                             get_spec(self.state.model).pooling).grid

    def _start_batch(self) -> None:
        c = self.state.collection
        if self._in_flight or not self._queued or c is None:
            return
        paths = list(self._queued)[-BATCH:]  # the newest requests: what is on screen now
        for path in paths:
            del self._queued[path]
        task = self.session.feature_maps(paths)
        if task is None:
            return
        self._in_flight = True
        task.succeeded.connect(lambda maps: self._arrived(c, maps))
        task.finished.connect(self._batch_done)

    def _arrived(self, collection, maps: list[tuple[str, np.ndarray | None]]) -> None:
        if collection is not self.state.collection:  # another folder (or model) opened meanwhile
            return
        for path, fmap in maps:
            self._maps[path] = fmap
        while len(self._maps) > MAPS_KEPT:
            self._maps.popitem(last=False)
        self.ready.emit()

    def _batch_done(self) -> None:
        self._in_flight = False
        if self._queued:
            self._start.start()
