"""The one piece of shared application state; every view observes it and none owns it.

Rows: everything here speaks in rows of `collection` (its ids / paths / vectors arrays). Rows
only ever grow while indexing runs (new files are appended); a full reload remaps them by id.
The current query is its own model (`query`, state/query.py), scored against the collection
whenever the collection changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
from psygnal import Signal

from ...core.backends import AUTO
from ...core.layout import Layout
from ...core.search import SearchIndex
from .query import EMPTY_ROWS, QueryModel

__all__ = ["EMPTY_ROWS", "OPENING", "AppState", "IndexingStatus"]

OPENING = "opening"  # IndexingStatus.message while a collection loads, before its re-index


@dataclass(eq=False)
class IndexingStatus:
    running: bool = False
    done: int = 0
    total: int = 0
    message: str = ""
    rate: float = 0.0  # images per second
    eta_seconds: float | None = None


@dataclass(eq=False)
class AppState:
    """Folder, collection, layout, query, selection and indexing status, with change signals.

    Fields are written only by the methods below, each of which emits its signal: a plain
    assignment from outside raises, so nothing can change the state without the views hearing.
    """

    collection_changed = Signal()  # a different collection object (or None): views reset
    collection_grew = Signal(object)  # rows (np.ndarray) added or re-embedded by indexing
    layout_changed = Signal()
    selection_changed = Signal(str)  # the name of the view that changed it
    filter_changed = Signal(str)
    indexing_changed = Signal()
    backend_changed = Signal()  # the backend asked for, or the one that last ran, changed

    folder: Path | None = None
    model: str = ""
    collection: SearchIndex | None = None
    layout: Layout | None = None
    layout_refining: bool = False  # UMAP's layout is being computed (to replace a quick one)
    query: QueryModel = field(default_factory=QueryModel)
    selection: np.ndarray = field(default_factory=lambda: EMPTY_ROWS)  # selected rows
    grid_filter: np.ndarray | None = None  # rows the grid shows (None: all), in display order
    filter_description: str = ""
    indexing: IndexingStatus = field(default_factory=IndexingStatus)
    backend: str = AUTO  # the inference backend asked for (core.backends)
    backend_in_use: str = ""  # what last ran a forward pass, e.g. "ONNX Runtime (CPU)"

    def __post_init__(self) -> None:
        object.__setattr__(self, "_sealed", True)

    def __setattr__(self, name: str, value: object) -> None:
        if getattr(self, "_sealed", False) and name in _FIELDS:
            raise AttributeError(f"AppState.{name} is written by its method (set_collection, select, "
                                 "set_layout, ...), which tells every view")
        object.__setattr__(self, name, value)

    def _write(self, **fields: object) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)

    # --- collection ------------------------------------------------------------------------

    def set_collection(self, collection: SearchIndex | None, folder: Path | None, model: str) -> None:
        old = self.collection
        old_ids = old.ids if old is not None else None
        self._write(folder=folder, model=model, collection=collection)
        # Keep the selection across a reload of the same folder, by id.
        if old_ids is not None and collection is not None and len(self.selection):
            self._write(selection=_remap(self.selection, old_ids, collection.ids))
        else:
            self._write(selection=EMPTY_ROWS)
        had_filter = self.grid_filter is not None
        self._write(grid_filter=None, filter_description="")
        if collection is None:
            self._write(layout=None)
        with self.query.one_change():  # views reset for the collection, then see its scores
            self.query.rescore(collection)
            self.collection_changed.emit()
        if had_filter:
            self.filter_changed.emit("collection")

    def grow(self, rows: np.ndarray) -> None:
        """Indexing added (or re-embedded) these rows of the current collection."""
        assert self.collection is not None
        with self.query.one_change():  # the grown rows first, then the scores they now have
            self.query.rescore(self.collection)
            self.collection_grew.emit(rows)

    def set_layout(self, layout: Layout | None) -> None:
        self._write(layout=layout)
        self.layout_changed.emit()

    def set_layout_refining(self, refining: bool) -> None:
        if refining != self.layout_refining:
            self._write(layout_refining=refining)
            self.layout_changed.emit()

    # --- selection and grid filter --------------------------------------------------------

    def select(self, rows: np.ndarray | list[int], source: str) -> None:
        rows = np.unique(np.asarray(rows, np.int64))
        if np.array_equal(rows, self.selection):
            return
        self._write(selection=rows)
        self.selection_changed.emit(source)

    def set_filter(self, rows: np.ndarray | None, description: str, source: str) -> None:
        self._write(grid_filter=None if rows is None else np.asarray(rows, np.int64),
                    filter_description=description if rows is not None else "")
        self.filter_changed.emit(source)

    # --- indexing status ------------------------------------------------------------------

    def set_indexing(self, status: IndexingStatus) -> None:
        self._write(indexing=status)
        self.indexing_changed.emit()

    # --- inference backend ----------------------------------------------------------------

    def set_backend(self, backend: str) -> None:
        if backend != self.backend:
            self._write(backend=backend, backend_in_use="")
            self.backend_changed.emit()

    def set_backend_in_use(self, description: str) -> None:
        if description and description != self.backend_in_use:
            self._write(backend_in_use=description)
            self.backend_changed.emit()

    # --- helpers for views ----------------------------------------------------------------

    def path_of(self, row: int) -> Path | None:
        c = self.collection
        return c.folder / c.paths[row] if c is not None and 0 <= row < len(c) else None

    def label_of(self, row: int) -> str:
        c = self.collection
        if c is None:
            return ""
        parts = c.paths[row].split("/")
        return parts[0] if len(parts) > 1 else ""


_FIELDS = frozenset(f.name for f in fields(AppState))


def _remap(rows: np.ndarray, old_ids: np.ndarray, new_ids: np.ndarray) -> np.ndarray:
    ids = old_ids[rows[rows < len(old_ids)]]
    positions = np.searchsorted(new_ids, ids)
    positions = positions[positions < len(new_ids)]
    return positions[np.isin(new_ids[positions], ids)]
