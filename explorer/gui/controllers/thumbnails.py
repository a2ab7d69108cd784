"""Thumbnails for every view, loaded off the GUI thread from the collection's disk cache.

Indexing stores a JPEG thumbnail of each image (made from the same decoded pixels as its vector).
Views ask for a relative path; a miss returns None at once and queues the path, and `ready`
announces the paths that arrived. QImages are decoded on the worker; only the cheap
QImage -> QPixmap step runs on the GUI thread.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QImage, QPixmap

from ...core import images
from ...core.store import ThumbnailStore, folder_dir
from ..state.app_state import AppState
from .tasks import TaskKind, Tasks

CACHE_SIZE = 4000  # pixmaps kept; ~256x192x4 bytes each: about 800 MB worst case, 200 MB typical
BATCH = 48


def _load(store_path: Path, folder: Path, paths: list[str]) -> list[tuple[str, QImage]]:
    """Worker side: JPEG bytes from the store (or decoded from the photo) to QImages. A folder
    whose collection has no directory yet (its first indexing has not begun) has no store."""
    store = ThumbnailStore(store_path) if store_path.parent.is_dir() else None
    out = []
    try:
        for path in paths:
            data = store.get(path) if store is not None else None
            if data is None:  # not stored (yet): make one from the file itself
                try:
                    data = images.thumbnail_jpeg(images.load_rgb(folder / path, min_side=256))
                except images.ImageError:
                    continue
            image = QImage.fromData(data, "JPEG")  # type: ignore[arg-type]  # PySide6 takes a str here
            if not image.isNull():
                out.append((path, image))
    finally:
        if store is not None:
            store.close()
    return out


class ThumbnailCache(QObject):
    """Thumbnails of the state's folder (it follows the folder as collections open)."""

    ready = Signal(list)  # relative paths whose pixmaps are now available

    def __init__(self, tasks: Tasks, state: AppState, parent: QObject | None = None):
        super().__init__(parent)
        self.tasks = tasks
        self.folder: Path | None = None
        self._pixmaps: OrderedDict[str, QPixmap] = OrderedDict()
        self._queued: dict[str, None] = {}  # ordered set, newest requests last
        self._in_flight: set[str] = set()
        self._missing: set[str] = set()  # failed once: not retried until the folder changes
        self._flush = QTimer(self, singleShot=True, interval=0, timeout=self._start_loads)
        state.collection_changed.connect(lambda: self.set_folder(state.folder))

    def set_folder(self, folder: Path | None) -> None:
        if folder != self.folder:
            self.folder = folder
            self._pixmaps.clear()
            self._queued.clear()
            self._in_flight.clear()
            self._missing.clear()

    def pixmap(self, path: str) -> QPixmap | None:
        pixmap = self._pixmaps.get(path)
        if pixmap is not None:
            self._pixmaps.move_to_end(path)
            return pixmap
        if self.folder is not None and path not in self._in_flight and path not in self._missing:
            self._queued.pop(path, None)
            self._queued[path] = None
            self._flush.start()
        return None

    def cached(self, path: str) -> QPixmap | None:
        """The pixmap if loaded, without queueing a load."""
        return self._pixmaps.get(path)

    def _start_loads(self) -> None:
        if self.folder is None:
            return
        # Newest requests first: they are what is on screen now.
        wanted = list(reversed(self._queued))[: BATCH * 4]
        self._queued.clear()
        folder, store = self.folder, folder_dir(self.folder) / "thumbs.sqlite"
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start:start + BATCH]
            self._in_flight.update(chunk)
            self.tasks.start(TaskKind.THUMBNAILS, _load, store, folder, chunk,
                             on_result=partial(self._arrived, folder, chunk))

    def _arrived(self, folder: Path, asked: list[str], loaded: list[tuple[str, QImage]]) -> None:
        self._in_flight.difference_update(asked)
        if folder != self.folder:
            return
        self._missing.update(set(asked) - {path for path, _ in loaded})
        for path, image in loaded:
            self._pixmaps[path] = QPixmap.fromImage(image)
        while len(self._pixmaps) > CACHE_SIZE:
            self._pixmaps.popitem(last=False)
        if loaded:
            self.ready.emit([path for path, _ in loaded])
