"""The 2D map of a collection: a UMAP layout of its vectors, cached with the collection.

The fit runs in a child process (layout_worker.py): numba's compiling would freeze the window of
the process that asked. UMAP's own `transform` would need the fitted model, which lives in that
child and could only be persisted by pickling it (nothing here is ever unpickled). So images
added after the layout was computed are placed by the same steps from what is kept: their nearest
laid-out images, the weighted mean of those as the start, and UMAP's optimisation epochs with the
laid-out images held still (`layout_worker.transform_umap`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .ann import exact_search
from .layout_worker import LayoutFailed, shared_process
from .store import temp_beside
from .tasks import Progress, no_progress

log = logging.getLogger(__name__)
N_NEIGHBOURS = 15
_LAYOUT_FILE = "layout.npz"


@dataclass
class Layout:
    """2D positions of file ids. `xy[i]` is the position of `ids[i]`."""

    ids: np.ndarray  # int64, sorted
    xy: np.ndarray  # (N, 2) float32

    def positions_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ids that have a position, their positions)."""
        rows = np.searchsorted(self.ids, ids).clip(0, max(len(self.ids) - 1, 0))
        known = (self.ids[rows] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        return known, self.xy[rows[known]] if len(self.ids) else np.empty((0, 2), np.float32)

    def save(self, directory: Path, generation: int) -> None:
        tmp = temp_beside(directory / _LAYOUT_FILE).with_suffix(".npz")  # np.savez adds .npz otherwise
        np.savez(tmp, ids=self.ids, xy=self.xy, generation=np.int64(generation))
        os.replace(tmp, directory / _LAYOUT_FILE)

    @classmethod
    def load(cls, directory: Path) -> "Layout | None":
        try:
            with np.load(directory / _LAYOUT_FILE, allow_pickle=False) as data:
                return cls(data["ids"], data["xy"])
        except (OSError, KeyError, ValueError):
            return None


def compute_layout(
    vectors: np.ndarray, ids: np.ndarray, progress: Progress = no_progress,
    cancelled: Callable[[], bool] = lambda: False, seed: int | None = 42,
) -> Layout | None:
    """Fit UMAP (cosine) on all vectors, in the layout process. Returns None when cancelled
    (which stops the fit at once). The first fit also compiles numba code (about 10 s)."""
    n = len(ids)
    order = np.argsort(ids)
    ids, vectors = np.asarray(ids)[order], vectors[order]
    if n < 4:  # too few points for a neighbour graph: a line is honest enough
        return Layout(ids, np.column_stack([np.arange(n), np.zeros(n)]).astype(np.float32))
    if cancelled():
        return None
    progress(0, 0, f"computing the map of {n} images")
    xy = shared_process().fit(vectors, seed, N_NEIGHBOURS, cancelled)
    if xy is None:
        return None
    progress(1, 1, "map ready")
    return Layout(ids, xy)


def extend_layout(layout: Layout, vectors: np.ndarray, ids: np.ndarray, laid_out_vectors: np.ndarray,
                  transform: bool = False, seed: int | None = 42) -> Layout:
    """Add positions for `ids` (with `vectors`) not yet in `layout`; drop ids no longer present.

    `laid_out_vectors` are the current vectors of `layout.ids`, row for row. New images go to
    the similarity-weighted mean of their nearest laid-out images (instant); with `transform`,
    UMAP's transform then refines that start in the layout process (a fraction of a second once
    that process is warm, seconds when it starts). The laid-out images never move.
    """
    keep = np.isin(layout.ids, ids)
    base_ids, base_xy, base_vectors = layout.ids[keep], layout.xy[keep], laid_out_vectors[keep]
    missing = ~np.isin(ids, base_ids)
    if not missing.any():
        return Layout(base_ids, base_xy)
    new_vectors = vectors[missing]
    if len(base_ids):
        k = min(N_NEIGHBOURS, len(base_ids))
        rows, scores = exact_search(base_vectors, new_vectors, k)
        weights = np.clip(scores, 1e-6, None)[..., None]
        new_xy = ((base_xy[rows] * weights).sum(axis=1) / weights.sum(axis=1)).astype(np.float32)
        if transform and k >= 2:
            distances = np.clip(1.0 - scores, 0.0, None)  # UMAP's cosine distance
            try:
                new_xy = shared_process().transform(rows, distances, base_xy, seed)
            except LayoutFailed as err:  # the start is a fair map too: never fail an opening over it
                log.warning("placing %d new images with UMAP's transform failed: %s", len(new_xy), err)
    else:
        new_xy = np.zeros((int(missing.sum()), 2), np.float32)
    all_ids = np.concatenate([base_ids, ids[missing]])
    all_xy = np.concatenate([base_xy, new_xy])
    order = np.argsort(all_ids)
    return Layout(all_ids[order], all_xy[order])
