"""Compact search codes: every vector projected on the collection's top principal axes, kept in
float16 beside the full vectors (issue 12: a million images on one laptop).

The similarity of all N images to a query (the histogram) then reads 256 x 2 bytes per image
instead of 1280 x 4, from a file that is memory-mapped: x.q ~= mean.q + (P(x - mean)).(P q), the
true cosine less the part of x - mean off the axes. No whitening: measured on real features,
whitening learned on the collection itself hurts retrieval (Neural Codes found the same), and
without it the scores stay cosines, which the histogram shows. Exact re-ranking of the top
results with the full vectors is the caller's (search.py).

On disk, in the collection's directory: `codes.npy` (N x dims float16, rows in the order of
`ids`) and `codebook.npz` (format version, mean, axes, the ids the rows belong to, how many
vectors the axes were fitted on, the collection generation). Both are derived: damaged or stale,
they are made again.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import warnings
import zipfile
from dataclasses import dataclass, field
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .ann import AnnIndex
from .layout import principal_axes
from .store import temp_beside

log = logging.getLogger(__name__)

VERSION = 1
CODES_FILE, CODEBOOK_FILE = "codes.npy", "codebook.npz"
DEFAULT_DIMS = 256
TORCH_FROM = 300_000  # rows from which torch's float16 matmul scores them (below: numpy, no torch)
FIT_SAMPLE_ROWS = 50_000  # axes from evenly spaced rows: all rows' variance within noise, far faster
REFIT_GROWTH = 2.0  # the axes are fitted again once the collection has doubled since their fit
_ENCODE_ROWS = 65_536  # rows projected at a time: bounds the float32 temporary


Reader = Callable[[np.ndarray], np.ndarray]  # row numbers -> their vectors (from disk, say)


def _reader(vectors: np.ndarray | Reader, rows: int | None) -> tuple[Reader, int]:
    if callable(vectors):
        assert rows is not None
        return vectors, rows
    return vectors.__getitem__, len(vectors) if rows is None else rows


@dataclass(eq=False)  # arrays inside: compared by identity
class Codebook:
    """The projection: `axes` (dims x D, orthonormal rows) through `mean`."""

    mean: np.ndarray  # (D,) float32
    axes: np.ndarray  # (dims, D) float32
    fitted_rows: int  # the collection's size when the axes were fitted

    @property
    def dims(self) -> int:
        return int(self.axes.shape[0])

    @functools.cached_property
    def key(self) -> str:
        """Names these axes: a search graph records the axes it was built on."""
        return hashlib.blake2b(self.mean.tobytes() + self.axes.tobytes(), digest_size=8).hexdigest()

    @classmethod
    def fit(cls, vectors: np.ndarray | Reader, dims: int = DEFAULT_DIMS, rows: int | None = None,
            seed: int = 0) -> "Codebook":
        """Principal axes of at most FIT_SAMPLE_ROWS evenly spaced of the vectors (an array,
        or `rows` of them that `read(row numbers)` returns)."""
        read, rows = _reader(vectors, rows)
        sample = read(np.arange(0, rows, -(-rows // FIT_SAMPLE_ROWS)))
        dims = min(dims, sample.shape[1], max(1, rows - 1))
        mean, axes = principal_axes(sample, dims, seed=seed)
        return cls(mean, axes, rows)

    def project(self, vectors: np.ndarray) -> np.ndarray:
        """Search-graph coordinates: unit vectors projected on the axes, not centred (P x, float32).
        Their cosines are those of the vectors less the parts off the axes."""
        return np.atleast_2d(np.asarray(vectors, np.float32)) @ self.axes.T

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """(N, dims) float16 codes of unit vectors."""
        out = np.empty((len(vectors), self.dims), np.float16)
        offset = self.mean @ self.axes.T
        for start in range(0, len(vectors), _ENCODE_ROWS):
            block = np.asarray(vectors[start:start + _ENCODE_ROWS], np.float32)
            out[start:start + len(block)] = block @ self.axes.T - offset
        return out

    def similarities(self, codes: np.ndarray, query: np.ndarray) -> np.ndarray:
        """Approximate cosine similarity of every coded vector to a unit `query`: float16
        values (what the codes resolve) held as float32, which rank by a radix sort. Codes in
        float32 (a copy widened in memory) are scored by numpy, float16 ones by torch."""
        query = np.asarray(query, np.float32)
        offset = np.float32(self.mean @ query)
        if codes.dtype == np.float32:
            return (codes @ (self.axes @ query) + offset).astype(np.float16).astype(np.float32)
        import torch  # its float16 CPU matmul is ~25x numpy's (which converts element by element)

        with warnings.catch_warnings():  # torch warns of wrapping a read-only (memory-mapped)
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            half = torch.from_numpy(codes) @ torch.from_numpy(self.axes @ query).half()
        return (half.float() + float(offset)).half().float().numpy()

    def needs_refit(self, rows: int, dims: int = DEFAULT_DIMS) -> bool:
        """Whether a collection grown to `rows` should have its axes fitted again: once it has
        doubled, or at all while the axes are fewer than `dims` because the images then were
        fewer (a handful of photos span a handful of directions, which new kinds miss)."""
        grown = rows > self.fitted_rows
        return grown and (self.dims < dims or rows >= REFIT_GROWTH * max(self.fitted_rows, 1))


@dataclass(eq=False)
class Codes:
    """A collection's codes: row i codes the vector of `ids[i]`."""

    codebook: Codebook
    ids: np.ndarray  # int64, sorted
    codes: np.ndarray  # (N, dims) float16, memory-mapped when loaded
    generation: int = -1  # of the collection they were saved for
    _widened: np.ndarray | None = field(default=None, init=False, repr=False)

    @classmethod
    def build(cls, vectors: np.ndarray | Reader, ids: np.ndarray, dims: int = DEFAULT_DIMS,
              codebook: Codebook | None = None) -> "Codes":
        """Codes of the vectors of `ids` (an array, or `read(row numbers)`), on `codebook` or
        on axes fitted on them; read a block of rows at a time."""
        ids = np.asarray(ids, np.int64)
        read, _ = _reader(vectors, len(ids))
        codebook = codebook or Codebook.fit(read, dims, len(ids))
        out = np.empty((len(ids), codebook.dims), np.float16)
        for start in range(0, len(ids), _ENCODE_ROWS):
            rows = np.arange(start, min(start + _ENCODE_ROWS, len(ids)))
            out[rows] = codebook.encode(read(rows))
        return cls(codebook, ids, out)

    def graph_vectors(self, rows: np.ndarray | slice) -> np.ndarray:
        """Codebook.project of the coded vectors in `rows`: c = P x - P mean, so P x = c + P mean."""
        book = self.codebook
        return self.codes[rows].astype(np.float32) + book.mean @ book.axes.T

    def build_graph(self) -> AnnIndex:
        """The HNSW graph of these codes (a 256-d graph builds ~5x faster than a 1280-d one and
        takes a fifth of the memory), labelled by id; its searches are re-ranked on the full vectors."""
        ann = AnnIndex.empty(self.codebook.dims, len(self.ids), space=self.codebook.key)
        for start in range(0, len(self.ids), _ENCODE_ROWS):  # bounds the float32 copy
            block = slice(start, start + _ENCODE_ROWS)
            ann.upsert(self.graph_vectors(block), self.ids[block])
        return ann

    def matches(self, ids: np.ndarray) -> bool:
        return len(self.ids) == len(ids) and bool(np.array_equal(self.ids, ids))

    def similarities(self, query: np.ndarray) -> np.ndarray:
        """Below TORCH_FROM rows, on a float32 copy of the codes (100 MB at 100k), which numpy
        scores in a few ms: importing torch for the float16 product would hold the GIL, and so
        the GUI, for ~0.5 s. A million rows take torch's product (38 ms, no 1 GB copy)."""
        if len(self.ids) >= TORCH_FROM:
            return self.codebook.similarities(self.codes, query)
        if self._widened is None:
            self._widened = self.codes.astype(np.float32)
        return self.codebook.similarities(self._widened, query)

    def save(self, directory: Path, generation: int) -> None:
        codes_tmp = temp_beside(directory / CODES_FILE).with_suffix(".npy")  # np.save adds .npy otherwise
        book_tmp = temp_beside(directory / CODEBOOK_FILE).with_suffix(".npz")
        try:
            np.save(codes_tmp, self.codes, allow_pickle=False)
            book = self.codebook
            np.savez(book_tmp, version=np.int64(VERSION), mean=book.mean, axes=book.axes, ids=self.ids,
                     fitted_rows=np.int64(book.fitted_rows), generation=np.int64(generation))
            # The codebook last: it names the codes it belongs to, so a kill between the two
            # leaves codes that fail its row count, never a codebook that trusts old codes.
            os.replace(codes_tmp, directory / CODES_FILE)
            os.replace(book_tmp, directory / CODEBOOK_FILE)
        finally:
            codes_tmp.unlink(missing_ok=True)
            book_tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, directory: Path) -> "Codes | None":
        """The saved codes (memory-mapped), or None when absent, of another version, or damaged."""
        try:
            with np.load(directory / CODEBOOK_FILE, allow_pickle=False) as book:
                if int(book["version"]) != VERSION:
                    return None
                codebook = Codebook(book["mean"], book["axes"], int(book["fitted_rows"]))
                ids, generation = book["ids"], int(book["generation"])
            codes = np.load(directory / CODES_FILE, mmap_mode="r", allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
            log.warning("the search codes in %s are damaged (%s): they are made again", directory, err)
            return None
        if codes.shape != (len(ids), codebook.dims) or codes.dtype != np.float16:
            log.warning("the search codes in %s do not match their codebook: they are made again", directory)
            return None
        return cls(codebook, ids, codes, generation)


def update_codes(directory: Path, ids: np.ndarray, read: Reader,
                 changed: np.ndarray, generation: int, since: int, dims: int = DEFAULT_DIMS) -> Codes | None:
    """The codes of exactly `ids` (sorted), whose vectors `read(row numbers)` returns, saved in
    `directory` for collection `generation`.

    Saved codes that were current at generation `since` are reused for every id not in `changed`
    (the ids embedded since then); the rest are encoded on the saved axes, so adding 1% of a
    collection encodes 1% of it. Codes saved at another generation (a run killed before it saved
    them) are not reused: a file embedded again then keeps its id but not its vector.
    The axes are fitted anew when there are none yet, they are of another model's width, or
    Codebook.needs_refit says the collection has outgrown them. Fewer than two images have no axes: None.
    """
    ids = np.asarray(ids, np.int64)
    if len(ids) < 2:
        for name in (CODEBOOK_FILE, CODES_FILE):
            (directory / name).unlink(missing_ok=True)
        return None
    saved = Codes.load(directory)
    if saved is not None and saved.matches(ids) and saved.generation == generation:
        return saved
    width = read(np.empty(0, np.int64)).shape[1] if saved is not None else 0
    if saved is None or saved.codebook.mean.shape != (width,) or saved.codebook.needs_refit(len(ids), dims):
        codes = Codes.build(read, ids, dims)
    else:
        rows = np.searchsorted(saved.ids, ids).clip(0, max(len(saved.ids) - 1, 0))
        kept = (saved.ids[rows] == ids) & ~np.isin(ids, changed) if saved.generation == since \
            else np.zeros(len(ids), bool)
        out = np.empty((len(ids), saved.codebook.dims), np.float16)
        out[kept] = saved.codes[rows[kept]]
        fresh = np.flatnonzero(~kept)
        for start in range(0, len(fresh), _ENCODE_ROWS):  # bounds what is read at a time
            block = fresh[start:start + _ENCODE_ROWS]
            out[block] = saved.codebook.encode(read(block))
        codes = Codes(saved.codebook, ids, out)
    del saved  # unmaps the old file: Windows refuses to replace a file that is mapped
    codes.save(directory, generation)
    codes.generation = generation
    return codes
