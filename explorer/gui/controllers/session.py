"""What the app does, as opposed to what it shows: open folders, index, lay out, query, and the
analysis jobs (evaluation, near-duplicates, other representations).

The session turns user intents into core calls on background tasks (controllers/tasks.py) and
writes the results into the AppState; views read the state, call these methods, and show what
the tasks they are handed return.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
import dataclasses
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer, Signal

from ...core import analysis, images
from ...core.embed import embed_query_images
from ...core.explain import crop_region, region_vector
from ...core.indexer import IndexReport, index_folder
from ...core.layout import QUICK, Layout, compute_layout
from ...core.backbones import DEFAULT_MODEL, is_registered
from ...core.search import SearchIndex, default_model_for
from ...core.store import discard_derived
from .jobs import (
    EVAL_K, Examples, duplicate_groups_of, explanations, nearest_similarities, open_index, open_with_layout,
    load_preview, page_maps, represent,
)
from .models import cached_model, embed_examples, imported_problem, loaded_model, thumbnail_of
from ..state.app_state import OPENING, AppState, IndexingStatus
from ..state.query import QueryExample
from .tasks import Task, TaskKind, Tasks

log = logging.getLogger(__name__)
YIELD_MS = 15  # a pause between two heavy view updates, long enough for a paint and input


class Session(QObject):
    """Drives core work for one window."""

    indexing_finished = Signal(object)  # IndexReport
    query_failed = Signal(str)
    repairing = Signal(str)  # what was damaged and what is being done again, for the user

    def __init__(self, state: AppState, tasks: Tasks, parent: QObject | None = None):
        super().__init__(parent)
        self.state = state
        self.tasks = tasks
        self._index_started = 0.0
        self._layout_asked = 0.0
        self._batch_ready.connect(self._take_batch)
        self._quick_layout_ready.connect(self._show_quick_layout)
        self._shut_down = False

    # --- folders and indexing --------------------------------------------------------------

    def open_folder(self, folder: str | Path, model: str | None = None) -> None:
        """Show what is already indexed at once, then bring it up to date in the background."""
        folder = Path(folder).expanduser().resolve()
        self.tasks.cancel(TaskKind.INDEX)
        model = model or default_model_for(folder)
        self._close_collection()
        self.state.set_collection(None, folder, model)
        # Busy from now until the re-index that follows the opening has finished.
        self.state.set_indexing(IndexingStatus(True, 0, 0, OPENING))
        self.tasks.start(TaskKind.OPEN, open_with_layout, folder, model,
                         on_result=lambda opened: self._opened(folder, model, opened),
                         ).failed.connect(self._indexing_ended)

    def _opened(self, folder: Path, model: str, opened: tuple[SearchIndex, Layout | None] | None) -> None:
        if opened is None:  # never indexed: the collection appears with the first batch
            self.reindex()
            return
        self._report_damage([d.repaired() for d in opened[0].collection.damage])
        # Re-index once the views are up: its scan would compete with them for the GIL.
        self._show(*opened, then=self.reindex)
        if opened[0].scored_on_codes:  # torch's import, else paid by the first query on this thread
            self.tasks.start(TaskKind.WARM_UP, opened[0].warm_up)

    def _report_damage(self, repaired: list[str]) -> None:
        if repaired:
            self.repairing.emit("\n".join(repaired))

    def rebuild(self) -> None:
        """Make the whole collection again from the photos (named queries are kept): for damage
        no check finds. The open collection is closed first; indexing shows its progress."""
        state = self.state
        if state.folder is None or self._shut_down:
            return
        folder, model = state.folder, state.model
        indexing = self.tasks.latest(TaskKind.INDEX)  # it writes the files about to go: let it stop first
        self.tasks.cancel(TaskKind.OPEN, TaskKind.INDEX, TaskKind.LAYOUT)
        self._close_collection()
        state.set_collection(None, folder, model)

        def discard() -> None:
            state.set_indexing(IndexingStatus(True, 0, 0, "discarding the old collection"))
            log.info("rebuilding the collection of %s (%s)", folder, model)
            self.tasks.start(TaskKind.REBUILD, discard_derived, folder, model, on_result=lambda _: self.reindex(),
                             ).failed.connect(self._indexing_ended)

        if indexing is not None:
            indexing.finished.connect(discard)
        else:
            discard()

    def _show(self, index: SearchIndex, layout: Layout | None, then: Callable[[], None] | None = None) -> None:
        log.info("collection opened: %s, %d images (%s)", index.folder, len(index), index.collection.model)
        self._close_collection()
        self.state.set_collection(index, index.folder, index.collection.model)
        # The map follows a moment later, on a timer: a posted call would run in the same pass
        # of the event loop, so the grid's first paint and any input would wait for the map too.
        QTimer.singleShot(YIELD_MS, self, lambda: self._show_layout(index, layout, then))

    def _show_layout(self, index: SearchIndex, layout: Layout | None, then: Callable[[], None] | None) -> None:
        if self.state.collection is not index or self._shut_down:  # another folder opened meanwhile
            return
        if layout is None:
            self.recompute_layout()
        else:
            self._set_layout(layout, "cached")
        if then is not None:
            QTimer.singleShot(YIELD_MS, self, then)

    def reindex(self) -> None:
        state = self.state
        if state.folder is None or self._shut_down:
            return
        if not is_registered(state.model):  # imported (explorer import): no model to index with
            log.info("not indexing %s: %s was imported", state.folder, state.model)
            state.set_indexing(IndexingStatus(False, 0, 0, "ready"))
            return
        self._index_started = time.monotonic()
        log.info("indexing started: %s (%s, backend %s)", state.folder, state.model, state.backend)
        state.set_indexing(IndexingStatus(True, 0, 0, "scanning"))
        # A model already loaded for a query is reused; else the run loads one if it must.
        model = cached_model(state.model, state.backend) or state.model
        self.tasks.start(
            TaskKind.INDEX, index_folder, state.folder, model, backend=state.backend,
            on_batch=self._on_batch_from_worker,
            on_progress=self._indexing_progress, on_result=self._indexed,
        ).finished.connect(self._indexing_ended)

    def cancel_indexing(self) -> None:
        self.tasks.cancel(TaskKind.INDEX)

    def _on_batch_from_worker(self, ids: list[int], paths: list[str], vectors: np.ndarray) -> None:
        # Called on the worker thread: hand the batch to the GUI thread through a signal.
        self._batch_ready.emit((ids, paths, vectors))

    _batch_ready = Signal(object)

    def _take_batch(self, batch: tuple) -> None:
        ids, paths, vectors = batch
        state = self.state
        if state.collection is None:  # first batch of a never-indexed folder
            assert state.folder is not None, "indexing runs on the open folder"
            index = open_index(state.folder, state.model)
            if index is None:
                return
            state.set_collection(index, state.folder, state.model)
            return
        rows = state.collection.apply_batch(ids, paths, vectors)
        state.grow(rows)

    def _indexing_progress(self, done: int, total: int, message: str) -> None:
        elapsed = time.monotonic() - self._index_started
        rate = done / elapsed if elapsed > 0 and done else 0.0
        eta = (total - done) / rate if rate > 0 and total else None
        self.state.set_indexing(IndexingStatus(True, done, total, message, rate, eta))

    def _indexed(self, report: IndexReport) -> None:
        log.info("indexing finished: %s; forward pass: %s", report.summary(), report.backend or "none needed")
        for path, reason in report.skipped_reasons:
            log.info("skipped %s: %s", path, reason)
        self.state.set_backend_in_use(report.backend)
        self._report_damage(report.repaired)
        self.indexing_finished.emit(report)
        # Reload once: removals, and the saved HNSW graph, only show in a fresh snapshot.
        if report.embedded or report.removed or self.state.collection is None:
            self.tasks.start(TaskKind.OPEN, open_with_layout, self.state.folder, self.state.model, True,
                             on_result=lambda opened: self._show(*opened) if opened else None)

    def _indexing_ended(self, *_) -> None:
        status = self.state.indexing
        self.state.set_indexing(IndexingStatus(False, status.done, status.total, "ready"))

    def _close_collection(self) -> None:
        if self.state.collection is not None:
            self.state.collection.close()

    # --- layout ----------------------------------------------------------------------------

    def recompute_layout(self) -> None:
        """The quick layout at once (unless a map is already shown), then UMAP's in its place."""
        collection = self.state.collection
        if collection is None or not len(collection):
            return
        directory, generation = collection.collection.dir, collection.collection.generation
        self._layout_asked = time.monotonic()

        def compute(progress, cancelled):
            def quick_ready(layout: Layout) -> None:  # on this worker: over to the GUI thread
                if not cancelled():
                    self._quick_layout_ready.emit((collection, layout))

            layout = compute_layout(collection.layout_vectors(own=True), collection.ids.copy(), progress,
                                    cancelled, on_quick=quick_ready)
            if layout is not None:
                layout.save(directory, generation)
            return layout

        task = self.tasks.start(TaskKind.LAYOUT, compute, on_result=lambda layout: self._layout_ready(collection, layout))
        self.state.set_layout_refining(True)
        task.finished.connect(self._layout_task_ended)

    def _layout_task_ended(self) -> None:
        if self.tasks.latest(TaskKind.LAYOUT) is None:  # not superseded by a newer layout task
            self.state.set_layout_refining(False)

    _quick_layout_ready = Signal(object)  # (collection, Layout), emitted on the layout worker

    def _show_quick_layout(self, quick: tuple[SearchIndex, Layout]) -> None:
        collection, layout = quick
        shown = self.state.layout
        if self.state.collection is collection and (shown is None or shown.kind == QUICK):
            self._set_layout(layout, self._since_asked())

    def _layout_ready(self, collection: SearchIndex, layout: Layout | None) -> None:
        if layout is not None and self.state.collection is collection:
            self._set_layout(layout, self._since_asked())

    def _since_asked(self) -> str:
        return f"{time.monotonic() - self._layout_asked:.2f} s after it was asked for"

    def _set_layout(self, layout: Layout, when: str) -> None:
        self.state.set_layout(layout)  # the map view draws it before this returns
        log.info("map shown: %d points (%s), %s", len(layout.ids), layout.kind, when)

    # --- queries ---------------------------------------------------------------------------

    def query_by_rows(self, rows: list[int], replace: bool = True) -> None:
        """Use indexed images as query examples (no model needed: their vectors are known)."""
        collection = self.state.collection
        if collection is None:
            return
        examples = [QueryExample.of_row(collection, r) for r in rows]
        if replace:
            self.state.query.set_positives(examples)
        else:
            self.state.query.add(examples)

    def query_by_files(self, sources: list[Path | bytes], names: list[str] | None = None) -> Task:
        """Embed outside images (dropped files, pasted pixels) and add them as examples."""
        names = names or [s.name if isinstance(s, Path) else "pasted image" for s in sources]
        model_name, backend = self.state.model or DEFAULT_MODEL, self.state.backend

        def embed(sources):
            if not is_registered(model_name):
                return self._stored_examples(sources, names, model_name)
            model = loaded_model(model_name, backend)
            examples, problems = [], []
            for source, name in zip(sources, names):
                try:
                    vector = embed_query_images(model, [source])[0]
                except images.ImageError as err:
                    problems.append(f"{name}: {err}")
                    continue
                path = source if isinstance(source, Path) else None
                examples.append(QueryExample(name, vector, path, thumbnail_of(source)))
            return examples, problems, model.describe_backend()

        generation = self.state.query.generation
        return self.tasks.start(TaskKind.EMBED_QUERY, embed, list(sources),
                                on_result=lambda result: self._embedded_query(result, generation))

    def query_by_region(self, example: QueryExample, region: tuple[float, float, float, float]) -> Task:
        """Put the region of an example's image (cropped and embedded, explain.region_vector) in
        the example's place."""
        model_name, backend = self.state.model or DEFAULT_MODEL, self.state.backend
        path = example.path
        if path is None:
            raise ValueError("a region is picked on an image file")

        def embed() -> QueryExample:
            if not is_registered(model_name):
                raise ValueError(imported_problem(model_name))
            vector = region_vector(loaded_model(model_name, backend), path, region, "crop")
            crop = crop_region(path, region)
            return QueryExample(f"{path.name} (region)", vector, None, images.thumbnail_jpeg(crop))

        def put_in_place(region_example: QueryExample) -> None:
            self.state.query.substitute(example, region_example)

        return self.tasks.start(TaskKind.REGION, embed, on_result=put_in_place)

    def embed_negatives(self, files: list[Path]) -> Task | None:
        """Embed image files as negative examples: the task returns (examples, problems)."""
        if not self.state.model:
            return None
        return self.tasks.start(TaskKind.EMBED_NEGATIVES, embed_examples, self.state.model, files, self.state.backend)

    def _stored_examples(self, sources: list[Path | bytes], names: list[str], model_name: str
                         ) -> tuple[list[QueryExample], list[str], str]:
        """Worker: examples of an imported representation, which no model here can embed: a
        dropped file the collection holds gives its stored vector; anything else is a problem."""
        collection = self.state.collection
        examples, problems = [], []
        for source, name in zip(sources, names):
            row = collection.row_of(source) if isinstance(source, Path) and collection is not None else None
            if collection is None or row is None:
                problems.append(f"{name}: {imported_problem(model_name)}")
                continue
            examples.append(dataclasses.replace(QueryExample.of_row(collection, row), name=name))
        return examples, problems, ""

    def _embedded_query(self, result: tuple[list[QueryExample], list[str], str], generation: int) -> None:
        examples, problems, backend = result
        self.state.set_backend_in_use(backend)
        if examples and generation == self.state.query.generation:
            self.state.query.add(examples)
        if problems:
            self.query_failed.emit("Some images could not be used as a query:\n" + "\n".join(problems))

    # --- analysis jobs: each returns its task (None when there is nothing to do) -----------

    def evaluate(self, k: int = EVAL_K) -> Task | None:
        """Every labelled image as a query (analysis.evaluate); None without labels."""
        c = self.state.collection
        if c is None or not len(c):
            return None
        labels = analysis.labels_of(c.paths)
        if not np.any(labels != ""):
            return None
        # No copy: indexing only appends (a new array) or rewrites re-embedded rows, and a
        # collection-sized copy would double the memory of a large one.
        return self.tasks.start(TaskKind.EVALUATE, c.evaluation, labels, k=k)

    def find_nearest(self) -> Task | None:
        """Each image's similarity to its nearest other image."""
        if self.state.collection is None or self.state.folder is None:
            return None
        return self.tasks.start(TaskKind.NEAREST_NEIGHBOURS, nearest_similarities, self.state.folder,
                                self.state.model)

    def group_duplicates(self, threshold: float) -> Task | None:
        if self.state.collection is None or self.state.folder is None:
            return None
        return self.tasks.start(TaskKind.DUPLICATE_GROUPS, duplicate_groups_of, self.state.folder,
                                self.state.model, threshold)

    def index_representation(self, model: str) -> Task | None:
        """Index the open folder with another representation (the window keeps showing its own)."""
        if self.state.folder is None or not model:
            return None
        log.info("indexing %s with %s (backend %s)", self.state.folder, model, self.state.backend)
        return self.tasks.start(TaskKind.INDEX_REPRESENTATION, index_folder, self.state.folder, model,
                                backend=self.state.backend)

    def represent(self, side: str, model: str, positives: Examples, negatives: Examples,
                  with_evaluation: bool) -> Task | None:
        """The current query re-made under `model` (controllers/jobs.represent), for one side
        of a comparison: the other side's request does not supersede it."""
        state = self.state
        if state.folder is None:
            return None
        query = state.query
        return self.tasks.start(TaskKind.REPRESENT, represent, state.folder, model, model == state.model,
                                positives, negatives, query.negative_weight, query.top_k, with_evaluation,
                                state.backend, key=side)

    # --- what made an image similar (core/explain.py) --------------------------------------

    def feature_maps(self, paths: list[str]) -> Task | None:
        """The feature maps of these images of the open collection, in one forward pass on the
        state's backend: (path, map or None for an unreadable image)."""
        c = self.state.collection
        if c is None:
            return None
        return self.tasks.start(TaskKind.HEATMAPS, page_maps, self.state.model, c.folder, paths, self.state.backend)

    def explain_similarity(self, row: int, side: int) -> Task | None:
        """Why a result is similar: its share map for the current query, then each example
        file's for the result, as (caption, picture) pairs at most `side` pixels."""
        state, c = self.state, self.state.collection
        if c is None or state.query.vector is None:
            return None
        files = [(e.name, e.path) for e in state.query.positives if e.path is not None]
        return self.tasks.start(TaskKind.WHY_SIMILAR, explanations, c.collection.model, c.folder / c.paths[row],
                                state.query.vector, c.vector(row), files, state.backend, side)

    def load_preview(self, path: Path) -> Task:
        """A picture decoded for the full-size preview (a newer request supersedes it)."""
        return self.tasks.start(TaskKind.PREVIEW, load_preview, path)

    def shutdown(self) -> None:
        self._shut_down = True  # steps still waiting on a timer must not start
        self.tasks.shutdown()
        self._close_collection()
