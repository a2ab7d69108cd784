"""Similarity distributions: how every image in a collection relates to a query.

Also the Rocchio multi-example query, summaries of one distribution, and label-aware retrieval
quality (labels = first-level subfolders): AP, precision@k, and `evaluate` over a collection.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from .catalog import label_of
from .tasks import Progress

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
    return rows[descending_order(scores[rows])]


def ranking(scores: np.ndarray, k: int | None = None) -> np.ndarray:
    """Rows by descending score (the top k only when k is given); equal scores by row."""
    if k is not None and k < len(scores):
        kth = -np.partition(-scores, k - 1)[k - 1]  # the k-th best score
        above = np.flatnonzero(scores > kth)
        tied = np.flatnonzero(scores == kth)[:k - len(above)]  # ties at the cut: lowest rows
        top = np.sort(np.concatenate([above, tied]))  # in row order, so ties stay in row order
        return top[descending_order(scores[top])]
    return descending_order(scores)


def descending_order(values: np.ndarray) -> np.ndarray:
    """Indices of `values` from largest to smallest, equal values in index order: what a stable
    argsort of -values gives, ~8x faster at 100k (numpy's default sort is vectorised, its stable
    one is not). Only the tied values are sorted again, with the index as tie-breaker."""
    values = np.asarray(values)
    if _half_precision(values):
        # The compact codes' similarities are float16 values (~20k distinct at 1M images):
        # numpy sorts 16-bit keys by radix, stable and ~5x faster than any float sort.
        return np.argsort(_descending_half_keys(values), kind="stable")
    negated = -values
    sample = negated[::max(1, len(negated) // 4096)]
    if len(sample) > 100 and len(np.unique(sample)) < 0.99 * len(sample):
        # Many ties (similarities from the compact codes take ~20k distinct values at 1M
        # images): numpy's stable sort is then 3x faster than re-sorting the ties (99 vs 337 ms).
        return np.argsort(negated, kind="stable")
    order = np.argsort(negated)
    ordered = negated[order]
    tied = np.zeros(len(order), bool)
    tied[1:] = ordered[1:] == ordered[:-1]
    tied[:-1] |= tied[1:]
    if tied.any():
        # The tied positions hold runs of equal values, in order: sorting their (value, index)
        # pairs and writing them back into the same positions orders each run by index.
        at = np.flatnonzero(tied)
        order[at] = order[at][np.lexsort((order[at], ordered[at]))]
    return order


def _half_precision(values: np.ndarray) -> bool:
    """Whether every value is a finite float16 (checked on a sample first: a float32 array
    of similarities fails there at once)."""
    if values.dtype != np.float32 or len(values) < 4096:
        return False
    with np.errstate(over="ignore"):
        for part in (values[::len(values) // 1024], values):
            half = part.astype(np.float16)
            if not (np.isfinite(half).all() and (half == part).all()):
                return False
    return True


def _descending_half_keys(values: np.ndarray) -> np.ndarray:
    """uint16 keys that order float16 values from largest to smallest: the bit pattern with
    the sign flipped for positives, all bits flipped for negatives, then all reversed."""
    bits = (values.astype(np.float16) + np.float16(0)).view(np.uint16)  # + 0: -0.0 becomes 0.0
    negative = bits >= 0x8000
    return np.where(negative, bits, ~bits & np.uint16(0x7FFF)).astype(np.uint16)


# ---- multi-example queries --------------------------------------------------------------------


def rocchio(positives: np.ndarray, negatives: np.ndarray | None = None,
            negative_weight: float = 0.5) -> np.ndarray:
    """Rocchio query: mean of the positive unit vectors minus `negative_weight` x mean of the
    negatives, renormalised. With no negatives it is the plain mean query (embed.mean_query)."""
    positives = np.atleast_2d(np.asarray(positives, np.float32))
    if not positives.size:
        raise ValueError("a query needs at least one positive example")
    query = positives.mean(axis=0)
    if negatives is not None and np.size(negatives):
        query = query - np.float32(negative_weight) * np.atleast_2d(np.asarray(negatives, np.float32)).mean(axis=0)
    norm = float(np.linalg.norm(query))
    # A zero vector (negatives cancelling the positives) stays zero rather than becoming NaN.
    return query / norm if norm > 0 else query


# ---- summaries of one distribution ------------------------------------------------------------


@dataclass(frozen=True)
class DistributionSummary:
    """What the histogram panel prints under each query's curve."""

    n: int
    mean: float
    median: float
    top_k: int
    top_k_mean: float  # mean score of the k best images
    threshold: float
    above_threshold: int  # images scoring >= threshold


def summarise(scores: np.ndarray, top_k: int = 10, threshold: float = 0.5) -> DistributionSummary:
    scores = np.asarray(scores, np.float32)
    if not len(scores):
        nan = float("nan")
        return DistributionSummary(0, nan, nan, top_k, nan, threshold, 0)
    k = min(max(top_k, 1), len(scores))
    best = np.partition(scores, len(scores) - k)[len(scores) - k:]
    return DistributionSummary(
        n=len(scores), mean=float(scores.mean(dtype=np.float64)), median=float(np.median(scores)),
        top_k=top_k, top_k_mean=float(best.mean(dtype=np.float64)), threshold=threshold,
        above_threshold=int(np.count_nonzero(scores >= threshold)),
    )


def cumulative(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Empirical CDF: scores ascending and the fraction of images scoring <= each."""
    x = np.sort(np.asarray(scores, np.float32))
    return x, np.arange(1, len(x) + 1, dtype=np.float64) / max(len(x), 1)


# ---- labels and retrieval quality -------------------------------------------------------------
#
# Ties: an image is ranked after every non-relevant image with the same score (pessimistic
# ranking). That makes every figure independent of file order, and lets the ranks be found by
# sorting score values (np.sort) instead of a stable argsort, which is ~15x slower and would
# dominate `evaluate` on a large collection.


def labels_of(paths: Sequence[str]) -> np.ndarray:
    """First-level subfolder of each relative POSIX path ("" for files at the root)."""
    names, codes = label_codes(paths)
    return np.array(names, dtype=str)[codes] if len(codes) else np.array([], dtype=str)


def label_codes(paths: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """`labels_of` as (sorted label names, index into them per path): small to keep and to
    colour by. Coded with a dict: np.unique would sort 100k strings (~80 ms)."""
    code_of: dict[str, int] = {}
    codes = np.fromiter((code_of.setdefault(label_of(p) or "", len(code_of)) for p in paths),
                        np.int64, len(paths))
    names = sorted(code_of)
    rank = np.empty(len(names), np.int64)  # first-seen code -> position in sorted order
    rank[[code_of[name] for name in names]] = np.arange(len(names))
    return names, rank[codes] if len(codes) else codes


def _relevant_ranks(all_sorted: np.ndarray, relevant_scores: np.ndarray) -> np.ndarray:
    """1-based ranks of the relevant items, ascending, under pessimistic tie ranking.

    `all_sorted` holds every ranked score (relevant ones included) in ascending order. The i-th
    best relevant item (1-based) has rank i + (non-relevant items scoring >= its score).
    """
    rel_desc = np.sort(relevant_scores)[::-1]
    count_ge = len(all_sorted) - np.searchsorted(all_sorted, rel_desc, side="left")
    relevant_ge = len(rel_desc) - np.searchsorted(rel_desc[::-1], rel_desc, side="left")
    return np.arange(1, len(rel_desc) + 1) + (count_ge - relevant_ge)


def _ap(ranks: np.ndarray) -> float:
    return float(np.mean(np.arange(1, len(ranks) + 1) / ranks)) if len(ranks) else float("nan")


def _precision(ranks: np.ndarray, k: int, ranked: int) -> float:
    """Share of the top k that is relevant; k shrinks to the ranking's length when it is shorter."""
    k = min(k, ranked)
    return float(np.count_nonzero(ranks <= k)) / k if k > 0 else float("nan")


def _kept(scores: np.ndarray, relevant: np.ndarray, exclude: np.ndarray | None
          ) -> tuple[np.ndarray, np.ndarray]:
    scores, relevant = np.asarray(scores), np.asarray(relevant, bool)
    if exclude is not None:
        keep = ~np.asarray(exclude, bool)
        scores, relevant = scores[keep], relevant[keep]
    return scores, relevant


def average_precision(scores: np.ndarray, relevant: np.ndarray,
                      exclude: np.ndarray | None = None) -> float:
    """Non-interpolated AP over the full ranking: the mean, over relevant images, of the precision
    at each one's rank. Excluded rows (the query's own images) leave the ranking first. NaN when
    nothing is relevant."""
    scores, relevant = _kept(scores, relevant, exclude)
    return _ap(_relevant_ranks(np.sort(scores), scores[relevant]))


def precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int,
                   exclude: np.ndarray | None = None) -> float:
    """Share of relevant images among the k best (after removing excluded rows)."""
    scores, relevant = _kept(scores, relevant, exclude)
    return _precision(_relevant_ranks(np.sort(scores), scores[relevant]), k, len(scores))


def ap_and_precision_at_k(scores: np.ndarray, relevant: np.ndarray, k: int,
                          exclude: np.ndarray | None = None) -> tuple[float, float]:
    """(average_precision, precision_at_k) from one sort of the scores (~40 ms at 1M images)."""
    scores, relevant = _kept(scores, relevant, exclude)
    ranks = _relevant_ranks(np.sort(scores), scores[relevant])
    return _ap(ranks), _precision(ranks, k, len(scores))


def split_by_label(scores: np.ndarray, labels: np.ndarray, label: str) -> tuple[np.ndarray, np.ndarray]:
    """(scores of images with `label`, scores of every other image, unlabelled ones included)."""
    same = np.asarray(labels) == label
    return scores[same], scores[~same]


@dataclass(frozen=True)
class RetrievalScores:
    """Means over a set of query images."""

    queries: int
    mean_average_precision: float
    precision_at_k: float
    recall_at_1: float

    def to_json(self, k: int) -> dict[str, float | None]:
        def finite(x: float) -> float | None:  # JSON has no NaN
            return x if np.isfinite(x) else None

        return {"mAP": finite(self.mean_average_precision), f"precision@{k}": finite(self.precision_at_k),
                "recall@1": finite(self.recall_at_1)}


@dataclass(frozen=True)
class Evaluation:
    """Every labelled image as a query over the rest of the collection (exact cosine ranking).

    Queries are the images whose label (first-level subfolder) has at least one other image; an
    image's relevant set is the other images of its label. Unlabelled images (at the root) and
    images alone in their label are never queries nor relevant, but stay in every ranking as
    distractors, as they would in a search.
    """

    k: int
    overall: RetrievalScores  # mean over all query images (larger labels weigh more)
    labels: dict[str, RetrievalScores]
    query_rows: np.ndarray  # rows of the vectors that served as queries
    average_precision: np.ndarray  # per query row, aligned with query_rows
    precision: np.ndarray
    recall_at_1: np.ndarray  # 1.0 where the nearest other image shares the label
    singletons: list[str]  # labels with one image: nothing to retrieve, not evaluated

    def to_json(self) -> dict:
        return {"overall": self.overall.to_json(self.k),
                "labels": {name: s.to_json(self.k) for name, s in self.labels.items()}}


def _mean_scores(ap: np.ndarray, precision: np.ndarray, recall: np.ndarray) -> RetrievalScores:
    if not len(ap):
        nan = float("nan")
        return RetrievalScores(0, nan, nan, nan)
    return RetrievalScores(len(ap), float(ap.mean()), float(precision.mean()), float(recall.mean()))


def _evenly_spaced(rows: np.ndarray, share: float) -> np.ndarray:
    """`share` of `rows` (at least one), evenly spaced; all of them when share is 1."""
    if share >= 1.0:
        return rows
    return rows[np.unique(np.linspace(0, len(rows) - 1, max(1, round(share * len(rows)))).round().astype(int))]


def evaluate(vectors: np.ndarray | None, labels: np.ndarray, k: int = 10,
             progress: Progress | None = None,
             cancelled: Callable[[], bool] = lambda: False,
             block_elements: int = 1 << 23, max_queries: int | None = None,
             scores_of: Callable[[np.ndarray], np.ndarray] | None = None) -> Evaluation | None:
    """mAP, precision@k and recall@1 of exact cosine search, per label and overall.

    Costs one (queries x N) matrix product and a sort of each row: O(N^2), run in blocks of
    about `block_elements` scores so memory stays bounded (~100 MB at the default, any N).
    `max_queries`: at most about this many queries, an evenly spaced share of each label's
    images, each still ranked against all N. `scores_of(rows)`: the (rows x N) similarities,
    in place of `vectors` (say, from compact codes). Returns None when cancelled.
    """
    labels = np.asarray(labels, dtype=str)
    if scores_of is None:
        assert vectors is not None
        vectors = np.asarray(vectors, np.float32)
        scores_of = lambda rows: vectors[rows] @ vectors.T  # noqa: E731
    n = len(labels)
    names, counts = np.unique(labels[labels != ""], return_counts=True)
    evaluated = [str(name) for name, c in zip(names, counts) if c >= 2]
    labelled = int(sum(c for c in counts if c >= 2))
    share = min(1.0, max_queries / labelled) if max_queries and labelled else 1.0
    block = max(1, block_elements // max(n, 1))
    rows_out, ap_out, precision_out, recall_out = [], [], [], []
    members_of = {name: np.flatnonzero(labels == name) for name in evaluated}
    asked_of = {name: _evenly_spaced(members, share) for name, members in members_of.items()}
    sizes = [len(asked) for asked in asked_of.values()]
    total = sum(sizes)
    done = 0
    for name, asked in asked_of.items():
        members = members_of[name]
        # Queries are grouped by label so that every row of a block has the same relevant columns.
        for start in range(0, len(asked), block):
            if cancelled():
                return None
            queries = asked[start:start + block]
            scores = scores_of(queries)
            scores[np.arange(len(queries)), queries] = -np.inf  # itself: below every real score
            all_sorted = np.sort(scores, axis=1)
            for row, query_scores in enumerate(scores):
                # Drop the -inf (itself) at the front of both; everything else is ranked.
                ranks = _relevant_ranks(all_sorted[row, 1:], query_scores[members[members != queries[row]]])
                ap_out.append(_ap(ranks))
                precision_out.append(_precision(ranks, k, n - 1))
                recall_out.append(float(ranks[0] == 1))
            rows_out.append(queries)
            done += len(queries)
            if progress:
                progress(done, total, "evaluating")
    rows = np.concatenate(rows_out) if rows_out else np.empty(0, np.int64)
    ap, precision, recall = (np.asarray(x, np.float64) for x in (ap_out, precision_out, recall_out))
    per_label = {}
    offset = 0
    for name, size in zip(evaluated, sizes):
        part = slice(offset, offset + size)
        per_label[name] = _mean_scores(ap[part], precision[part], recall[part])
        offset += size
    singletons = [str(name) for name, c in zip(names, counts) if c < 2]
    return Evaluation(k, _mean_scores(ap, precision, recall), per_label, rows, ap, precision, recall, singletons)
