"""Embeddings made elsewhere in, ours out (issue 16): real Parquet and npy files made by the tests,
real collections, and bad input that must leave the collection as it was."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from explorer.core.exchange import EmbeddingsError, export_embeddings, import_embeddings
from explorer.core.indexer import index_folder
from explorer.core.search import SearchIndex
from explorer.core.store import folder_dir, indexed_models


def vectors_by_path(folder, model=None) -> dict[str, np.ndarray]:
    index = SearchIndex.open(folder, model)
    try:
        return {p: index.vectors[r].copy() for r, p in enumerate(index.paths)}
    finally:
        index.close()


def top10(folder, model, query) -> list[tuple[str, float]]:
    index = SearchIndex.open(folder, model)
    try:
        return [(h.path.name, round(h.score, 5)) for h in index.search(query, 10, exact=True)]
    finally:
        index.close()


def unit_rows(n: int, dim: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def collection_files(folder) -> dict[str, bytes]:
    base = folder_dir(folder)
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*")) if p.is_file()
            and not p.name.endswith(("-shm", "-wal"))} if base.exists() else {}


def test_export_then_import_into_a_fresh_data_dir_gives_the_same_vectors_and_results(
        photo_folder, lite0, tmp_path, monkeypatch):
    index_folder(photo_folder, lite0)
    ours = vectors_by_path(photo_folder)
    query = ours["cat/cat-flip.jpg"]
    out = tmp_path / "lite0.parquet"
    assert export_embeddings(photo_folder, out) == 28
    table = pq.read_table(out)
    assert table.column_names == ["path", "image_path", "vector", "x", "y"]
    assert pa.types.is_fixed_size_list(table.schema.field("vector").type)
    assert json.loads(table.schema.metadata[b"explorer"])["model"] == "efficientnet-lite0"
    assert all(p.startswith(str(photo_folder)) for p in table.column("image_path").to_pylist())

    before = top10(photo_folder, None, query)
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "fresh"))
    report = import_embeddings(photo_folder, [out], "lite0-elsewhere")
    assert (report.imported, report.dim, report.missing) == (28, 1280, [])
    assert indexed_models(photo_folder) == ["lite0-elsewhere"]
    theirs = vectors_by_path(photo_folder, "lite0-elsewhere")
    assert theirs.keys() == ours.keys()
    for path, vector in ours.items():
        np.testing.assert_allclose(theirs[path], vector, atol=1e-6)
    assert top10(photo_folder, "lite0-elsewhere", query) == before


def test_a_clip_retrieval_output_folder_imports_with_absolute_paths_and_skips_missing_files(photo_folder, tmp_path):
    """clip-retrieval's layout: img_emb/img_emb_N.npy and metadata/metadata_N.parquet, rows aligned."""
    paths = sorted(str(p) for p in photo_folder.rglob("*.jpg"))
    paths.insert(5, str(tmp_path / "elsewhere" / "gone.jpg"))  # a row whose file is not in the folder
    vectors = unit_rows(len(paths), 512) * 3  # not unit length: the import normalises
    out = tmp_path / "clip"
    (out / "img_emb").mkdir(parents=True)
    (out / "metadata").mkdir()
    for n, rows in enumerate((slice(0, 20), slice(20, None))):
        np.save(out / "img_emb" / f"img_emb_{n}.npy", vectors[rows].astype(np.float16))
        pq.write_table(pa.table({"image_path": paths[rows], "caption": ["x"] * len(paths[rows])}),
                       out / "metadata" / f"metadata_{n}.parquet")
    report = import_embeddings(photo_folder, [out], "clip-vit-b32")
    assert (report.imported, report.dim) == (28, 512)
    assert report.missing == [str(tmp_path / "elsewhere" / "gone.jpg")]
    imported = vectors_by_path(photo_folder, "clip-vit-b32")
    for row, path in enumerate(paths):
        if row != 5:
            expected = vectors[row].astype(np.float16).astype(np.float32)
            relative = str(__import__("pathlib").Path(path).relative_to(photo_folder))
            np.testing.assert_allclose(imported[relative], expected / np.linalg.norm(expected), atol=1e-6)


def good_table(folder, dim: int = 8, n: int = 6) -> dict:
    paths = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.jpg"))[:n]
    return {"path": paths, "embedding": [list(map(float, v)) for v in unit_rows(n, dim)]}


BAD = {
    "wrong vector length": (lambda t: t["embedding"].__setitem__(3, t["embedding"][3][:5]),
                            "row 3: a vector of length 5, not 8"),
    "NaN": (lambda t: t["embedding"][4].__setitem__(2, float("nan")), "row 4: the vector holds NaN"),
    "no vector": (lambda t: t["embedding"].__setitem__(1, None), "row 1: no vector"),
    "empty file": (lambda t: [t[k].clear() for k in t], "holds no rows"),
}


@pytest.mark.parametrize("case", [*BAD, "not Parquet", "missing input", "no vector column"])
def test_bad_input_is_a_clear_error_and_leaves_the_collection_as_it_was(photo_folder, tmp_path, case):
    import_embeddings(photo_folder, [_write(tmp_path / "first.parquet", good_table(photo_folder))], "mine")
    before = collection_files(photo_folder)
    bad = tmp_path / "bad.parquet"
    if case in BAD:
        table = good_table(photo_folder)
        BAD[case][0](table)
        _write(bad, table)
        expected = BAD[case][1]
    elif case == "not Parquet":
        bad.write_text("path,embedding\nx.jpg,1 2 3\n")
        expected = "is not a readable Parquet file"
    elif case == "missing input":
        expected = "no such file or folder"
    else:
        _write(bad, {"path": ["a.jpg"], "score": [0.5]})
        expected = "which column holds the vector? None of vector, embedding"
    with pytest.raises(EmbeddingsError) as err:
        import_embeddings(photo_folder, [bad], "mine")
    assert expected in str(err.value)
    if case not in ("missing input",):
        assert str(bad) in str(err.value)  # names the file
    assert collection_files(photo_folder) == before
    assert indexed_models(photo_folder) == ["mine"]


def _write(path, columns: dict):
    pq.write_table(pa.table(columns), path)
    return path


def test_a_failed_first_import_leaves_nothing_behind(photo_folder, tmp_path):
    table = good_table(photo_folder)
    table["embedding"][2] = [float("nan")] * 8
    with pytest.raises(EmbeddingsError):
        import_embeddings(photo_folder, [_write(tmp_path / "bad.parquet", table)], "mine")
    assert not folder_dir(photo_folder).exists()


def test_names_of_computed_models_and_odd_names_are_refused(photo_folder, tmp_path):
    source = _write(tmp_path / "e.parquet", good_table(photo_folder))
    for name, message in (("efficientnet-lite0", "a model Explorer computes"), ("../up", "cannot name"),
                          (".hidden", "cannot name")):
        with pytest.raises(EmbeddingsError, match=message):
            import_embeddings(photo_folder, [source], name)


def test_cli_import_and_export(photo_folder, tmp_path):
    source = _write(tmp_path / "siglip.parquet", good_table(photo_folder, dim=16, n=10))

    def explorer(*args):
        return subprocess.run([sys.executable, "-m", "explorer.cli", *map(str, args)],
                              capture_output=True, text=True, timeout=120)

    imported = explorer("import", photo_folder, source, "--vector-column", "embedding")
    assert imported.returncode == 0, imported.stderr
    assert imported.stdout.startswith(f"imported 10 vectors of dimension 16 into {photo_folder} as 'siglip'")
    exported = explorer("export-embeddings", photo_folder, tmp_path / "out.parquet", "--model", "siglip")
    assert exported.returncode == 0 and "wrote 10 rows" in exported.stdout, exported.stderr
    assert pq.read_table(tmp_path / "out.parquet").column("path").to_pylist() == \
        sorted(good_table(photo_folder, n=10)["path"])
    searched = explorer("search", photo_folder, "--model", "siglip", "--query",
                        photo_folder / good_table(photo_folder, n=10)["path"][0], "--k", "3", "--json")
    assert searched.returncode == 0, searched.stderr
    assert json.loads(searched.stdout)["results"][0]["score"] > 0.9999  # its own stored vector
    outside = explorer("search", photo_folder, "--model", "siglip", "--query", tmp_path / "siglip.parquet")
    assert outside.returncode == 2 and "was imported, and Explorer cannot run its model" in outside.stderr
    bad = explorer("import", photo_folder, tmp_path / "nowhere.parquet", "--name", "x")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip() == f"explorer: error: no such file or folder: {tmp_path / 'nowhere.parquet'}; " \
                                 "nothing was imported"
    shutil.rmtree(folder_dir(photo_folder))
