"""The current query, and its one owner: examples in, one vector and one scores array out.

Positive examples, negative examples and the weight of the negatives make one Rocchio vector;
its similarity to every row of the collection is `scores`. Only this model writes them, every
edit recomputes both and emits `changed` once, and the fields can only be read from outside
(there are no setters), so no view can change the query without every other view hearing it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
from psygnal import Signal

from ...core import analysis
from ...core.search import SearchIndex

EMPTY_ROWS = np.empty(0, np.int64)
DEFAULT_NEGATIVE_WEIGHT = 0.5
DEFAULT_TOP_K = 20


@dataclass(eq=False)
class QueryExample:
    """One example image of the query: a file, a pasted image, or an indexed image."""

    name: str
    vector: np.ndarray
    path: Path | None = None  # None for a pasted image
    thumbnail: bytes | None = None  # JPEG bytes for the query panel

    @classmethod
    def of_row(cls, collection: SearchIndex, row: int) -> QueryExample:
        """An indexed image as an example: its stored vector (a copy), no model work."""
        path, thumbnails = collection.paths[row], collection.collection.thumbnails
        return cls(Path(path).name, collection.vector(row).copy(), collection.folder / path,
                   thumbnails.get(path) if thumbnails is not None else None)


class Scorable(Protocol):
    """What a query is scored against: a SearchIndex (its compact codes score a large one)."""

    @property
    def dim(self) -> int: ...

    def __len__(self) -> int: ...

    def similarities(self, query: np.ndarray) -> np.ndarray: ...


def _last(_: tuple, latest: tuple) -> tuple:
    return latest


class QueryModel:
    """Positives, negatives, their weight and the results count of the current query; its
    vector and scores follow from them and from the collection it is scored against."""

    changed = Signal()  # examples, weight, top_k, vector or scores: one emission per edit

    def __init__(self) -> None:
        self._positives: tuple[QueryExample, ...] = ()
        self._negatives: tuple[QueryExample, ...] = ()
        self._negative_weight = DEFAULT_NEGATIVE_WEIGHT
        self._top_k = DEFAULT_TOP_K
        self._generation = 0
        self._scored_against: Scorable | None = None
        self._vector: np.ndarray | None = None
        self._scores: np.ndarray | None = None

    # --- what views read ------------------------------------------------------------------

    @property
    def positives(self) -> tuple[QueryExample, ...]:
        return self._positives

    @property
    def negatives(self) -> tuple[QueryExample, ...]:
        return self._negatives

    @property
    def negative_weight(self) -> float:
        return self._negative_weight

    @property
    def top_k(self) -> int:
        return self._top_k

    @property
    def generation(self) -> int:
        """Bumped when the query is cleared or replaced: embeddings still in flight for the
        old query compare their generation and are dropped."""
        return self._generation

    @property
    def vector(self) -> np.ndarray | None:
        return self._vector

    @property
    def scores(self) -> np.ndarray | None:
        """Similarity of each row to the query; None without a query or a collection."""
        return self._scores

    def top_rows(self) -> np.ndarray:
        """Rows of the top-k results, best first."""
        return EMPTY_ROWS if self._scores is None else analysis.ranking(self._scores, self._top_k)

    # --- edits: each recomputes the vector and scores and emits once ------------------------

    def add(self, examples: Sequence[QueryExample]) -> None:
        if examples:
            self._positives += tuple(examples)
            self._update()

    def remove(self, index: int) -> None:
        self._positives = tuple(e for i, e in enumerate(self._positives) if i != index)
        self._update()

    def substitute(self, old: QueryExample, new: QueryExample) -> None:
        """`new` in the place of the positive `old` (at the end if `old` has gone meanwhile)."""
        if old in self._positives:
            self._positives = tuple(new if e is old else e for e in self._positives)
        else:
            self._positives += (new,)
        self._update()

    def set_positives(self, examples: Sequence[QueryExample]) -> None:
        """New positives in place of the old ones; the negatives stay."""
        self._positives = tuple(examples)
        self._update()

    def replace(self, positives: Sequence[QueryExample], negatives: Sequence[QueryExample] = (),
                negative_weight: float = DEFAULT_NEGATIVE_WEIGHT) -> None:
        """Another query altogether (a named one made current): in-flight embeddings are dropped."""
        self._generation += 1
        self._positives, self._negatives = tuple(positives), tuple(negatives)
        self._negative_weight = float(negative_weight)
        self._update()

    def clear(self) -> None:
        """No query: positives and negatives go, and embeddings still in flight with them."""
        self.replace((), (), self._negative_weight)

    def add_negatives(self, examples: Sequence[QueryExample]) -> None:
        present = {e.path for e in self._negatives if e.path is not None}
        fresh = tuple(e for e in examples if e.path is None or e.path not in present)
        if fresh:
            self._negatives += fresh
            self._update()

    def remove_negative(self, index: int) -> None:
        self._negatives = tuple(e for i, e in enumerate(self._negatives) if i != index)
        self._update()

    def clear_negatives(self) -> None:
        if self._negatives:
            self._negatives = ()
            self._update()

    def set_negative_weight(self, weight: float) -> None:
        if float(weight) != self._negative_weight:
            self._negative_weight = float(weight)
            self._update()

    def set_top_k(self, k: int) -> None:
        k = max(1, int(k))
        if k != self._top_k:
            self._top_k = k
            self.changed.emit()

    def rescore(self, collection: Scorable | None) -> None:
        """Score against this collection from now on (opened, closed or grown). A query made
        with another representation (other dimensions) no longer compares: it is cleared."""
        self._scored_against = collection
        dim = collection.dim if collection is not None and len(collection) else None
        examples = self._positives + self._negatives
        if dim is not None and examples and any(len(e.vector) != dim for e in examples):
            self._generation += 1
            self._positives, self._negatives = (), ()
        had_scores = self._scores is not None
        self._update(emit=had_scores or self._vector is not None or bool(examples))

    @contextmanager
    def one_change(self) -> Iterator[None]:
        """Edits inside announce themselves once, on exit (and not at all if none happened):
        e.g. a collection's growth, whose new rows views must see before the new scores."""
        with self.changed.paused(_last, ()):
            yield

    # --- the one computation --------------------------------------------------------------

    def _update(self, emit: bool = True) -> None:
        if self._positives:
            negatives = np.stack([e.vector for e in self._negatives]) if self._negatives else None
            self._vector = analysis.rocchio(np.stack([e.vector for e in self._positives]), negatives,
                                            self._negative_weight)
        else:
            self._vector = None
        collection = self._scored_against
        if self._vector is None or collection is None or not len(collection):
            self._scores = None
        else:
            self._scores = collection.similarities(self._vector)
        if emit:
            self.changed.emit()
