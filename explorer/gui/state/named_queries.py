"""State of the analysis views: named queries, their visibility and colours, and the summary
threshold. Evented (psygnal), like AppState, which it observes; it reads the current query
(state.query) and, to make a named query current, hands it over whole.

Named queries live in the collection's directory (`QueryBook`, one file per model), so they are
loaded whenever a collection opens and saved on every change.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from psygnal import Signal

from ...core.query_book import Example, NamedQuery, QueryBook, QueryBookError
from .app_state import AppState
from .query import QueryExample

CURRENT = "current query"  # how the unsaved query is named in legends, tables and combos
# Distinct on light and dark backgrounds (Tableau 10 without the current query's accent blue).
PALETTE = ("#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf", "#1f77b4")


@dataclass(frozen=True)
class QueryScores:
    """One query's similarity to every row of the current collection."""

    name: str
    colour: str
    scores: np.ndarray


def example_of(example: QueryExample) -> Example:
    return Example.of(example.name, example.path, example.vector)


def query_example_of(example: Example) -> QueryExample:
    return QueryExample(example.name, np.asarray(example.vector, np.float32),
                        Path(example.path) if example.path else None)


class NamedQueries:
    """Named queries of the open collection, their colours and visibility, and the threshold."""

    queries_changed = Signal()  # added, removed, renamed, edited, shown/hidden, or a new book
    threshold_changed = Signal()
    problem = Signal(str)  # something the user should read (a damaged queries file, ...)

    def __init__(self, state: AppState):
        self.state = state
        self.book = QueryBook()
        self.directory: Path | None = None  # where the book is saved; None: no collection
        self.hidden: set[str] = set()
        self._colours: dict[str, str] = {}
        self.threshold = 0.5
        self._scores: dict[str, tuple[tuple, np.ndarray]] = {}
        self._labels: tuple[tuple, np.ndarray | None] | None = None
        state.collection_changed.connect(self._collection_changed)

    def load(self) -> None:
        """Read the open collection's queries now (later collections load as they open). Separate
        from __init__ so that a damaged file's `problem` reaches a connected listener."""
        self._collection_changed()

    # --- the book -------------------------------------------------------------------------

    def _collection_changed(self) -> None:
        c = self.state.collection
        directory = c.collection.saved_dir if c is not None else None
        if directory == self.directory and directory is not None:
            return  # a reload of the same collection (after indexing): keep what is shown
        self.directory = directory
        self._scores.clear()
        try:
            self.book = QueryBook.load(directory) if directory is not None else QueryBook()
        except QueryBookError as err:
            self.book = QueryBook()
            self.problem.emit(f"The saved queries could not be read, so none are shown.\n{err}")
        self.hidden.clear()
        self._colours.clear()
        for name in self.book.names():
            self.colour_of(name)
        self.queries_changed.emit()

    def _save(self) -> None:
        if self.directory is not None:
            self.book.save(self.directory)

    def names(self) -> list[str]:
        return self.book.names()

    def can_save(self) -> bool:
        return self.directory is not None and bool(self.state.query.positives)

    def current_as_named(self, name: str) -> NamedQuery:
        query = self.state.query
        return NamedQuery(name, [example_of(e) for e in query.positives],
                          [example_of(e) for e in query.negatives], query.negative_weight)

    def save_current(self, name: str, overwrite: bool = False) -> str:
        """Keep the current query (positives, negatives, weight) under `name`; returns the name
        as stored. Raises QueryBookError for an empty or taken name, or an empty query."""
        if self.directory is None:
            raise QueryBookError("open a folder first: queries are kept with its collection")
        query = self.current_as_named(name)
        if overwrite and name.strip() in self.book:
            self.book.replace(NamedQuery(name.strip(), query.positives, query.negatives,
                                         query.negative_weight))
        else:
            self.book.add(query)
        self._scores.pop(query.name, None)
        self.colour_of(query.name)
        self._save()
        self.queries_changed.emit()
        return query.name

    def rename(self, old: str, new: str) -> None:
        self.book.rename(old, new)
        new = new.strip()
        if old != new:
            self._colours[new] = self._colours.pop(old, self.colour_of(new))
            if old in self.hidden:
                self.hidden.discard(old)
                self.hidden.add(new)
            self._scores.pop(old, None)
        self._save()
        self.queries_changed.emit()

    def remove(self, name: str) -> None:
        self.book.remove(name)
        self.hidden.discard(name)
        self._colours.pop(name, None)
        self._scores.pop(name, None)
        self._save()
        self.queries_changed.emit()

    def set_visible(self, name: str, visible: bool) -> None:
        if visible == (name not in self.hidden):
            return
        (self.hidden.discard if visible else self.hidden.add)(name)
        self.queries_changed.emit()

    def visible_names(self) -> list[str]:
        return [n for n in self.book.names() if n not in self.hidden]

    def colour_of(self, name: str) -> str:
        colour = self._colours.get(name)
        if colour is None:
            used = set(self._colours.values())
            free = [c for c in PALETTE if c not in used]
            colour = self._colours[name] = free[0] if free else PALETTE[len(self._colours) % len(PALETTE)]
        return colour

    def set_colour(self, name: str, colour: str) -> None:
        self.book.get(name)
        self._colours[name] = colour
        self.queries_changed.emit()

    def make_current(self, name: str) -> None:
        """Replace the current query by a named one's examples (positives and negatives)."""
        query = self.book.get(name)
        self.state.query.replace([query_example_of(e) for e in query.positives],
                                 [query_example_of(e) for e in query.negatives], query.negative_weight)

    # --- scores ---------------------------------------------------------------------------

    def scores_of(self, name: str) -> np.ndarray | None:
        """Similarity of every row to a named query (or CURRENT); cached per collection size."""
        if name == CURRENT:
            return self.state.query.scores
        c = self.state.collection
        if c is None or not len(c) or name not in self.book:
            return None
        key = (id(c), len(c), id(self.book.get(name)))
        cached = self._scores.get(name)
        if cached is not None and cached[0] == key:
            return cached[1]
        scores = c.similarities(self.book.get(name).vector())
        self._scores[name] = (key, scores)
        return scores

    def shown_scores(self) -> list[QueryScores]:
        """The current query (if any) and every visible named query, in legend order."""
        shown = []
        if self.state.query.scores is not None:
            shown.append(QueryScores(CURRENT, "", self.state.query.scores))
        for name in self.visible_names():
            scores = self.scores_of(name)
            if scores is not None:
                shown.append(QueryScores(name, self.colour_of(name), scores))
        return shown

    def set_threshold(self, value: float) -> None:
        value = float(np.clip(value, -1.0, 1.0))
        if value != self.threshold:
            self.threshold = value
            self.threshold_changed.emit()

    # --- labels (first-level subfolders) --------------------------------------------------

    def labels(self) -> np.ndarray | None:
        """Label of every row ("" for none), or None when the collection has no labels at all."""
        c = self.state.collection
        if c is None or not len(c):
            return None
        key = (id(c), len(c))
        if self._labels is None or self._labels[0] != key:
            names, codes = c.labels()
            labels = np.array(names, dtype=str)[codes]
            self._labels = (key, labels if np.any(labels != "") else None)
        return self._labels[1]

    def example_rows(self) -> np.ndarray:
        """Rows of the current query's examples that are indexed images of the collection."""
        c = self.state.collection
        if c is None:
            return np.empty(0, np.int64)
        rows = [c.row_of(e.path) for e in self.state.query.positives if e.path is not None]
        return np.array(sorted({r for r in rows if r is not None}), np.int64)

    def query_label(self) -> tuple[str, np.ndarray] | None:
        """(label, example rows) when every example of the current query is an indexed image
        and they all share one label; None otherwise."""
        labels = self.labels()
        rows = self.example_rows()
        if labels is None or not len(rows) or len(rows) != len(self.state.query.positives):
            return None
        found = set(labels[rows].tolist())
        if len(found) != 1 or "" in found:
            return None
        return found.pop(), rows
