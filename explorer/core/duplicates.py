"""Near-duplicates: each image's similarity to its nearest other image, and groups above a threshold.

Both go through SearchIndex's neighbour search, so they are exact below ann.EXACT_BELOW images and
use the HNSW graph above it (approximate: a near-duplicate pair can, rarely, be missed).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .search import SearchIndex
from .tasks import Progress

_BLOCK = 4096  # queries per neighbour search: bounds exact search's (block x N) score matrix


def _neighbours_without_self(index: SearchIndex, k: int, progress: Progress | None
                             ) -> tuple[np.ndarray, np.ndarray]:
    """(rows, scores) of each image's k nearest other images; -1 / NaN pad missing ones."""
    n = len(index)
    rows_out = np.full((n, k), -1, np.int64)
    scores_out = np.full((n, k), np.nan, np.float32)
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        rows, scores = index.nearest_rows(index.vectors_of(slice(start, stop)), k + 1, None)
        for offset in range(stop - start):
            # Filter by row, not by dropping column 0: an exact copy can tie with the image itself
            # and come first, and HNSW may not return the image itself at all.
            others = rows[offset] != start + offset
            found = min(int(others.sum()), k)
            rows_out[start + offset, :found] = rows[offset][others][:found]
            scores_out[start + offset, :found] = scores[offset][others][:found]
        if progress:
            progress(stop, n, "finding neighbours")
    return rows_out, scores_out


def nearest_neighbour_similarities(index: SearchIndex, progress: Progress | None = None) -> np.ndarray:
    """Each image's cosine similarity to its nearest other image (NaN when it is alone)."""
    if not len(index):
        return np.empty(0, np.float32)
    return _neighbours_without_self(index, 1, progress)[1][:, 0]


def _components(n: int, edges: np.ndarray) -> list[np.ndarray]:
    """Connected components (of size >= 2) of an undirected graph on n nodes, by union-find."""
    parent = np.arange(n)

    def root(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]  # path halving keeps the trees shallow
            x = parent[x]
        return x

    for a, b in edges:
        ra, rb = root(int(a)), root(int(b))
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    members = np.unique(edges)
    roots = np.array([root(int(m)) for m in members], np.int64)
    return [members[roots == r] for r in np.unique(roots)]


def duplicate_groups(index: SearchIndex, threshold: float = 0.95, k: int = 10,
                     progress: Progress | None = None) -> list[list[Path]]:
    """Groups of near-duplicates: connected components of the graph linking each image to those
    of its k nearest others with similarity >= threshold.

    Linking through neighbours lets a chain (a ~ b ~ c) form one group even when a and c are
    below the threshold, as a person reviewing copies would want. Groups are sorted largest
    first, paths (absolute) sorted within each group.
    """
    if len(index) < 2:
        return []
    rows, scores = _neighbours_without_self(index, min(k, len(index) - 1), progress)
    source, slot = np.nonzero(scores >= threshold)  # NaN padding compares False
    edges = np.stack([source, rows[source, slot]], axis=1)
    groups = [sorted(index.folder / index.paths[r] for r in members)
              for members in _components(len(index), edges)]
    return sorted(groups, key=lambda g: (-len(g), g[0]))
