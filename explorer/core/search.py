"""Searching an indexed folder: nearest neighbours of a query, and of every image."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .analysis import Evaluation, evaluate, label_codes
from .tasks import Progress
from .ann import EXACT_BELOW, AnnIndex, exact_search
from .catalog import name_order
from .codes import Codes, update_codes
from .backbones import DEFAULT_MODEL
from .store import REFUSE, Collection, CollectionError, indexed_models, read_folder_manifest


@dataclass(frozen=True)
class Hit:
    path: Path  # absolute
    score: float  # cosine similarity


# From here on the codes answer "how similar is every image": the full vectors cost 18 ms a
# query at 100k, the codes 3 ms (bench/bench_codes.py); below it both are a few ms.
CODES_FROM = 20_000
EVAL_SORTED_SCORES = 200_000_000  # ~15 s of sorting here: 2000 queries at 100k, 200 at 1M


def _candidates(k: int) -> int:
    """How many the graph (on the codes) proposes for the k nearest, re-ranked on the full
    vectors: codes and vectors agree on 99% of the top 100 (bench/bench_codes.py)."""
    return max(2 * k, k + 20)


def default_model_for(folder: Path) -> str:
    """The model a folder was last indexed with, else the default one."""
    models = indexed_models(folder)
    last = read_folder_manifest(folder).get("last_model")
    if last in models:
        return last
    return DEFAULT_MODEL if DEFAULT_MODEL in models or not models else models[0]


class SearchIndex:
    """The embedded images of one folder under one model, loaded for searching."""

    def __init__(self, collection: Collection):
        self.collection = collection
        self.folder = collection.folder
        self._ann: AnnIndex | None = None
        self._ann_current = True
        self._labels: tuple[list[str], np.ndarray] | None = None
        self._name_order: tuple[np.ndarray, np.ndarray] | None = None
        self._row_of: dict[str, int] | None = None
        self._codes: Codes | None = None
        self._codes_looked_for = False
        self._vectors: np.ndarray | None = None
        self._slots: np.ndarray | None = None  # where each row's vector is stored, until all are read
        # A large collection whose vectors were checked since they last changed leaves them on
        # disk: searches and histograms run on the codes (a million vectors are 5 GB).
        if collection.count() >= CODES_FROM and collection.all_known_good():
            self.ids, self.paths, self._slots = collection.live_files()
        else:
            self.ids, self.paths, self._vectors = collection.live()

    @property
    def vectors(self) -> np.ndarray:
        """Every full vector, in self.paths order; in a large collection read on first use, by
        what needs them all (an evaluation, a layout)."""
        if self._vectors is None:
            assert self._slots is not None
            self._vectors = self.collection.vectors_at(self._slots)
            self._slots = None
        return self._vectors

    def vectors_of(self, rows: np.ndarray | slice) -> np.ndarray:
        """The full vectors of `rows`, read from disk when not all are loaded."""
        if self._slots is None:
            return self.vectors[rows]
        return self.collection.vectors_at(self._slots[rows])

    def layout_vectors(self, own: bool = False) -> np.ndarray:
        """What the map is computed from, in self.paths order: the full vectors, or where they
        are left on disk their projection on the codes' axes (Codebook.project: float32, a fifth
        of their size, 1 GB at 1M images). `own`: a copy that later batches leave alone."""
        codes = self.codes() if self._slots is not None else None
        if codes is None:
            return self.vectors.copy() if own else self.vectors
        return codes.graph_vectors(slice(None))

    def evaluation(self, labels: np.ndarray, k: int = 10, progress: Progress | None = None,
                   cancelled: Callable[[], bool] = lambda: False) -> Evaluation | None:
        """analysis.evaluate of this collection. Where the full vectors stay on disk, each
        query's similarities come from the compact codes, and a share of each label asks: each
        query sorts N scores (~70 ms at 1M), so their count is bounded by EVAL_SORTED_SCORES."""
        codes = self.codes() if self._slots is not None else None
        if codes is None:
            return evaluate(self.vectors, labels, k, progress, cancelled)

        def scores_of(rows: np.ndarray) -> np.ndarray:
            return np.stack([codes.similarities(query) for query in self.vectors_of(rows)])

        return evaluate(None, labels, k, progress, cancelled, scores_of=scores_of,
                        max_queries=max(200, EVAL_SORTED_SCORES // len(self)))

    def vector(self, row: int) -> np.ndarray:
        return self.vectors_of(np.array([row]))[0]

    @property
    def dim(self) -> int:
        return self.collection.dim

    @classmethod
    def open(cls, folder: str | Path, model: str | None = None, on_damage: str = REFUSE) -> "SearchIndex":
        """Raises store.CollectionDamaged for damage only re-embedding repairs, unless `on_damage`
        is REPAIR: then damaged images are left out (`collection.damage` says which files), for
        the next index run to embed again."""
        folder = Path(folder).resolve()
        model = model or default_model_for(folder)
        if model not in indexed_models(folder):
            raise CollectionError(f"{folder} has not been indexed with {model} yet")
        collection = Collection.open_existing(folder, model, on_damage)
        try:
            return cls(collection)
        except BaseException:
            collection.close()
            raise

    def apply_batch(self, ids: list[int], paths: list[str], vectors: np.ndarray) -> np.ndarray:
        """Take in a freshly indexed batch (while indexing runs); returns the rows it landed on.

        Re-embedded files keep their id and row; new files get ids above every existing one
        (SQLite AUTOINCREMENT), so appending keeps `ids` sorted.
        """
        ids_array = np.asarray(ids, np.int64)
        rows = np.searchsorted(self.ids, ids_array)
        existing = (rows < len(self.ids)) & (self.ids[rows.clip(0, max(len(self.ids) - 1, 0))] == ids_array) \
            if len(self.ids) else np.zeros(len(ids), bool)
        self.vectors[rows[existing]] = vectors[existing]
        fresh = ~existing
        start = len(self.ids)
        self.ids = np.concatenate([self.ids, ids_array[fresh]])
        self.paths.extend(p for p, f in zip(paths, fresh) if f)
        self._vectors = np.concatenate([self.vectors, vectors[fresh]])
        self._ann_current = False  # exact search until reopened: the saved graph lags behind
        rows[fresh] = np.arange(start, len(self.ids))
        return rows

    def labels(self) -> tuple[list[str], np.ndarray]:
        """(sorted label names, label index per row): labels are first-level subfolders."""
        if self._labels is None or len(self._labels[1]) != len(self):
            self._labels = label_codes(self.paths)
        return self._labels

    def name_order(self) -> tuple[np.ndarray, np.ndarray]:
        """`catalog.name_order` of the paths, cached."""
        if self._name_order is None or len(self._name_order[1]) != len(self):
            self._name_order = name_order(self.paths)
        return self._name_order

    def __len__(self) -> int:
        return len(self.ids)

    def relative_path(self, path: Path) -> str | None:
        """`path` as the collection stores it (relative to the folder, through symlinks
        either way), or None for a file outside the folder."""
        for candidate in (path.absolute(), path.resolve()):
            try:
                return candidate.relative_to(self.folder).as_posix()
            except ValueError:
                continue
        return None

    def row_of(self, path: Path) -> int | None:
        """The row of an indexed file of the folder (any spelling `relative_path` takes), or None.
        The lookup table is built once per size of the collection: ~10 ms at 100k images."""
        relative = self.relative_path(path)
        if relative is None:
            return None
        if self._row_of is None or len(self._row_of) != len(self):
            self._row_of = {p: r for r, p in enumerate(self.paths)}
        return self._row_of.get(relative)

    def close(self) -> None:
        self.collection.close()

    def ann(self) -> AnnIndex | None:
        """The HNSW graph on the codes, built (and saved) if the saved one is stale; None
        without codes (under two images)."""
        codes = self.codes()
        if self._ann is None and codes is not None:
            c, book = self.collection, codes.codebook
            self._ann = AnnIndex.load(c.dir, book.dims, c.generation, book.key)
            if self._ann is None:
                self._ann = codes.build_graph()
                self._ann.save(c.dir, c.generation)
        return self._ann

    def nearest_rows(self, queries: np.ndarray, k: int, exact: bool | None) -> tuple[np.ndarray, np.ndarray]:
        """Row numbers (into self.paths) and cosine scores of the k nearest of each query."""
        k = min(k, len(self))
        use_graph = not exact and (exact is not None or len(self) >= EXACT_BELOW) and self._ann_current
        graph = self.ann() if use_graph else None
        codes = self.codes() if graph is not None else None
        if graph is None or codes is None:
            return exact_search(self.vectors, queries, k)
        queries = np.atleast_2d(np.asarray(queries, np.float32))
        labels, _ = graph.search(codes.codebook.project(queries), min(_candidates(k), len(self)))
        rows_out, scores_out = [], []
        for block in range(0, len(queries), 128):  # bounds the candidates' vectors read at once
            rows = np.searchsorted(self.ids, labels[block:block + 128])
            candidates = self.vectors_of(rows.ravel()).reshape(*rows.shape, -1)
            scores = np.einsum("qcd,qd->qc", candidates, queries[block:block + 128])
            best = np.argsort(-scores, axis=1, kind="stable")[:, :k]
            rows_out.append(np.take_along_axis(rows, best, 1))
            scores_out.append(np.take_along_axis(scores, best, 1))
        return np.concatenate(rows_out), np.concatenate(scores_out)

    def search(self, query: np.ndarray, k: int = 10, exact: bool | None = None) -> list[Hit]:
        """The k images most similar to one query vector, best first."""
        if not len(self):
            return []
        rows, scores = self.nearest_rows(query[None, :], k, exact)
        return [Hit(self.folder / self.paths[r], float(s)) for r, s in zip(rows[0], scores[0])]

    def neighbours(self, k: int = 10, exact: bool | None = None,
                   block: int = 512) -> Iterator[tuple[Path, list[Hit]]]:
        """Every image with its k nearest other images, best first (itself excluded)."""
        for start in range(0, len(self), block):
            stop = min(start + block, len(self))
            rows, scores = self.nearest_rows(self.vectors_of(slice(start, stop)), k + 1, exact)
            for offset in range(stop - start):
                me = start + offset
                hits = [Hit(self.folder / self.paths[r], float(s))
                        for r, s in zip(rows[offset], scores[offset]) if r != me]
                yield self.folder / self.paths[me], hits[:k]

    def codes(self) -> Codes | None:
        """The collection's compact codes (codes.py), made (and saved) when the saved ones do
        not code exactly these images; None under two images."""
        if not self._codes_looked_for:
            c = self.collection
            codes = Codes.load(c.dir)
            if codes is None or not codes.matches(self.ids):
                del codes  # unmapped before its file is replaced
                codes = update_codes(c.dir, self.ids, self.vectors_of, np.empty(0, np.int64),
                                     c.generation, since=c.generation)
            self._codes, self._codes_looked_for = codes, True
        return self._codes

    @property
    def scored_on_codes(self) -> bool:
        """Whether a query's similarities come from the compact codes (unless asked exact)."""
        return len(self) >= CODES_FROM and self._ann_current

    def warm_up(self) -> None:
        """Pay a large collection's first-query costs now, on a worker: torch's import (~1 s)
        and reading the codes from disk. Call codes() first on the thread that opened it."""
        if self.scored_on_codes:
            self.similarities(np.zeros(self.dim, np.float32))

    def similarities(self, query: np.ndarray, exact: bool | None = None) -> np.ndarray:
        """Cosine similarity of every image (in self.paths order) to the query: from the
        compact codes (to ~1e-3, bench/bench_codes.py) at CODES_FROM images or more unless
        `exact`, from the full vectors otherwise."""
        query = np.asarray(query, np.float32)
        if exact or (exact is None and len(self) < CODES_FROM) or not self._ann_current:
            return self.vectors @ query
        codes = self.codes()
        return codes.similarities(query) if codes is not None else self.vectors @ query
