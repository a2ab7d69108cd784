"""Worker-side helpers: models kept loaded, outside images embedded.

The one cache of loaded models in the app, keyed by representation and backend: the session's
queries, its comparison of representations and the negative examples strip share it. Only ever
called on worker threads (through Tasks.start), except `cached_model`, which never loads.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...core import images
from ...core.embed import embed_query_images
from ...core.backends import AUTO
from ...core.backbones import LoadedModel, is_registered, load_model
from ...core.search import SearchIndex
from ..state.query import QueryExample

_MAX_MODELS = 2  # a model is 20-100 MB: keep the two sides of a comparison, no more
_lock = threading.Lock()
_models: OrderedDict[tuple[str, str], LoadedModel] = OrderedDict()


def remember_model(model: LoadedModel, backend: str = AUTO) -> None:
    """Offer an already-built model (tests) so no second copy is built. `backend`: the
    preference it answers (the one asked for, "auto" included)."""
    with _lock:
        _models[(model.spec.name, backend)] = model
        while len(_models) > _MAX_MODELS:
            _models.popitem(last=False)


def cached_model(name: str, backend: str = AUTO) -> LoadedModel | None:
    with _lock:
        model = _models.get((name, backend))
        if model is not None:
            _models.move_to_end((name, backend))
        return model


def loaded_model(name: str, backend: str = AUTO) -> LoadedModel:
    model = cached_model(name, backend)
    if model is None:
        model = load_model(name, backend=backend)  # outside the lock: seconds of work
        remember_model(model, backend)
    return model


def thumbnail_of(source: Path | bytes) -> bytes | None:
    """A query example's preview: JPEG bytes, or None for an image that cannot be read."""
    try:
        return images.thumbnail_jpeg(images.load_rgb(source, min_side=256))
    except images.ImageError:
        return None


def imported_problem(model_name: str) -> str:
    """Why an outside image cannot be an example under an imported representation."""
    return (f"{model_name!r} was imported and Explorer cannot run its model, so a query example must "
            "be an image it holds (right-click one > Query)")


def embed_examples(model_name: str, paths: list[Path], backend: str = AUTO
                   ) -> tuple[list[QueryExample], list[str]]:
    """Embed image files with a model; returns the examples and readable problems."""
    if not is_registered(model_name):
        return [], [f"{path.name}: {imported_problem(model_name)}" for path in paths]
    model = loaded_model(model_name, backend)
    examples, problems = [], []
    for path in paths:
        try:
            vector = embed_query_images(model, [path])[0]
        except images.ImageError as err:
            problems.append(f"{path.name}: {err}")
            continue
        examples.append(QueryExample(path.name, vector, path, thumbnail_of(path)))
    return examples, problems


def example_vectors_in(index: SearchIndex, examples: list[tuple[Path | None, np.ndarray]],
                       model_name: str, backend: str = AUTO) -> np.ndarray:
    """The vectors of query examples under another representation.

    An example that is an indexed image of `index`'s folder is looked up by its relative path
    (no model needed); any other file is embedded with `model_name`. A pasted image (no path)
    cannot be re-made under another model, so ValueError says so.
    """
    vectors: list[np.ndarray | None] = []
    to_embed: list[tuple[int, Path]] = []
    for position, (path, _) in enumerate(examples):
        if path is None:
            raise ValueError("a pasted image cannot be re-embedded with another model: "
                             "save it as a file and use the file")
        row = index.row_of(path)
        vectors.append(None if row is None else index.vector(row))
        if row is None:
            to_embed.append((position, path))
    if to_embed:
        if not is_registered(model_name):
            raise ValueError(f"{to_embed[0][1].name}: {imported_problem(model_name)}")
        model = loaded_model(model_name, backend)
        embedded = embed_query_images(model, [p for _, p in to_embed])
        for (position, _), vector in zip(to_embed, embedded):
            vectors[position] = vector
    return np.stack([v for v in vectors if v is not None]).astype(np.float32)  # every one is set by now
