"""The 2D map of a collection: a UMAP layout of its vectors, cached with the collection.

A map is on screen at once, before UMAP is ready: the quick layout (the vectors' two principal
axes) needs no compiling and takes well under a second at 100k images; UMAP's layout then
replaces it, turned and scaled onto it (`align`) so that the points move as little as they can.

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
import zipfile
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
LAYOUT_FILE = "layout.npz"
QUICK, UMAP = "quick", "umap"  # Layout.kind: the principal-axes stand-in, or the real map
# Axes found on 20k of 100k rows keep as much of the variance as all rows' (within 2% on
# bench_layout's vectors) in a fifth of the time: on all rows the quick map took 1.0 s alone and
# 2.1 s beside the map process starting, over its 2 s budget.
AXES_SAMPLE_ROWS = 20_000
# UMAP fits on at most this many evenly spaced images (41 s at 100k here, perf-notes.md); the
# others are placed on that map by the transform below, as images added later are: a fit on
# all of a million would take the better part of an hour and ~10 GB (bench/bench_million.py).
FIT_ROWS = 100_000
_PLACE_BLOCK = 65_536  # images whose nearest fitted images are looked up at a time


@dataclass(eq=False)  # arrays inside: compared by identity
class Layout:
    """2D positions of file ids. `xy[i]` is the position of `ids[i]`."""

    ids: np.ndarray  # int64, sorted
    xy: np.ndarray  # (N, 2) float32
    kind: str = UMAP

    def positions_of(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(mask of ids that have a position, their positions)."""
        rows = np.searchsorted(self.ids, ids).clip(0, max(len(self.ids) - 1, 0))
        known = (self.ids[rows] == ids) if len(self.ids) else np.zeros(len(ids), bool)
        return known, self.xy[rows[known]] if len(self.ids) else np.empty((0, 2), np.float32)

    def save(self, directory: Path, generation: int) -> None:
        tmp = temp_beside(directory / LAYOUT_FILE).with_suffix(".npz")  # np.savez adds .npz otherwise
        np.savez(tmp, ids=self.ids, xy=self.xy, generation=np.int64(generation))
        os.replace(tmp, directory / LAYOUT_FILE)

    @classmethod
    def load(cls, directory: Path) -> "Layout | None":
        try:
            with np.load(directory / LAYOUT_FILE, allow_pickle=False) as data:
                return cls(data["ids"], data["xy"])
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:  # truncated: BadZipFile
            log.warning("the map %s is damaged (%s): it is computed again", directory / LAYOUT_FILE, err)
            return None


def _line(ids: np.ndarray) -> Layout:
    """Too few points for a neighbour graph or two axes: a line is honest enough."""
    return Layout(ids, np.column_stack([np.arange(len(ids)), np.zeros(len(ids))]).astype(np.float32))


def principal_axes(vectors: np.ndarray, k: int = 2, iterations: int = 6, seed: int = 0
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(mean, (k, dim) axes): the top-k principal axes by randomized subspace iteration.

    The vectors are centred implicitly, never copied: at 100k x 1280 a centred copy alone would
    be 0.5 GB. A few matrix products over all rows; the sign of each axis is fixed so that the
    same vectors always give the same picture.
    """
    vectors = np.asarray(vectors, np.float32)
    mean = vectors.mean(axis=0, dtype=np.float64).astype(np.float32)
    basis = np.random.default_rng(seed).standard_normal((vectors.shape[1], k + 6)).astype(np.float32)
    for _ in range(iterations):
        scores = vectors @ basis - mean @ basis  # (N, k+6): the centred vectors on the basis
        basis, _ = np.linalg.qr(vectors.T @ scores - np.outer(mean, scores.sum(axis=0)))
    _, _, rotation = np.linalg.svd(vectors @ basis - mean @ basis, full_matrices=False)
    axes = (basis @ rotation[:k].T).T
    axes *= np.sign(axes[np.arange(k), np.abs(axes).argmax(axis=1)])[:, None]
    return mean, axes.astype(np.float32)


def quick_layout(vectors: np.ndarray, ids: np.ndarray) -> Layout:
    """The map shown until UMAP's is ready: the vectors on their two principal axes, found on
    at most AXES_SAMPLE_ROWS evenly spaced rows. No compiling, a fraction of a second at 100k
    images (bench/bench_layout.py)."""
    ids = np.asarray(ids)
    if (np.diff(ids) < 0).any():  # a copy of 100k vectors costs a quarter of the time budget
        order = np.argsort(ids)
        ids, vectors = ids[order], vectors[order]
    if len(ids) < 3:
        return _line(ids)
    mean, axes = principal_axes(vectors[::-(-len(ids) // AXES_SAMPLE_ROWS)])  # a view, no copy
    xy = vectors @ axes.T - mean @ axes.T
    return Layout(ids, xy.astype(np.float32), QUICK)


def align(layout: Layout, reference: Layout) -> Layout:
    """`layout` turned, mirrored, scaled and moved to lie as close to `reference` as it can
    (orthogonal Procrustes over their common ids), so that swapping one map for the other moves
    the eye as little as possible. A UMAP map's orientation and scale mean nothing anyway."""
    known, ref_xy = reference.positions_of(layout.ids)
    if known.sum() < 3:
        return layout
    source = layout.xy[known].astype(np.float64)
    target = ref_xy.astype(np.float64)
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    a, b = source - source_mean, target - target_mean
    u, s, vt = np.linalg.svd(a.T @ b)
    scale = s.sum() / max((a ** 2).sum(), 1e-12)
    xy = (layout.xy - source_mean) @ (u @ vt) * scale + target_mean
    return Layout(layout.ids, xy.astype(np.float32), layout.kind)


def compute_layout(
    vectors: np.ndarray, ids: np.ndarray, progress: Progress = no_progress,
    cancelled: Callable[[], bool] = lambda: False, seed: int | None = 42,
    on_quick: Callable[[Layout], None] | None = None,
) -> Layout | None:
    """Fit UMAP (cosine) on all vectors, in the layout process, aligned onto the quick layout,
    which `on_quick` gets first, before the fit starts. Returns None when cancelled (which
    stops the fit at once). The first fit in a session also compiles numba code (seconds, and
    about a minute on the first run after installing; see `layout_worker.warm_up`)."""
    n = len(ids)
    order = np.argsort(ids)
    ids, vectors = np.asarray(ids)[order], vectors[order]
    if n < 4:
        return _line(ids)
    quick = quick_layout(vectors, ids)
    if on_quick is not None:
        on_quick(quick)
    if cancelled():
        return None
    if n <= FIT_ROWS:
        progress(0, 0, f"computing the map of {n} images")
        xy = shared_process().fit(vectors, seed, N_NEIGHBOURS, cancelled)
    else:
        xy = _fit_on_a_sample(vectors, seed, progress, cancelled)
    if xy is None:
        return None
    progress(1, 1, "map ready")
    return align(Layout(ids, xy), quick)


def _fit_on_a_sample(vectors: np.ndarray, seed: int | None, progress: Progress,
                     cancelled: Callable[[], bool]) -> np.ndarray | None:
    """UMAP fitted on FIT_ROWS evenly spaced rows, the others placed by UMAP's transform from
    their nearest fitted rows (an HNSW graph of those, searched a block at a time)."""
    from .ann import AnnIndex  # hnswlib: only a large map needs it here

    n = len(vectors)
    fitted = np.linspace(0, n - 1, FIT_ROWS).round().astype(np.int64)
    progress(0, 0, f"computing the map of {FIT_ROWS} of the {n} images")
    base_xy = shared_process().fit(vectors[fitted], seed, N_NEIGHBOURS, cancelled)
    if base_xy is None:
        return None
    others = np.setdiff1d(np.arange(n), fitted)
    graph = AnnIndex.build(np.asarray(vectors[fitted], np.float32), np.arange(FIT_ROWS))
    neighbours = np.empty((len(others), N_NEIGHBOURS), np.int64)
    distances = np.empty((len(others), N_NEIGHBOURS), np.float32)
    for start in range(0, len(others), _PLACE_BLOCK):
        if cancelled():
            return None
        progress(start, len(others), f"placing the other {len(others)} images on the map")
        block = slice(start, start + _PLACE_BLOCK)
        neighbours[block], scores = graph.search(np.asarray(vectors[others[block]], np.float32), N_NEIGHBOURS)
        distances[block] = np.clip(1.0 - scores, 0.0, None)  # UMAP's cosine distance
    del graph
    placed = shared_process().transform(neighbours, distances, base_xy, seed, cancelled)
    if placed is None:
        return None
    xy = np.empty((n, 2), np.float32)
    xy[fitted], xy[others] = base_xy, placed
    return xy


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
        return Layout(base_ids, base_xy, layout.kind)
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
    return Layout(all_ids[order], all_xy[order], layout.kind)
