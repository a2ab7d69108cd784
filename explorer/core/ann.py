"""Nearest-neighbour search: an hnswlib index (cosine) and exact search to check it against.

Labels in the index are the collection's stable file ids. The index file records the collection
generation it matches and the space its vectors are in (`space`: the compact codes' axes,
codes.py); a mismatch (say, after a kill mid-index, or axes fitted anew) means it is rebuilt.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import hnswlib
import numpy as np

M = 16
EF_CONSTRUCTION = 200
EF_SEARCH = 200  # recall@10 >= 0.99 on hard clustered data; ~1 ms per query at 100k x 1280
# Below this size exact search is as fast as the graph and always right.
EXACT_BELOW = 5000
log = logging.getLogger(__name__)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Top-k rows of `vectors` by cosine (all unit length). Returns (rows, scores), best first."""
    queries = np.atleast_2d(queries).astype(np.float32, copy=False)
    k = min(k, len(vectors))
    if k == 0:
        return np.empty((len(queries), 0), np.int64), np.empty((len(queries), 0), np.float32)
    rows_out, scores_out = [], []
    for block in range(0, len(queries), 1024):  # bound the (queries x N) score matrix
        scores = queries[block:block + 1024] @ vectors.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        top_scores = np.take_along_axis(scores, top, axis=1)
        order = np.argsort(-top_scores, axis=1, kind="stable")
        rows_out.append(np.take_along_axis(top, order, axis=1))
        scores_out.append(np.take_along_axis(top_scores, order, axis=1))
    return np.concatenate(rows_out), np.concatenate(scores_out)


class AnnIndex:
    """hnswlib HNSW graph over unit vectors, labelled by file id."""

    def __init__(self, dim: int, index: hnswlib.Index | None = None, space: str = ""):
        self.dim = dim
        self.space = space  # what the vectors are: "" full vectors, else the codes' axes
        self.index = index or hnswlib.Index(space="cosine", dim=dim)

    @classmethod
    def empty(cls, dim: int, capacity: int, space: str = "") -> "AnnIndex":
        ann = cls(dim, space=space)
        ann.index.init_index(max_elements=max(capacity, 16), ef_construction=EF_CONSTRUCTION, M=M)
        return ann

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, threads: int | None = None,
              space: str = "") -> "AnnIndex":
        ann = cls.empty(vectors.shape[1], len(ids), space)
        if len(ids):
            ann.index.add_items(vectors, ids, num_threads=threads or os.cpu_count() or 1)
        return ann

    def upsert(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        """Add new labels or replace the vectors of existing ones (re-embedded files)."""
        if not len(ids):
            return
        needed = self.index.get_current_count() + len(ids)
        if needed > self.index.get_max_elements():
            self.index.resize_index(max(needed, int(self.index.get_max_elements() * 1.5)))
        self.index.add_items(vectors, ids, num_threads=os.cpu_count() or 1)

    def remove(self, ids: list[int]) -> None:
        present = set(self.index.get_ids_list())
        for label in ids:
            if label in present:
                try:
                    self.index.mark_deleted(label)
                except RuntimeError:  # already deleted
                    pass

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(labels, cosine scores) of the k nearest, best first; k must not exceed the live count."""
        queries = np.atleast_2d(queries).astype(np.float32, copy=False)
        self.index.set_ef(max(EF_SEARCH, 2 * k))
        labels, distances = self.index.knn_query(queries, k=k, num_threads=os.cpu_count() or 1)
        return labels.astype(np.int64), (1.0 - distances).astype(np.float32)

    def save(self, directory: Path, generation: int) -> None:
        tmp = directory / "hnsw.bin.tmp"
        self.index.save_index(str(tmp))
        os.replace(tmp, directory / "hnsw.bin")
        state = {"generation": generation, "dim": self.dim, "space": self.space, "M": M,
                 "ef_construction": EF_CONSTRUCTION, "bytes": (directory / "hnsw.bin").stat().st_size}
        tmp_json = directory / "hnsw.json.tmp"
        tmp_json.write_text(json.dumps(state))
        os.replace(tmp_json, directory / "hnsw.json")

    @staticmethod
    def is_current(directory: Path, dim: int, generation: int, space: str = "") -> bool:
        """Whether a saved index matches `generation` and `space` (reads only its small state
        file, and the graph's size: a truncated graph is stale, so the next index run builds it
        again)."""
        try:
            state = json.loads((directory / "hnsw.json").read_text())
            size = (directory / "hnsw.bin").stat().st_size
        except (OSError, ValueError):
            return False
        return state.get("generation") == generation and state.get("dim") == dim \
            and state.get("space", "") == space and state.get("bytes", size) == size

    @classmethod
    def load(cls, directory: Path, dim: int, generation: int, space: str = "") -> "AnnIndex | None":
        """The saved index if it matches `generation` and `space`, else None (stale or missing)."""
        if not cls.is_current(directory, dim, generation, space):
            return None
        index = hnswlib.Index(space="cosine", dim=dim)
        try:
            index.load_index(str(directory / "hnsw.bin"))
        except RuntimeError as err:  # truncated or overwritten: hnswlib checks its size
            log.warning("the search graph %s is damaged (%s): it is built again from the vectors",
                        directory / "hnsw.bin", err)
            return None
        return cls(dim, index, space)
