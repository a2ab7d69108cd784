"""The work the session runs on background tasks: plain functions over core that open what they
need themselves (so a reload of the window's collection never pulls it away mid-run) and return
plain data."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from PySide6.QtGui import QImage

from ...core import analysis, images
from ...core.analysis import Evaluation
from ...core.backends import AUTO
from ...core.duplicates import duplicate_groups, nearest_neighbour_similarities
from ...core.explain import explain, overlay, page_feature_maps
from ...core.layout import Layout, extend_layout
from ...core.search import SearchIndex
from ...core.store import REFUSE, REPAIR, CollectionDamaged, indexed_models
from .models import example_vectors_in

EVAL_K = 10  # as `explorer eval`
# Decoded pictures are shrunk to this on the worker: sharp on a 4K screen, and a 100 MP photo
# never reaches the GUI thread at full size.
MAX_SIDE = 2560


def open_index(folder: Path, model: str) -> SearchIndex | None:
    """The index, as fast as it opens (the re-index that follows every opening reads every page
    of index.sqlite); damage met on the way is repaired (`collection.damage` says what), and
    what it lost is embedded again by that re-index."""
    if model not in indexed_models(folder):
        return None
    try:
        return SearchIndex.open(folder, model, REFUSE)
    except CollectionDamaged:
        return SearchIndex.open(folder, model, REPAIR)


def open_with_layout(folder: Path, model: str, transform: bool = False
                     ) -> tuple[SearchIndex, Layout | None] | None:
    """Runs on a worker: the index and its cached map, so the GUI thread only shows them."""
    index = open_index(folder, model)
    if index is None:
        return None
    index.labels()  # cached on the index, so the views that need them show at once
    index.name_order()
    if index.scored_on_codes:
        index.codes()  # loaded here, so that warming up on another worker only reads them
    return index, cached_layout(index, transform)


def cached_layout(index: SearchIndex, transform: bool) -> Layout | None:
    """The cached map, with images it does not cover placed on it; None when there is none.
    `transform`: place them with UMAP's transform (the grid is already up, so it may take a
    moment), else instantly near their nearest neighbours (the grid waits for this)."""
    cached = Layout.load(index.collection.dir) if len(index) else None
    if cached is None:
        return None
    known, _ = cached.positions_of(index.ids)
    if not known.all() or len(cached.ids) != len(index.ids):
        rows = np.searchsorted(index.ids, cached.ids).clip(0, len(index.ids) - 1)
        vectors = index.layout_vectors()
        cached = extend_layout(cached, vectors, index.ids, vectors[rows], transform)
        cached.save(index.collection.dir, index.collection.generation)
    return cached


def nearest_similarities(folder: Path, model: str, progress=None) -> np.ndarray:
    index = SearchIndex.open(folder, model)
    try:
        return nearest_neighbour_similarities(index, progress)
    finally:
        index.close()


def duplicate_groups_of(folder: Path, model: str, threshold: float, progress=None) -> list[list[Path]]:
    index = SearchIndex.open(folder, model)
    try:
        return duplicate_groups(index, threshold, progress=progress)
    finally:
        index.close()


Examples = list[tuple[Path | None, np.ndarray]]  # (file, vector under the window's model)


@dataclass(frozen=True, eq=False)
class RepresentationResult:
    model: str
    folder: Path
    paths: list[str]  # relative, row order of `scores`
    scores: np.ndarray
    top_rows: np.ndarray  # best first
    evaluation: Evaluation | None  # None: no labels, or not asked for


def vectors_under(index: SearchIndex, examples: Examples, model: str, same_model: bool,
                  backend: str) -> np.ndarray:
    if same_model:  # the window's own representation: the examples' vectors are already right
        return np.stack([v for _, v in examples]).astype(np.float32)
    return example_vectors_in(index, examples, model, backend)


def represent(folder: Path, model: str, same_model: bool, positives: Examples, negatives: Examples,
              negative_weight: float, k: int, with_evaluation: bool, backend: str = AUTO,
              progress=None, cancelled=lambda: False) -> RepresentationResult | None:
    """Worker: the query under `model`, its scores over the folder, top k, and eval numbers."""
    index = SearchIndex.open(folder, model)
    try:
        query = analysis.rocchio(vectors_under(index, positives, model, same_model, backend),
                                 vectors_under(index, negatives, model, same_model, backend) if negatives else None,
                                 negative_weight)
        scores = index.similarities(query)
        evaluation = None
        labels = analysis.labels_of(index.paths)
        if with_evaluation and np.any(labels != ""):
            evaluation = index.evaluation(labels, EVAL_K, progress, cancelled)
            if evaluation is None:  # cancelled
                return None
        return RepresentationResult(model, index.folder, list(index.paths), scores,
                                    analysis.ranking(scores, k), evaluation)
    finally:
        index.close()


def page_maps(model: str, folder: Path, paths: list[str],
              backend: str = AUTO) -> list[tuple[str, np.ndarray | None]]:
    """Worker: the feature map of each image (None when it cannot be read: no overlay on its
    tile), in one forward pass."""
    return list(zip(paths, page_feature_maps(model, [folder / path for path in paths], backend)))


def explanations(model: str, result: Path, query: np.ndarray, result_vector: np.ndarray,
                 examples: list[tuple[str, Path]], backend: str = AUTO, side: int = 360
                 ) -> list[tuple[str, Image.Image]]:
    """Worker: (caption, picture at most `side` pixels) of the result, then of each example
    (file) of the query."""
    shown = explain(model, result, query, backend)
    pictures = [(f"{result.name}: its share of the similarity to the query, {shown.similarity:.4f}",
                 overlay(result, shown, max_side=side))]
    for name, path in examples:
        share = explain(model, path, result_vector, backend)
        pictures.append((f"example {name}: its share of the similarity to {result.name}, {share.similarity:.4f}",
                         overlay(path, share, max_side=side)))
    return pictures


@dataclass(frozen=True, eq=False)
class LoadedPreview:
    path: Path
    image: QImage | None
    size: tuple[int, int] | None  # true upright size of the file, in pixels
    error: str = ""


def load_preview(path: Path, max_side: int = MAX_SIDE) -> LoadedPreview:
    """Worker side: decode through core (the only place that opens images) into a QImage."""
    try:
        picture = images.load_rgb(path)  # no min_side: the caption wants the true pixel size
    except images.ImageError as err:
        return LoadedPreview(path, None, None, str(err))
    size = picture.size
    picture.thumbnail((max_side, max_side))
    width, height = picture.size
    image = QImage(picture.tobytes(), width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    return LoadedPreview(path, image, size)
