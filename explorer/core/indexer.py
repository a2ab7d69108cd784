"""Index a folder: scan, work out what changed, embed only that, keep the ANN index in step."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import catalog
from .ann import AnnIndex
from .cluster import RayCluster
from .codes import Codes, update_codes
from .embed import embed_batches
from .backbones import DEFAULT_MODEL, LoadedModel, fetch_weights, get_spec, load_model
from .store import REPAIR, Collection, Embedded, FileBatch, folder_dir, storage_error
from .tasks import Progress, no_progress

# Scan problems (symlink loops, unreadable folders) have no fingerprint; this one marks them.
_NO_FINGERPRINT = -1


@dataclass
class IndexReport:
    folder: Path
    model: str
    new: int = 0  # new files embedded in this run
    modified: int = 0  # changed files re-embedded
    unchanged: int = 0
    removed: int = 0
    skipped: int = 0  # files skipped in this run
    backend: str = ""  # what ran the forward pass ("" when nothing was embedded)
    embedded: int = 0
    seconds: float = 0.0
    cancelled: bool = False
    skipped_reasons: list[tuple[str, str]] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # damage found and repaired, one line each

    @property
    def images_per_second(self) -> float:
        return self.embedded / self.seconds if self.seconds > 0 else 0.0

    def summary(self) -> str:
        state = "cancelled" if self.cancelled else "indexed"
        return (
            f"{state} {self.folder}: {self.new} new, {self.modified} modified, "
            f"{self.unchanged} unchanged, {self.removed} removed, {self.skipped} skipped "
            f"in {self.seconds:.1f} s ({self.images_per_second:.1f} images/s)"
        )


def index_folder(
    folder: str | Path,
    model: str | LoadedModel = DEFAULT_MODEL,
    progress: Progress = no_progress,
    cancelled: Callable[[], bool] = lambda: False,
    batch_size: int = 32,
    decode_workers: int | None = None,
    on_batch: Callable[[list[int], list[str], np.ndarray], None] | None = None,
    backend: str = "auto",
    cluster: RayCluster | None = None,
) -> IndexReport:
    """Build or update the collection of `folder`, repairing any damage. Safe to interrupt at
    any point.

    Raises catalog.FolderError when the folder is unusable, backbones.WeightsUnavailable when the
    model cannot be loaded, store.StorageError when the data directory fails (full, read-only):
    what was committed stays usable. `on_batch(ids, relative_paths, vectors)` receives each
    committed batch (the GUI uses it to fill the grid as vectors arrive). `backend` runs the
    forward pass when `model` is a name (backends.py); every backend makes the same vectors.
    Every stored vector is read and checked first (store.Collection.verify_vectors: 0.1 s at
    100k images). With a `cluster`, the forward passes run there (cluster.py), not here.
    """
    started = time.perf_counter()
    folder = Path(folder).resolve()
    progress(0, 0, f"scanning {folder}")
    scan = catalog.scan_folder(folder, cancelled=cancelled)
    # The model itself is only built when something needs embedding: a no-change re-index
    # then costs a scan and a few queries, not seconds of torch start-up.
    loaded = model if isinstance(model, LoadedModel) else None
    spec = model.spec if isinstance(model, LoadedModel) else get_spec(model)
    sha256 = loaded.weights_sha256 if loaded else fetch_weights(spec, progress)[1]
    collection = Collection(
        folder, spec.name, spec.dim,
        {"weights_sha256": sha256, "preprocessing": spec.preprocessing.describe()}, REPAIR,
    )
    try:
        progress(0, 0, "checking the stored vectors")
        collection.verify_vectors()
        report = IndexReport(folder, spec.name, repaired=[d.repaired() for d in collection.damage])
        problems = {p.path: p.reason for p in scan.problems}
        scanned = scan.files + [catalog.FileEntry(p, _NO_FINGERPRINT, _NO_FINGERPRINT) for p in problems]
        changes = catalog.diff(scanned, collection.known())
        changed = bool(changes.new or changes.modified or changes.removed)
        started_at = collection.generation  # what the saved codes and graph may be current for
        report.unchanged, report.removed = len(changes.unchanged), len(changes.removed)
        new_paths = {e.path for e in changes.new}

        gone = collection.remove(changes.removed)  # ids whose vectors left: out of the graph
        todo = [e for e in changes.new + changes.modified if e.path not in problems]
        unreadable = [(e, problems[e.path]) for e in changes.new + changes.modified if e.path in problems]
        if unreadable:
            gone += _record_skipped(collection, unreadable, report)

        done = 0
        touched: list[int] = []  # ids embedded in this run: their codes are made again
        batches: Iterator[FileBatch] = iter(())
        if todo and cluster:  # Ray starts at the first batch asked for, below
            batches = cluster.embed(spec.name, sha256, spec.preprocessing.describe(), backend, folder,
                                    todo, batch_size, cancelled)
        elif todo:
            if loaded is None:
                progress(0, 0, f"loading model {spec.name}")
                loaded = load_model(spec.name, progress, backend)
            report.backend = loaded.describe_backend()
            batches = _embedded_here(loaded, todo, folder, batch_size, decode_workers, cancelled)
        progress(0, len(todo), "embedding")
        for embedded, failures in batches:
            ids = collection.add_batch(embedded, [])
            touched.extend(ids)
            if failures:
                gone += _record_skipped(collection, failures, report)
            report.embedded += len(ids)
            fresh = sum(e.entry.path in new_paths for e in embedded)
            report.new += fresh
            report.modified += len(embedded) - fresh
            done += len(embedded) + len(failures)
            progress(done, len(todo), f"embedded {done} of {len(todo)}")
            if on_batch and ids:
                on_batch(ids, [e.entry.path for e in embedded], np.stack([e.vector for e in embedded]))
        report.cancelled = cancelled()
        if cluster and todo:
            report.backend = cluster.describe()

        progress(done, len(todo), "saving the index")
        collection.compact()
        update_search_files(collection, started_at, np.asarray(touched, np.int64), gone)
    except (OSError, sqlite3.Error) as err:  # the data directory failing: full, read-only, ...
        if storage := storage_error(err, "saving", folder, folder_dir(folder), collection.count):
            raise storage from err
        raise
    finally:
        collection.close()
    report.seconds = time.perf_counter() - started
    return report


def _embedded_here(
    model: LoadedModel, todo: list[catalog.FileEntry], folder: Path, batch_size: int,
    decode_workers: int | None, cancelled: Callable[[], bool],
) -> Iterator[FileBatch]:
    """The files of `todo` embedded in this process, a batch at a time."""
    for batch in embed_batches(model, todo, lambda e: folder / e.path, batch_size,
                               decode_workers=decode_workers, cancelled=cancelled):
        yield FileBatch(
            [Embedded(entry, vector, d.width, d.height, d.thumbnail)
             for entry, d, vector in zip(batch.items, batch.decoded, batch.vectors)],
            batch.failures,
        )


def update_search_files(collection: Collection, started_at: int, touched: np.ndarray,
                         gone: list[int]) -> None:
    """Bring the compact codes and the HNSW graph on them in step with the collection: the
    codes of `touched` ids encoded, those of `gone` ones dropped, and the graph updated the same
    way when it was current for the collection as this run found it (`started_at`) and its
    codes keep their axes; built anew from the codes otherwise."""
    directory, generation = collection.dir, collection.generation
    saved = Codes.load(directory)
    graph_current = saved is not None and AnnIndex.is_current(
        directory, saved.codebook.dims, started_at, saved.codebook.key)
    if saved is not None and saved.generation == generation and graph_current:
        return  # nothing changed since both were saved
    # Loaded before the codes change: 0.5 s at 100k images, holding the GIL (hnswlib).
    ann = AnnIndex.load(directory, saved.codebook.dims, started_at, saved.codebook.key) \
        if saved is not None and graph_current else None
    del saved
    ids, _, slots = collection.live_files()
    codes = update_codes(directory, ids, lambda rows: collection.vectors_at(slots[rows]), touched,
                         generation, since=started_at)
    if codes is None:  # fewer than two images: exact search needs no graph
        return
    if ann is not None and ann.space == codes.codebook.key:
        ann.remove(gone)
        rows = np.searchsorted(codes.ids, touched[np.isin(touched, codes.ids)])
        ann.upsert(codes.graph_vectors(rows), codes.ids[rows])
    else:
        ann = codes.build_graph()
    ann.save(directory, generation)


def _record_skipped(collection: Collection, failures: list[tuple[catalog.FileEntry, str]],
                    report: IndexReport) -> list[int]:
    """Record skipped files; returns the ids that lost their vector: a modified file that no
    longer decodes loses its old vector too."""
    stale = collection.ids_of([e.path for e, _ in failures])
    collection.add_batch([], failures)
    report.skipped += len(failures)
    report.skipped_reasons.extend((e.path, reason) for e, reason in failures)
    return list(stale.values())
