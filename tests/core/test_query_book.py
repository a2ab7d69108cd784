"""Named queries: persisted with the collection as JSON, Rocchio vectors, unique names."""

import json

import numpy as np
import pytest

from explorer.core.query_book import FILE_NAME, Example, NamedQuery, QueryBook, QueryBookError


def unit(seed, dim=8):
    v = np.random.default_rng(seed).normal(size=dim).astype(np.float32)
    return v / np.linalg.norm(v)


def query(name, positives=(1, 2), negatives=(3,), weight=0.25):
    return NamedQuery(name, [Example.of(f"p{s}", f"/photos/p{s}.jpg", unit(s)) for s in positives],
                      [Example.of(f"n{s}", None, unit(s)) for s in negatives], weight)


def test_round_trip_keeps_everything_and_the_order(tmp_path):
    book = QueryBook()
    book.add(query("faces in things"))
    book.add(query("real faces", positives=(4,), negatives=()))
    book.save(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [FILE_NAME]  # no temp file left behind
    assert "pickle" not in (tmp_path / FILE_NAME).read_text()
    again = QueryBook.load(tmp_path)
    assert again.names() == ["faces in things", "real faces"]
    for name in again.names():
        assert again.get(name) == book.get(name)
        np.testing.assert_array_equal(again.get(name).vector(), book.get(name).vector())
    outside = again.get("faces in things").negatives[0]
    assert outside.path is None and len(outside.vector) == 8  # survives with no file behind it
    assert QueryBook.load(tmp_path / "nowhere").names() == []


def test_vector_is_the_rocchio_formula():
    q = query("q", positives=(1, 2), negatives=(3, 4), weight=0.25)
    expected = (unit(1) + unit(2)) / 2 - 0.25 * (unit(3) + unit(4)) / 2
    np.testing.assert_allclose(q.vector(), expected / np.linalg.norm(expected), atol=1e-6)
    plain = query("p", positives=(1, 2), negatives=())
    mean = unit(1) + unit(2)
    np.testing.assert_allclose(plain.vector(), mean / np.linalg.norm(mean), atol=1e-6)


def test_names_are_unique_and_collisions_refused():
    book = QueryBook([query("things"), query("faces")])
    with pytest.raises(QueryBookError, match="already"):
        book.add(query("things"))
    with pytest.raises(QueryBookError, match="already"):
        book.add(query("  faces "))  # the same name once trimmed
    with pytest.raises(QueryBookError, match="already"):
        book.rename("things", "faces")
    with pytest.raises(QueryBookError):
        book.add(query("   "))
    with pytest.raises(QueryBookError, match="no positive"):
        book.add(NamedQuery("empty", []))
    book.rename("things", "objects")
    assert book.names() == ["objects", "faces"] and book.get("objects").name == "objects"
    book.rename("objects", "objects")
    edited = query("faces", positives=(7,), negatives=())
    book.replace(edited)
    assert book.get("faces") is edited and book.names() == ["objects", "faces"]
    assert book.remove("objects").name == "objects"
    assert "objects" not in book and len(book) == 1
    with pytest.raises(QueryBookError, match="no query"):
        book.get("objects")
    with pytest.raises(QueryBookError):
        book.replace(query("missing"))


def test_damaged_or_newer_files_are_refused(tmp_path):
    (tmp_path / FILE_NAME).write_text("{not json")
    with pytest.raises(QueryBookError, match="cannot read"):
        QueryBook.load(tmp_path)
    (tmp_path / FILE_NAME).write_text(json.dumps({"format": 99, "queries": []}))
    with pytest.raises(QueryBookError, match="newer"):
        QueryBook.load(tmp_path)
    (tmp_path / FILE_NAME).write_text(json.dumps({"format": 1, "queries": [{"name": "x"}]}))
    with pytest.raises(QueryBookError, match="damaged"):
        QueryBook.load(tmp_path)
    book = QueryBook([query("a"), NamedQuery("b", [Example("e", None, [1.0, 0.0])])])
    book.save(tmp_path)
    with pytest.raises(QueryBookError, match="length"):
        QueryBook.load(tmp_path)
