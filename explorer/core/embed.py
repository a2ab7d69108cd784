"""Batched embedding: decode threads feed the model so neither waits.

Pillow releases the GIL while it decodes and resizes, and torch releases it in its kernels, so
plain threads overlap decoding with the forward pass without the start-up and pickling costs of
processes (and they work unchanged inside a frozen app).
"""

from __future__ import annotations

import itertools
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import numpy as np

from .images import DecodedImage, ImageError, decode_for_index, load_rgb, model_input
from .backbones import LoadedModel

T = TypeVar("T")
Cancelled = Callable[[], bool]


@dataclass
class Batch(Generic[T]):
    """One forward pass worth of results, in input order within each list."""

    items: list[T]
    decoded: list[DecodedImage]
    vectors: np.ndarray  # (len(items), dim) float32, unit length
    failures: list[tuple[T, str]]  # item and the reason it could not be embedded


def default_decode_workers() -> int:
    return max(2, os.cpu_count() or 1)


def embed_batches(
    model: LoadedModel,
    items: Iterable[T],
    path_of: Callable[[T], Path],
    batch_size: int = 32,
    thumb_side: int | None = 256,
    decode_workers: int | None = None,
    cancelled: Cancelled = lambda: False,
) -> Iterator[Batch[T]]:
    """Decode `items` in a thread pool and yield embedded batches as they complete.

    Decoding runs up to a few batches ahead of the model. Stops (without raising) as soon as
    `cancelled()` is true; items not yet yielded are simply not returned.
    """
    size = model.input_size
    window = 3 * batch_size
    source = iter(items)
    pending: deque[tuple[T, Future[DecodedImage]]] = deque()

    with ThreadPoolExecutor(decode_workers or default_decode_workers(), "decode") as pool:

        def refill() -> None:
            for item in itertools.islice(source, window - len(pending)):
                pending.append((item, pool.submit(decode_for_index, path_of(item), size, thumb_side)))

        refill()
        try:
            while pending and not cancelled():
                items_ok: list[T] = []
                decoded: list[DecodedImage] = []
                failures: list[tuple[T, str]] = []
                while pending and len(items_ok) < batch_size and not cancelled():
                    item, future = pending.popleft()
                    refill()
                    try:
                        decoded.append(future.result())
                        items_ok.append(item)
                    except ImageError as err:
                        failures.append((item, str(err)))
                    except Exception as err:  # a decoder bug must not end the whole run
                        failures.append((item, f"could not decode: {type(err).__name__}: {err}"))
                if cancelled():
                    return
                vectors = (
                    model.embed(np.stack([d.pixels for d in decoded]))
                    if decoded
                    else np.empty((0, model.spec.dim), np.float32)
                )
                yield Batch(items_ok, decoded, vectors, failures)
        finally:
            for _, future in pending:
                future.cancel()


def embed_query_images(model: LoadedModel, sources: list) -> np.ndarray:
    """Embed query images (paths, bytes or file objects, anywhere). Raises ImageError."""
    pixels = [model_input(load_rgb(s, min_side=model.input_size), model.input_size) for s in sources]
    return model.embed(np.stack(pixels))


def mean_query(vectors: np.ndarray) -> np.ndarray:
    """Several examples form one query: the mean of their unit vectors, renormalised."""
    mean = np.asarray(vectors, np.float32).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean
