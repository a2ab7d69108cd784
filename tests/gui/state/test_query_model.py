"""The query model (gui/state/query.py) on the vectors of real indexed photographs: one writer,
one emission per edit, and the Rocchio scores every time."""

import numpy as np
import pytest

from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex
from explorer.gui.state.app_state import AppState
from explorer.gui.state.query import QueryExample, QueryModel

from helpers import copy_sample


@pytest.fixture(scope="module")
def collection(tmp_path_factory, lite0):
    folder = copy_sample(tmp_path_factory.mktemp("query-model") / "photos", ["cat", "coffee", "rocket"])
    index_folder(folder, lite0)
    index = SearchIndex.open(folder, lite0.spec.name)
    yield index
    index.close()


def unit(v):
    return v / np.linalg.norm(v)


def row_named(collection, name: str) -> int:
    return next(i for i, p in enumerate(collection.paths) if p.endswith(name))


class Recorder:
    """Every emission of `changed`, with the vector and scores the model held at that moment."""

    def __init__(self, query: QueryModel):
        self.seen: list[tuple] = []
        query.changed.connect(lambda: self.seen.append((query.vector, query.scores)))


def test_every_edit_emits_once_with_the_whole_rocchio_query(collection):
    query = QueryModel()
    query.rescore(collection)
    seen = Recorder(query).seen
    vectors = collection.vectors
    cat, cat2, coffee = (row_named(collection, n) for n in ("cat-original.jpg", "cat-gray.jpg", "coffee-original.jpg"))

    query.add([QueryExample.of_row(collection, cat)])
    query.add_negatives([QueryExample.of_row(collection, coffee)])
    query.set_negative_weight(1.0)
    assert len(seen) == 3
    # A positive added to a query with negatives: one emission, and it already has the
    # negatives in it (the old two-owner design emitted positive-only scores first).
    query.add([QueryExample.of_row(collection, cat2)])
    assert len(seen) == 4
    expected = unit(vectors[[cat, cat2]].mean(0) - 1.0 * vectors[coffee])
    np.testing.assert_allclose(seen[-1][0], expected, atol=1e-6)
    np.testing.assert_allclose(seen[-1][1], vectors @ expected, atol=1e-5)
    assert query.top_rows()[0] in (cat, cat2)
    assert coffee in query.top_rows()[-3:] or coffee not in query.top_rows()

    query.add_negatives([QueryExample.of_row(collection, coffee)])  # already there: no edit
    query.set_negative_weight(1.0)  # unchanged: no edit
    assert len(seen) == 4

    query.remove_negative(0)
    np.testing.assert_allclose(query.vector, unit(vectors[[cat, cat2]].mean(0)), atol=1e-6)
    assert len(seen) == 5


def test_fields_are_read_only(collection):
    """Neither the query's fields nor the app state's can be written past their methods."""
    query = QueryModel()
    for field in ("positives", "negatives", "negative_weight", "vector", "scores", "top_k", "generation"):
        with pytest.raises(AttributeError):
            setattr(query, field, None)
    state = AppState()
    for field in ("collection", "selection", "layout", "folder", "grid_filter", "indexing", "backend"):
        with pytest.raises(AttributeError, match="tells every view"):
            setattr(state, field, None)
    state.select([3, 1], "test")
    assert state.selection.tolist() == [1, 3]


def test_clear_and_replace_drop_embeddings_in_flight_but_new_positives_keep_the_negatives(collection):
    query = QueryModel()
    query.rescore(collection)
    examples = [QueryExample.of_row(collection, r) for r in range(4)]
    query.add(examples[:1])
    query.add_negatives(examples[3:])
    generation = query.generation
    query.set_positives(examples[1:3])
    assert query.generation == generation and query.negatives == (examples[3],)
    query.replace(examples[:1], (), 0.25)
    assert query.generation == generation + 1 and query.negatives == () and query.negative_weight == 0.25
    query.clear()
    assert query.generation == generation + 2 and query.vector is None and query.scores is None


def test_region_takes_its_examples_place(collection):
    query = QueryModel()
    query.rescore(collection)
    a, b, c = (QueryExample.of_row(collection, r) for r in range(3))
    query.add([a, b])
    query.substitute(a, c)
    assert query.positives == (c, b)
    query.substitute(a, a)  # `a` has gone meanwhile: the region is added
    assert query.positives == (c, b, a)


def test_a_growing_collection_shows_its_rows_before_their_scores(collection):
    """AppState.grow: collection_grew's listeners already read scores of every row, and the
    query announces itself once, after them."""
    class Growing:  # the collection as indexing grows it: its first 5 rows, then all
        folder, ids, vectors, dim = collection.folder, collection.ids[:5], collection.vectors[:5], collection.dim

        def __len__(self):
            return len(self.ids)

        def similarities(self, query):
            return self.vectors @ query

    growing = Growing()
    state = AppState()
    state.set_collection(growing, collection.folder, "lite0")
    state.query.add([QueryExample.of_row(collection, 0)])
    growing.ids, growing.vectors = collection.ids, collection.vectors
    order = []
    state.collection_grew.connect(lambda rows: order.append(("grew", len(state.query.scores))))
    state.query.changed.connect(lambda: order.append(("query", len(state.query.scores))))
    state.grow(np.arange(5, len(collection)))
    assert order == [("grew", len(collection)), ("query", len(collection))]


def test_a_query_of_another_representation_is_cleared(collection):
    """Opening the folder under another model (other dimensions): the old examples go, with
    their embeddings in flight, instead of failing to compare."""
    query = QueryModel()
    query.rescore(collection)
    query.add([QueryExample.of_row(collection, 0)])
    query.add_negatives([QueryExample.of_row(collection, 1)])
    generation, seen = query.generation, Recorder(query).seen
    other = np.eye(3, 7, dtype=np.float32)  # 3 rows of another, 7-d representation

    class Other:
        dim = 7

        def __len__(self):
            return len(other)

        def similarities(self, query):
            return other @ query

    query.rescore(Other())
    assert query.positives == query.negatives == () and query.generation == generation + 1
    assert seen == [(None, None)]
    query.add([QueryExample("other", other[0])])
    np.testing.assert_allclose(query.scores, [1, 0, 0])
