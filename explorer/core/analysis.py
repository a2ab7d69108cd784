"""Similarity distributions: how every image in a collection relates to a query."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# One bin grid for every query, so histograms of different queries overlay bin for bin.
HISTOGRAM_RANGE = (-1.0, 1.0)
HISTOGRAM_BINS = 400


@dataclass(frozen=True)
class SimilarityHistogram:
    """Counts of cosine similarities on a fixed grid, with the query's top-k cut-off."""

    edges: np.ndarray  # (bins + 1,)
    counts: np.ndarray  # (bins,) int64
    top_k: int
    top_k_threshold: float  # score of the k-th best image (the cut-off line)

    @property
    def total(self) -> int:
        return int(self.counts.sum())

    def occupied_range(self) -> tuple[float, float]:
        """Edges spanning the non-empty bins (to zoom the plot to the data)."""
        nonzero = np.flatnonzero(self.counts)
        if not len(nonzero):
            return HISTOGRAM_RANGE
        return float(self.edges[nonzero[0]]), float(self.edges[nonzero[-1] + 1])


def similarities(vectors: np.ndarray, query: np.ndarray) -> np.ndarray:
    """Cosine similarity of every (unit) row to the (unit) query."""
    return vectors @ np.asarray(query, dtype=np.float32)


def top_k_threshold(scores: np.ndarray, k: int) -> float:
    if not len(scores):
        return float("nan")
    k = min(max(k, 1), len(scores))
    return float(np.partition(scores, len(scores) - k)[len(scores) - k])


def similarity_histogram(scores: np.ndarray, top_k: int = 10,
                         bins: int = HISTOGRAM_BINS) -> SimilarityHistogram:
    counts, edges = np.histogram(np.clip(scores, *HISTOGRAM_RANGE), bins=bins, range=HISTOGRAM_RANGE)
    return SimilarityHistogram(edges, counts.astype(np.int64), top_k, top_k_threshold(scores, top_k))


def rows_in_range(scores: np.ndarray, low: float, high: float) -> np.ndarray:
    """Rows whose score lies in [low, high], best first."""
    rows = np.flatnonzero((scores >= low) & (scores <= high))
    return rows[np.argsort(-scores[rows], kind="stable")]


def ranking(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Rows by descending score (the top k only when k is given)."""
    if k is not None and k < len(scores):
        top = np.argpartition(-scores, k - 1)[:k]
        return top[np.argsort(-scores[top], kind="stable")]
    return np.argsort(-scores, kind="stable")
