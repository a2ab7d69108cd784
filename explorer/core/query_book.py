"""Named queries, kept with the collection: `<folder's data dir>/saved/<model>/queries.json`.

A query's examples store their vectors, not only their paths: an example dropped in from outside
the folder (or since deleted) still works after a restart, and nothing is embedded again. The
file is kept per model, so vectors of two models are never mixed, and apart from the derived data
(store.saved_dir), so a repair or rebuild of the collection never loses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .analysis import rocchio
from .store import write_json_atomic

FILE_NAME = "queries.json"
FORMAT_VERSION = 1


class QueryBookError(ValueError):
    """A name is taken or missing, or the queries file cannot be read."""


@dataclass
class Example:
    """One example image of a query: where it came from (if a file) and its unit vector."""

    name: str
    path: str | None  # absolute; None for a pasted image
    vector: list[float]

    @classmethod
    def of(cls, name: str, path: str | Path | None, vector: np.ndarray) -> "Example":
        return cls(name, None if path is None else str(Path(path).resolve()),
                   [float(x) for x in np.asarray(vector, np.float32)])

    def to_json(self) -> dict:
        return {"name": self.name, "path": self.path, "vector": self.vector}

    @classmethod
    def from_json(cls, value: dict) -> "Example":
        return cls(str(value["name"]), value.get("path"), [float(x) for x in value["vector"]])


@dataclass
class NamedQuery:
    """Positive and (optional) negative examples; the query vector is their Rocchio combination."""

    name: str
    positives: list[Example]
    negatives: list[Example] = field(default_factory=list)
    negative_weight: float = 0.5

    def vector(self) -> np.ndarray:
        negatives = np.array([e.vector for e in self.negatives], np.float32) if self.negatives else None
        return rocchio(np.array([e.vector for e in self.positives], np.float32), negatives,
                       self.negative_weight)

    def to_json(self) -> dict:
        return {"name": self.name, "negative_weight": self.negative_weight,
                "positives": [e.to_json() for e in self.positives],
                "negatives": [e.to_json() for e in self.negatives]}

    @classmethod
    def from_json(cls, value: dict) -> "NamedQuery":
        return cls(str(value["name"]), [Example.from_json(e) for e in value["positives"]],
                   [Example.from_json(e) for e in value.get("negatives", [])],
                   float(value.get("negative_weight", 0.5)))


def _clean(name: str) -> str:
    cleaned = name.strip()
    if not cleaned:
        raise QueryBookError("a query needs a name")
    return cleaned


class QueryBook:
    """The named queries of one collection, in the order they were added; names are unique."""

    def __init__(self, queries: list[NamedQuery] | None = None):
        self._queries: dict[str, NamedQuery] = {}
        for query in queries or []:
            self.add(query)

    @classmethod
    def load(cls, directory: Path) -> "QueryBook":
        """The saved queries of a collection directory (empty when none were saved)."""
        path = Path(directory) / FILE_NAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls()
        except (OSError, ValueError) as err:
            raise QueryBookError(f"cannot read {path}: {err}") from None
        if int(data.get("format", 0)) > FORMAT_VERSION:
            raise QueryBookError(f"{path} was written by a newer version of Explorer")
        try:
            queries = [NamedQuery.from_json(q) for q in data["queries"]]
        except (KeyError, TypeError, ValueError) as err:
            raise QueryBookError(f"{path} is damaged: {err!r}") from None
        if len({len(e.vector) for q in queries for e in q.positives + q.negatives}) > 1:
            raise QueryBookError(f"{path} is damaged: its vectors differ in length")
        return cls(queries)

    def save(self, directory: Path) -> None:
        """Write atomically: a crash leaves the previous file or the new one, never half of one."""
        Path(directory).mkdir(parents=True, exist_ok=True)
        write_json_atomic(Path(directory) / FILE_NAME,
                          {"format": FORMAT_VERSION, "queries": [q.to_json() for q in self]})

    def add(self, query: NamedQuery) -> None:
        """Add a query under a new name; a taken name is refused (QueryBookError)."""
        query.name = _clean(query.name)
        if not query.positives:
            raise QueryBookError(f"query {query.name!r} has no positive example")
        if query.name in self._queries:
            raise QueryBookError(f"there is already a query named {query.name!r}")
        self._queries[query.name] = query

    def replace(self, query: NamedQuery) -> None:
        """Put an edited query in place of the one with its name (keeping its position)."""
        self.get(query.name)
        if not query.positives:
            raise QueryBookError(f"query {query.name!r} has no positive example")
        self._queries[query.name] = query

    def rename(self, old: str, new: str) -> None:
        new = _clean(new)
        query = self.get(old)
        if new == old:
            return
        if new in self._queries:
            raise QueryBookError(f"there is already a query named {new!r}")
        query.name = new
        # Rebuild so the renamed query keeps its place in the order.
        self._queries = {(new if name == old else name): q for name, q in self._queries.items()}

    def remove(self, name: str) -> NamedQuery:
        query = self.get(name)
        del self._queries[query.name]
        return query

    def get(self, name: str) -> NamedQuery:
        try:
            return self._queries[name]
        except KeyError:
            raise QueryBookError(f"no query named {name!r}") from None

    def names(self) -> list[str]:
        return list(self._queries)

    def __contains__(self, name: object) -> bool:
        return name in self._queries

    def __iter__(self) -> Iterator[NamedQuery]:
        return iter(list(self._queries.values()))

    def __len__(self) -> int:
        return len(self._queries)
